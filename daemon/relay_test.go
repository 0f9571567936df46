package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ripcord/ripcord/control"
	"github.com/ripcord/ripcord/core/config"
	"github.com/ripcord/ripcord/relay"
)

// kernelRelay stands in for relay.Manager: it keeps the desired relays and
// counts, for each relay of everything, one flow and five packets at the
// time it was installed (then silence: the routers moved).
type kernelRelay struct {
	mu    sync.Mutex
	stats map[string]relay.Stats
	modes []relay.Mode   // every mode asked for, in order
	last  []relay.Want   // the latest set
	peers [][]netip.Addr // every SetPeers, in order
	// refuse makes the next SetPeers that removes a peer fail.
	refuse bool
	closed bool
}

func (k *kernelRelay) SetPeers(peers []netip.Addr) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.peers = append(k.peers, peers)
	if n := len(k.peers); k.refuse && n > 1 && len(peers) < len(k.peers[n-2]) {
		k.refuse = false
		return errors.New("relay: service \"x\" relays to peer 127.0.0.3 (all): the peer cannot be removed before that ends")
	}
	return nil
}

func (k *kernelRelay) Set(_ context.Context, want []relay.Want) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := time.Now()
	k.last = want
	for _, w := range want {
		st := k.stats[w.Service]
		if st.Mode != w.Mode || st.Peer != w.Peer {
			st.Service, st.Mode, st.Peer, st.Since = w.Service, w.Mode, w.Peer, now
			if w.Mode == relay.All {
				st.Flows, st.Packets, st.LastFlow, st.LastPacket = st.Flows+1, st.Packets+5, now, now
			}
			k.modes = append(k.modes, w.Mode)
		}
		k.stats[w.Service] = st
	}
	return nil
}

func (k *kernelRelay) Stats() []relay.Stats {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []relay.Stats
	for _, s := range k.stats {
		out = append(out, s)
	}
	return out
}

func (k *kernelRelay) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.closed = true
	return nil
}

func (k *kernelRelay) history() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return fmt.Sprint(k.modes)
}

// TestRelayMakeBeforeBreak runs two daemons as in the assist test, A with a
// relay to B. When A's listener closes, A relays everything to B and
// announces its worse relay metric; B's peer check sees A relaying and
// assists; once the kernel reports no new flow for quiet, A poisons, and
// once no packet came for quiet, A's relay goes.
func TestRelayMakeBeforeBreak(t *testing.T) {
	pluginDir := buildTCPConnect(t)
	svcA, svcB := listenTCP(t, "127.0.0.1:0"), listenTCP(t, "127.0.0.1:0")
	defer svcB.Close()
	metricsA, metricsB := freePort(t), freePort(t)
	check := `{name: port, checker: tcpconnect, target: "%s", interval: 1s, fast_interval: 50ms, timeout: 90ms, rise: 1, fall: 2}`
	peer := `{name: %s, checker: peer, target: "http://%s", interval: 100ms, timeout: 90ms, rise: 1, fall: 1, settings: {service: svc}}`
	a := writeConfig(t, pluginDir, metricsA, "relay_address: 127.0.0.2\n"+fmt.Sprintf(`
services:
  - name: svc
    vip: 192.0.2.50
    failback_delay: 500ms
    checks: [`+check+`]
    assist: {metric: 2, delay: 100ms, peers: [`+peer+`]}
    relay: {ports: [tcp/389], metric: 10, quiet: 300ms, max: 5s}
`, svcA.Addr(), "b", metricsB))
	b := writeConfig(t, pluginDir, metricsB, fmt.Sprintf(`
services:
  - name: svc
    vip: 192.0.2.50
    checks: [`+check+`]
    assist: {metric: 2, delay: 100ms, peers: [`+peer+`]}
`, svcB.Addr(), "a", metricsA))

	advA, advB := &recordingAdvertiser{}, &recordingAdvertiser{}
	k := &kernelRelay{stats: map[string]relay.Stats{}}
	startDaemon(t, a, advA, func(o *Options) { o.Relay = k })
	startDaemon(t, b, advB)
	advA.waitMetric(t, 1, "A up")
	advB.waitMetric(t, 1, "B up")
	waitUntil(t, "A's fallback relay to B", func() bool { return strings.HasSuffix(k.history(), "fallback]") })

	svcA.Close()
	advA.waitMetric(t, 10, "A relays and announces its relay metric")
	advB.waitMetric(t, 2, "B assists: A relays")
	advA.waitMetric(t, 16, "A poisons once no new flow came for quiet")
	if moved, poisoned := advA.firstAt(10), advA.changedTo(16); poisoned.Sub(moved) < 300*time.Millisecond {
		t.Errorf("A poisoned %s after relaying; quiet is 300ms", poisoned.Sub(moved))
	}
	waitUntil(t, "relay removed", func() bool { return strings.HasSuffix(k.history(), "all off]") })
	// A busy machine may time a peer check out and drop the fallback for
	// a moment; the order that matters is fallback, then all, then off.
	if got := k.history(); !strings.HasPrefix(got, "[fallback") || strings.Count(got, " all ") != 1 {
		t.Errorf("relay modes %s", got)
	}
	var rep control.Report
	if err := json.Unmarshal([]byte(httpGet(t, "http://"+metricsA+"/v1/status")), &rep); err != nil {
		t.Fatal(err)
	}
	if r := rep.Services[0].Relay; r == nil || r.Mode != "off" || r.Flows != 1 || r.Packets != 5 {
		t.Errorf("status relay = %+v", r)
	}
	if m := httpGet(t, "http://"+metricsA+"/metrics"); !strings.Contains(m, `ripcord_relay_packets_total{service="svc"} 5`) {
		t.Errorf("metrics lack the relay's packets")
	}
}

// TestRelayVIP6: the kernel relay is asked for a service's vip6 beside its
// vip, and a relay set up without IPv6 refuses, until a restart, a reload
// that relays a vip6.
func TestRelayVIP6(t *testing.T) {
	pluginDir := buildTCPConnect(t)
	svc := listenTCP(t, "127.0.0.1:0")
	defer svc.Close()
	body := func(vip6 string) string {
		return fmt.Sprintf(`relay_address: 127.0.0.2
services:
  - name: svc
    vip: 192.0.2.50
%s    checks: [{name: port, checker: tcpconnect, target: "%s", interval: 100ms, timeout: 90ms, rise: 1}]
    assist: {peers: [{name: b, checker: peer, target: "http://127.0.0.1:1", interval: 100ms, timeout: 90ms, settings: {service: svc}}]}
    relay: {ports: [tcp/389]}
`, vip6, svc.Addr())
	}
	wantVIP6 := func(k *kernelRelay) netip.Addr {
		k.mu.Lock()
		defer k.mu.Unlock()
		if len(k.last) != 1 {
			return netip.Addr{}
		}
		return k.last[0].VIP6
	}
	k6 := &kernelRelay{stats: map[string]relay.Stats{}}
	startDaemon(t, writeConfig(t, pluginDir, freePort(t), body("    vip6: 2001:db8::50\n")), &recordingAdvertiser{}, func(o *Options) { o.Relay = k6 })
	waitUntil(t, "the vip6 relayed", func() bool { return wantVIP6(k6) == netip.MustParseAddr("2001:db8::50") })

	path := writeConfig(t, pluginDir, freePort(t), body(""))
	k := &kernelRelay{stats: map[string]relay.Stats{}}
	startDaemon(t, path, &recordingAdvertiser{}, func(o *Options) { o.Relay = k; o.ConfigPath = path })
	waitUntil(t, "the relay set", func() bool { k.mu.Lock(); defer k.mu.Unlock(); return len(k.last) == 1 })
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), "vip: 192.0.2.50\n", "vip: 192.0.2.50\n    vip6: 2001:db8::50\n", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	client := control.NewClient(filepath.Join(filepath.Dir(path), "s.sock"))
	if _, err := client.Reload(); err == nil || !strings.Contains(err.Error(), "the relay was set up without IPv6 and now relays a vip6: that needs a restart") {
		t.Errorf("reload adding a relayed vip6: %v", err)
	}
	if got := wantVIP6(k); got.IsValid() {
		t.Errorf("relayed vip6 %v after a refused reload", got)
	}
}

// TestRelayPeersReload: a reload that changes a service's relay peers hands
// the kernel relay the old and new peers together first, the new ones
// alone after the services changed; and it is refused while a service
// relays to a peer that would be removed.
func TestRelayPeersReload(t *testing.T) {
	pluginDir := buildTCPConnect(t)
	svc := listenTCP(t, "127.0.0.1:0")
	defer svc.Close()
	body := func(peer string) string {
		return fmt.Sprintf(`relay_address: 127.0.0.2
services:
  - name: svc
    vip: 192.0.2.51
    checks: [{name: port, checker: tcpconnect, target: "%s", interval: 100ms, timeout: 90ms, rise: 1}]
    assist: {peers: [{name: b, checker: peer, target: "http://%s:1", interval: 100ms, timeout: 90ms, settings: {service: svc}}]}
    relay: {ports: [tcp/389]}
`, svc.Addr(), peer)
	}
	path := writeConfig(t, pluginDir, freePort(t), body("127.0.0.3"))
	k := &kernelRelay{stats: map[string]relay.Stats{}}
	startDaemon(t, path, &recordingAdvertiser{}, func(o *Options) { o.Relay = k; o.ConfigPath = path })
	waitUntil(t, "the relay set", func() bool { k.mu.Lock(); defer k.mu.Unlock(); return len(k.last) == 1 })
	rewrite := func(peer string) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(strings.Replace(string(b), body("127.0.0.3"), body(peer), 1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	client := control.NewClient(filepath.Join(filepath.Dir(path), "s.sock"))
	a3, a4 := netip.MustParseAddr("127.0.0.3"), netip.MustParseAddr("127.0.0.4")

	// A service of the kernel's relays still at work towards the old peer.
	k.mu.Lock()
	k.stats["other"] = relay.Stats{Service: "other", Mode: relay.All, Peer: a3}
	k.mu.Unlock()
	rewrite("127.0.0.4")
	if _, err := client.Reload(); err == nil || !strings.Contains(err.Error(), "relay peer 127.0.0.3 is removed while service other relays to it (all)") {
		t.Errorf("reload removing a peer in use: %v", err)
	}
	k.mu.Lock()
	delete(k.stats, "other")
	if len(k.peers) != 0 {
		t.Errorf("a refused reload changed the relay peers: %v", k.peers)
	}
	k.mu.Unlock()

	res, err := client.Reload()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Summary, "relay peers [127.0.0.4] (were [127.0.0.3])") {
		t.Errorf("reload summary %q does not name the new relay peers", res.Summary)
	}
	k.mu.Lock()
	if want := fmt.Sprint([][]netip.Addr{{a3, a4}, {a4}}); fmt.Sprint(k.peers) != want {
		t.Errorf("SetPeers calls %v, want %v", k.peers, want)
	}
	if len(k.last) != 1 || k.last[0].Peer == a3 {
		t.Errorf("relay wants after the reload: %+v", k.last)
	}
	// Back to 127.0.0.3, but the old peer cannot go yet (a relay to it
	// began meanwhile): the reload stands, and the next one removes it.
	k.peers, k.refuse = nil, true
	k.mu.Unlock()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), body("127.0.0.4"), body("127.0.0.3"), 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if res, err := client.Reload(); err != nil || !strings.Contains(res.Summary, "the old ones stay until the next reload") {
		t.Errorf("reload whose peer removal failed: %+v, %v", res, err)
	}
	if _, err := client.Reload(); err != nil {
		t.Fatal(err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if want := fmt.Sprint([][]netip.Addr{{a4, a3}, {a3}, {a4, a3}, {a3}}); fmt.Sprint(k.peers) != want {
		t.Errorf("SetPeers calls %v, want %v (the second reload retries the removal)", k.peers, want)
	}
}

func writeConfig(t *testing.T, pluginDir, metrics, body string) string {
	t.Helper()
	dir := t.TempDir()
	p := dir + "/ripcord.yaml"
	body = fmt.Sprintf("state_dir: %s/state\ncontrol: {socket: %s/s.sock, metrics_listen: %q}\nplugins: {dir: %s}\n", dir, dir, metrics, pluginDir) + body
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestRelayConfig(t *testing.T) {
	cfg := &config.Config{RelayTunnel: config.RelayTunnel{Port: 4790, VNI: 4242, MTU: 1350}}
	rc := relayConfig(cfg, netip.MustParseAddr("10.0.1.10"), []netip.Addr{netip.MustParseAddr("10.0.2.10")}, true, slog.Default())
	if rc.Port != 4790 || rc.VNI != 4242 || rc.MTU != 1350 || !rc.IPv6 || rc.Local.String() != "10.0.1.10" || len(rc.Peers) != 1 {
		t.Errorf("relayConfig = %+v", rc)
	}
	if rc := relayConfig(&config.Config{}, netip.Addr{}, nil, false, slog.Default()); rc.Port != 0 || rc.VNI != 0 || rc.MTU != 0 {
		t.Errorf("relayConfig without relay_tunnel = %+v, want the relay's defaults (zero)", rc)
	}
}
