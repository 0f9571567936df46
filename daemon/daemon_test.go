package daemon

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ripcord/ripcord/advertisers"
	"github.com/ripcord/ripcord/checkers"
	"github.com/ripcord/ripcord/control"
	"github.com/ripcord/ripcord/core/config"
	"github.com/ripcord/ripcord/internal/checkpipe"
	"github.com/ripcord/ripcord/plugins"
)

// TestMain lets the test binary act as `ripcord checker NAME` when the host
// re-executes it for a built-in checker.
func TestMain(m *testing.M) {
	if os.Getenv("RIPCORD_DAEMON_TEST_CHECKER") == "1" {
		c, ok := checkers.Get(os.Args[len(os.Args)-1])
		if !ok {
			fmt.Fprintln(os.Stderr, "no such checker")
			os.Exit(2)
		}
		checkpipe.Serve(c)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// recordingAdvertiser stands in for RIP: it keeps what the daemon asked for.
type recordingAdvertiser struct {
	mu     sync.Mutex
	sets   [][]advertisers.Announcement
	times  []time.Time
	closed bool
}

func (r *recordingAdvertiser) Set(_ context.Context, want []advertisers.Announcement) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sets = append(r.sets, want)
	r.times = append(r.times, time.Now())
	return nil
}

// changedTo returns when the advertiser was last asked to change to metric m.
func (r *recordingAdvertiser) changedTo(m int) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.sets) - 1; i >= 0; i-- {
		if len(r.sets[i]) == 1 && r.sets[i][0].Metric == m && (i == 0 || r.sets[i-1][0].Metric != m) {
			return r.times[i]
		}
	}
	return time.Time{}
}

// firstAt returns when the advertiser was first asked for metric m.
func (r *recordingAdvertiser) firstAt(m int) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, set := range r.sets {
		if len(set) == 1 && set[0].Metric == m {
			return r.times[i]
		}
	}
	return time.Time{}
}

func (r *recordingAdvertiser) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	return nil
}

func (r *recordingAdvertiser) last() []advertisers.Announcement {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.sets) == 0 {
		return nil
	}
	return r.sets[len(r.sets)-1]
}

// waitMetric polls (bounded) until the advertiser was last asked for metric m.
func (r *recordingAdvertiser) waitMetric(t *testing.T, m int, why string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if l := r.last(); len(l) == 1 && l[0].Metric == m {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: metric never became %d; last set %v", why, m, r.last())
}

// buildTCPConnect builds the third-party example plugin into a plugin dir.
func buildTCPConnect(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	out := filepath.Join(dir, plugins.FilePrefix+"tcpconnect")
	cmd := exec.Command("go", "build", "-o", out, "./examples/plugins/tcpconnect")
	cmd.Dir = ".."
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the example plugin: %v\n%s", err, b)
	}
	return dir
}

type daemonRun struct {
	cancel context.CancelFunc
	done   chan error
}

func startDaemon(t *testing.T, cfgPath string, adv advertisers.Advertiser, opts ...func(*Options)) *daemonRun {
	t.Helper()
	return startDaemonLogging(t, cfgPath, adv, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), opts...)
}

func startDaemonLogging(t *testing.T, cfgPath string, adv advertisers.Advertiser, log *slog.Logger, opts ...func(*Options)) *daemonRun {
	t.Helper()
	t.Setenv("RIPCORD_DAEMON_TEST_CHECKER", "1")
	ctx, cancel := context.WithCancel(context.Background())
	cfg, host, err := Load(ctx, cfgPath, func(c *config.Config) *plugins.Host {
		return NewHost(c, []string{os.Args[0]}, log)
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	r := &daemonRun{cancel: cancel, done: make(chan error, 1)}
	o := Options{Config: cfg, Host: host, Logger: log, NoVIP: true, Advertisers: map[string]advertisers.Advertiser{"rip": adv}}
	for _, f := range opts {
		f(&o)
	}
	go func() { r.done <- Run(ctx, o) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *daemonRun) stop(t *testing.T) {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("daemon did not stop within 10s")
	}
}

// TestDaemonThirdPartyPluginFailoverDrain runs the daemon with the example
// third-party plugin against a real TCP listener: the announcement follows
// the listener, the failback waits for the hold-down, and drain survives a
// restart of the daemon.
func TestDaemonThirdPartyPluginFailoverDrain(t *testing.T) {
	pluginDir := buildTCPConnect(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	serve := func(l net.Listener) {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}
	go serve(ln)

	dir := t.TempDir()
	sock := filepath.Join(dir, "ripcord.sock")
	cfgPath := filepath.Join(dir, "ripcord.yaml")
	metricsAddr := freePort(t)
	cfg := fmt.Sprintf(`
state_dir: %s/state
control: {socket: %s, metrics_listen: "`+metricsAddr+`"}
plugins: {dir: %s}
services:
  - name: svc
    vip: 192.0.2.99
    failback_delay: 300ms
    checks:
      - {name: port, checker: tcpconnect, target: "%s", interval: 50ms, timeout: 40ms, rise: 1, fall: 1}
      - {name: builtin, checker: http, target: "http://127.0.0.1:1/", interval: 1s, timeout: 500ms, rise: 1, fall: 1}
    require: 1
`, dir, sock, pluginDir, addr)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}

	adv := &recordingAdvertiser{}
	d := startDaemon(t, cfgPath, adv)
	adv.waitMetric(t, 1+2, "tcp port open, built-in http check refused: degraded") // require 1 of 2: degraded
	ln.Close()
	adv.waitMetric(t, 16, "listener closed")
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln2.Close()
	go serve(ln2)
	adv.waitMetric(t, 3, "listener back, after failback_delay")

	c := control.NewClient(sock)
	if err := c.Drain("svc"); err != nil {
		t.Fatal(err)
	}
	adv.waitMetric(t, 10, "drained")
	rep, err := c.Status()
	if err != nil {
		t.Fatal(err)
	}
	if s := rep.Services[0]; s.State != "drained" || s.Announced["rip"] != 10 || len(s.Checks) != 2 {
		t.Fatalf("status = %+v", s)
	}
	// Both plugins really ran: the third-party one passes, the built-in one
	// (the re-executed binary) reports the refused port, not a checker error.
	for _, c := range rep.Services[0].Checks {
		want := map[string]string{"port": "ok", "builtin": "refused"}[c.Name]
		if c.Reason != want {
			t.Errorf("check %s: reason %q (%s), want %q", c.Name, c.Reason, c.Message, want)
		}
	}

	body := httpGet(t, "http://"+metricsAddr+"/metrics")
	for _, want := range []string{
		`ripcord_announced_metric{advertiser="rip",vip="192.0.2.99/32"} 10`,
		`ripcord_check_success{check="port",reason="ok",service="svc"} 1`,
		`ripcord_check_success{check="builtin",reason="refused",service="svc"} 0`,
		`ripcord_transitions_total{from="down",service="svc",to="degraded"} 1`,
		`ripcord_check_duration_seconds_count{check="port",service="svc"}`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	d.stop(t)
	if !adv.closed {
		t.Fatal("advertiser not closed on shutdown (routes must be poisoned)")
	}
	adv2 := &recordingAdvertiser{}
	startDaemon(t, cfgPath, adv2)
	adv2.waitMetric(t, 10, "drain flag persisted across restart")
	if err := control.NewClient(sock).Undrain("svc"); err != nil {
		t.Fatal(err)
	}
	adv2.waitMetric(t, 3, "undrained")
	for _, set := range append(adv.sets, adv2.sets...) {
		for _, a := range set {
			if a.Prefix.String() != "192.0.2.99/32" {
				t.Fatalf("announced a prefix that is not configured: %v", a)
			}
		}
	}
}

// A password in a check's target shows nowhere: not in the status on the
// control socket, not in the unauthenticated /v1/status next to /metrics,
// not in the debug log.
func TestDaemonRedactsTargetPassword(t *testing.T) {
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	}))
	defer web.Close()
	target := strings.Replace(web.URL, "http://", "http://admin:hunter2@", 1) + "/portal"
	dir := t.TempDir()
	sock := filepath.Join(dir, "ripcord.sock")
	cfgPath := filepath.Join(dir, "ripcord.yaml")
	metricsAddr := freePort(t)
	cfg := fmt.Sprintf(`
state_dir: %s/state
control: {socket: %s, metrics_listen: "%s"}
services:
  - name: svc
    vip: 192.0.2.99
    checks:
      - {name: web, checker: http, target: "%s", interval: 100ms, timeout: 90ms, rise: 1, fall: 1}
`, dir, sock, metricsAddr, target)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	d := startDaemonLogging(t, cfgPath, &recordingAdvertiser{}, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	// Bounded wait for the daemon's socket and the check's first result.
	var rep control.Report
	var err error
	for end := time.Now().Add(20 * time.Second); err != nil || len(rep.Services) == 0 || rep.Services[0].Checks[0].Status == ""; {
		if time.Now().After(end) {
			t.Fatalf("no check result in the status after 20s: %+v, %v", rep, err)
		}
		time.Sleep(20 * time.Millisecond)
		rep, err = control.NewClient(sock).Status()
	}
	if msg := rep.Services[0].Checks[0].Message; !strings.Contains(msg, "500") || !strings.Contains(msg, "admin:xxxxx@") {
		t.Errorf("check message %q: want the 500 and the target with its password redacted", msg)
	}
	public := httpGet(t, "http://"+metricsAddr+"/v1/status")
	d.stop(t)
	for what, text := range map[string]string{
		"control socket status": fmt.Sprint(rep),
		"metrics /v1/status":    public,
		"debug log":             logs.String(),
	} {
		if strings.Contains(text, "hunter2") {
			t.Errorf("%s shows the password:\n%s", what, text)
		}
	}
	if !strings.Contains(logs.String(), "admin:xxxxx@") {
		t.Errorf("the debug log does not show the failing check:\n%s", logs.String())
	}
}

// syncBuffer is a bytes.Buffer safe for the daemon's goroutines to log to.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDaemonRefusesBadSettingsAtLoad(t *testing.T) {
	t.Setenv("RIPCORD_DAEMON_TEST_CHECKER", "1")
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "ripcord.yaml")
	os.WriteFile(cfgPath, []byte(`
services:
  - name: web
    vip: 192.0.2.5
    checks:
      - name: page
        checker: http
        target: http://127.0.0.1/
        settings:
          expect_status: 999
`), 0o644)
	_, _, err := Load(context.Background(), cfgPath, func(c *config.Config) *plugins.Host {
		return NewHost(c, []string{os.Args[0]}, slog.New(slog.DiscardHandler))
	})
	if err == nil {
		t.Fatal("a bad http setting must fail at load")
	}
	want := cfgPath + ":10:11: services[0].checks[0].settings.expect_status: "
	if got := err.Error(); len(got) < len(want) || got[:len(want)] != want {
		t.Fatalf("error %q does not start with %q", got, want)
	}
}

// listenTCP serves a real TCP listener that accepts and closes, for the
// tcpconnect checker; closing it is the service failing.
func listenTCP(t *testing.T, addr string) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return l
}

// TestPluginTrustAndPinWarning: validate (Load) warns about an unpinned
// third-party plugin, printing the pin to add, and refuses one in a
// directory others can write, at the check's checker line.
func TestPluginTrustAndPinWarning(t *testing.T) {
	t.Setenv("RIPCORD_DAEMON_TEST_CHECKER", "1")
	pluginDir := buildTCPConnect(t)
	sum, err := plugins.FileSHA256(filepath.Join(pluginDir, plugins.FilePrefix+"tcpconnect"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "ripcord.yaml")
	write := func(pins string) {
		os.WriteFile(cfgPath, []byte(`
state_dir: `+dir+`/state
control: {socket: `+dir+`/ripcord.sock}
plugins: {dir: `+pluginDir+`, sha256: {`+pins+`}}
services:
  - name: svc
    vip: 192.0.2.99
    checks:
      - {name: port, checker: tcpconnect, target: "127.0.0.1:1"}
`), 0o644)
	}
	load := func() (*config.Config, error) {
		cfg, h, err := Load(context.Background(), cfgPath, func(c *config.Config) *plugins.Host {
			return NewHost(c, []string{os.Args[0]}, slog.New(slog.DiscardHandler))
		})
		if err == nil {
			h.Close()
		}
		return cfg, err
	}
	write("")
	cfg, err := load()
	if err != nil {
		t.Fatal(err)
	}
	want := "checker tcpconnect runs " + pluginDir + "/" + plugins.FilePrefix + "tcpconnect unpinned: a changed file would run too; pin it with plugins.sha256.tcpconnect: " + sum
	if w := Warnings(cfg); !slices.Contains(w, want) {
		t.Errorf("warnings %q lack %q", w, want)
	}
	write("tcpconnect: " + sum)
	if cfg, err = load(); err != nil {
		t.Fatal(err)
	}
	if w := Warnings(cfg); slices.ContainsFunc(w, func(s string) bool { return strings.Contains(s, "unpinned") }) {
		t.Errorf("a pinned plugin still warned: %q", w)
	}
	if err := os.Chmod(pluginDir, 0o777); err != nil {
		t.Fatal(err)
	}
	_, err = load()
	if want := cfgPath + ":9:31: services[0].checks[0].checker: plugins: checker \"tcpconnect\": " + pluginDir + " is writable by group or others (mode 0777)"; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("world-writable plugin directory: %v\nwant %s", err, want)
	}
}
