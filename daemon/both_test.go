package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/ripcord/ripcord/advertisers"
	"github.com/ripcord/ripcord/advertisers/bgp"
	"github.com/ripcord/ripcord/control"
	"github.com/ripcord/ripcord/core/config"
)

// TestDaemonRIPAndBGPAtOnce: one replica announcing to RIP routers on one
// side and BGP routers on the other drives both from the same decisions:
// up (RIP metric 1, BGP path), drained (RIP drain metric, BGP path with
// GRACEFUL_SHUTDOWN), down (RIP poison, BGP withdrawn). RIP is a recording
// advertiser here (the speaker has its own interop tests); BGP is the real
// speaker with a real session.
func TestDaemonRIPAndBGPAtOnce(t *testing.T) {
	t.Setenv("RIPCORD_DAEMON_TEST_CHECKER", "1")
	r := startBGPRouter(t)
	page, healthy := switchedPage(t)

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "ripcord.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`
state_dir: %[1]s/state
control: {socket: %[1]s/ripcord.sock}
%[2]s
services:
  - name: web
    vip: 192.0.2.37
    failback_delay: 200ms
    checks:
      - {name: page, checker: http, target: "http://%[3]s/", interval: 100ms, timeout: 90ms, rise: 1, fall: 1}
`, dir, r.bgpConfig(), page)), 0o644)
	ripAdv := &recordingAdvertiser{}
	runDaemonWith(t, cfgPath, func(cfg *config.Config) map[string]advertisers.Advertiser {
		sp, err := bgp.New(context.Background(), bgp.Config{ASN: cfg.BGP.ASN, RouterID: cfg.BGP.RouterID, NextHop: cfg.BGP.NextHop,
			Priority: cfg.BGP.Priority, Logger: slog.New(slog.DiscardHandler), Peers: []bgp.Peer{{Address: netip.MustParseAddr("127.0.0.1"), ASN: 65000, Port: uint16(r.port)}}})
		if err != nil {
			t.Fatal(err)
		}
		return map[string]advertisers.Advertiser{"rip": ripAdv, "bgp": sp}
	})

	// routerHolds reports whether the router has the VIP and whether it
	// carries GRACEFUL_SHUTDOWN (65535:0).
	routerHolds := func() (has, gshut bool) {
		r.s.ListPath(context.Background(), &api.ListPathRequest{TableType: api.TableType_GLOBAL,
			Family: &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}}, func(d *api.Destination) {
			if d.GetPrefix() != "192.0.2.37/32" {
				return
			}
			for _, p := range d.GetPaths() {
				has = true
				for _, a := range p.GetPattrs() {
					var c api.CommunitiesAttribute
					if a.UnmarshalTo(&c) == nil {
						for _, v := range c.GetCommunities() {
							gshut = gshut || v == 0xFFFF0000
						}
					}
				}
			}
		})
		return has, gshut
	}
	wait := func(why string, ripMetric int, has, gshut bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			h, g := routerHolds()
			l := ripAdv.last()
			if len(l) == 1 && l[0].Metric == ripMetric && h == has && g == gshut {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: RIP asked for %v, BGP router holds %v (graceful shutdown %v); want RIP %d, BGP %v/%v",
					why, l, h, g, ripMetric, has, gshut)
			}
		}
	}
	wait("up", 1, true, false)
	client := control.NewClient(filepath.Join(dir, "ripcord.sock"))
	if err := client.Drain("web"); err != nil {
		t.Fatal(err)
	}
	wait("drained", 10, true, true)
	if err := client.Undrain("web"); err != nil {
		t.Fatal(err)
	}
	wait("undrained", 1, true, false)
	healthy.Store(false)
	wait("down", 16, false, false)
	healthy.Store(true)
	wait("back up", 1, true, false)
}
