package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ripcord/ripcord/lab/netns"
)

// vipNS is a network namespace with a config whose service 10.99.0.1 lives
// on the namespace's lo, and helpers to run ripcord there.
type vipNS struct {
	t    *testing.T
	ns   *netns.NS
	dir  string
	cfg  string
	runs int
}

func newVIPNS(t *testing.T) *vipNS {
	t.Helper()
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
	return &vipNS{t: t, ns: ns, dir: dir, cfg: cfg}
}

func (v *vipNS) hasVIP() bool {
	out, err := v.ns.IP("-4", "addr", "show", "dev", "lo")
	if err != nil {
		v.t.Fatal(err)
	}
	return strings.Contains(out, "10.99.0.1/32")
}

func (v *vipNS) waitFor(what string, cond func() bool) {
	v.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			v.t.Fatalf("%s: not within 10s", what)
		}
	}
}

// start runs `ripcord run` in the namespace, its output in ripcord-N.log.
func (v *vipNS) start() *netns.Process {
	v.runs++
	p, err := v.ns.Start(v.log(v.runs), bin, "run", "-c", v.cfg)
	if err != nil {
		v.t.Fatal(err)
	}
	v.t.Cleanup(func() { p.Stop(time.Second) })
	return p
}

// terminate sends SIGTERM and waits (bounded) for the daemon to exit.
func (v *vipNS) terminate(p *netns.Process) {
	v.t.Helper()
	p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		v.t.Fatal("daemon did not exit on SIGTERM")
	}
}

func (v *vipNS) log(run int) string { return filepath.Join(v.dir, fmt.Sprintf("ripcord-%d.log", run)) }

func (v *vipNS) serving() bool {
	_, code := run(v.t, "status", "-s", v.dir+"/ripcord.sock")
	return code == 0
}

// TestRunManagesVIPAcrossCrash runs the daemon in a namespace the test makes:
// it puts the VIP on lo; after SIGKILL the address stays (nothing ran to
// remove it); the next run claims it from state_dir and removes it on SIGTERM.
func TestRunManagesVIPAcrossCrash(t *testing.T) {
	v := newVIPNS(t)
	p := v.start()
	v.waitFor("VIP added", v.hasVIP)
	p.Cmd.Process.Signal(syscall.SIGKILL)
	<-p.Done()
	if !v.hasVIP() {
		t.Fatal("VIP vanished with a killed daemon; nothing should have removed it")
	}
	// Its checker plugins die with it (no orphans left running).
	v.waitFor("plugins of the killed daemon exit", func() bool { return len(pluginsOf(t, bin)) == 0 })
	p = v.start()
	v.waitFor("second run serves its control socket", v.serving)
	if b, _ := os.ReadFile(filepath.Join(v.dir, "state", "vips")); !strings.Contains(string(b), "10.99.0.1/32@lo") {
		t.Fatalf("state_dir/vips = %q, want the claimed VIP", b)
	}
	v.terminate(p)
	if v.hasVIP() {
		b, _ := os.ReadFile(v.log(2))
		t.Fatalf("VIP left on lo after SIGTERM of the run that claimed it\n%s", b)
	}
}

// TestSecondRunLeavesTheFirstAlone starts a second `ripcord run` with the
// same config while the first runs: it must fail with a clear message and
// touch nothing of the first's (its VIP never leaves lo, state_dir/vips and
// the control socket stay), so that the first still cleans up on SIGTERM.
func TestSecondRunLeavesTheFirstAlone(t *testing.T) {
	v := newVIPNS(t)
	first := v.start()
	v.waitFor("first run serves its control socket", v.serving)
	if !v.hasVIP() {
		t.Fatal("VIP not on lo")
	}
	vips, err := os.ReadFile(filepath.Join(v.dir, "state", "vips"))
	if err != nil {
		t.Fatal(err)
	}
	mon, err := v.ns.Start(filepath.Join(v.dir, "monitor.log"), "ip", "-o", "monitor", "address")
	if err != nil {
		t.Fatal(err)
	}
	defer mon.Stop(time.Second)
	time.Sleep(200 * time.Millisecond) // ip monitor subscribes

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := v.ns.Exec(ctx, bin, "run", "-c", v.cfg)
	want := fmt.Sprintf("ripcord: state_dir %s/state is in use by another ripcord (pid %d): not starting, and nothing was changed", v.dir, first.Pid())
	if err == nil || !strings.Contains(out, want) {
		t.Errorf("second run: %v\n%s\nwant %q", err, out, want)
	}
	time.Sleep(200 * time.Millisecond) // let ip monitor print what happened
	mon.Stop(time.Second)
	if b, _ := os.ReadFile(filepath.Join(v.dir, "monitor.log")); strings.Contains(string(b), "10.99.0.1") {
		t.Errorf("the second run changed the VIP (ip monitor):\n%s", b)
	}
	if !v.hasVIP() {
		t.Error("the second run removed the first one's VIP")
	}
	if b, _ := os.ReadFile(filepath.Join(v.dir, "state", "vips")); string(b) != string(vips) {
		t.Errorf("state_dir/vips changed from %q to %q", vips, b)
	}
	if !v.serving() {
		t.Error("the first run's control socket no longer answers")
	}
	v.terminate(first)
	if v.hasVIP() {
		t.Error("VIP left on lo after SIGTERM of the first run")
	}
}

// pluginsOf lists the pids of running `BIN checker ...` processes.
func pluginsOf(t *testing.T, bin string) []int {
	t.Helper()
	var pids []int
	for pid, args := range processesOf(bin) {
		if len(args) > 1 && args[1] == "checker" {
			pids = append(pids, pid)
		}
	}
	return pids
}

// processesOf maps the pid of each running process of executable exe
// (zombies excluded) to its arguments.
func processesOf(exe string) map[int][]string {
	procs := map[int][]string{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		b, err := os.ReadFile(d + "/cmdline")
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if args[0] != exe {
			continue
		}
		if st, err := os.ReadFile(d + "/stat"); err == nil && strings.Contains(string(st), ") Z ") {
			continue // a zombie: exited, not yet reaped
		}
		var pid int
		fmt.Sscan(filepath.Base(d), &pid)
		procs[pid] = args
	}
	return procs
}
