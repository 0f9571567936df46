package routers

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var (
	addrSA = netip.MustParseAddr("10.77.2.2")
	addrRB = netip.MustParseAddr("10.77.0.2")
	optCmp = cmpopts.EquateComparable(netip.Addr{})
)

func TestParseFRRPaths(t *testing.T) {
	// Captured from FRR 8.4.4 bgpd at ra while sa drained (trimmed): the
	// best path first in FRR's order, then sa's with LOCAL_PREF 0.
	out := `{"prefix": "10.77.100.1/32", "paths": [
 {"aspath": {"string": "65010 65010 65010", "segments": [{"type": "as-sequence", "list": [65010, 65010, 65010]}], "length": 3},
  "origin": "IGP", "locPrf": 100, "valid": true, "bestpath": {"overall": true, "selectionReason": "Local Pref"},
  "lastUpdate": {"epoch": 1796137540, "string": "Tue Dec  1 15:05:40 2026\n"},
  "nexthops": [{"ip": "10.77.0.2", "afi": "ipv4", "metric": 0, "accessible": true, "used": true}],
  "peer": {"peerId": "10.77.0.2", "routerId": "10.77.0.2", "type": "internal"}},
 {"aspath": {"string": "65010 65010", "segments": [{"type": "as-sequence", "list": [65010, 65010]}], "length": 2},
  "origin": "IGP", "metric": 20, "locPrf": 0, "valid": true,
  "community": {"string": "graceful-shutdown", "list": ["gracefulShutdown"]},
  "lastUpdate": {"epoch": 1796137541, "string": "Tue Dec  1 15:05:41 2026\n"},
  "nexthops": [{"ip": "10.77.2.2", "afi": "ipv4", "metric": 0, "accessible": true, "used": true}],
  "peer": {"peerId": "10.77.2.2", "routerId": "10.77.2.2", "type": "external"}}]}`
	got, err := parseFRRPaths([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	want := []BGPPath{
		{From: addrRB, NextHop: addrRB, ASPath: []uint32{65010, 65010, 65010}, LocalPref: 100, MED: -1, Best: true, Since: time.Unix(1796137540, 0)},
		{From: addrSA, NextHop: addrSA, ASPath: []uint32{65010, 65010}, LocalPref: 0, MED: 20, GracefulShutdown: true, Since: time.Unix(1796137541, 0)},
	}
	if diff := cmp.Diff(want, got, optCmp); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if r := bestRoute(got); r != (Route{Present: true, Metric: 3, NextHop: addrRB}) {
		t.Errorf("bestRoute = %+v", r)
	}
	// A prefix bgpd does not know.
	if got, err := parseFRRPaths([]byte("{}")); err != nil || len(got) != 0 {
		t.Errorf("empty: %v, %v", got, err)
	}
	if _, err := parseFRRPaths([]byte("% Unknown command")); err == nil {
		t.Error("no error for output that is not JSON")
	}
}

func TestParseFRRSummary(t *testing.T) {
	// Captured from FRR 8.4.4 (trimmed).
	out := `{"routerId":"10.77.0.1","as":65000,"peers":{
  "10.77.0.2":{"remoteAs":65000,"peerUptimeEstablishedEpoch":1796137499,"state":"Established","peerState":"OK"},
  "10.77.2.2":{"remoteAs":65010,"peerUptimeEstablishedEpoch":1796137501,"state":"Established","peerState":"Passive"},
  "10.77.5.2":{"remoteAs":65010,"state":"Active","peerState":"Passive"}}}`
	got, err := parseFRRSummary([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	want := map[netip.Addr]time.Time{addrRB: time.Unix(1796137499, 0), addrSA: time.Unix(1796137501, 0)}
	if diff := cmp.Diff(want, got, optCmp); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestParseBIRDPaths(t *testing.T) {
	// Captured from BIRD 2.0.12 at ra while sa drained.
	out := `BIRD 2.0.12 ready.
Table master4:
10.77.100.1/32       unicast [bgp_rb 2026-12-01 15:06:24.060615] * (100) [AS65010i]
	via 10.77.0.2 on ra-rb
	Type: BGP univ
	BGP.origin: IGP
	BGP.as_path: 65010 65010 65010
	BGP.next_hop: 10.77.0.2
	BGP.local_pref: 100
                     unicast [bgp_sa 2026-12-01 15:06:24.060333] (100) [AS65010i]
	via 10.77.2.2 on ra-sa
	Type: BGP univ
	BGP.origin: IGP
	BGP.as_path: 65010 65010 65010 65010 65010 65010 65010 65010 65010 65010
	BGP.next_hop: 10.77.2.2
	BGP.med: 10
	BGP.local_pref: 0
	BGP.community: (65535,0)
`
	got, err := parseBIRDPaths(out)
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time {
		ts, err := time.ParseInLocation("2006-01-02 15:04:05.999999", s, time.Local)
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	want := []BGPPath{
		{From: addrRB, NextHop: addrRB, ASPath: []uint32{65010, 65010, 65010}, LocalPref: 100, MED: -1, Best: true, Since: at("2026-12-01 15:06:24.060615")},
		{From: addrSA, NextHop: addrSA, ASPath: []uint32{65010, 65010, 65010, 65010, 65010, 65010, 65010, 65010, 65010, 65010}, LocalPref: 0, MED: 10,
			GracefulShutdown: true, Since: at("2026-12-01 15:06:24.060333")},
	}
	if diff := cmp.Diff(want, got, optCmp); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if _, err := parseBIRDPaths("10.77.100.1/32 unicast [bgp_sa 2026-12-01\n"); err == nil {
		t.Error("no error for a cut route line")
	}
}

func TestParseBIRDProtocols(t *testing.T) {
	// Captured from BIRD 2.0.12 `show protocols all` (trimmed).
	out := `BIRD 2.0.12 ready.
Name       Proto      Table      State  Since         Info
device1    Device     ---        up     2026-12-01 15:05:42.767609  

bgp_sa     BGP        ---        up     2026-12-01 15:05:45.066174  Established   
  BGP state:          Established
    Neighbor address: 10.77.2.2
    Neighbor AS:      65010
bgp_sb2    BGP        ---        start  2026-12-01 15:05:42.767609  Active        Socket: Connection refused
  BGP state:          Active
    Neighbor address: 10.77.5.2
bgp_rb     BGP        ---        up     2026-12-01 15:05:43.100000  Established   
  BGP state:          Established
    Neighbor address: 10.77.0.2
`
	got, err := parseBIRDProtocols(out)
	if err != nil {
		t.Fatal(err)
	}
	at, _ := time.ParseInLocation("2006-01-02 15:04:05.999999", "2026-12-01 15:05:45.066174", time.Local)
	at2, _ := time.ParseInLocation("2006-01-02 15:04:05.999999", "2026-12-01 15:05:43.1", time.Local)
	want := map[netip.Addr]time.Time{addrSA: at, addrRB: at2}
	if diff := cmp.Diff(want, got, optCmp); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestBIRDBGPConfParses has BIRD parse the config the lab runs (bird -p
// parses and exits; no root, no sockets).
func TestBIRDBGPConfParses(t *testing.T) {
	if _, err := exec.LookPath(birdDaemon); err != nil {
		t.Fatalf("bird missing (install the Debian package bird2): %v", err)
	}
	dir := t.TempDir()
	b := BGP{ASN: 65000, RouterID: netip.MustParseAddr("10.77.0.1"), Neighbors: []BGPNeighbor{
		{Name: "sa", Address: addrSA, ASN: 65010, Accept: []netip.Prefix{netip.MustParsePrefix("10.77.100.1/32"), netip.MustParsePrefix("10.77.100.2/32")}},
		{Name: "ra", Address: addrRB, ASN: 65000}}}
	conf := birdBGPConf(Config{Interfaces: []string{"ra-sa", "ra-rb"}}, b, dir)
	for _, want := range []string{"import filter from_ripcord", "bgp_local_pref = 0", "export none", "next hop self", "protocol bgp bgp_ra"} {
		if !strings.Contains(conf, want) {
			t.Errorf("bird.conf lacks %q:\n%s", want, conf)
		}
	}
	path := filepath.Join(dir, "bird.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(birdDaemon, "-p", "-c", path).CombinedOutput(); err != nil {
		t.Fatalf("bird -p: %v: %s\n%s", err, out, conf)
	}
}

func TestFRRBgpdConf(t *testing.T) {
	b := BGP{ASN: 65000, RouterID: netip.MustParseAddr("10.77.0.1"), Neighbors: []BGPNeighbor{
		{Name: "sa", Address: addrSA, ASN: 65010, Accept: []netip.Prefix{netip.MustParsePrefix("10.77.100.1/32"), netip.MustParsePrefix("10.77.100.2/32")}},
		{Name: "rb", Address: addrRB, ASN: 65000}}}
	conf := frrBgpdConf(b)
	// Route-maps before router bgp: one used before it is defined denies
	// everything until FRR's route-map timer runs.
	if i, j := strings.Index(conf, "route-map from-ripcord permit 10"), strings.Index(conf, "router bgp 65000"); i < 0 || j < i {
		t.Errorf("route-map not defined before router bgp:\n%s", conf)
	}
	for _, want := range []string{
		"ip prefix-list ripcord-services seq 10 permit 10.77.100.2/32",
		"neighbor 10.77.2.2 passive",
		"neighbor 10.77.2.2 route-map from-ripcord in",
		"neighbor 10.77.2.2 route-map to-ripcord out",
		"neighbor 10.77.0.2 next-hop-self",
		" set local-preference 0",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("bgpd.conf lacks %q:\n%s", want, conf)
		}
	}
	if strings.Contains(conf, "neighbor 10.77.0.2 route-map") || strings.Contains(conf, "neighbor 10.77.0.2 passive") {
		t.Errorf("the router neighbour is filtered like a replica:\n%s", conf)
	}
}
