package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ripcord/ripcord/checkers"
	"github.com/ripcord/ripcord/plugins"
	"github.com/ripcord/ripcord/plugins/checkapi"
)

// maxIdleRSS bounds the resident memory of an idle checker process: the
// goal of 10 MB, against 6.6-7.2 MB measured (docs/benchmarks.md). It fails
// when the checker links the daemon (GoBGP, Prometheus, the lab) or the
// plugin transport of third-party plugins (gRPC, protobuf, go-plugin) again.
const maxIdleRSS = 10 << 20

// TestIdleCheckerRSS starts every built-in checker through the plugin host,
// as the daemon does, runs a few checks against a closed port, and reads each
// process's resident memory.
func TestIdleCheckerRSS(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "ripcord-checker")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0") // as scripts/package builds it
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	h := plugins.NewHost(plugins.Options{Builtin: checkers.IsBuiltin, Self: []string{bin}})
	defer h.Close()
	targets := map[string]string{"http": "http://127.0.0.1:1/", "ldap": "ldap://127.0.0.1:1",
		"radius": "127.0.0.1:1", "peer": "http://127.0.0.1:1"}
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{
		"ldap":   `{"bind_dn": "cn=x", "password_file": "` + pw + `"}`,
		"radius": `{"secret_file": "` + pw + `", "user": "u", "password_file": "` + pw + `"}`,
		"peer":   `{"service": "s"}`,
	}
	for _, name := range checkers.Names() {
		for range 20 {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			r := h.Check(ctx, name, &checkapi.Request{Target: targets[name], Settings: checkapi.Settings(settings[name])})
			cancel()
			if r.Reason == checkapi.ReasonCheckerError {
				t.Fatalf("%s: %s", name, r.Message)
			}
		}
	}
	time.Sleep(500 * time.Millisecond) // idle
	found := 0
	for _, pid := range children(t) {
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		args := strings.Split(string(cmd), "\x00")
		if args[0] != bin {
			continue
		}
		found++
		if rss := rssOf(t, pid); rss > maxIdleRSS {
			t.Errorf("idle `ripcord-checker %s` holds %.1f MB RSS, more than %.0f MB", args[1], float64(rss)/(1<<20), float64(maxIdleRSS)/(1<<20))
		} else {
			t.Logf("ripcord-checker %s: %.1f MB RSS", args[1], float64(rss)/(1<<20))
		}
	}
	if found != len(checkers.Names()) {
		t.Fatalf("found %d checker processes, want %d", found, len(checkers.Names()))
	}
}

// children lists the pids of this process's children.
func children(t *testing.T) []int {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", os.Getpid()))
	if err != nil || len(tasks) == 0 {
		t.Fatalf("no /proc children files: %v", err)
	}
	var pids []int
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		for _, s := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(s); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// rssOf reads VmRSS from /proc/PID/status, in bytes.
func rssOf(t *testing.T, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS for pid %d", pid)
	return 0
}

// What the checker process must not link: the plugin transport of
// third-party plugins, and the daemon's own packages.
func TestLinksOnlyTheCheckers(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, bad := range []string{"google.golang.org/grpc", "google.golang.org/protobuf", "github.com/hashicorp/go-plugin",
			"github.com/osrg/gobgp", "github.com/prometheus/", "github.com/google/nftables",
			"github.com/ripcord/ripcord/core", "github.com/ripcord/ripcord/relay", "github.com/ripcord/ripcord/lab",
			"github.com/ripcord/ripcord/plugins/sdk", "github.com/ripcord/ripcord/daemon"} {
			if strings.HasPrefix(pkg, bad) {
				t.Errorf("ripcord-checker links %s", pkg)
			}
		}
	}
}
