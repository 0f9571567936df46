package checkapi

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDecodeFields(t *testing.T) {
	type nested struct {
		Port int `json:"port"`
	}
	type settings struct {
		Host    string        `json:"host"`
		Port    int           `json:"port"`
		Timeout time.Duration `json:"timeout"`
		Tags    []string      `json:"tags"`
		Inner   nested        `json:"inner"`
	}
	for _, tc := range []struct {
		in   string
		want []FieldError
	}{
		{in: ``},
		{in: `{}`},
		{in: `{"host": "a", "port": 1, "tags": ["x"], "inner": {"port": 2}}`},
		{in: `{"hots": "a"}`, want: []FieldError{{Field: "hots", Message: "unknown setting"}}},
		{in: `{"port": "389"}`, want: []FieldError{{Field: "port", Message: "cannot use a string as int"}}},
		{in: `{"tags": "x"}`, want: []FieldError{{Field: "tags", Message: "cannot use a string as []string"}}},
		{in: `{"inner": {"port": true}}`, want: []FieldError{{Field: "inner.port", Message: "cannot use a bool as int"}}},
		{in: `["a"]`, want: []FieldError{{Message: "cannot use an array as checkapi.settings"}}},
		// Every bad key, not only the first, and list entries by index.
		{in: `{"host": 42, "port": "x", "hots": 1}`, want: []FieldError{
			{Field: "host", Message: "cannot use a number as string"},
			{Field: "hots", Message: "unknown setting"},
			{Field: "port", Message: "cannot use a string as int"}}},
		{in: `{"tags": ["a", 1, "b", true]}`, want: []FieldError{
			{Field: "tags[1]", Message: "cannot use a number as string"},
			{Field: "tags[3]", Message: "cannot use a bool as string"}}},
		{in: `{"inner": {"port": 1.5, "x": 1}}`, want: []FieldError{
			{Field: "inner.port", Message: "cannot use a number 1.5 as int"},
			{Field: "inner.x", Message: "unknown setting"}}},
		{in: `{"timeout": "2s"}`, want: []FieldError{{Field: "timeout", Message: "cannot use a string as time.Duration"}}},
		{in: `{"host": null, "tags": null}`},
		{in: `{"HOST": "a"}`}, // encoding/json matches keys without case
		{in: `{"host": "a"`, want: []FieldError{{Message: "unexpected EOF"}}},
	} {
		var s settings
		if diff := cmp.Diff(tc.want, Settings(tc.in).DecodeFields(&s)); diff != "" {
			t.Errorf("DecodeFields(%s) (-want +got):\n%s", tc.in, diff)
		}
	}
}

func TestIsMisconfiguration(t *testing.T) {
	for reason, want := range map[string]bool{
		ReasonAuthFailed: true, ReasonRejected: true, ReasonTLSInvalid: true, ReasonMisconfigured: true,
		ReasonOK: false, ReasonRefused: false, ReasonTimeout: false, ReasonCheckerError: false, "stale_replica": false,
	} {
		if got := IsMisconfiguration(reason); got != want {
			t.Errorf("IsMisconfiguration(%q) = %v, want %v", reason, got, want)
		}
	}
}

// DecodeFields reports errors exactly when Decode does, never panics, and
// names a key for every error of a JSON object it could read.
func FuzzDecodeFields(f *testing.F) {
	type inner struct {
		Port  int      `json:"port"`
		Names []string `json:"names"`
	}
	type settings struct {
		Host   string            `json:"host"`
		Ports  []int             `json:"ports"`
		Inner  *inner            `json:"inner"`
		List   []inner           `json:"list"`
		Labels map[string]string `json:"labels"`
		Any    any               `json:"any"`
		Raw    []byte            `json:"raw"`
	}
	for _, seed := range []string{
		``, `{}`, `null`, `[]`, `{"host": 1}`, `{"ports": [1, "x", 2.5]}`, `{"inner": {"port": "x", "names": [1]}}`,
		`{"list": [{"port": 1}, {"bad": 2}]}`, `{"labels": {"a": 1}}`, `{"any": [1, {"x": null}]}`, `{"raw": "aGk="}`,
		`{"host": "a"} trailing`, `{"HOST": "x", "host": 1}`, `{"ports": null, "inner": null}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var a, b settings
		decErr := Settings(in).Decode(&a)
		fes := Settings(in).DecodeFields(&b)
		if (decErr == nil) != (fes == nil) {
			t.Fatalf("Decode: %v, DecodeFields: %v", decErr, fes)
		}
		for _, fe := range fes {
			if fe.Message == "" {
				t.Fatalf("an error without a message: %v", fes)
			}
		}
	})
}
