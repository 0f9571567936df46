package daemon

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ripcord/ripcord/control"
	"github.com/ripcord/ripcord/lab/services"
)

// These tests run the daemon with the ldap checker against a real slapd
// provider and syncrepl consumer, and assert what checkers/ldap/README.md
// ("Freshness: what each situation gives") says the operator sees: state,
// reason, announced metric, /metrics, and when.

type freshnessLab struct {
	provider, consumer *services.Slapd
	link               *cutter // between the consumer and its provider
	dir, sock, metrics string
	adv                *recordingAdvertiser
}

const freshInterval = 200 * time.Millisecond

// cutter relays TCP to target and can cut every connection through it, as
// a network partition between a syncrepl consumer and its provider would,
// without touching either server's configuration: changing olcSyncrepl
// pauses a consumer for about 0.7 s (measured), which fails a short check.
type cutter struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	conns []net.Conn
}

func newCutter(t *testing.T, target string) *cutter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &cutter{ln: ln, target: target}
	go c.serve()
	t.Cleanup(func() { ln.Close(); c.set(true) })
	return c
}

func (c *cutter) url() string { return "ldap://" + c.ln.Addr().String() }

func (c *cutter) serve() {
	for {
		in, err := c.ln.Accept()
		if err != nil {
			return
		}
		c.mu.Lock()
		out, err := net.DialTimeout("tcp", c.target, time.Second)
		if c.cut || err != nil {
			c.mu.Unlock()
			in.Close()
			if out != nil {
				out.Close()
			}
			continue
		}
		c.conns = append(c.conns, in, out)
		c.mu.Unlock()
		pipe := func(dst, src net.Conn) { io.Copy(dst, src); dst.Close(); src.Close() }
		go pipe(out, in)
		go pipe(in, out)
	}
}

// set cuts (true) or heals (false) the link. The consumer retries every
// second (lab/services' syncrepl retry), so it is back within about that.
func (c *cutter) set(cut bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cut = cut
	if cut {
		for _, conn := range c.conns {
			conn.Close()
		}
		c.conns = nil
	}
}

func startSlapdPair(t *testing.T) (provider, consumer *services.Slapd, link *cutter) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := func(opts services.SlapdOptions) *services.Slapd {
		opts.Dir = t.TempDir()
		s, err := services.StartSlapd(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Stop() })
		return s
	}
	provider = start(services.SlapdOptions{ServerID: 1})
	link = newCutter(t, provider.Addr.String())
	consumer = start(services.SlapdOptions{ServerID: 2, Provider: link.url()})
	if err := consumer.WaitSynced(ctx, provider); err != nil {
		t.Fatal(err)
	}
	return provider, consumer, link
}

// startFreshness runs the daemon with one service whose only check compares
// the consumer with the provider; settings are added to the check's.
func startFreshness(t *testing.T, failback time.Duration, settings string) *freshnessLab {
	t.Helper()
	l := &freshnessLab{dir: t.TempDir(), metrics: freePort(t), adv: &recordingAdvertiser{}}
	l.provider, l.consumer, l.link = startSlapdPair(t)
	l.sock = filepath.Join(l.dir, "ripcord.sock")
	pw := filepath.Join(l.dir, "health.pw")
	os.WriteFile(pw, []byte(services.SlapdServicePassword+"\n"), 0o600)
	cfg := fmt.Sprintf(`
state_dir: %[1]s/state
control: {socket: %[2]s, metrics_listen: "%[3]s"}
services:
  - name: ldap
    vip: 192.0.2.40
    metric: 1
    degraded_penalty: 2
    failback_delay: %[4]s
    checks:
      - name: fresh
        checker: ldap
        target: %[5]s
        interval: %[6]s
        timeout: 150ms
        rise: 2
        fall: 2
        settings:
          bind_dn: %[7]s
          password_file: %[8]s
          base: %[9]s
          scope: base
          reference: %[10]s
%[11]s
`, l.dir, l.sock, l.metrics, failback, l.consumer.URL(), freshInterval, services.SlapdServiceDN, pw, services.SlapdSuffix,
		l.provider.URL(), settings)
	path := filepath.Join(l.dir, "ripcord.yaml")
	os.WriteFile(path, []byte(cfg), 0o644)
	startDaemon(t, path, l.adv)
	l.waitMetric(t, 1, "in sync")
	return l
}

// waitMetrics polls /metrics (bounded) until every line in want is there and
// none in gone is; it returns the page.
func (l *freshnessLab) waitMetrics(t *testing.T, want, gone []string) string {
	t.Helper()
	var body, why string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		body, why = httpGet(t, "http://"+l.metrics+"/metrics"), ""
		for _, w := range want {
			if !strings.Contains(body, w) {
				why = "lacks " + w
			}
		}
		for _, g := range gone {
			if strings.Contains(body, g) {
				why = "still has " + g
			}
		}
		if why == "" {
			return body
		}
	}
	t.Fatalf("/metrics %s:\n%s", why, grepRipcord(body))
	return ""
}

// waitMetric is recordingAdvertiser.waitMetric that says, when it fails,
// what the service and its check were.
func (l *freshnessLab) waitMetric(t *testing.T, m int, why string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if last := l.adv.last(); len(last) == 1 && last[0].Metric == m {
			return
		}
	}
	st := l.check(t)
	t.Fatalf("%s: metric never became %d; last set %v; service %s (%s), check %+v", why, m, l.adv.last(), st.State, st.Reason, st.Checks[0])
}

func (l *freshnessLab) check(t *testing.T) control.ServiceReport {
	t.Helper()
	r, err := control.NewClient(l.sock).Status()
	if err != nil || len(r.Services) != 1 || len(r.Services[0].Checks) != 1 {
		t.Fatalf("status: %v %+v", err, r)
	}
	return r.Services[0]
}

const obs = `ripcord_check_observation{check="fresh",name="%s",service="ldap"}`

// The provider dies (or hangs) under a replica in sync: freshness_unknown
// at once, the old observations leave /metrics, the reading is kept in
// state_dir, and the replica is degraded about max_lag after the last good
// reading.
func TestDaemonFreshnessProviderKilled(t *testing.T) {
	for _, how := range []string{"killed", "hung"} {
		t.Run(how, func(t *testing.T) { testProviderLost(t, how) })
	}
}

func testProviderLost(t *testing.T, how string) {
	const maxLag = time.Second
	l := startFreshness(t, 30*time.Second, `          max_lag: 1s
          heartbeat_dn: `+services.SlapdHeartbeatDN+`
          heartbeat_interval: 300ms`)
	l.waitMetrics(t, []string{fmt.Sprintf(obs, "heartbeat_written") + " 1", fmt.Sprintf(obs, "reference_up") + " 1"}, nil)
	files, _ := filepath.Glob(filepath.Join(l.dir, "state", "checkers", "ldap", "freshness-*.json"))
	if len(files) != 1 {
		t.Fatalf("readings kept in state_dir: %v, want one file", files)
	}

	lose := l.provider.Stop
	if how == "hung" {
		lose = l.provider.Suspend
	}
	if err := lose(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	l.waitMetrics(t, []string{
		`ripcord_check_success{check="fresh",reason="freshness_unknown",service="ldap"} 1`,
		fmt.Sprintf(obs, "reference_up") + " 0",
		fmt.Sprintf(obs, "reference_age_seconds"),
		fmt.Sprintf(obs, "replication_lag_seconds") + " 0",
	}, []string{fmt.Sprintf(obs, "heartbeat_written")})
	if st := l.check(t); st.State != "up" || st.Metric != 1 || st.Checks[0].Reason != "freshness_unknown" {
		t.Fatalf("right after the kill: %s metric %d, check %+v", st.State, st.Metric, st.Checks[0])
	}

	l.waitMetric(t, 3, "unknown freshness past max_lag")
	took := l.adv.changedTo(3).Sub(killed)
	// Degraded results start max_lag after the last reading (at most one
	// interval before the kill); fall 2 of them, one interval apart.
	if low, high := maxLag-freshInterval, maxLag+3*freshInterval+time.Second; took < low || took > high {
		t.Errorf("metric 3 came %s after the kill, want %s..%s", took, low, high)
	}
	t.Logf("degraded %s after the provider %s", took.Round(time.Millisecond), how)
	st := l.check(t)
	if st.State != "degraded" || st.Reason != "fresh: freshness_unknown" || st.Checks[0].Status != "degraded" {
		t.Fatalf("after max_lag: %s (%s), check %+v", st.State, st.Reason, st.Checks[0])
	}
}

// A replica known to be behind keeps its degraded metric when its provider
// dies, and the reason stays stale_replica.
func TestDaemonFreshnessStaleThenProviderDies(t *testing.T) {
	l := startFreshness(t, 30*time.Second, `          max_lag: 300ms`)
	ctx := context.Background()
	l.link.set(true)
	time.Sleep(400 * time.Millisecond)
	if err := l.provider.Modify(ctx, services.SlapdTestEntryDN, "mail", "alice-stale@example.com"); err != nil {
		t.Fatal(err)
	}
	l.waitMetric(t, 3, "stale")
	if err := l.provider.Stop(); err != nil {
		t.Fatal(err)
	}
	l.waitMetrics(t, []string{
		`ripcord_check_success{check="fresh",reason="stale_replica",service="ldap"} 1`,
		fmt.Sprintf(obs, "reference_up") + " 0",
		fmt.Sprintf(obs, "reference_age_seconds"),
	}, nil)
	time.Sleep(5 * freshInterval) // more than rise ok results would take
	if st := l.check(t); st.State != "degraded" || st.Metric != 3 || st.Checks[0].Reason != "stale_replica" ||
		!strings.Contains(st.Checks[0].Message, "as last read") {
		t.Fatalf("after the provider died: %s metric %d, check %+v", st.State, st.Metric, st.Checks[0])
	}
	if got := l.adv.changedTo(1); got.After(l.adv.changedTo(3)) {
		t.Errorf("metric 1 announced again at %v", got)
	}
}

// A heartbeat entry missing on the provider: the check says misconfigured
// (status, both metrics) while the replica keeps its metric.
func TestDaemonFreshnessMissingHeartbeat(t *testing.T) {
	l := startFreshness(t, 30*time.Second, `          max_lag: 5s
          heartbeat_dn: cn=missing,`+services.SlapdSuffix+`
          heartbeat_interval: 1s`)
	l.waitMetrics(t, []string{
		`ripcord_check_success{check="fresh",reason="misconfigured",service="ldap"} 1`,
		`ripcord_check_misconfigured{check="fresh",service="ldap"} 1`,
	}, nil)
	st := l.check(t)
	if st.State != "up" || st.Metric != 1 || st.Checks[0].Reason != "misconfigured" ||
		!strings.Contains(st.Checks[0].Message, "heartbeat_dn cn=missing,dc=example,dc=com does not exist on reference") {
		t.Fatalf("status: %s metric %d, check %+v", st.State, st.Metric, st.Checks[0])
	}
}

// A lag hovering around max_lag (replication cut and healed over and over
// while the provider is written to) degrades the replica once, and it gets
// its metric back only failback_delay after the lag settled.
func TestDaemonFreshnessHoveringLag(t *testing.T) {
	const maxLag, failback = 300 * time.Millisecond, 3 * time.Second
	l := startFreshness(t, failback, `          max_lag: 300ms`)
	ctx := context.Background()
	var settled time.Time
	for i := 0; i < 3; i++ {
		l.link.set(true)
		time.Sleep(maxLag + 100*time.Millisecond)
		if err := l.provider.Modify(ctx, services.SlapdTestEntryDN, "mail", fmt.Sprintf("alice-%d@example.com", i)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * freshInterval) // stale results: at least fall of them
		l.link.set(false)
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := l.consumer.WaitSynced(wctx, l.provider)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		settled = time.Now()
		time.Sleep(3 * freshInterval) // ok results: at least rise of them
	}
	l.waitMetric(t, 1, "lag settled")
	back := l.adv.changedTo(1)
	var changes []int
	l.adv.mu.Lock()
	for _, set := range l.adv.sets {
		m := 0 // nothing announced
		if len(set) == 1 {
			m = set[0].Metric
		}
		if len(changes) == 0 || changes[len(changes)-1] != m {
			changes = append(changes, m)
		}
	}
	l.adv.mu.Unlock()
	if fmt.Sprint(changes) != "[16 1 3 1]" {
		t.Errorf("metrics announced %v, want [16 1 3 1]: degraded once, back once", changes)
	}
	if took := back.Sub(settled); took < failback-freshInterval || took > failback+rise(2)+time.Second {
		t.Errorf("metric 1 came back %s after the lag settled, want failback_delay %s + rise", took, failback)
	}
}

func rise(n int) time.Duration { return time.Duration(n) * freshInterval }
