package checkapi

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
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
	// A named pipe with no writer would block a plain read forever.
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := ReadSecretFile(fifo); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "named pipe (FIFO), not a regular file") {
			t.Errorf("fifo: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadSecretFile blocks on a named pipe")
	}
	big := filepath.Join(dir, "big")
	os.WriteFile(big, []byte(strings.Repeat("x", MaxSecretSize+1)), 0o600)
	if _, err := ReadSecretFile(big); err == nil || !strings.Contains(err.Error(), "larger than 64 KiB") {
		t.Errorf("oversized file: %v", err)
	}
}
