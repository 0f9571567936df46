package bgp

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	api "github.com/osrg/gobgp/v3/api"
)

// frrRouter is a real FRR bgpd on 127.0.0.2, without zebra (it installs
// nothing), accepting our speaker from 127.0.0.1.
type frrRouter struct {
	dir  string
	port uint16
}

func startFRR(t *testing.T) *frrRouter { return startFRRWith(t, "") }

// startFRRWith starts bgpd; a password makes it require TCP MD5 signatures
// (RFC 2385) from the speaker.
func startFRRWith(t *testing.T, password string) *frrRouter {
	t.Helper()
	const bgpd = "/usr/lib/frr/bgpd"
	if _, err := os.Stat(bgpd); err != nil {
		t.Fatalf("FRR bgpd missing (install package frr): %v", err)
	}
	if _, err := exec.LookPath("vtysh"); err != nil {
		t.Fatalf("vtysh missing (install package frr): %v", err)
	}
	if os.Geteuid() != 0 {
		t.Skip("bgpd must start as root here")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r := &frrRouter{dir: dir, port: freePort(t, "127.0.0.2")}
	conf := fmt.Sprintf(`frr defaults traditional
hostname rcfrr
log file %s/bgpd.log
router bgp %d
 bgp router-id 10.255.255.1
 no bgp ebgp-requires-policy
 neighbor 127.0.0.1 remote-as %d
 neighbor 127.0.0.1 passive
 neighbor 127.0.0.1 timers 3 9
`, dir, routerASN, speakerASN)
	if password != "" {
		conf += " neighbor 127.0.0.1 password " + password + "\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "bgpd.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	// Foreground, so the test owns and reaps the process. -S: run as root;
	// -Z: no zebra; -P 0: no TCP vty.
	cmd := exec.Command(bgpd, "-S", "-Z", "-l", "127.0.0.2", "-p", strconv.Itoa(int(r.port)), "-P", "0",
		"--vty_socket", dir, "-f", filepath.Join(dir, "bgpd.conf"), "-i", filepath.Join(dir, "bgpd.pid"))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	// If the test binary is killed, bgpd must not outlive it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start bgpd: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	waitFor(t, "bgpd vty", func() bool {
		_, err := os.Stat(filepath.Join(dir, "bgpd.vty"))
		return err == nil
	})
	return r
}

func (r *frrRouter) vtysh(t *testing.T, command string) []byte {
	t.Helper()
	out, err := exec.Command("vtysh", "--vty_socket", r.dir, "-c", command).CombinedOutput()
	if err != nil {
		t.Fatalf("vtysh %q: %v: %s", command, err, out)
	}
	return out
}

func (r *frrRouter) established(t *testing.T) bool {
	var v struct {
		Peers map[string]struct{ State string } `json:"peers"`
	}
	out := r.vtysh(t, "show bgp ipv4 unicast summary json")
	if err := json.Unmarshal(out, &v); err != nil {
		return false
	}
	return v.Peers["127.0.0.1"].State == "Established"
}

// frrSeen is what bgpd holds for one prefix.
type frrSeen struct {
	NextHop   string
	MED       int    // -1: none
	ASPath    string // as FRR prints it
	LocalPref int    // -1: none (eBGP carries no LOCAL_PREF)
	Community string // FRR's well-known names, e.g. "graceful-shutdown"
}

func (r *frrRouter) routes(t *testing.T) map[string]frrSeen { return r.routesOf(t, "ipv4") }

// routesOf is what bgpd holds in one address family (ipv4 or ipv6).
func (r *frrRouter) routesOf(t *testing.T, afi string) map[string]frrSeen {
	t.Helper()
	var table struct {
		Routes map[string]json.RawMessage `json:"routes"`
	}
	if err := json.Unmarshal(r.vtysh(t, "show bgp "+afi+" unicast json"), &table); err != nil {
		t.Fatalf("bgpd table: %v", err)
	}
	out := make(map[string]frrSeen)
	for prefix := range table.Routes {
		var detail struct {
			Paths []struct {
				ASPath struct {
					String string `json:"string"`
				} `json:"aspath"`
				MED       *int `json:"metric"`
				LocalPref *int `json:"locPrf"`
				Community struct {
					String string `json:"string"`
				} `json:"community"`
				Nexthops []struct {
					IP string `json:"ip"`
				} `json:"nexthops"`
				Bestpath struct {
					Overall bool `json:"overall"`
				} `json:"bestpath"`
			} `json:"paths"`
		}
		if err := json.Unmarshal(r.vtysh(t, "show bgp "+afi+" unicast "+prefix+" json"), &detail); err != nil {
			t.Fatalf("bgpd %s: %v", prefix, err)
		}
		for _, p := range detail.Paths {
			if !p.Bestpath.Overall {
				continue
			}
			s := frrSeen{MED: -1, ASPath: p.ASPath.String, LocalPref: -1, Community: p.Community.String}
			if p.MED != nil {
				s.MED = *p.MED
			}
			if p.LocalPref != nil {
				s.LocalPref = *p.LocalPref
			}
			if len(p.Nexthops) > 0 {
				s.NextHop = p.Nexthops[0].IP
			}
			out[prefix] = s
		}
	}
	return out
}

func (r *frrRouter) waitRoutes(t *testing.T, step string, want map[string]frrSeen) {
	t.Helper()
	r.waitRoutesOf(t, "ipv4", step, want)
}

func (r *frrRouter) waitRoutesOf(t *testing.T, afi, step string, want map[string]frrSeen) {
	t.Helper()
	start := time.Now()
	deadline := start.Add(10 * time.Second)
	for {
		got := r.routesOf(t, afi)
		diff := cmp.Diff(want, got)
		if diff == "" {
			t.Logf("%s: %s", step, time.Since(start))
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(r.dir, "bgpd.log"))
			t.Fatalf("%s: bgpd table (-want +got):\n%s\nbgpd.log tail:\n%s", step, diff, tail(strings.ReplaceAll(string(log), "zclient_send_message() failed", ""), 40))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// TestFRRInterop runs the speaker against a real FRR bgpd: what FRR makes
// of MED, prepends, GRACEFUL_SHUTDOWN and withdrawals.
func TestFRRInterop(t *testing.T) {
	for _, priority := range []string{PriorityMED, PriorityPrepend} {
		t.Run(priority, func(t *testing.T) {
			r := startFRR(t)
			sp, err := New(context.Background(), Config{
				ASN: speakerASN, RouterID: netip.MustParseAddr("10.255.0.1"), NextHop: netip.MustParseAddr("198.51.100.7"),
				Priority: priority, ConnectRetry: time.Second, Logger: quiet,
				Peers: []Peer{{Address: netip.MustParseAddr("127.0.0.2"), ASN: routerASN, Port: r.port}},
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { sp.Close() })
			start := time.Now()
			waitFor(t, "FRR session", func() bool { return r.established(t) })
			t.Logf("session: %s", time.Since(start))

			med, path := func(m int) int {
				if priority == PriorityMED {
					return m
				}
				return -1
			}, func(m int) string {
				if priority == PriorityMED {
					return "65001"
				}
				return strings.TrimSpace(strings.Repeat("65001 ", m))
			}
			set(t, sp, ann("10.77.0.1/32", 3, false))
			r.waitRoutes(t, "announce", map[string]frrSeen{
				"10.77.0.1/32": {NextHop: "198.51.100.7", MED: med(3), ASPath: path(3), LocalPref: -1},
			})
			set(t, sp, ann("10.77.0.1/32", 1, false), ann("10.77.0.2/32", 2, true))
			r.waitRoutes(t, "change and drain", map[string]frrSeen{
				"10.77.0.1/32": {NextHop: "198.51.100.7", MED: med(1), ASPath: path(1), LocalPref: -1},
				// FRR 8.4 honours RFC 8326 on receipt by itself: LOCAL_PREF 0.
				"10.77.0.2/32": {NextHop: "198.51.100.7", MED: med(2), ASPath: path(2), LocalPref: 0, Community: "graceful-shutdown"},
			})
			set(t, sp, ann("10.77.0.1/32", 16, false), ann("10.77.0.2/32", 2, true))
			r.waitRoutes(t, "metric 16", map[string]frrSeen{
				"10.77.0.2/32": {NextHop: "198.51.100.7", MED: med(2), ASPath: path(2), LocalPref: 0, Community: "graceful-shutdown"},
			})
			if err := sp.Close(); err != nil {
				t.Fatal(err)
			}
			r.waitRoutes(t, "after Close", map[string]frrSeen{})
		})
	}
}

// TestFRRInteropTCPMD5: with a password on both sides the session comes up
// (the speaker dials with TCP_MD5SIG set; it never listens); with a wrong
// one the kernel drops every segment and it never does.
func TestFRRInteropTCPMD5(t *testing.T) {
	for _, tc := range []struct {
		name, password string
		up             bool
	}{{"right", "s3cret-md5", true}, {"wrong", "other-md5", false}} {
		t.Run(tc.name, func(t *testing.T) {
			r := startFRRWith(t, "s3cret-md5")
			sp, err := New(context.Background(), Config{
				ASN: speakerASN, RouterID: netip.MustParseAddr("10.255.0.1"), NextHop: netip.MustParseAddr("198.51.100.7"),
				ConnectRetry: time.Second, Logger: quiet,
				Peers: []Peer{{Address: netip.MustParseAddr("127.0.0.2"), ASN: routerASN, Port: r.port, Password: tc.password}},
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { sp.Close() })
			if tc.up {
				waitFor(t, "FRR session with TCP MD5", func() bool { return r.established(t) })
				set(t, sp, ann("10.77.0.1/32", 1, false))
				r.waitRoutes(t, "announce over TCP MD5", map[string]frrSeen{
					"10.77.0.1/32": {NextHop: "198.51.100.7", MED: 1, ASPath: "65001", LocalPref: -1},
				})
				return
			}
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
				if r.established(t) {
					t.Fatal("a session with the wrong TCP MD5 password came up")
				}
			}
		})
	}
}

// frrSession is bgpd's view of its session with the speaker.
type frrSession struct {
	State       string
	Established int    // sessions established so far
	Updates     uint64 // UPDATEs received
}

func (r *frrRouter) session(t *testing.T) frrSession {
	t.Helper()
	var v map[string]struct {
		BgpState               string `json:"bgpState"`
		ConnectionsEstablished int    `json:"connectionsEstablished"`
		MessageStats           struct {
			UpdatesRecv uint64 `json:"updatesRecv"`
		} `json:"messageStats"`
	}
	if err := json.Unmarshal(r.vtysh(t, "show bgp neighbors 127.0.0.1 json"), &v); err != nil {
		t.Fatalf("bgpd neighbour: %v", err)
	}
	n := v["127.0.0.1"]
	return frrSession{n.BgpState, n.ConnectionsEstablished, n.MessageStats.UpdatesRecv}
}

// TestFRRReconfigure: adding, changing and removing another router leaves
// FRR's session established, with zero UPDATEs; a new router id restarts
// the speaker, and FRR gets the routes back on a new session.
func TestFRRReconfigure(t *testing.T) {
	r := startFRR(t)
	other := startRouter(t, "127.0.0.3", routerASN, "")
	frrPeer := Peer{Address: netip.MustParseAddr("127.0.0.2"), ASN: routerASN, Port: r.port}
	nh := netip.MustParseAddr("198.51.100.7")
	sp := newSpeaker(t, Config{NextHop: nh, Peers: []Peer{frrPeer}})
	waitFor(t, "FRR session", func() bool { return r.established(t) })
	set(t, sp, ann("10.77.0.1/32", 1, false), ann("10.77.0.2/32", 2, false))
	want := map[string]frrSeen{
		"10.77.0.1/32": {NextHop: nh.String(), MED: 1, ASPath: "65001", LocalPref: -1},
		"10.77.0.2/32": {NextHop: nh.String(), MED: 2, ASPath: "65001", LocalPref: -1},
	}
	r.waitRoutes(t, "announce", want)
	time.Sleep(200 * time.Millisecond) // both prefixes may share an UPDATE: let the count settle
	before := r.session(t)

	reconfigure(t, sp, Config{NextHop: nh, Peers: []Peer{frrPeer, other.peer()}}, "added peer 127.0.0.3")
	waitFor(t, "session with the added router", other.established)
	other.waitRoutes(t, "added router", map[string]seen{
		"10.77.0.1/32": {NextHop: nh.String(), MED: 1, ASPath: []uint32{speakerASN}},
		"10.77.0.2/32": {NextHop: nh.String(), MED: 2, ASPath: []uint32{speakerASN}},
	})
	events := watchRouter(t, other)
	changed := other.peer()
	changed.MultihopTTL = 2
	reconfigure(t, sp, Config{NextHop: nh, Peers: []Peer{frrPeer, changed}}, "changed peer 127.0.0.3")
	waitFor(t, "the changed router's session reset", func() bool { return slices.Contains(events.list(), "session down") })
	// Deleted and added again: GoBGP's router refuses it for 5 s after a
	// reset, so check the speaker's side rather than wait for a session.
	var ttl uint32
	sp.server.ListPeer(context.Background(), &api.ListPeerRequest{Address: "127.0.0.3"}, func(p *api.Peer) {
		ttl = p.GetEbgpMultihop().GetMultihopTtl()
	})
	if ttl != 2 {
		t.Errorf("the changed peer has multihop TTL %d, want 2", ttl)
	}
	reconfigure(t, sp, Config{NextHop: nh, Peers: []Peer{frrPeer, changed}}) // nothing changed
	reconfigure(t, sp, Config{NextHop: nh, Peers: []Peer{frrPeer}}, "removed peer 127.0.0.3")
	waitFor(t, "the removed router's session ended", func() bool { return !other.established() })
	time.Sleep(500 * time.Millisecond)
	if after := r.session(t); after != before {
		t.Errorf("FRR's session went from %+v to %+v; want it untouched", before, after)
	}
	r.waitRoutes(t, "FRR after", want)

	reconfigure(t, sp, Config{RouterID: netip.MustParseAddr("10.255.0.9"), NextHop: nh, Peers: []Peer{frrPeer}},
		"restarted as AS 65001, router id 10.255.0.9")
	waitFor(t, "a new FRR session", func() bool {
		s := r.session(t)
		return s.State == "Established" && s.Established == before.Established+1
	})
	r.waitRoutes(t, "after the restart", want)
	set(t, sp, ann("10.77.0.2/32", 2, false))
	delete(want, "10.77.0.1/32")
	r.waitRoutes(t, "withdrawn after the restart", want)
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	r.waitRoutes(t, "closed", map[string]frrSeen{})
}
