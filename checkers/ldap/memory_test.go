package ldap

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// A reading outlives the process through its file; a file that is damaged
// or holds another reading counts as none.
func TestMemoryFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "checkers", "ldap") // created on the first write
	r := reading{Target: "ldap://a", Reference: "ldap://p", Context: "dc=example,dc=com",
		At: time.Date(2026, 12, 1, 15, 0, 0, 0, time.UTC), CSNs: []string{"20261201145959.000000Z#000000#001#000000"}}
	if err := newMemory(dir).remember(r, time.Second); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("state directory: %v %v, want mode 0700", fi, err)
	}
	got, ok := newMemory(dir).recall(r.key())
	if !ok || !got.At.Equal(r.At) || len(got.CSNs) != 1 || got.CSNs[0] != r.CSNs[0] {
		t.Fatalf("recall after a restart = %+v, %v; want %+v", got, ok, r)
	}
	file := newMemory(dir).file(r.key())
	for name, content := range map[string]string{
		"damaged":         `{"target": "ldap://a", "at": `,
		"another reading": `{"target":"ldap://b","reference":"ldap://p","context":"dc=example,dc=com","at":"2026-12-01T15:00:00Z"}`,
		"no time":         `{"target":"ldap://a","reference":"ldap://p","context":"dc=example,dc=com"}`,
	} {
		if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if got, ok := newMemory(dir).recall(r.key()); ok {
			t.Errorf("%s file: recalled %+v", name, got)
		}
	}
	if _, ok := newMemory("").recall(r.key()); ok {
		t.Error("a memory without a directory recalled a reading it never had")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".freshness-*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// Only the time changed: the file is rewritten at most every `every`; new
// contextCSN values are written at once.
func TestMemoryWritesLessOften(t *testing.T) {
	dir := t.TempDir()
	m := newMemory(dir)
	start := time.Date(2026, 12, 1, 15, 0, 0, 0, time.UTC)
	r := reading{Target: "ldap://a", Reference: "ldap://p", Context: "dc=example,dc=com",
		CSNs: []string{"20261201145959.000000Z#000000#001#000000"}}
	saved := func() reading {
		t.Helper()
		got, ok := newMemory(dir).recall(r.key())
		if !ok {
			t.Fatal("no reading in the file")
		}
		return got
	}
	for _, step := range []struct {
		after   time.Duration
		csn     string
		written bool
	}{
		{0, "", true},
		{500 * time.Millisecond, "", false},
		{999 * time.Millisecond, "", false},
		{time.Second, "", true},
		{1100 * time.Millisecond, "20261201150001.000000Z#000000#001#000000", true},
		{1200 * time.Millisecond, "", false},
	} {
		before, hadFile := reading{}, false
		if got, ok := newMemory(dir).recall(r.key()); ok {
			before, hadFile = got, true
		}
		r.At = start.Add(step.after)
		if step.csn != "" {
			r.CSNs = []string{step.csn}
		}
		if err := m.remember(r, time.Second); err != nil {
			t.Fatal(err)
		}
		got := saved()
		if written := !hadFile || !got.At.Equal(before.At); written != step.written {
			t.Errorf("at +%s: file written %v, want %v (file has %+v)", step.after, written, step.written, got)
		}
		if step.written && !slices.Equal(got.CSNs, r.CSNs) {
			t.Errorf("at +%s: file has %v, want %v", step.after, got.CSNs, r.CSNs)
		}
	}
}

// BenchmarkMemoryRemember is the cost a freshness check pays to keep its
// reading in the state directory (one small file written and renamed).
func BenchmarkMemoryRemember(b *testing.B) {
	m := newMemory(b.TempDir())
	r := reading{Target: "ldap://a", Reference: "ldap://p", Context: "dc=example,dc=com",
		CSNs: []string{"20261201145959.000000Z#000000#001#000000"}}
	for b.Loop() {
		r.At = time.Now()
		if err := m.remember(r, 0); err != nil {
			b.Fatal(err)
		}
	}
}
