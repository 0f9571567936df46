package sdk

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestReadSecretFile(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		content, want string
		empty         bool
	}{
		{"s3cret\n", "s3cret", false},
		{"s3cret\r\nsecond line\n", "s3cret", false},
		{"no newline", "no newline", false},
		{"\n", "", true},
		{"", "", true},
	} {
		p := filepath.Join(dir, "f")
		if err := os.WriteFile(p, []byte(tc.content), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := ReadSecretFile(p)
		if got != tc.want || errors.Is(err, ErrEmptySecret) != tc.empty || (err != nil) != tc.empty {
			t.Errorf("%q: got %q, %v", tc.content, got, err)
		}
	}
	if _, err := ReadSecretFile(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}
