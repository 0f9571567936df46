package main

import (
	"testing"
	"time"
)

func TestParseSpan(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"1000000", time.Millisecond, true},
		{"1ms", time.Millisecond, true},
		{"50us", 50 * time.Microsecond, true},
		{"1 ms", time.Millisecond, true},
		{"soon", 0, false},
	} {
		got, err := parseSpan(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseSpan(%q) = %v, %v; want %v (ok %v)", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// The benchmark runs ripcord as the packaged unit does.
func TestReadUnit(t *testing.T) {
	u, err := readUnit("../../" + unitPath)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := u.String(), "GOMAXPROCS=1, timer slack 1ms"; got != want {
		t.Errorf("unit: %q, want %q", got, want)
	}
}
