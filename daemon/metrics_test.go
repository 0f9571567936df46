package daemon

import (
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ripcord/ripcord/control"
	"github.com/ripcord/ripcord/core"
	"github.com/ripcord/ripcord/plugins/checkapi"
)

// TestDaemonMetricsKeepCausesApart: a check that fails because it is
// misconfigured (here: a TLS certificate the check does not trust) is told
// apart from a service that is down, and the replica count includes the
// peers' view. The page is valid exposition format (promtool check metrics).
func TestDaemonMetricsKeepCausesApart(t *testing.T) {
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshake errors are the point
	defer tlsSrv.Close()
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	defer plain.Close()
	dir := t.TempDir()
	metricsAddr := freePort(t)
	cfgPath := filepath.Join(dir, "ripcord.yaml")
	// The peer check of "plain" reads this daemon's own status: a peer that
	// announces "plain", so two replicas of it are up.
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`
state_dir: %[1]s/state
control: {socket: %[1]s/ripcord.sock, metrics_listen: "%[2]s"}
services:
  - name: web
    vip: 192.0.2.32
    checks:
      - {name: page, checker: http, target: "%[3]s/", interval: 300ms, timeout: 250ms, rise: 1, fall: 1}
  - name: plain
    vip: 192.0.2.33
    failback_delay: 5s
    checks:
      - {name: page, checker: http, target: "%[4]s/", interval: 300ms, timeout: 250ms, rise: 1, fall: 1}
    assist:
      peers:
        - {name: self, checker: peer, target: "http://%[2]s", interval: 300ms, timeout: 250ms, rise: 1, fall: 1,
           settings: {service: plain}}
`, dir, metricsAddr, tlsSrv.URL, plain.URL)), 0o644)
	startDaemon(t, cfgPath, &recordingAdvertiser{})

	want := []string{
		`ripcord_check_misconfigured{check="page",service="web"} 1`,
		`ripcord_check_misconfigured{check="page",service="plain"} 0`,
		`ripcord_check_success{check="page",reason="tls_invalid",service="web"} 0`,
		`ripcord_service_state{service="web",state="down"} 1`,
		`ripcord_service_replicas_up{service="web"} 0`,
		`ripcord_service_peers_watched{service="web"} 0`,
		`ripcord_service_replicas_up{service="plain"} 2`,
		`ripcord_service_peers_watched{service="plain"} 1`,
		`ripcord_build_info{goversion="go`,
		`process_resident_memory_bytes `,
		`go_goroutines `,
	}
	var body string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		missing := "an answer" // the listener may not be up yet
		if resp, err := http.Get("http://" + metricsAddr + "/metrics"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body, missing = string(b), ""
		}
		for _, w := range want {
			if missing == "" && !strings.Contains(body, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics never showed %s:\n%s", missing, grepRipcord(body))
		}
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (scripts/setup installs prometheus)")
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

func grepRipcord(body string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "ripcord_") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestCheckSeriesReplaced: each result replaces the series of the check's
// last one (reason, phases, observations) and leaves other checks' alone.
func TestCheckSeriesReplaced(t *testing.T) {
	m := control.NewMetrics("test")
	var cs checkSeries
	series := func() []string {
		mfs, err := m.Registry.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, mf := range mfs {
			if !slices.Contains([]string{"ripcord_check_success", "ripcord_check_phase_seconds", "ripcord_check_observation"}, mf.GetName()) {
				continue
			}
			for _, mm := range mf.GetMetric() {
				var ls []string
				for _, l := range mm.GetLabel() {
					ls = append(ls, l.GetValue())
				}
				out = append(out, mf.GetName()+"{"+strings.Join(ls, ",")+"}")
			}
		}
		slices.Sort(out)
		return out
	}
	other := &checkapi.Result{Status: checkapi.StatusOK, Reason: checkapi.ReasonOK}
	other.AddPhase("connect", time.Millisecond).Observe("lag", 1)
	cs.replace(m, "s", "other", other)
	first := &checkapi.Result{Status: checkapi.StatusOK, Reason: checkapi.ReasonOK}
	first.AddPhase("connect", time.Millisecond).AddPhase("bind", time.Millisecond).Observe("lag", 2).Observe("days", 30)
	cs.replace(m, "s", "c", first)
	cs.replace(m, "s", "c", checkapi.Failed(checkapi.ReasonRefused, "down").AddPhase("connect", time.Millisecond))
	want := []string{
		"ripcord_check_observation{other,lag,s}",
		"ripcord_check_phase_seconds{c,connect,s}",
		"ripcord_check_phase_seconds{other,connect,s}",
		"ripcord_check_success{c,refused,s}",
		"ripcord_check_success{other,ok,s}",
	}
	if diff := cmp.Diff(want, series()); diff != "" {
		t.Errorf("series after ok then refused (-want +got):\n%s", diff)
	}
}

// TestForgetRemoved: a reload's removed checks and services lose their
// series; what stays keeps them.
func TestForgetRemoved(t *testing.T) {
	d := &Daemon{metrics: control.NewMetrics("test"), log: slog.New(slog.DiscardHandler)}
	failed := &checkapi.Result{Status: checkapi.StatusFailed, Reason: checkapi.ReasonTimeout}
	failed.AddPhase("connect", time.Millisecond).Observe("lag", 1)
	jobs := []core.Job{{Service: "a", Name: "keep"}, {Service: "a", Name: "drop"}, {Service: "a", Name: "p", Peer: true}, {Service: "b", Name: "keep"}}
	for _, j := range jobs {
		d.observe(j, failed, time.Millisecond)
	}
	d.metrics.ServiceState.WithLabelValues("a", "up").Set(1)
	d.metrics.ServiceState.WithLabelValues("b", "down").Set(1)
	d.metrics.Transitions.WithLabelValues("b", "up", "down").Inc()

	d.forgetRemoved(jobs, jobs[:1], []core.ServiceSpec{{Name: "a"}, {Name: "b"}}, []core.ServiceSpec{{Name: "a"}})

	mfs, err := d.metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, mf := range mfs {
		for _, mm := range mf.GetMetric() {
			var ls []string
			for _, l := range mm.GetLabel() {
				if l.GetName() == "service" || l.GetName() == "check" {
					ls = append(ls, l.GetValue())
				}
			}
			if len(ls) > 0 {
				got = append(got, mf.GetName()+"{"+strings.Join(ls, ",")+"}")
			}
		}
	}
	slices.Sort(got)
	want := []string{
		"ripcord_check_duration_seconds{keep,a}", "ripcord_check_misconfigured{keep,a}", "ripcord_check_observation{keep,a}",
		"ripcord_check_phase_seconds{keep,a}", "ripcord_check_success{keep,a}", "ripcord_service_state{a}",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("series after the reload (-want +got):\n%s", diff)
	}
	if len(d.series.last) != 1 {
		t.Errorf("checkSeries remembers %d checks, want 1", len(d.series.last))
	}
}
