package daemon

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ripcord/ripcord/advertisers"
	"github.com/ripcord/ripcord/control"
	"github.com/ripcord/ripcord/core/config"
)

// TestDaemonReload: a reload that changes nothing sends nothing; one that
// adds a service, removes one and changes a check's interval leaves the
// unchanged service's announcement alone; an invalid file or a change that
// needs a restart changes nothing and says why.
func TestDaemonReload(t *testing.T) {
	t.Setenv("RIPCORD_DAEMON_TEST_CHECKER", "1")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	defer srv.Close()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "ripcord.yaml")
	metricsAddr := freePort(t)
	node := ""
	write := func(services string) {
		t.Helper()
		head := fmt.Sprintf(node+"state_dir: %s/state\ncontrol: {socket: %s/ripcord.sock, metrics_listen: %q}\nservices:\n", dir, dir, metricsAddr)
		if err := os.WriteFile(cfgPath, []byte(head+services), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	svc := func(name, vip, interval string) string {
		return fmt.Sprintf("  - name: %s\n    vip: %s\n    checks:\n      - {name: page, checker: http, target: %q, interval: %s, timeout: 90ms, rise: 1}\n",
			name, vip, srv.URL+"/", interval)
	}
	write(svc("keep", "192.0.2.40", "100ms") + svc("gone", "192.0.2.41", "100ms"))

	adv := &recordingAdvertiser{}
	runDaemonWith(t, cfgPath, func(*config.Config) map[string]advertisers.Advertiser {
		return map[string]advertisers.Advertiser{"rip": adv}
	})
	client := control.NewClient(filepath.Join(dir, "ripcord.sock"))
	waitSet := func(why string, want map[string]int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			got := map[string]int{}
			for _, a := range adv.last() {
				got[a.Prefix.Addr().String()] = a.Metric
			}
			if fmt.Sprint(got) == fmt.Sprint(want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: advertiser last asked for %v, want %v", why, got, want)
			}
		}
	}
	sets := func() int {
		adv.mu.Lock()
		defer adv.mu.Unlock()
		return len(adv.sets)
	}
	waitSet("start", map[string]int{"192.0.2.40": 1, "192.0.2.41": 1})
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) { // the socket is up
		if _, err := client.Status(); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatal(err)
		}
	}

	// Unchanged: no Set at all.
	before := sets()
	res, err := client.Reload()
	if err != nil || res.Summary != "unchanged keep, gone" {
		t.Fatalf("unchanged reload: %+v, %v", res, err)
	}
	time.Sleep(500 * time.Millisecond)
	if n := sets() - before; n != 0 {
		t.Errorf("a reload that changed nothing sent %d sets to the advertiser", n)
	}

	// gone removed, new added, keep's check at another interval.
	before = sets()
	write(svc("keep", "192.0.2.40", "200ms") + svc("new", "192.0.2.42", "100ms"))
	res, err = client.Reload()
	if err != nil || res.Summary != "added new; removed gone; restarted checks keep/page; unchanged keep" {
		t.Fatalf("reload: %+v, %v", res, err)
	}
	waitSet("after reload", map[string]int{"192.0.2.40": 1, "192.0.2.42": 1})
	adv.mu.Lock()
	for _, set := range adv.sets[before:] {
		for _, a := range set {
			if a.Prefix.Addr().String() == "192.0.2.40" && a.Metric != 1 {
				t.Errorf("the unchanged service was announced with metric %d during the reload", a.Metric)
			}
		}
	}
	adv.mu.Unlock()
	if err := client.Drain("gone"); err == nil {
		t.Error("the removed service can still be drained")
	}

	// An invalid file changes nothing, and the error names the line.
	write(svc("keep", "192.0.2.40", "200ms") + "  - name: bad\n    vip: 300.1.2.3\n")
	if _, err := client.Reload(); err == nil || !strings.Contains(err.Error(), cfgPath+":9:10: services[1].vip") {
		t.Fatalf("invalid file: %v", err)
	}
	// A change that needs a restart is refused.
	node = "node: other\n"
	write(svc("keep", "192.0.2.40", "200ms"))
	if _, err := client.Reload(); err == nil || !strings.Contains(err.Error(), "node changed: that needs a restart") {
		t.Fatalf("restart-only change: %v", err)
	}
	r, err := client.Status()
	if err != nil {
		t.Fatal(err)
	}
	if r.Reload == nil || r.Reload.OK || !strings.Contains(r.Reload.Error, "needs a restart") || len(r.Services) != 2 {
		t.Errorf("status after refused reloads: reload %+v, %d services", r.Reload, len(r.Services))
	}
	waitSet("after refused reloads", map[string]int{"192.0.2.40": 1, "192.0.2.42": 1})
	body := httpGet(t, "http://"+metricsAddr+"/metrics")
	if !strings.Contains(body, "ripcord_config_last_reload_successful 0") ||
		!strings.Contains(body, "ripcord_config_last_reload_success_timestamp_seconds ") {
		t.Errorf("/metrics lacks the reload outcome:\n%s", grepRipcord(body))
	}
	if strings.Contains(body, `vip="192.0.2.41/32"`) {
		t.Errorf("/metrics still has the removed service's VIP:\n%s", grepRipcord(body))
	}
	// A removed service's checks and states are gone too; the others stay.
	if strings.Contains(body, `service="gone"`) || !strings.Contains(body, `ripcord_check_success{check="page",reason="ok",service="keep"} 1`) {
		t.Errorf("/metrics after removing service gone:\n%s", grepRipcord(body))
	}
}
