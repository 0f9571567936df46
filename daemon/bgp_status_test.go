package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/server"
	"github.com/ripcord/ripcord/advertisers"
	"github.com/ripcord/ripcord/control"
	"github.com/ripcord/ripcord/core/config"
	"github.com/ripcord/ripcord/plugins"
)

// TestDaemonReportsBGPSessions: status and /metrics show the BGP session
// with a real (embedded GoBGP) router, and how many prefixes it was sent.
// bgpRouter is an embedded GoBGP router (AS 65000) on a loopback address
// that takes a passive session from ripcord (AS 65010, from 127.0.0.1).
type bgpRouter struct {
	s    *server.BgpServer
	addr string
	port int
}

func startBGPRouter(t *testing.T) *bgpRouter { return startBGPRouterAt(t, "127.0.0.1") }

func startBGPRouterAt(t *testing.T, addr string) *bgpRouter {
	t.Helper()
	l, err := net.Listen("tcp", addr+":0")
	if err != nil {
		t.Fatal(err)
	}
	r := &bgpRouter{s: server.NewBgpServer(), addr: addr, port: l.Addr().(*net.TCPAddr).Port}
	l.Close()
	go r.s.Serve()
	ctx := context.Background()
	if err := r.s.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{Asn: 65000, RouterId: addr,
		ListenPort: int32(r.port), ListenAddresses: []string{addr}}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.s.StopBgp(context.Background(), &api.StopBgpRequest{}) })
	if err := r.s.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
		Conf: &api.PeerConf{NeighborAddress: "127.0.0.1", PeerAsn: 65010}, Transport: &api.Transport{PassiveMode: true}}}); err != nil {
		t.Fatal(err)
	}
	return r
}

// updates is how many UPDATE messages the router received from ripcord.
func (r *bgpRouter) updates() uint64 {
	var n uint64
	r.s.ListPeer(context.Background(), &api.ListPeerRequest{}, func(p *api.Peer) {
		n = p.GetState().GetMessages().GetReceived().GetUpdate()
	})
	return n
}

// prefixes is how many prefixes the router holds.
func (r *bgpRouter) prefixes() int {
	n := 0
	r.s.ListPath(context.Background(), &api.ListPathRequest{TableType: api.TableType_GLOBAL,
		Family: &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}}, func(*api.Destination) { n++ })
	return n
}

// bgpHead is the bgp section for a daemon peering with routers.
func bgpHead(routers ...*bgpRouter) string {
	out := "bgp:\n  asn: 65010\n  router_id: 127.0.0.1\n  next_hop: 127.0.0.1\n  peers:\n"
	for _, r := range routers {
		out += r.peerConfig()
	}
	return out
}

func (r *bgpRouter) peerConfig() string {
	return fmt.Sprintf("    - {address: %s, asn: 65000, port: %d}\n", r.addr, r.port)
}

func (r *bgpRouter) bgpConfig() string { return bgpHead(r) }

// pageServer is an HTTP server answering every request with 200.
func pageServer(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") }))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// switchedPage is an HTTP page that answers 200 while healthy is true and
// 503 otherwise.
func switchedPage(t *testing.T) (addr string, healthy *atomic.Bool) {
	t.Helper()
	healthy = &atomic.Bool{}
	healthy.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !healthy.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "ok")
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), healthy
}

// runDaemon runs the daemon on cfgPath with the advertisers its config
// builds, until the test ends.
func runDaemon(t *testing.T, cfgPath string) { runDaemonWith(t, cfgPath, nil) }

// runDaemonWith is runDaemon with the advertisers advs builds from the
// loaded config (nil: the config's own).
func runDaemonWith(t *testing.T, cfgPath string, advs func(*config.Config) map[string]advertisers.Advertiser) {
	t.Helper()
	t.Setenv("RIPCORD_DAEMON_TEST_CHECKER", "1")
	log := slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithCancel(context.Background())
	cfg, host, err := Load(ctx, cfgPath, func(c *config.Config) *plugins.Host { return NewHost(c, []string{os.Args[0]}, log) })
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	o := Options{Config: cfg, Host: host, Logger: log, NoVIP: true, ConfigPath: cfgPath}
	if advs != nil {
		o.Advertisers = advs(cfg)
	}
	done := make(chan error, 1)
	go func() { done <- Run(ctx, o) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}

// TestDaemonReportsBGPSessions: status and /metrics show the BGP session
// with a real (embedded GoBGP) router, and how many prefixes it was sent.
func TestDaemonReportsBGPSessions(t *testing.T) {
	r := startBGPRouter(t)
	dir := t.TempDir()
	metricsAddr := freePort(t)
	cfgPath := filepath.Join(dir, "ripcord.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`
state_dir: %[1]s/state
control: {socket: %[1]s/ripcord.sock, metrics_listen: "%[2]s"}
%[3]s
services:
  - name: web
    vip: 192.0.2.34
    checks:
      - {name: port, checker: http, target: "http://%[4]s/", interval: 100ms, timeout: 90ms, rise: 1, fall: 1000}
`, dir, metricsAddr, r.bgpConfig(), pageServer(t))), 0o644)
	runDaemon(t, cfgPath)

	client := control.NewClient(filepath.Join(dir, "ripcord.sock"))
	var rep control.Report
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if rep, err = client.Status(); err == nil && len(rep.BGP) == 1 && rep.BGP[0].State == "established" && rep.BGP[0].Advertised == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never showed the session established with one prefix: %+v, %v", rep.BGP, err)
		}
	}
	if s := rep.BGP[0]; s.Peer != "127.0.0.1" || s.PeerASN != 65000 || s.Since.IsZero() {
		t.Errorf("session %+v", s)
	}
	if body := httpGet(t, "http://"+metricsAddr+"/metrics"); !strings.Contains(body, `ripcord_bgp_session_up{peer="127.0.0.1"} 1`) {
		t.Errorf("/metrics lacks the session:\n%s", grepRipcord(body))
	}
}

// TestReloadSendsNoBGPUpdateForUnchangedServices counts the UPDATEs a real
// BGP router receives: none for a reload that changes nothing, one for a
// reload that adds a service, and none for the unchanged service.
func TestReloadSendsNoBGPUpdateForUnchangedServices(t *testing.T) {
	r := startBGPRouter(t)
	page := pageServer(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "ripcord.yaml")
	svc := func(name, vip string) string {
		return fmt.Sprintf("  - name: %s\n    vip: %s\n    checks:\n      - {name: port, checker: http, target: \"http://%s/\", interval: 100ms, timeout: 90ms, rise: 1, fall: 1000}\n", name, vip, page)
	}
	head := fmt.Sprintf("state_dir: %[1]s/state\ncontrol: {socket: %[1]s/ripcord.sock}\n%[2]sservices:\n", dir, r.bgpConfig())
	os.WriteFile(cfgPath, []byte(head+svc("web", "192.0.2.35")), 0o644)
	runDaemon(t, cfgPath)
	client := control.NewClient(filepath.Join(dir, "ripcord.sock"))
	for deadline := time.Now().Add(10 * time.Second); r.updates() == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the router never received the announcement")
		}
	}
	time.Sleep(300 * time.Millisecond)
	before := r.updates()
	if res, err := client.Reload(); err != nil || res.Summary != "unchanged web" {
		t.Fatalf("reload: %+v, %v", res, err)
	}
	time.Sleep(time.Second)
	if n := r.updates() - before; n != 0 {
		t.Fatalf("a reload that changed nothing sent the router %d UPDATEs", n)
	}
	os.WriteFile(cfgPath, []byte(head+svc("web", "192.0.2.35")+svc("mail", "192.0.2.36")), 0o644)
	if res, err := client.Reload(); err != nil || res.Summary != "added mail; unchanged web" {
		t.Fatalf("reload: %+v, %v", res, err)
	}
	// mail starts (withdrawn, nothing sent) and comes up: one UPDATE.
	for deadline := time.Now().Add(10 * time.Second); r.updates()-before < 1; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the router never received the new service")
		}
	}
	time.Sleep(time.Second)
	if n := r.updates() - before; n != 1 {
		t.Errorf("adding one service sent the router %d UPDATEs, want 1 (the new prefix only)", n)
	}
}

// TestWithdrawingOneServiceSendsOneUpdate: several services share one BGP
// session; one going down and coming back costs exactly one UPDATE each
// way, and none for the others.
func TestWithdrawingOneServiceSendsOneUpdate(t *testing.T) {
	r := startBGPRouter(t)
	switched, healthy := switchedPage(t)
	page := pageServer(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "ripcord.yaml")
	svc := func(name, vip, target string) string {
		return fmt.Sprintf("  - name: %s\n    vip: %s\n    failback_delay: 200ms\n    checks:\n      - {name: page, checker: http, target: \"http://%s/\", interval: 100ms, timeout: 90ms, rise: 1, fall: 1}\n", name, vip, target)
	}
	os.WriteFile(cfgPath, []byte(fmt.Sprintf("state_dir: %[1]s/state\ncontrol: {socket: %[1]s/ripcord.sock}\n%[2]sservices:\n", dir, r.bgpConfig())+
		svc("web", "192.0.2.38", page)+svc("mail", "192.0.2.39", switched)), 0o644)
	runDaemon(t, cfgPath)
	// Both announcements may travel in one UPDATE: wait for the table.
	for deadline := time.Now().Add(10 * time.Second); r.prefixes() < 2; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the router holds %d prefixes, want both services'", r.prefixes())
		}
	}
	time.Sleep(500 * time.Millisecond)
	before := r.updates()
	healthy.Store(false)
	for deadline := time.Now().Add(10 * time.Second); r.updates() == before; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no withdrawal reached the router")
		}
	}
	time.Sleep(500 * time.Millisecond)
	if n := r.updates() - before; n != 1 {
		t.Errorf("mail going down sent %d UPDATEs, want 1 (its withdrawal)", n)
	}
	healthy.Store(true)
	for deadline := time.Now().Add(10 * time.Second); r.updates() == before+1; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("mail never came back")
		}
	}
	time.Sleep(500 * time.Millisecond)
	if n := r.updates() - before; n != 2 {
		t.Errorf("mail down and back sent %d UPDATEs, want 2", n)
	}
}
