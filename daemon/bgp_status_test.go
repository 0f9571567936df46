package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/server"
	"github.com/ripcord/ripcord/control"
	"github.com/ripcord/ripcord/core/config"
	"github.com/ripcord/ripcord/plugins"
)

// TestDaemonReportsBGPSessions: status and /metrics show the BGP session
// with a real (embedded GoBGP) router, and how many prefixes it was sent.
func TestDaemonReportsBGPSessions(t *testing.T) {
	t.Setenv("RIPCORD_DAEMON_TEST_CHECKER", "1")
	routerPort := freePort(t)
	_, portText, _ := net.SplitHostPort(routerPort)
	var port int
	fmt.Sscan(portText, &port)
	rs := server.NewBgpServer()
	go rs.Serve()
	ctx := context.Background()
	if err := rs.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{Asn: 65000, RouterId: "127.0.0.1",
		ListenPort: int32(port), ListenAddresses: []string{"127.0.0.1"}}}); err != nil {
		t.Fatal(err)
	}
	defer rs.StopBgp(context.Background(), &api.StopBgpRequest{})
	if err := rs.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
		Conf: &api.PeerConf{NeighborAddress: "127.0.0.1", PeerAsn: 65010}, Transport: &api.Transport{PassiveMode: true}}}); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	metricsAddr := freePort(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfgPath := filepath.Join(dir, "ripcord.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`
state_dir: %[1]s/state
control: {socket: %[1]s/ripcord.sock, metrics_listen: "%[2]s"}
bgp:
  asn: 65010
  router_id: 127.0.0.1
  next_hop: 127.0.0.1
  peers:
    - {address: 127.0.0.1, asn: 65000, port: %[3]d}
services:
  - name: web
    vip: 192.0.2.34
    checks:
      - {name: port, checker: http, target: "http://%[4]s/", interval: 100ms, timeout: 90ms, rise: 1, fall: 1000}
`, dir, metricsAddr, port, ln.Addr())), 0o644)
	go func() { // a page for the check
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("HTTP/1.0 200 OK\r\n\r\nok"))
			c.Close()
		}
	}()
	log := slog.New(slog.DiscardHandler)
	rctx, cancel := context.WithCancel(context.Background())
	cfg, host, err := Load(rctx, cfgPath, func(c *config.Config) *plugins.Host { return NewHost(c, []string{os.Args[0]}, log) })
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- Run(rctx, Options{Config: cfg, Host: host, Logger: log, NoVIP: true}) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	client := control.NewClient(filepath.Join(dir, "ripcord.sock"))
	var r control.Report
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if r, err = client.Status(); err == nil && len(r.BGP) == 1 && r.BGP[0].State == "established" && r.BGP[0].Advertised == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never showed the session established with one prefix: %+v, %v", r.BGP, err)
		}
	}
	if s := r.BGP[0]; s.Peer != "127.0.0.1" || s.PeerASN != 65000 || s.Since.IsZero() {
		t.Errorf("session %+v", s)
	}
	if body := httpGet(t, "http://"+metricsAddr+"/metrics"); !strings.Contains(body, `ripcord_bgp_session_up{peer="127.0.0.1"} 1`) {
		t.Errorf("/metrics lacks the session:\n%s", grepRipcord(body))
	}
}
