package config

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ripcord/ripcord/plugins/sdk"
)

// FuzzParse feeds arbitrary text to the parser: it must never panic, and
// every rejection must be a located *Error, and so must every error a
// checker reports about an accepted config's targets and settings (keys
// that exist, that do not, list entries).
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yml")
	if len(files) == 0 {
		f.Fatal("no seed configs in testdata")
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("services: &a [*a]"))
	f.Add([]byte("services:\n  - name: a\n    vip: 192.0.2.1\n    checks:\n      - name: c\n        checker: ldap\n        target: t\n        settings:\n          a: {b: [1, &x {c: 2}, *x]}\n          x: [{y: 1}]\n"))
	f.Add([]byte("services:\n  - {name: a, vip: 1.2.3.4, checks: [{name: c, checker: x, target: t, rise: 99999999999999999999}]}"))
	// Portable: a mutated metrics_listen must not make the fuzzer resolve
	// host names or bind addresses.
	o := testOptions
	o.Portable = true
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse("fuzz.yml", b, o)
		if err == nil {
			if len(c.Services) == 0 {
				t.Fatal("accepted a config without services")
			}
			err = c.ConfigureChecks(context.Background(), func(context.Context, string, *sdk.Request) (string, []sdk.FieldError, error) {
				return "bad target", []sdk.FieldError{{Message: "m"}, {Field: "a", Message: "m"}, {Field: "a.b[1]", Message: "m"},
					{Field: "x[0].y", Message: "m"}, {Field: "[", Message: "m"}}, nil
			})
			if n := located(t, err); n != 6*len(c.AllChecks()) {
				t.Fatalf("%d errors for %d checks: %v", n, len(c.AllChecks()), err)
			}
			return
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("error %v (%T) is not a located *config.Error", err, err)
		}
		if e.Line < 1 && e.Key != "(syntax)" {
			t.Fatalf("error without a line: %v", err)
		}
	})
}

// located fails the test unless err is one or more located *Errors (joined
// by errors.Join), and returns how many.
func located(t *testing.T, err error) int {
	t.Helper()
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		n := 0
		for _, e := range joined.Unwrap() {
			n += located(t, e)
		}
		return n
	}
	if e, ok := err.(*Error); !ok || e.Line < 1 {
		t.Fatalf("error %v is not located", err)
	}
	return 1
}
