package ldap

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A reading outlives the process through its file; a file that is damaged
// or holds another reading counts as none.
func TestMemoryFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "checkers", "ldap") // created on the first write
	r := reading{Target: "ldap://a", Reference: "ldap://p", Context: "dc=example,dc=com",
		At: time.Date(2026, 12, 1, 15, 0, 0, 0, time.UTC), CSNs: []string{"20261201145959.000000Z#000000#001#000000"}}
	if err := newMemory(dir).remember(r); err != nil {
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
