package checkapi

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var testSchema = []Field{
	{Name: "server", Type: "string", Required: true},
	{Name: "port", Type: "int", Default: "53"},
	{Name: "proto", Type: "string", Default: "udp"},
	{Name: "timeout", Type: "duration", Default: "2s"},
	{Name: "ratio", Type: "float", Default: "0.5"},
	{Name: "tcp", Type: "bool", Default: "false"},
	{Name: "expect", Type: "[]string"},
	{Name: "status", Type: "int or []int", Default: "200"},
	{Name: "headers", Type: "map[string]string"},
	{Name: "login", Type: "object"},
	{Name: "free", Type: "a type the SDK does not know", Default: "anything"},
}

func TestApplySchema(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
		fes            []FieldError
	}{
		{name: "defaults filled in", in: `{"server": "ns1"}`, want: `{"port":53,"proto":"udp","ratio":0.5,"server":"ns1","status":200,"tcp":false,"timeout":"2s"}`},
		{name: "set values kept as written", in: `{"server":"ns1","port":5353,"proto":"tcp","timeout":"1m","ratio":1,"tcp":true,"status":[200,204],"expect":["a"],"headers":{"a":"b"},"login":{"x":[1]},"free":[{}]}`,
			want: `{"expect":["a"],"free":[{}],"headers":{"a":"b"},"login":{"x":[1]},"port":5353,"proto":"tcp","ratio":1,"server":"ns1","status":[200,204],"tcp":true,"timeout":"1m"}`},
		{name: "null is absent", in: `{"server":"ns1","port":null}`, want: `{"port":53,"proto":"udp","ratio":0.5,"server":"ns1","status":200,"tcp":false,"timeout":"2s"}`},
		{name: "required", in: `{}`, want: `{"port":53,"proto":"udp","ratio":0.5,"status":200,"tcp":false,"timeout":"2s"}`, fes: []FieldError{{Field: "server", Message: "required"}}},
		{name: "required and null", in: `{"server":null}`, want: `{"port":53,"proto":"udp","ratio":0.5,"server":null,"status":200,"tcp":false,"timeout":"2s"}`, fes: []FieldError{{Field: "server", Message: "required"}}},
		{name: "every type error, each dropped", in: `{"server":42,"port":"53","timeout":"soon","tcp":"yes","ratio":"x","status":[200,"x"],"login":[],"headers":{"a":1},"expect":["a",1]}`,
			want: `{"proto":"udp"}`, fes: []FieldError{
				{Field: "server", Message: "cannot use the number 42 as string"},
				{Field: "port", Message: `cannot use a string as int`},
				{Field: "timeout", Message: `invalid duration "soon" (examples: 500ms, 2s, 1m)`},
				{Field: "ratio", Message: "cannot use a string as float"},
				{Field: "tcp", Message: "cannot use a string as bool"},
				{Field: "expect[1]", Message: "cannot use the number 1 as string"},
				{Field: "status[1]", Message: "cannot use a string as int"},
				{Field: "headers.a", Message: "cannot use the number 1 as string"},
				{Field: "login", Message: "cannot use a list as object"},
			}},
		{name: "neither alternative", in: `{"server":"a","status":"200"}`, want: `{"port":53,"proto":"udp","ratio":0.5,"server":"a","tcp":false,"timeout":"2s"}`,
			fes: []FieldError{{Field: "status", Message: "cannot use a string as int or []int"}}},
		{name: "a fraction is no int", in: `{"server":"a","port":53.5}`, want: `{"proto":"udp","ratio":0.5,"server":"a","status":200,"tcp":false,"timeout":"2s"}`,
			fes: []FieldError{{Field: "port", Message: "cannot use the number 53.5 as int"}}},
		{name: "negative duration", in: `{"server":"a","timeout":"-1s"}`, want: `{"port":53,"proto":"udp","ratio":0.5,"server":"a","status":200,"tcp":false}`,
			fes: []FieldError{{Field: "timeout", Message: `invalid duration "-1s" (examples: 500ms, 2s, 1m)`}}},
		{name: "unknown keys", in: `{"server":"a","srever":1,"zzz":2}`, want: `{"port":53,"proto":"udp","ratio":0.5,"server":"a","status":200,"tcp":false,"timeout":"2s"}`, fes: []FieldError{
			{Field: "srever", Message: "unknown setting (known: expect, free, headers, login, port, proto, ratio, server, status, tcp, timeout)"},
			{Field: "zzz", Message: "unknown setting (known: expect, free, headers, login, port, proto, ratio, server, status, tcp, timeout)"},
		}},
		{name: "not a mapping", in: `[1]`, fes: []FieldError{{Message: "settings must be a mapping"}}},
		{name: "not JSON", in: `{"server":`, fes: []FieldError{{Message: "unexpected end of JSON input"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, fes, err := ApplySchema(testSchema, Settings(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("settings\n got %s\nwant %s", got, tc.want)
			}
			if diff := cmp.Diff(tc.fes, fes); diff != "" {
				t.Errorf("field errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestApplySchemaBroken(t *testing.T) {
	for _, tc := range []struct {
		fields []Field
		want   string
	}{
		{[]Field{{Name: "n", Type: "int", Default: "many"}}, `schema: setting n: default "many" is not a int`},
		{[]Field{{Name: "d", Type: "duration", Default: "soon"}}, `schema: setting d: default "soon" is not a duration`},
		{[]Field{{Name: "l", Type: "[]int", Default: "200"}}, `schema: setting l: default "200" is not a []int`},
		{[]Field{{Name: "a", Type: "string"}, {Name: "a", Type: "int"}}, `schema: setting "a" is listed twice`},
	} {
		if _, _, err := ApplySchema(tc.fields, Settings(`{}`)); err == nil || err.Error() != tc.want {
			t.Errorf("%v: error %v, want %s", tc.fields, err, tc.want)
		}
	}
	// No schema: nothing to check, nothing changed.
	if got, fes, err := ApplySchema(nil, Settings(`{"x": 1}`)); string(got) != `{"x": 1}` || fes != nil || err != nil {
		t.Errorf("no schema: %s %v %v", got, fes, err)
	}
}

// schemaChecker has testSchema and a Configure that finds what no schema
// can: ports out of range, settings that do not go together.
type schemaChecker struct{}

func (schemaChecker) Describe() Description { return Description{Name: "s", Settings: testSchema} }

func (schemaChecker) Configure(_ context.Context, s Settings) ([]FieldError, error) {
	var v struct {
		Port  int    `json:"port"`
		Proto string `json:"proto"`
		TCP   bool   `json:"tcp"`
	}
	if err := json.Unmarshal(s, &v); err != nil {
		// Only what the schema let through reaches the checker.
		return nil, errors.New("the schema let a bad value through")
	}
	var fes []FieldError
	if v.Port > 65535 {
		fes = append(fes, FieldError{Field: "port", Message: "not a port"})
	}
	if v.TCP && v.Proto == "udp" {
		fes = append(fes, FieldError{Field: "tcp", Message: "contradicts proto udp"})
	}
	if v.Port == 0 {
		fes = append(fes, FieldError{Field: "port", Message: "the default was not filled in"})
	}
	return fes, nil
}

func (schemaChecker) Check(context.Context, *Request) (*Result, error) { return OK(""), nil }

func TestValidateSettings(t *testing.T) {
	for in, want := range map[string][]FieldError{
		`{"server":"a"}`:                        nil,
		`{"server":"a","port":70000}`:           {{Field: "port", Message: "not a port"}},
		`{"port":70000,"tcp":true,"timeout":1}`: {{Field: "server", Message: "required"}, {Field: "timeout", Message: "cannot use the number 1 as duration"}, {Field: "port", Message: "not a port"}, {Field: "tcp", Message: "contradicts proto udp"}},
		`{"server":"a","port":"x","tcp":true}`:  {{Field: "port", Message: "cannot use a string as int"}, {Field: "tcp", Message: "contradicts proto udp"}},
	} {
		got, err := ValidateSettings(context.Background(), schemaChecker{}, Settings(in))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", in, diff)
		}
	}
}

// ApplySchema never panics, and what it returns without field errors is a
// JSON object holding every required field.
func FuzzApplySchema(f *testing.F) {
	for _, seed := range []string{``, `{}`, `null`, `[]`, `{"server":"a"}`, `{"server":1,"expect":[1,{"a":null}],"headers":{"x":[]}}`,
		`{"status":[1,2.5],"port":1e400}`, `{"timeout":"1h","tcp":null}`, `  {"server":"a"} `, `{"server":"a"}{}`} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, fes, err := ApplySchema(testSchema, Settings(in))
		if err != nil {
			t.Fatal(err)
		}
		if fes != nil {
			return
		}
		var obj map[string]any
		if err := json.Unmarshal(got, &obj); err != nil || obj["server"] == nil {
			t.Fatalf("%s -> %s: %v", in, got, err)
		}
	})
}

// BenchmarkApplySchema is what the schema costs each check: the http
// checker's schema and a typical page check's settings.
func BenchmarkApplySchema(b *testing.B) {
	fields := []Field{
		{Name: "method", Type: "string", Default: "GET"},
		{Name: "host", Type: "string"},
		{Name: "server_name", Type: "string"},
		{Name: "expect_status", Type: "int or []int", Default: "200"},
		{Name: "body_contains", Type: "string"},
		{Name: "body_regex", Type: "string"},
		{Name: "ca_file", Type: "string"},
		{Name: "follow_redirects", Type: "bool", Default: "false"},
		{Name: "cert_warn_days", Type: "float", Default: "14"},
		{Name: "max_body", Type: "int", Default: "1048576"},
		{Name: "headers", Type: "map[string]string"},
		{Name: "login", Type: "object"},
	}
	s := Settings(`{"body_contains":"name=\"password\"","expect_status":[200,302],"headers":{"X-Probe":"ripcord"}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, fes, err := ApplySchema(fields, s); fes != nil || err != nil {
			b.Fatal(fes, err)
		}
	}
}
