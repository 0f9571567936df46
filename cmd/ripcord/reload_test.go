package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReloadAgainstARunningDaemon: `ripcord reload` and SIGHUP apply a new
// file; an invalid one is refused with its line, the daemon keeps running
// and status says what happened.
func TestReloadAgainstARunningDaemon(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	defer srv.Close()
	dir := t.TempDir()
	sock := filepath.Join(dir, "ripcord.sock")
	svc := func(name, vip string) string {
		return fmt.Sprintf("  - name: %s\n    vip: %s\n    checks:\n      - {name: page, checker: http, target: %q, interval: 100ms, timeout: 90ms, rise: 1}\n",
			name, vip, srv.URL+"/")
	}
	head := "state_dir: " + dir + "/state\ncontrol: {socket: " + sock + "}\nservices:\n"
	cfg := writeConfig(t, head+svc("web", "192.0.2.50"))
	d := exec.Command(bin, "run", "-no-vip", "-c", cfg)
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- d.Wait() }()
	defer func() {
		d.Process.Signal(os.Interrupt)
		<-exited
	}()
	waitStatus := func(want string) string {
		t.Helper()
		var out string
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if out, _ = run(t, "status", "-s", sock, "-json"); strings.Contains(out, want) {
				return out
			}
			if time.Now().After(deadline) {
				t.Fatalf("status never showed %s:\n%s", want, out)
			}
		}
	}
	waitStatus(`"name": "web"`)

	os.WriteFile(cfg, []byte(head+svc("web", "192.0.2.50")+svc("dir", "192.0.2.51")), 0o644)
	if out, code := run(t, "reload", "-s", sock); code != 0 || !strings.Contains(out, "reloaded: added dir; unchanged web") {
		t.Fatalf("reload: exit %d\n%s", code, out)
	}
	waitStatus(`"name": "dir"`)

	os.WriteFile(cfg, []byte(head+"  - name: broken\n"), 0o644)
	out, code := run(t, "reload", "-s", sock)
	if code != 1 || !strings.Contains(out, "reload refused, nothing changed: "+cfg+":4:5: services[0]") {
		t.Fatalf("invalid reload: exit %d\n%s", code, out)
	}

	// SIGHUP: the same, from the signal the unit's ExecReload could send.
	os.WriteFile(cfg, []byte(head+svc("web", "192.0.2.50")), 0o644)
	if err := d.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	st := waitStatus(`"summary": "removed dir; unchanged web"`)
	if strings.Contains(st, `"name": "dir"`) {
		t.Errorf("dir still in status after SIGHUP:\n%s", st)
	}
	select {
	case err := <-exited:
		t.Fatalf("the daemon exited after reloads: %v", err)
	default:
	}
}
