package daemon

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDaemonSystemdNotify runs the daemon under a fake systemd: a unixgram
// NOTIFY_SOCKET and WATCHDOG_USEC as systemd sets them for Type=notify with
// WatchdogSec=.
func TestDaemonSystemdNotify(t *testing.T) {
	dir := t.TempDir()
	sockPath := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sockPath)
	t.Setenv("WATCHDOG_USEC", "100000") // 100ms: heartbeats every 50ms
	t.Setenv("WATCHDOG_PID", fmt.Sprint(os.Getpid()))

	// The page passes only once the test lets it: READY=1 must wait for
	// the first decision.
	pass := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-pass:
			fmt.Fprint(w, "ok")
		default:
			http.Error(w, "not yet", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	cfgPath := filepath.Join(dir, "ripcord.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`
state_dir: %s/state
control: {socket: %s/ripcord.sock}
services:
  - name: web
    vip: 192.0.2.31
    checks:
      - {name: page, checker: http, target: "%s/", interval: 50ms, timeout: 40ms, rise: 3, fall: 1000}
`, dir, dir, srv.URL)), 0o644)

	msgs := make(chan string, 1000)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	next := func(why string) string {
		t.Helper()
		select {
		case m, ok := <-msgs:
			if !ok {
				t.Fatalf("%s: notify socket closed", why)
			}
			return m
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: nothing from the daemon within 5s", why)
		}
		return ""
	}

	d := startDaemon(t, cfgPath, &recordingAdvertiser{})
	// Heartbeats come while the service is still starting (and failing its
	// checks), but no READY=1.
	watchdogs := 0
	for watchdogs < 3 {
		m := next("before ready")
		if strings.Contains(m, "READY=1") {
			t.Fatalf("READY=1 before the first decision: %q", m)
		}
		if m == "WATCHDOG=1" {
			watchdogs++
		}
	}
	close(pass)
	var ready string
	for ready == "" {
		if m := next("waiting for READY=1"); strings.Contains(m, "READY=1") {
			ready = m
		}
	}
	if !strings.Contains(ready, "STATUS=web up") {
		t.Errorf("READY=1 without the status line: %q", ready)
	}
	d.stop(t)
	for !strings.HasPrefix(next("waiting for STOPPING=1"), "STOPPING=1") {
	}
}
