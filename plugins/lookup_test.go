package plugins

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLookup(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, mode os.FileMode) string {
		p := filepath.Join(dir, FilePrefix+name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	exe := write("good", 0o755)
	write("noexec", 0o644)
	if err := os.Mkdir(filepath.Join(dir, FilePrefix+"adir"), 0o755); err != nil {
		t.Fatal(err)
	}
	sum, err := fileSHA256(exe)
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Repeat("0", 64)
	h := NewHost(Options{
		Builtin: func(n string) bool { return n == "ldap" || n == "radius" },
		Self:    []string{"/usr/sbin/ripcord", "checker"},
		Dir:     dir,
		SHA256:  map[string]string{"good": sum, "radius": sum, "bad": bad, "short": "abc"},
	})
	for _, tc := range []struct {
		name, path string
		builtin    bool
		err        string
	}{
		{name: "ldap", path: "/usr/sbin/ripcord", builtin: true},
		{name: "good", path: exe},
		{name: "radius", builtin: true, err: `plugins: checker "radius": built-in checker: a sha256 pin applies only to third-party plugins`},
		{name: "missing", path: filepath.Join(dir, FilePrefix+"missing"),
			err: `plugins: checker "missing": not built in, and there is no ` + filepath.Join(dir, FilePrefix+"missing")},
		{name: "noexec", path: filepath.Join(dir, FilePrefix+"noexec"),
			err: `plugins: checker "noexec": ` + filepath.Join(dir, FilePrefix+"noexec") + ` is not executable (mode -rw-r--r--)`},
		{name: "adir", path: filepath.Join(dir, FilePrefix+"adir"),
			err: `plugins: checker "adir": ` + filepath.Join(dir, FilePrefix+"adir") + ` is not a regular file`},
		{name: "../good", err: `plugins: checker "../good": invalid checker name: want lower-case letters, digits, '_' and '-'`},
		{name: "", err: `plugins: checker "": invalid checker name: want lower-case letters, digits, '_' and '-'`},
	} {
		path, builtin, err := h.Lookup(tc.name)
		if path != tc.path || builtin != tc.builtin || errString(err) != tc.err {
			t.Errorf("Lookup(%q) = %q, %v, %q; want %q, %v, %q", tc.name, path, builtin, errString(err), tc.path, tc.builtin, tc.err)
		}
	}

	// A pin that does not match names the file and both hashes.
	for name, want := range map[string]string{
		"bad":   "sha256 mismatch for " + filepath.Join(dir, FilePrefix+"bad") + ": expected " + bad + ", actual " + sum,
		"short": `sha256 pin "abc" is not 64 hex digits`,
	} {
		if err := os.Symlink(exe, filepath.Join(dir, FilePrefix+name)); err != nil {
			t.Fatal(err)
		}
		if _, _, err := h.Lookup(name); !strings.Contains(errString(err), want) {
			t.Errorf("Lookup(%q): error %q, want it to contain %q", name, errString(err), want)
		}
	}

	if _, _, err := NewHost(Options{}).Lookup("x"); errString(err) != `plugins: checker "x": not built in, and no plugin directory is configured` {
		t.Errorf("no Dir: %v", err)
	}
	if _, _, err := NewHost(Options{Builtin: func(string) bool { return true }}).Lookup("x"); !strings.Contains(errString(err), "no command to start built-ins") {
		t.Errorf("no Self: %v", err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
