package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ripcord/ripcord/control"
	"github.com/ripcord/ripcord/core"
	"github.com/ripcord/ripcord/lab/services"
)

var bin string

// TestMain builds the real binary once: the CLI is tested as users run it,
// with built-in checkers re-executing it as plugins.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ripcord-cli-")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "ripcord")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func run(t *testing.T, args ...string) (string, int) {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ripcord.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheckPrintsTableAndExitStatus(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<form><input name="password"></form>`)
	}))
	defer srv.Close()
	good := writeConfig(t, `
services:
  - name: webauth
    vip: 192.0.2.20
    checks:
      - {name: page, checker: http, target: "`+srv.URL+`/login", settings: {body_contains: 'name="password"'}}
`)
	out, code := run(t, "check", "-c", good)
	if code != 0 || !strings.Contains(out, "webauth  page") || !strings.Contains(out, " ok ") {
		t.Fatalf("check (healthy): exit %d\n%s", code, out)
	}
	bad := writeConfig(t, `
services:
  - name: webauth
    vip: 192.0.2.20
    checks:
      - {name: page, checker: http, target: "`+srv.URL+`/login", settings: {body_contains: 'not on the page'}}
`)
	out, code = run(t, "check", "-c", bad)
	if code != 1 || !strings.Contains(out, "unexpected_response") || !strings.Contains(out, "1 check(s) failed") {
		t.Fatalf("check (failing): exit %d\n%s", code, out)
	}
}

func TestValidate(t *testing.T) {
	good := writeConfig(t, "services:\n  - {name: a, vip: 192.0.2.1, checks: [{name: c, checker: http, target: 'http://127.0.0.1/'}]}\n")
	if out, code := run(t, "validate", "-c", good); code != 0 || !strings.Contains(out, "ok (1 services, 1 checks)") ||
		!strings.Contains(out, "warning: no rip, ripng or bgp section") {
		t.Fatalf("validate good: exit %d\n%s", code, out)
	}
	bad := writeConfig(t, "services:\n  - {name: a, vip: 192.0.2.1, checks: [{name: c, checker: http, target: 'http://127.0.0.1/', settings: {expect_status: [700]}}]}\n")
	out, code := run(t, "validate", "-c", bad)
	if code != 1 || !strings.Contains(out, bad+":2:") || !strings.Contains(out, "settings.expect_status") {
		t.Fatalf("validate bad setting: exit %d\n%s", code, out)
	}
	// What run checks at start on this host, validate checks too; the
	// example is another host's (eth0, its own address 10.0.1.10).
	example := "../../examples/ldap.yaml"
	if out, code := run(t, "validate", "-c", example); code != 1 || !strings.Contains(out, example+":11:19: control.metrics_listen: cannot listen on 10.0.1.10") {
		t.Fatalf("validate of another host's config: exit %d\n%s", code, out)
	}
	if out, code := run(t, "validate", "-portable", "-c", example); code != 0 || !strings.Contains(out, "ok (1 services") {
		t.Fatalf("validate -portable: exit %d\n%s", code, out)
	}
	// A control socket path naming the config itself: run would have
	// deleted it.
	self := writeConfig(t, "")
	os.WriteFile(self, []byte("control: {socket: "+self+"}\nservices:\n  - {name: a, vip: 192.0.2.1, checks: [{name: c, checker: http, target: 'http://127.0.0.1/'}]}\n"), 0o644)
	out, code = run(t, "validate", "-c", self)
	if want := self + ":1:19: control.socket: " + self + " exists and is a regular file, not a socket"; code != 1 || !strings.Contains(out, want) {
		t.Fatalf("validate with the socket on a regular file: exit %d\n%s\nwant %s", code, out, want)
	}
}

func TestUsageAndErrors(t *testing.T) {
	if out, code := run(t); code != 2 || !strings.Contains(out, "Usage:") {
		t.Fatalf("no args: exit %d\n%s", code, out)
	}
	if out, code := run(t, "frobnicate"); code != 2 || !strings.Contains(out, `unknown command "frobnicate"`) {
		t.Fatalf("unknown command: exit %d\n%s", code, out)
	}
	if out, code := run(t, "version"); code != 0 || !strings.HasPrefix(out, "ripcord ") {
		t.Fatalf("version: exit %d\n%s", code, out)
	}
	sock := filepath.Join(t.TempDir(), "none.sock")
	if out, code := run(t, "status", "-s", sock); code != 1 || !strings.Contains(out, "is the daemon running?") {
		t.Fatalf("status without daemon: exit %d\n%s", code, out)
	}
	if out, code := run(t, "drain", "-s", sock); code != 2 || !strings.Contains(out, "Usage: ripcord drain") {
		t.Fatalf("drain without service: exit %d\n%s", code, out)
	}
	if out, code := run(t, "checker", "nope"); code != 1 || !strings.Contains(out, `no built-in checker "nope"`) {
		t.Fatalf("checker nope: exit %d\n%s", code, out)
	}
	if out, code := run(t, "checkers"); code != 0 || !strings.Contains(out, "ldap") || !strings.Contains(out, "secret_file") {
		t.Fatalf("checkers: exit %d\n%s", code, out)
	}
}

// serviceUp matches the service row in state up (the header line also says
// "up", as in "up 0s").
var serviceUp = regexp.MustCompile(`(?m)^web +192\.0\.2\.30/32 +up `)

// TestStatusAndDrainAgainstARunningDaemon runs the daemon (without touching
// interfaces: -no-vip) and drives it with status, drain and undrain.
func TestStatusAndDrainAgainstARunningDaemon(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	defer srv.Close()
	dir := t.TempDir()
	sock := filepath.Join(dir, "ripcord.sock")
	cfg := writeConfig(t, `
state_dir: `+dir+`/state
control: {socket: `+sock+`}
services:
  - name: web
    vip: 192.0.2.30
    checks:
      - {name: page, checker: http, target: "`+srv.URL+`/", interval: 100ms, timeout: 90ms, rise: 1}
`)
	startRun(t, bin, cfg)
	out := waitStatus(t, sock, "service up", serviceUp.MatchString)
	// No rip or bgp section: the metric the policy decided still shows.
	if !regexp.MustCompile(`(?m)^web +192\.0\.2\.30/32 +up +\S+ ago +1 +- +- +all checks pass`).MatchString(out) {
		t.Errorf("status row lacks the decided metric 1:\n%s", out)
	}
	for _, want := range []string{"SERVICE", "METRIC", "web", "192.0.2.30/32", "all checks pass", "page", "pass"} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
	if out, code := run(t, "drain", "-s", sock, "web"); code != 0 || !strings.Contains(out, "web: drained") {
		t.Fatalf("drain: exit %d\n%s", code, out)
	}
	if out, _ := run(t, "status", "-s", sock); !strings.Contains(out, "drained") {
		t.Fatalf("status after drain:\n%s", out)
	}
	if out, code := run(t, "status", "-s", sock, "-exit-code"); code != 1 {
		t.Fatalf("status -exit-code of a drained service: exit %d, want 1\n%s", code, out)
	}
	if out, code := run(t, "drain", "-s", sock, "nope"); code != 1 || !strings.Contains(out, `no service "nope"`) {
		t.Fatalf("drain of an unknown service: exit %d\n%s", code, out)
	}
	if out, code := run(t, "undrain", "-s", sock, "web"); code != 0 || !strings.Contains(out, "web: undrained") {
		t.Fatalf("undrain: exit %d\n%s", code, out)
	}
	if out, code := run(t, "status", "-s", sock, "-exit-code"); code != 0 {
		t.Fatalf("status -exit-code with every service up: exit %d\n%s", code, out)
	}
	if out, code := run(t, "status", "-s", filepath.Join(dir, "nobody.sock"), "-exit-code"); code != 3 {
		t.Fatalf("status -exit-code without a daemon: exit %d, want 3\n%s", code, out)
	}
	if out, code := run(t, "status", "-exit-code", "-bogus"); code != 3 {
		t.Fatalf("status -exit-code with a bad flag: exit %d, want 3\n%s", code, out)
	}
}

// TestFIFOSecretFailsFast: a named pipe as a secret file used to hang
// validate, check and run (which then ignored SIGTERM); each must now fail at
// once, naming the file.
func TestFIFOSecretFailsFast(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "pw")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, `
state_dir: `+dir+`/state
control: {socket: `+dir+`/ripcord.sock}
services:
  - name: a
    vip: 192.0.2.1
    checks: [{name: c, checker: ldap, target: "ldap://127.0.0.1:1", settings: {bind_dn: cn=x, password_file: `+fifo+`}}]
`)
	for _, args := range [][]string{{"validate"}, {"check"}, {"run", "-no-vip"}} {
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := exec.CommandContext(ctx, bin, append(args, "-c", cfg)...).CombinedOutput()
		cancel()
		if time.Since(start) > 9*time.Second {
			t.Fatalf("%s hangs on a named pipe as a secret file", args[0])
		}
		if err == nil || !strings.Contains(string(out), cfg+":7:") || !strings.Contains(string(out), fifo+" is a named pipe (FIFO), not a regular file") {
			t.Errorf("%s: %v\n%s", args[0], err, out)
		}
	}
}

// validate -check runs each check once and fails on a check that is set up
// wrong in a way only the server can tell: here the LDAP heartbeat entry is
// missing on the provider. Plain validate cannot know it.
func TestValidateCheckFindsMissingHeartbeat(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := services.StartSlapd(ctx, services.SlapdOptions{Dir: t.TempDir(), ServerID: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte(services.SlapdServicePassword+"\n"), 0o600)
	config := func(heartbeat string) string {
		return writeConfig(t, `
state_dir: `+dir+`/state
services:
  - name: ldap
    vip: 192.0.2.40
    checks:
      - name: fresh
        checker: ldap
        target: `+s.URL()+`
        settings: {bind_dn: "`+services.SlapdServiceDN+`", password_file: `+pw+`, base: "`+services.SlapdSuffix+`", scope: base,
                   reference: `+s.URL()+`, max_lag: 30s, heartbeat_dn: "`+heartbeat+`", heartbeat_interval: 10s}
`)
	}
	missing := config("cn=missing," + services.SlapdSuffix)
	if out, code := run(t, "validate", "-c", missing); code != 0 {
		t.Fatalf("validate without -check: exit %d\n%s", code, out)
	}
	out, code := run(t, "validate", "-check", "-c", missing)
	if want := missing + ": service ldap, check fresh: misconfigured: "; code != 1 || !strings.Contains(out, want) ||
		!strings.Contains(out, "heartbeat_dn cn=missing,dc=example,dc=com does not exist on reference") {
		t.Fatalf("validate -check with a missing heartbeat entry: exit %d\n%s", code, out)
	}
	good := config(services.SlapdHeartbeatDN)
	if out, code := run(t, "validate", "-check", "-c", good); code != 0 || !strings.Contains(out, "each run once") || strings.Contains(out, "warning: service") {
		t.Fatalf("validate -check: exit %d\n%s", code, out)
	}
	// A server that is down is no config error, but it is said.
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if out, code := run(t, "validate", "-check", "-c", good); code != 0 || !strings.Contains(out, "warning: service ldap, check fresh: failed now: refused: ") {
		t.Fatalf("validate -check with slapd stopped: exit %d\n%s", code, out)
	}
}

// TestRunStartsRipcordCheckerBeside: with ripcord-checker in the same
// directory, the daemon's checker processes are that small binary, not
// ripcord re-executed.
func TestRunStartsRipcordCheckerBeside(t *testing.T) {
	dir := t.TempDir()
	self := filepath.Join(dir, "ripcord")
	if err := os.Link(bin, self); err != nil {
		t.Fatal(err)
	}
	small := filepath.Join(dir, "ripcord-checker")
	if out, err := exec.Command("go", "build", "-o", small, "../ripcord-checker").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	sock := filepath.Join(dir, "ripcord.sock")
	cfg := writeConfig(t, `
state_dir: `+dir+`/state
control: {socket: `+sock+`}
services:
  - name: web
    vip: 192.0.2.31
    checks:
      - {name: page, checker: http, target: "http://127.0.0.1:1/", interval: 100ms, timeout: 90ms}
`)
	startRun(t, self, cfg)
	waitStatus(t, sock, "a check result", func(out string) bool { return strings.Contains(out, "refused") })
	var got []string
	for _, args := range processesOf(small) {
		got = append(got, strings.Join(args, " "))
	}
	if len(got) != 1 || got[0] != small+" http" {
		t.Errorf("processes of %s: %q, want one `ripcord-checker http`", small, got)
	}
	if got := pluginsOf(t, self); len(got) != 0 {
		t.Errorf("ripcord re-executed itself as a checker (pids %v) although ripcord-checker is beside it", got)
	}
}

// TestSecondRunRefusedWithoutRoot is TestSecondRunLeavesTheFirstAlone for
// machines without root (no VIPs: -no-vip): the second run fails on the
// state_dir lock, and the first keeps its socket and state.
func TestSecondRunRefusedWithoutRoot(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "ripcord.sock")
	cfg := writeConfig(t, `
state_dir: `+dir+`/state
control: {socket: `+sock+`}
services:
  - {name: web, vip: 192.0.2.31, checks: [{name: c, checker: http, target: "http://127.0.0.1:1/", interval: 1s, timeout: 500ms}]}
`)
	first := startRun(t, bin, cfg)
	waitStatus(t, sock, "the first run's socket", func(string) bool { return true })
	out, code := run(t, "run", "-no-vip", "-c", cfg)
	want := fmt.Sprintf("ripcord: state_dir %s/state is in use by another ripcord (pid %d): not starting, and nothing was changed", dir, first.Process.Pid)
	if code != 1 || !strings.Contains(out, want) {
		t.Errorf("second run: exit %d\n%s\nwant %q", code, out, want)
	}
	if _, code := run(t, "status", "-s", sock); code != 0 {
		t.Error("the first run's socket no longer answers")
	}
}

// startRun starts `exe run -no-vip -c cfg`, stopped (SIGINT) when the test ends.
func startRun(t *testing.T, exe, cfg string) *exec.Cmd {
	t.Helper()
	d := exec.Command(exe, "run", "-no-vip", "-c", cfg)
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.Process.Signal(os.Interrupt)
		d.Wait()
	})
	return d
}

// waitStatus polls `ripcord status` (10s at most) until it answers with an
// output for which ok holds, and returns that output.
func waitStatus(t *testing.T, sock, what string, ok func(string) bool) string {
	t.Helper()
	var out string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var code int
		if out, code = run(t, "status", "-s", sock); code == 0 && ok(out) {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never showed %s within 10s:\n%s", what, out)
		}
	}
}

func TestStatusCode(t *testing.T) {
	report := func(states ...string) control.Report {
		var r control.Report
		for _, s := range states {
			r.Services = append(r.Services, control.ServiceReport{Status: core.Status{State: s}})
		}
		return r
	}
	for _, tt := range []struct {
		states []string
		want   int
	}{
		{nil, 0},
		{[]string{"up", "up"}, 0},
		{[]string{"up", "degraded"}, 1},
		{[]string{"drained", "up"}, 1},
		{[]string{"degraded", "down", "up"}, 2},
		{[]string{"starting"}, 2},
	} {
		if got := statusCode(report(tt.states...)); got != tt.want {
			t.Errorf("statusCode(%v) = %d, want %d", tt.states, got, tt.want)
		}
	}
}
