// Package sdktest helps checker authors test a checker directly, in
// process, against a real server: run one check with a deadline and assert
// its status and reason.
package sdktest

import (
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ripcord/ripcord/plugins/sdk"
)

// Settings encodes a settings map the way the daemon hands it to a checker.
func Settings(t testing.TB, m map[string]any) sdk.Settings {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Check runs one check of target with the given timeout as its deadline and
// returns the result and how long it took. Like the daemon, it holds the
// settings to the checker's schema first (defaults filled in). A returned
// error (the checker broke) and settings the schema refuses fail the test.
func Check(t testing.TB, c sdk.Checker, timeout time.Duration, target string, s sdk.Settings) (*sdk.Result, time.Duration) {
	t.Helper()
	s = applySchema(t, c, s)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	res, err := c.Check(ctx, &sdk.Request{Target: target, Settings: s})
	took := time.Since(start)
	if err != nil {
		t.Fatalf("Check(%s): %v", target, err)
	}
	return res, took
}

// Want fails the test unless res has the given status and reason. It logs
// the whole result, which is what one wants to see when it does fail.
func Want(t testing.TB, res *sdk.Result, status sdk.Status, reason string) {
	t.Helper()
	t.Logf("%s/%s: %s phases=%v observations=%v", res.Status, res.Reason, res.Message, res.Phases, res.Observations)
	if res.Status != status || res.Reason != reason {
		t.Fatalf("got %s/%s (%s), want %s/%s", res.Status, res.Reason, res.Message, status, reason)
	}
}

// DescribeMatches fails the test unless c.Describe() has name and a version,
// documents exactly the JSON keys of the settings struct config (a value of
// it), and its schema holds together: every Default is of its Type and
// decodes into config. The settings schema users read must never drift from
// what the checker accepts.
func DescribeMatches(t testing.TB, c sdk.Checker, name string, config any) {
	t.Helper()
	d := c.Describe()
	if d.Name != name || d.Version == "" {
		t.Fatalf("Describe() = name %q version %q, want name %q and a version", d.Name, d.Version, name)
	}
	var described []string
	for _, f := range d.Settings {
		described = append(described, f.Name)
	}
	var fields []string
	typ := reflect.TypeOf(config)
	for i := range typ.NumField() {
		if tag, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ","); tag != "" && tag != "-" {
			fields = append(fields, tag)
		}
	}
	slices.Sort(described)
	slices.Sort(fields)
	if !slices.Equal(described, fields) {
		t.Fatalf("Describe lists %v, the settings struct has %v", described, fields)
	}
	defaults, _, err := sdk.ApplySchema(d.Settings, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := defaults.Decode(reflect.New(typ).Interface()); err != nil {
		t.Fatalf("the defaults %s do not decode into %s: %v", defaults, typ, err)
	}
}

// applySchema holds s to c's schema, as the daemon's plugin does.
func applySchema(t testing.TB, c sdk.Checker, s sdk.Settings) sdk.Settings {
	t.Helper()
	out, fes, err := sdk.ApplySchema(c.Describe().Settings, s)
	if err != nil || fes != nil {
		t.Fatalf("settings %s: %v %v", s, err, fes)
	}
	return out
}

// PhaseNames lists the names of a result's phases, in order.
func PhaseNames(res *sdk.Result) []string {
	var names []string
	for _, p := range res.Phases {
		names = append(names, p.Name)
	}
	return names
}

// ConfigureFields validates settings (JSON) as the daemon does
// (sdk.ValidateSettings: the schema, then c.Configure) and returns the names
// of the fields rejected, sorted, and the errors.
func ConfigureFields(t testing.TB, c sdk.Checker, settings string) ([]string, []sdk.FieldError) {
	t.Helper()
	errs, err := sdk.ValidateSettings(context.Background(), c, sdk.Settings(settings))
	if err != nil {
		t.Fatalf("Configure(%s): %v", settings, err)
	}
	var fields []string
	for _, e := range errs {
		fields = append(fields, e.Field)
	}
	slices.Sort(fields)
	return fields, errs
}
