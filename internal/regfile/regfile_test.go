package regfile

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	os.WriteFile(small, []byte("hello\n"), 0o600)
	big := filepath.Join(dir, "big")
	os.WriteFile(big, make([]byte, 101), 0o600)
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, tc := range []struct{ path, want, err string }{
		{small, "hello\n", ""},
		{big, "", big + " is larger than 100 bytes"},
		{dir, "", dir + " is a directory, not a regular file"},
		{fifo, "", fifo + " is a named pipe (FIFO), not a regular file"},
		{"/dev/zero", "", "/dev/zero is a character device, not a regular file"},
		{sock, "", "no such device or address"}, // a socket cannot be opened at all
		{filepath.Join(dir, "missing"), "", "no such file or directory"},
	} {
		done := make(chan struct{})
		var got []byte
		var err error
		go func() { got, err = Read(tc.path, 100); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("Read(%s) blocks", tc.path)
		}
		if tc.err == "" && (err != nil || string(got) != tc.want) {
			t.Errorf("Read(%s) = %q, %v; want %q", tc.path, got, err, tc.want)
		}
		if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("Read(%s) error = %v; want %q", tc.path, err, tc.err)
		}
	}
}

func TestSize(t *testing.T) {
	for n, want := range map[int64]string{100: "100 bytes", 64 << 10: "64 KiB", 1 << 20: "1 MiB", 1500: "1500 bytes"} {
		if got := Size(n); got != want {
			t.Errorf("Size(%d) = %q, want %q", n, got, want)
		}
	}
}
