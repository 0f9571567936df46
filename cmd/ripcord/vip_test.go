package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ripcord/ripcord/lab/netns"
)

// TestRunManagesVIPAcrossCrash runs the daemon in a namespace the test makes:
// it puts the VIP on lo; after SIGKILL the address stays (nothing ran to
// remove it); the next run claims it from state_dir and removes it on SIGTERM.
func TestRunManagesVIPAcrossCrash(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	ns, err := netns.New("rccli")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Delete() })
	if err := ns.LinkUp("lo"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := writeConfig(t, `
state_dir: `+dir+`/state
control: {socket: `+dir+`/ripcord.sock}
services:
  - name: svc
    vip: 10.99.0.1
    checks:
      - {name: c, checker: http, target: "http://127.0.0.1:1/", interval: 1s, timeout: 500ms}
`)
	hasVIP := func() bool {
		out, err := ns.IP("-4", "addr", "show", "dev", "lo")
		if err != nil {
			t.Fatal(err)
		}
		return strings.Contains(out, "10.99.0.1/32")
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 10s", what)
			}
		}
	}
	runs := 0
	start := func() *netns.Process {
		runs++
		p, err := ns.Start(filepath.Join(dir, fmt.Sprintf("ripcord-%d.log", runs)), bin, "run", "-c", cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Stop(time.Second) })
		return p
	}

	p := start()
	waitFor("VIP added", hasVIP)
	p.Cmd.Process.Signal(syscall.SIGKILL)
	<-p.Done()
	if !hasVIP() {
		t.Fatal("VIP vanished with a killed daemon; nothing should have removed it")
	}
	// Its checker plugins die with it (no orphans left running).
	waitFor("plugins of the killed daemon exit", func() bool { return len(pluginsOf(t, bin)) == 0 })
	p = start()
	waitFor("second run serves its control socket", func() bool {
		_, code := run(t, "status", "-s", dir+"/ripcord.sock")
		return code == 0
	})
	if b, _ := os.ReadFile(filepath.Join(dir, "state", "vips")); !strings.Contains(string(b), "10.99.0.1/32@lo") {
		t.Fatalf("state_dir/vips = %q, want the claimed VIP", b)
	}
	p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("daemon did not exit on SIGTERM")
	}
	if hasVIP() {
		b, _ := os.ReadFile(filepath.Join(dir, "ripcord-2.log"))
		t.Fatalf("VIP left on lo after SIGTERM of the run that claimed it\n%s", b)
	}
}

// pluginsOf lists the pids of running `BIN checker ...` processes.
func pluginsOf(t *testing.T, bin string) []int {
	t.Helper()
	var pids []int
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		b, err := os.ReadFile(d + "/cmdline")
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if len(args) > 1 && args[0] == bin && args[1] == "checker" {
			if st, err := os.ReadFile(d + "/stat"); err == nil && strings.Contains(string(st), ") Z ") {
				continue // a zombie: exited, not yet reaped
			}
			var pid int
			fmt.Sscan(filepath.Base(d), &pid)
			pids = append(pids, pid)
		}
	}
	return pids
}
