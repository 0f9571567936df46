package daemon

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ripcord/ripcord/advertisers"
	"github.com/ripcord/ripcord/advertisers/rip"
	"github.com/ripcord/ripcord/advertisers/ripng"
	"github.com/ripcord/ripcord/control"
	"github.com/ripcord/ripcord/core/config"
	"github.com/ripcord/ripcord/internal/memconn"
)

// A dual-stack service is announced by RIPv2 (its vip) and RIPng (its vip6)
// from one decision: the real speakers, on in-memory sockets, send the same
// metric for both addresses as the service goes up, down and up again, and
// status reports both.
func TestDaemonDualStackRIPAndRIPng(t *testing.T) {
	t.Setenv("RIPCORD_DAEMON_TEST_CHECKER", "1")
	page, healthy := switchedPage(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "ripcord.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`
state_dir: %[1]s/state
control: {socket: %[1]s/ripcord.sock}
services:
  - name: web
    vip: 192.0.2.37
    vip6: 2001:db8::37
    failback_delay: 200ms
    checks:
      - {name: page, checker: http, target: "http://%[2]s/", interval: 100ms, timeout: 90ms, rise: 1, fall: 1}
`, dir, page)), 0o644)
	c4 := memconn.New(&net.UDPAddr{IP: net.IPv4(10, 0, 0, 2), Port: rip.Port})
	c6 := memconn.New(&net.UDPAddr{IP: net.ParseIP("fe80::2"), Port: ripng.Port, Zone: "eth0"})
	ifcs := []rip.Interface{{Name: "eth0"}}
	s4, err := rip.NewWithConns(rip.Config{Interfaces: ifcs, UpdateInterval: time.Hour}, map[string]net.PacketConn{"eth0": c4})
	if err != nil {
		t.Fatal(err)
	}
	s6, err := ripng.NewWithConns(rip.Config{Interfaces: ifcs, UpdateInterval: time.Hour}, map[string]net.PacketConn{"eth0": c6})
	if err != nil {
		t.Fatal(err)
	}
	runDaemonWith(t, cfgPath, func(*config.Config) map[string]advertisers.Advertiser {
		return map[string]advertisers.Advertiser{"rip": s4, "ripng": s6}
	})
	vip4, vip6 := netip.MustParsePrefix("192.0.2.37/32"), netip.MustParsePrefix("2001:db8::37/128")
	// sent waits for the next update of each speaker and checks it names
	// only its own family's address, with metric.
	sent := func(why string, metric int) {
		t.Helper()
		for _, sp := range []struct {
			c      *memconn.Conn
			decode func([]byte) (rip.Packet, error)
			vip    netip.Prefix
		}{{c4, rip.RIPv2.Unmarshal, vip4}, {c6, ripng.Unmarshal, vip6}} {
			for deadline := time.After(10 * time.Second); ; {
				var p memconn.Packet
				select {
				case p = <-sp.c.Out:
				case <-deadline:
					t.Fatalf("%s: no update for %v with metric %d", why, sp.vip, metric)
				}
				pkt, err := sp.decode(p.Data)
				if err != nil {
					t.Fatalf("%s: %v", why, err)
				}
				if pkt.Command != rip.CommandResponse {
					continue // the router views' Requests
				}
				if len(pkt.Entries) != 1 || pkt.Entries[0].Prefix != sp.vip {
					t.Fatalf("%s: update %+v, want %v alone", why, pkt.Entries, sp.vip)
				}
				if pkt.Entries[0].Metric == metric {
					break
				}
			}
		}
	}
	sent("up", 1)
	client := control.NewClient(filepath.Join(dir, "ripcord.sock"))
	rep, err := client.Status()
	if err != nil {
		t.Fatal(err)
	}
	if sr := rep.Services[0]; sr.VIP != "192.0.2.37/32" || sr.VIP6 != "2001:db8::37/128" || sr.Announced["rip"] != 1 || sr.Announced["ripng"] != 1 {
		t.Errorf("status: vip %q vip6 %q announced %v", sr.VIP, sr.VIP6, sr.Announced)
	}
	healthy.Store(false)
	sent("down", 16)
	healthy.Store(true)
	sent("back up", 1)
}
