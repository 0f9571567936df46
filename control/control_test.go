package control

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ripcord/ripcord/core"
)

type fakeBackend struct {
	mu      sync.Mutex
	drained map[string]bool
	checked []string
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
	srv.Close()
	if _, err := NewClient(sock).Status(); err == nil || !strings.Contains(err.Error(), "is the daemon running") {
		t.Fatalf("status with no daemon: %v", err)
	}
}
