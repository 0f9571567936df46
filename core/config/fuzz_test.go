package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary text to the parser: it must never panic, and
// every rejection must be a located *Error.
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
