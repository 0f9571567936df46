package control

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/ripcord/ripcord/core"
)

type fakeBackend struct {
	mu      sync.Mutex
	drained map[string]bool
	checked []string
	reload  ReloadResult
}

func (f *fakeBackend) Reload() ReloadResult {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reload
}

func (f *fakeBackend) Report() Report {
	f.mu.Lock()
	defer f.mu.Unlock()
	return Report{Node: "sa", Services: []ServiceReport{{
		Status:    core.Status{Name: "ldap", State: "up", Metric: 1, Drained: f.drained["ldap"]},
		Announced: map[string]int{"rip": 1},
	}}}
}

func (f *fakeBackend) SetDrained(s string, on bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s != "ldap" {
		return fmt.Errorf("no service %q", s)
	}
	f.drained[s] = on
	return nil
}

func (f *fakeBackend) CheckNow(s string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checked = append(f.checked, s)
	return nil
}

func TestControlSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "run", "ripcord.sock")
	b := &fakeBackend{drained: map[string]bool{}}
	srv, err := Listen(sock, b, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, want 0600", fi.Mode().Perm())
	}
	if _, err := Listen(sock, b, slog.Default()); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second Listen: %v, want 'in use'", err)
	}
	c := NewClient(sock)
	if err := c.Drain("ldap"); err != nil {
		t.Fatal(err)
	}
	r, err := c.Status()
	if err != nil {
		t.Fatal(err)
	}
	if !r.Services[0].Drained || r.Services[0].Announced["rip"] != 1 || r.Node != "sa" {
		t.Fatalf("report = %+v", r)
	}
	if err := c.Undrain("ldap"); err != nil || b.drained["ldap"] {
		t.Fatalf("undrain: %v, drained=%v", err, b.drained["ldap"])
	}
	if err := c.Drain("nope"); err == nil || err.Error() != `no service "nope"` {
		t.Fatalf("drain of unknown service: %v", err)
	}
	if err := c.CheckNow("ldap"); err != nil || len(b.checked) != 1 {
		t.Fatalf("check now: %v %v", err, b.checked)
	}
	b.reload = ReloadResult{OK: true, Summary: "added web"}
	if res, err := c.Reload(); err != nil || res.Summary != "added web" {
		t.Fatalf("reload: %+v, %v", res, err)
	}
	b.reload = ReloadResult{Error: "/etc/ripcord/ripcord.yaml:3:5: services[0].vip: bad"}
	if _, err := c.Reload(); err == nil || err.Error() != b.reload.Error {
		t.Fatalf("refused reload: %v, want %q", err, b.reload.Error)
	}
	srv.Close()
	if _, err := NewClient(sock).Status(); err == nil || !strings.Contains(err.Error(), "is the daemon running") {
		t.Fatalf("status with no daemon: %v", err)
	}
}

// TestListenReplacesOnlyAStaleSocket: a stale socket is replaced; a regular
// file (even the config), a directory or a named pipe at the path is refused
// and left as it was.
func TestListenReplacesOnlyAStaleSocket(t *testing.T) {
	dir := t.TempDir()
	b := &fakeBackend{drained: map[string]bool{}}

	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close() // the file stays, nobody answers: what a crash leaves
	srv, err := Listen(stale, b, slog.Default())
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	srv.Close()

	file := filepath.Join(dir, "ripcord.yaml")
	os.WriteFile(file, []byte("services: []\n"), 0o600)
	emptyDir := filepath.Join(dir, "empty")
	os.Mkdir(emptyDir, 0o755)
	fifo := filepath.Join(dir, "fifo")
	syscall.Mkfifo(fifo, 0o600)
	long := filepath.Join(dir, strings.Repeat("x", 108)+".sock")
	for path, want := range map[string]string{
		file:     "control: " + file + " exists and is a regular file, not a socket: ripcord replaces only a stale socket of its own",
		emptyDir: "control: " + emptyDir + " exists and is a directory, not a socket: ripcord replaces only a stale socket of its own",
		fifo:     "control: " + fifo + " exists and is a named pipe (FIFO), not a socket: ripcord replaces only a stale socket of its own",
		long:     fmt.Sprintf("control: %s is %d bytes long; a unix socket path has at most 107", long, len(long)),
	} {
		srv, err := Listen(path, b, slog.Default())
		if err == nil {
			srv.Close()
		}
		if err == nil || err.Error() != want {
			t.Errorf("Listen(%s) = %v\nwant %s", filepath.Base(path), err, want)
		}
	}
	if got, _ := os.ReadFile(file); string(got) != "services: []\n" {
		t.Errorf("the regular file was changed: %q", got)
	}
	if fi, err := os.Stat(emptyDir); err != nil || !fi.IsDir() {
		t.Errorf("the directory is gone: %v", err)
	}
}
