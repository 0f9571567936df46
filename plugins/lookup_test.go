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
	sum, err := FileSHA256(exe)
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

// TestLookupRefusesUntrustedPlugins: a plugin runs as root, so one that
// others could have changed (its file or its directory writable by group or
// others, or owned by another user) is refused, as sshd refuses such keys.
// /tmp above the test's directory is world-writable but sticky: accepted.
func TestLookupRefusesUntrustedPlugins(t *testing.T) {
	mk := func(dirMode, fileMode os.FileMode) (string, *Host) {
		dir := filepath.Join(t.TempDir(), "plugins")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, FilePrefix+"x")
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, fileMode)
		os.Chmod(dir, dirMode)
		return dir, NewHost(Options{Dir: dir})
	}
	if _, h := mk(0o755, 0o755); errString(lookupErr(h)) != "" {
		t.Fatalf("a root-owned 0755 plugin in a 0755 directory: %v", lookupErr(h))
	}
	dir, h := mk(0o755, 0o775)
	if want := `plugins: checker "x": ` + dir + "/" + FilePrefix + "x is writable by group or others (mode 0775)"; !strings.HasPrefix(errString(lookupErr(h)), want) {
		t.Errorf("group-writable plugin: %v\nwant %s", lookupErr(h), want)
	}
	dir, h = mk(0o777|os.ModeSticky, 0o755)
	if want := `plugins: checker "x": ` + dir + " is writable by group or others (mode 0777)"; !strings.HasPrefix(errString(lookupErr(h)), want) {
		t.Errorf("world-writable plugin directory: %v\nwant %s", lookupErr(h), want)
	}
	if os.Geteuid() == 0 {
		dir, h = mk(0o755, 0o755)
		if err := os.Chown(dir, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		if want := `plugins: checker "x": ` + dir + " is owned by uid 65534, not by root or ripcord's user (uid 0)"; !strings.HasPrefix(errString(lookupErr(h)), want) {
			t.Errorf("plugin directory of another user: %v\nwant %s", lookupErr(h), want)
		}
	}
}

func lookupErr(h *Host) error {
	_, _, err := h.Lookup("x")
	return err
}
