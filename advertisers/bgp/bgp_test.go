package bgp

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/server"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/ripcord/ripcord/advertisers"
)

const (
	speakerASN = 65001
	routerASN  = 65000
)

var quiet = slog.New(slog.DiscardHandler)

// router is a GoBGP instance standing in for the network's router: it listens
// on addr:port and accepts the speaker (which dials from 127.0.0.1).
type router struct {
	s    *server.BgpServer
	addr string
	port uint16
}

func freePort(t testing.TB, addr string) uint16 {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port)
}

func startRouter(t testing.TB, addr string, asn uint32, password string) *router {
	t.Helper()
	r := &router{s: server.NewBgpServer(server.LoggerOption(newGoBGPLogger(quiet))), addr: addr, port: freePort(t, addr)}
	go r.s.Serve()
	ctx := context.Background()
	startMu.Lock()
	err := r.s.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: asn, RouterId: addr, ListenPort: int32(r.port), ListenAddresses: []string{addr},
	}})
	startMu.Unlock()
	if err != nil {
		t.Fatalf("router %s: start: %v", addr, err)
	}
	t.Cleanup(func() { r.s.StopBgp(context.Background(), &api.StopBgpRequest{}) })
	err = r.s.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: "127.0.0.1", PeerAsn: speakerASN, AuthPassword: password},
		Transport: &api.Transport{PassiveMode: true},
		Timers:    &api.Timers{Config: &api.TimersConfig{HoldTime: 9, KeepaliveInterval: 3}},
	}})
	if err != nil {
		t.Fatalf("router %s: add peer: %v", addr, err)
	}
	return r
}

func (r *router) peer() Peer {
	return Peer{Address: netip.MustParseAddr(r.addr), ASN: routerASN, Port: r.port}
}

func (r *router) established() bool {
	up := false
	r.s.ListPeer(context.Background(), &api.ListPeerRequest{Address: "127.0.0.1"}, func(p *api.Peer) {
		up = p.GetState().GetSessionState() == api.PeerState_ESTABLISHED
	})
	return up
}

// seen is what the router holds for one prefix, in comparable form.
type seen struct {
	NextHop     string
	MED         int64 // -1: no MED attribute
	ASPath      []uint32
	Communities []uint32
}

// routes returns the router's IPv4 unicast table.
func (r *router) routes(t testing.TB) map[string]seen {
	t.Helper()
	out := make(map[string]seen)
	err := r.s.ListPath(context.Background(), &api.ListPathRequest{TableType: api.TableType_GLOBAL, Family: ipv4Unicast}, func(d *api.Destination) {
		for _, p := range d.Paths {
			if !p.Best {
				continue
			}
			out[d.Prefix] = decode(t, p)
		}
	})
	if err != nil {
		t.Fatalf("router %s: list paths: %v", r.addr, err)
	}
	return out
}

func decode(t testing.TB, p *api.Path) seen {
	t.Helper()
	s := seen{MED: -1}
	for _, a := range p.Pattrs {
		m, err := a.UnmarshalNew()
		if err != nil {
			t.Fatalf("decode attribute: %v", err)
		}
		switch v := m.(type) {
		case *api.NextHopAttribute:
			s.NextHop = v.NextHop
		case *api.MultiExitDiscAttribute:
			s.MED = int64(v.Med)
		case *api.AsPathAttribute:
			for _, seg := range v.Segments {
				s.ASPath = append(s.ASPath, seg.Numbers...)
			}
		case *api.CommunitiesAttribute:
			s.Communities = v.Communities
		}
	}
	return s
}

// waitRoutes polls until the router's table equals want (5 s bound).
func (r *router) waitRoutes(t testing.TB, step string, want map[string]seen) {
	t.Helper()
	start := time.Now()
	deadline := start.Add(5 * time.Second)
	for {
		got := r.routes(t)
		diff := cmp.Diff(want, got)
		if diff == "" {
			t.Logf("%s: %s", step, time.Since(start))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: router %s table (-want +got):\n%s", step, r.addr, diff)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func newSpeaker(t testing.TB, cfg Config, routers ...*router) *Speaker {
	t.Helper()
	cfg.ASN = speakerASN
	cfg.RouterID = netip.MustParseAddr("10.255.0.1")
	cfg.ConnectRetry = time.Second
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	if cfg.Peers == nil {
		for _, r := range routers {
			cfg.Peers = append(cfg.Peers, r.peer())
		}
	}
	sp, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { sp.Close() })
	for _, r := range routers {
		waitFor(t, "session with "+r.addr, r.established)
	}
	return sp
}

func ann(p string, metric int, draining bool) advertisers.Announcement {
	return advertisers.Announcement{Prefix: netip.MustParsePrefix(p), Metric: metric, Draining: draining}
}

func set(t testing.TB, sp *Speaker, anns ...advertisers.Announcement) {
	t.Helper()
	if err := sp.Set(context.Background(), anns); err != nil {
		t.Fatalf("Set(%v): %v", anns, err)
	}
}

// withdrawRecorder records, in order, the router's view of one session:
// withdrawals received and the session leaving Established.
type withdrawRecorder struct {
	mu     sync.Mutex
	events []string
}

func (w *withdrawRecorder) add(e string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.events = append(w.events, e)
}

func (w *withdrawRecorder) list() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.events)
}

func watchRouter(t *testing.T, r *router) *withdrawRecorder {
	t.Helper()
	rec := &withdrawRecorder{}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	err := r.s.WatchEvent(ctx, &api.WatchEventRequest{
		Peer:  &api.WatchEventRequest_Peer{},
		Table: &api.WatchEventRequest_Table{Filters: []*api.WatchEventRequest_Table_Filter{{Type: api.WatchEventRequest_Table_Filter_ADJIN}}},
	}, func(ev *api.WatchEventResponse) {
		if pe := ev.GetPeer(); pe != nil && pe.Type == api.WatchEventResponse_PeerEvent_STATE &&
			pe.GetPeer().GetState().GetSessionState() != api.PeerState_ESTABLISHED {
			rec.add("session down")
		}
		for _, p := range ev.GetTable().GetPaths() {
			if p.IsWithdraw {
				var nlri api.IPAddressPrefix
				if err := p.Nlri.UnmarshalTo(&nlri); err == nil {
					rec.add(fmt.Sprintf("withdraw %s/%d", nlri.Prefix, nlri.PrefixLen))
				}
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func TestMEDAnnounceChangeDrainWithdrawClose(t *testing.T) {
	r := startRouter(t, "127.0.0.1", routerASN, "")
	sp := newSpeaker(t, Config{NextHop: netip.MustParseAddr("198.51.100.7")}, r)
	us := []uint32{speakerASN}
	nh := "198.51.100.7"

	set(t, sp, ann("10.77.0.1/32", 1, false), ann("10.77.0.2/32", 3, false))
	r.waitRoutes(t, "announce", map[string]seen{
		"10.77.0.1/32": {NextHop: nh, MED: 1, ASPath: us},
		"10.77.0.2/32": {NextHop: nh, MED: 3, ASPath: us},
	})

	set(t, sp, ann("10.77.0.1/32", 2, false), ann("10.77.0.2/32", 3, false))
	r.waitRoutes(t, "MED change", map[string]seen{
		"10.77.0.1/32": {NextHop: nh, MED: 2, ASPath: us},
		"10.77.0.2/32": {NextHop: nh, MED: 3, ASPath: us},
	})

	// Draining keeps announcing, with GRACEFUL_SHUTDOWN; .2 left the set.
	set(t, sp, ann("10.77.0.1/32", 2, true))
	r.waitRoutes(t, "drain", map[string]seen{
		"10.77.0.1/32": {NextHop: nh, MED: 2, ASPath: us, Communities: []uint32{0xFFFF0000}},
	})

	set(t, sp, ann("10.77.0.1/32", advertisers.MetricPoison, false))
	r.waitRoutes(t, "metric 16", map[string]seen{})
	if got := sp.Announced(); len(got) != 0 {
		t.Errorf("Announced after metric 16 = %v", got)
	}

	// A service that is down is withdrawn whatever its down_metric (below
	// 16 for RIP routers with holddown timers).
	set(t, sp, ann("10.77.0.1/32", 1, false))
	r.waitRoutes(t, "up", map[string]seen{"10.77.0.1/32": {NextHop: nh, MED: 1, ASPath: us}})
	down := ann("10.77.0.1/32", 14, false)
	down.Down = true
	set(t, sp, down)
	r.waitRoutes(t, "down with down_metric 14", map[string]seen{})

	set(t, sp, ann("10.77.0.1/32", 1, false), ann("10.77.0.3/32", 4, false))
	r.waitRoutes(t, "announce again", map[string]seen{
		"10.77.0.1/32": {NextHop: nh, MED: 1, ASPath: us},
		"10.77.0.3/32": {NextHop: nh, MED: 4, ASPath: us},
	})
	if diff := cmp.Diff([]advertisers.Announcement{ann("10.77.0.1/32", 1, false), ann("10.77.0.3/32", 4, false)}, sp.Announced(),
		cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("Announced (-want +got):\n%s", diff)
	}

	// Close must withdraw before the session ends, not rely on the CEASE.
	rec := watchRouter(t, r)
	if err := sp.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	r.waitRoutes(t, "after Close", map[string]seen{})
	waitFor(t, "session down seen", func() bool { return slices.Contains(rec.list(), "session down") })
	want := []string{"withdraw 10.77.0.1/32", "withdraw 10.77.0.3/32", "session down"}
	if diff := cmp.Diff(want, rec.list()); diff != "" {
		t.Errorf("router saw (-want +got):\n%s", diff)
	}
	if err := sp.Set(context.Background(), nil); err == nil || err.Error() != "bgp: speaker closed" {
		t.Errorf("Set after Close: err = %v", err)
	}
	if err := sp.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestPrependAndMEDScale(t *testing.T) {
	t.Run("prepend", func(t *testing.T) {
		r := startRouter(t, "127.0.0.1", routerASN, "")
		sp := newSpeaker(t, Config{Priority: PriorityPrepend}, r)
		set(t, sp, ann("10.77.0.1/32", 3, false), ann("10.77.0.2/32", 1, false))
		// No next hop configured: the session's local address. No MED.
		r.waitRoutes(t, "prepend", map[string]seen{
			"10.77.0.1/32": {NextHop: "127.0.0.1", MED: -1, ASPath: []uint32{speakerASN, speakerASN, speakerASN}},
			"10.77.0.2/32": {NextHop: "127.0.0.1", MED: -1, ASPath: []uint32{speakerASN}},
		})
		set(t, sp, ann("10.77.0.1/32", 2, false), ann("10.77.0.2/32", 1, false))
		r.waitRoutes(t, "prepend change", map[string]seen{
			"10.77.0.1/32": {NextHop: "127.0.0.1", MED: -1, ASPath: []uint32{speakerASN, speakerASN}},
			"10.77.0.2/32": {NextHop: "127.0.0.1", MED: -1, ASPath: []uint32{speakerASN}},
		})
	})
	t.Run("med scale", func(t *testing.T) {
		r := startRouter(t, "127.0.0.1", routerASN, "")
		sp := newSpeaker(t, Config{MEDScale: 100}, r)
		set(t, sp, ann("10.77.0.1/32", 3, false))
		r.waitRoutes(t, "scaled MED", map[string]seen{
			"10.77.0.1/32": {NextHop: "127.0.0.1", MED: 300, ASPath: []uint32{speakerASN}},
		})
	})
}

// TestOnlyGivenPrefixes checks that routes a router sends are never passed to
// another router, with two sessions up at once.
func TestOnlyGivenPrefixesTwoPeers(t *testing.T) {
	r1 := startRouter(t, "127.0.0.1", routerASN, "")
	// Another ASN, so r2 would accept r1's route if we leaked it.
	r2 := startRouter(t, "127.0.0.2", routerASN+2, "")
	nlri, _ := anypb.New(&api.IPAddressPrefix{Prefix: "192.0.2.0", PrefixLen: 24})
	origin, _ := anypb.New(&api.OriginAttribute{Origin: 0})
	nh, _ := anypb.New(&api.NextHopAttribute{NextHop: "127.0.0.1"})
	if _, err := r1.s.AddPath(context.Background(), &api.AddPathRequest{Path: &api.Path{
		Family: ipv4Unicast, Nlri: nlri, Pattrs: []*anypb.Any{origin, nh},
	}}); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Peers: []Peer{r1.peer(), {Address: netip.MustParseAddr("127.0.0.2"), ASN: routerASN + 2, Port: r2.port}}}
	sp := newSpeaker(t, cfg, r1, r2)

	// The speaker has really received r1's route...
	waitFor(t, "speaker received 192.0.2.0/24", func() bool {
		got := false
		sp.server.ListPath(context.Background(), &api.ListPathRequest{TableType: api.TableType_ADJ_IN, Name: "127.0.0.1", Family: ipv4Unicast, EnableFiltered: true},
			func(d *api.Destination) { got = got || d.Prefix == "192.0.2.0/24" })
		return got
	})
	// ...and routes go out in order on a session, so once our later
	// announcement reaches r2, a leak would have reached it first.
	set(t, sp, ann("10.77.0.1/32", 1, false))
	want := map[string]seen{"10.77.0.1/32": {NextHop: "127.0.0.1", MED: 1, ASPath: []uint32{speakerASN}}}
	r2.waitRoutes(t, "r2", want)
	want["192.0.2.0/24"] = seen{NextHop: "127.0.0.1", MED: -1}
	r1.waitRoutes(t, "r1", want)
	if got := r2.routes(t); len(got) != 1 {
		t.Errorf("r2 holds %v, want only 10.77.0.1/32", got)
	}
	// Our own RIB never took the learned route either.
	sp.server.ListPath(context.Background(), &api.ListPathRequest{TableType: api.TableType_GLOBAL, Family: ipv4Unicast}, func(d *api.Destination) {
		if d.Prefix != "10.77.0.1/32" {
			t.Errorf("speaker RIB holds %s", d.Prefix)
		}
	})
}

// TestPasswordConfiguredNeverLogged checks the TCP MD5 password reaches the
// GoBGP neighbour and no log line. (A full MD5 session cannot be shown here:
// this machine's kernel refuses TCP_MD5SIG on listening sockets, ENOPROTOOPT,
// so no router can accept one.)
func TestPasswordConfiguredNeverLogged(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	const secret = "s3cret-md5-value"
	sp, err := New(context.Background(), Config{ASN: speakerASN, RouterID: netip.MustParseAddr("10.255.0.1"), ConnectRetry: time.Second, Logger: logger,
		Peers: []Peer{{Address: netip.MustParseAddr("127.0.0.1"), ASN: routerASN, Port: freePort(t, "127.0.0.1"), Password: secret}}})
	if err != nil {
		t.Fatal(err)
	}
	var got string
	sp.server.ListPeer(context.Background(), &api.ListPeerRequest{}, func(p *api.Peer) { got = p.GetConf().GetAuthPassword() })
	if got != secret {
		t.Errorf("neighbour password = %q, want the configured one", got)
	}
	set(t, sp, ann("10.77.0.1/32", 1, false))
	// Wait for a connection attempt, so the check below covers the dial path.
	waitFor(t, "connection attempt logged", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(logs.String(), "try to connect")
	})
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Contains(logs.String(), secret) {
		t.Errorf("password appears in the logs:\n%s", logs.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestSetRejectsBadInput(t *testing.T) {
	// A peer nobody listens on: Set works without sessions.
	cfg := Config{ASN: speakerASN, RouterID: netip.MustParseAddr("10.255.0.1"), Logger: quiet,
		Peers: []Peer{{Address: netip.MustParseAddr("127.0.0.1"), ASN: routerASN, Port: freePort(t, "127.0.0.1")}}}
	sp, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	set(t, sp, ann("10.77.0.1/32", 2, false))
	for _, tc := range []struct {
		in   []advertisers.Announcement
		want string
	}{
		{[]advertisers.Announcement{ann("10.77.0.1/32", 0, false)}, "bgp: 10.77.0.1/32: metric 0 outside 1..16"},
		{[]advertisers.Announcement{ann("10.77.0.1/32", 17, false)}, "bgp: 10.77.0.1/32: metric 17 outside 1..16"},
		{[]advertisers.Announcement{ann("10.77.0.1/32", 1, false), ann("10.77.0.1/32", 2, false)}, "bgp: 10.77.0.1/32 given twice"},
		{[]advertisers.Announcement{{Metric: 1}}, "bgp: invalid prefix invalid Prefix"},
	} {
		err := sp.Set(context.Background(), tc.in)
		if err == nil || err.Error() != tc.want {
			t.Errorf("Set(%v) = %v, want %q", tc.in, err, tc.want)
		}
	}
	if diff := cmp.Diff([]advertisers.Announcement{ann("10.77.0.1/32", 2, false)}, sp.Announced(),
		cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("rejected Set changed the announcements (-want +got):\n%s", diff)
	}
}

func TestConfigValidate(t *testing.T) {
	good := func() Config {
		return Config{ASN: 65001, RouterID: netip.MustParseAddr("10.0.0.1"),
			Peers: []Peer{{Address: netip.MustParseAddr("10.0.0.254"), ASN: 65000}}}
	}
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"defaults", func(*Config) {}, ""},
		{"no asn", func(c *Config) { c.ASN = 0 }, "bgp: asn must be set"},
		{"no router id", func(c *Config) { c.RouterID = netip.Addr{} }, `bgp: router_id "" must be a non-zero IPv4 address`},
		{"v6 router id", func(c *Config) { c.RouterID = netip.MustParseAddr("fd00::1") }, `bgp: router_id "fd00::1" must be a non-zero IPv4 address`},
		{"v6 next hop", func(c *Config) { c.NextHop = netip.MustParseAddr("fd00::1") }, "bgp: next_hop fd00::1 must be an IPv4 address"},
		{"bad priority", func(c *Config) { c.Priority = "localpref" }, `bgp: priority "localpref" must be "med" or "prepend"`},
		{"huge scale", func(c *Config) { c.MEDScale = 1 << 30 }, "bgp: med_scale 1073741824 too large"},
		{"fast retry", func(c *Config) { c.ConnectRetry = time.Millisecond }, "bgp: connect_retry 1ms below 1s"},
		{"short hold", func(c *Config) { c.HoldTime = time.Second }, "bgp: hold_time 1s below 3s (RFC 4271)"},
		{"no peers", func(c *Config) { c.Peers = nil }, "bgp: at least one peer is needed"},
		{"peer no asn", func(c *Config) { c.Peers[0].ASN = 0 }, "bgp: peers[0]: 10.0.0.254: asn must be set"},
		{"peer twice", func(c *Config) { c.Peers = append(c.Peers, c.Peers[0]) }, "bgp: peers[1]: 10.0.0.254 listed twice"},
		{"peer link-local", func(c *Config) { c.Peers[0].Address = netip.MustParseAddr("fe80::2") }, "bgp: peers[0]: fe80::2: want a unicast IPv4 or global IPv6 address"},
		{"v4 next hop6", func(c *Config) { c.NextHop6 = netip.MustParseAddr("10.0.0.1") }, "bgp: next_hop6 10.0.0.1 must be a global IPv6 address"},
		{"link-local next hop6", func(c *Config) { c.NextHop6 = netip.MustParseAddr("fe80::1") }, "bgp: next_hop6 fe80::1 must be a global IPv6 address"},
		{"peer unset", func(c *Config) { c.Peers[0].Address = netip.Addr{} }, `bgp: peers[0]: address "" invalid`},
		{"prepend ibgp", func(c *Config) { c.Priority = PriorityPrepend; c.Peers[0].ASN = 65001 },
			"bgp: peers[0]: 10.0.0.254: priority prepend needs eBGP, but the peer has our asn 65001"},
		{"med ibgp ok", func(c *Config) { c.Peers[0].ASN = 65001 }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good()
			tc.change(&c)
			err := c.withDefaults().Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := New(context.Background(), Config{}); err == nil || !strings.Contains(err.Error(), "bgp: asn must be set") {
		t.Errorf("New(empty) = %v", err)
	}
}

// TestPathAttributes pins the attributes built for each announcement.
func TestPathAttributes(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		ann  advertisers.Announcement
		want []proto.Message
	}{
		{"med", Config{Priority: PriorityMED, MEDScale: 1}, ann("10.0.0.1/32", 3, false), []proto.Message{
			&api.OriginAttribute{Origin: 0},
			&api.NextHopAttribute{NextHop: "0.0.0.0"},
			&api.MultiExitDiscAttribute{Med: 3},
		}},
		{"med scaled, next hop, draining", Config{Priority: PriorityMED, MEDScale: 10, NextHop: netip.MustParseAddr("192.0.2.1")}, ann("10.0.0.1/32", 15, true), []proto.Message{
			&api.OriginAttribute{Origin: 0},
			&api.NextHopAttribute{NextHop: "192.0.2.1"},
			&api.MultiExitDiscAttribute{Med: 150},
			&api.CommunitiesAttribute{Communities: []uint32{0xFFFF0000}},
		}},
		{"prepend 1: no AS_PATH of our own", Config{Priority: PriorityPrepend, ASN: 65001}, ann("10.0.0.1/32", 1, false), []proto.Message{
			&api.OriginAttribute{Origin: 0},
			&api.NextHopAttribute{NextHop: "0.0.0.0"},
		}},
		{"prepend 4", Config{Priority: PriorityPrepend, ASN: 65001}, ann("10.0.0.1/32", 4, true), []proto.Message{
			&api.OriginAttribute{Origin: 0},
			&api.NextHopAttribute{NextHop: "0.0.0.0"},
			&api.AsPathAttribute{Segments: []*api.AsSegment{{Type: api.AsSegment_AS_SEQUENCE, Numbers: []uint32{65001, 65001, 65001}}}},
			&api.CommunitiesAttribute{Communities: []uint32{0xFFFF0000}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sp := &Speaker{cfg: tc.cfg}
			p, err := sp.path(tc.ann)
			if err != nil {
				t.Fatal(err)
			}
			var nlri api.IPAddressPrefix
			if err := p.Nlri.UnmarshalTo(&nlri); err != nil || nlri.Prefix != "10.0.0.1" || nlri.PrefixLen != 32 {
				t.Errorf("nlri = %v, %v", &nlri, err)
			}
			var got []proto.Message
			for _, a := range p.Pattrs {
				m, err := a.UnmarshalNew()
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, m)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d attributes %v, want %d", len(got), got, len(tc.want))
			}
			for i := range got {
				if !proto.Equal(got[i], tc.want[i]) {
					t.Errorf("attribute %d = %v, want %v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestCheckPrefix(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"10.0.0.1/32", "10.0.0.1/32", ""},
		{"10.0.0.1/24", "10.0.0.0/24", ""},
		{"::ffff:10.0.0.1/128", "10.0.0.1/32", ""},
		{"fd00::1/128", "fd00::1/128", ""},
		{"2001:db8::1/48", "2001:db8::/48", ""},
	} {
		got, err := checkPrefix(netip.MustParsePrefix(tc.in))
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("checkPrefix(%s) err = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got.String() != tc.want {
			t.Errorf("checkPrefix(%s) = %v, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}

func FuzzCheckPrefix(f *testing.F) {
	f.Add("10.0.0.1/32")        // a VIP
	f.Add("::ffff:1.2.3.4/120") // v4-mapped, shorter than a host
	f.Add("fd00::/8")           // IPv6
	f.Add("fe80::1%eth0/128")   // a zone: rejected
	f.Fuzz(func(t *testing.T, s string) {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return
		}
		got, err := checkPrefix(p)
		if err != nil {
			return
		}
		if got.Addr().Is4In6() || got != got.Masked() {
			t.Fatalf("checkPrefix(%s) = %s", p, got)
		}
		if again, err := checkPrefix(got); err != nil || again != got {
			t.Fatalf("not idempotent: %s -> %s, %v", got, again, err)
		}
	})
}

// BenchmarkMEDChange measures one priority change: from Set with a new
// metric until the router's RIB holds the new MED (one UPDATE over loopback).
func BenchmarkMEDChange(b *testing.B) {
	r := startRouter(b, "127.0.0.1", routerASN, "")
	sp := newSpeaker(b, Config{}, r)
	meds := make(chan uint32, 16)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := r.s.WatchEvent(ctx, &api.WatchEventRequest{Table: &api.WatchEventRequest_Table{
		Filters: []*api.WatchEventRequest_Table_Filter{{Type: api.WatchEventRequest_Table_Filter_BEST}},
	}}, func(ev *api.WatchEventResponse) {
		for _, p := range ev.GetTable().GetPaths() {
			if s := decode(b, p); s.MED >= 0 {
				meds <- uint32(s.MED)
			}
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		metric := 1 + i%2
		set(b, sp, ann("10.77.0.1/32", metric, false))
		timeout := time.After(5 * time.Second)
		for got := uint32(0); got != uint32(metric); {
			select {
			case got = <-meds:
			case <-timeout:
				b.Fatalf("MED %d not received", metric)
			}
		}
	}
}

// TestSessionLogging checks a session coming up and going down is logged
// once each, with the peer address.
func TestSessionLogging(t *testing.T) {
	r := startRouter(t, "127.0.0.1", routerASN, "")
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	newSpeaker(t, Config{Logger: logger}, r)
	// The router going away ends the session.
	if err := r.s.StopBgp(context.Background(), &api.StopBgpRequest{}); err != nil {
		t.Fatal(err)
	}
	count := func(s string) int {
		mu.Lock()
		defer mu.Unlock()
		return strings.Count(logs.String(), s)
	}
	waitFor(t, "session lost logged", func() bool { return count("bgp: session lost") > 0 })
	if n := count(`level=INFO msg="bgp: session established" peer=127.0.0.1`); n != 1 {
		t.Errorf("session established logged %d times, want 1", n)
	}
	if n := count(`level=WARN msg="bgp: session lost" peer=127.0.0.1`); n != 1 {
		t.Errorf("session lost logged %d times, want 1", n)
	}
}
