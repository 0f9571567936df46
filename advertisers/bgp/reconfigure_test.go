package bgp

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"
)

func reconfigure(t *testing.T, sp *Speaker, cfg Config, want ...string) {
	t.Helper()
	cfg.ASN, cfg.ConnectRetry, cfg.Logger = speakerASN, time.Second, quiet
	if !cfg.RouterID.IsValid() {
		cfg.RouterID = netip.MustParseAddr("10.255.0.1")
	}
	changes, err := sp.Reconfigure(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(changes, want) {
		t.Fatalf("changes %q, want %q", changes, want)
	}
}

// TestReconfigureAttributes: a new next hop re-sends the routes on the
// same session; an invalid config or a closed speaker changes nothing.
// (Peers and identity: TestFRRReconfigure.)
func TestReconfigureAttributes(t *testing.T) {
	r := startRouter(t, "127.0.0.1", routerASN, "")
	sp := newSpeaker(t, Config{}, r)
	set(t, sp, ann("10.77.0.1/32", 2, false), ann("10.77.0.2/32", 3, true))
	events := watchRouter(t, r)
	nh := netip.MustParseAddr("198.51.100.7")
	reconfigure(t, sp, Config{NextHop: nh, Peers: []Peer{r.peer()}}, "route attributes")
	r.waitRoutes(t, "new next hop", map[string]seen{
		"10.77.0.1/32": {NextHop: nh.String(), MED: 2, ASPath: []uint32{speakerASN}},
		"10.77.0.2/32": {NextHop: nh.String(), MED: 3, ASPath: []uint32{speakerASN}, Communities: []uint32{CommunityGracefulShutdown}},
	})
	bad := Config{ASN: speakerASN, RouterID: netip.MustParseAddr("10.255.0.1"), Peers: []Peer{r.peer(), r.peer()}}
	if _, err := sp.Reconfigure(context.Background(), bad); err == nil {
		t.Error("a peer listed twice was accepted")
	}
	time.Sleep(200 * time.Millisecond)
	if ev := events.list(); len(ev) != 0 || !r.established() {
		t.Errorf("a new next hop and a refused config cost %q", ev)
	}
	sp.Close()
	if _, err := sp.Reconfigure(context.Background(), Config{ASN: speakerASN, RouterID: netip.MustParseAddr("10.255.0.1"),
		Peers: []Peer{r.peer()}}); err == nil {
		t.Error("a closed speaker was reconfigured")
	}
}

// TestReconfigureNextHop6: next_hop6 set lets an IPv4 session carry IPv6,
// which is negotiated when the session opens: that peer is added again.
// A new IPv4 next hop changes no session's families.
func TestReconfigureNextHop6(t *testing.T) {
	r := startRouter(t, "127.0.0.1", routerASN, "")
	sp := newSpeaker(t, Config{}, r)
	reconfigure(t, sp, Config{NextHop6: netip.MustParseAddr("2001:db8::7"), Peers: []Peer{r.peer()}},
		"changed peer 127.0.0.1", "route attributes")
	reconfigure(t, sp, Config{NextHop: netip.MustParseAddr("198.51.100.7"), NextHop6: netip.MustParseAddr("2001:db8::7"),
		Peers: []Peer{r.peer()}}, "route attributes")
}
