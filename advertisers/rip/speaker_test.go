package rip

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ripcord/ripcord/advertisers"
	"github.com/ripcord/ripcord/internal/memconn"
)

type memConn = memconn.Conn
type memPacket = memconn.Packet

func newMemConn() *memConn { return memconn.New(&net.UDPAddr{IP: net.IPv4(10, 0, 0, 2), Port: Port}) }

var (
	vipA   = netip.MustParsePrefix("10.255.0.1/32")
	vipB   = netip.MustParsePrefix("10.255.0.2/32")
	router = netip.MustParseAddrPort("10.0.0.1:520")
	group  = netip.AddrPortFrom(Multicast, Port)
)

func newTestSpeaker(t *testing.T, cfg Config) (*Speaker, *memConn) {
	t.Helper()
	if cfg.Interfaces == nil {
		cfg.Interfaces = []Interface{{Name: "eth0"}}
	}
	if cfg.UpdateInterval == 0 {
		cfg.UpdateInterval = time.Hour // periodic updates only where a test asks
	}
	c := newMemConn()
	s, err := NewWithConns(cfg, map[string]net.PacketConn{"eth0": c})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, c
}

func set(t *testing.T, s *Speaker, anns ...advertisers.Announcement) {
	t.Helper()
	if err := s.Set(context.Background(), anns); err != nil {
		t.Fatal(err)
	}
}

func ann(p netip.Prefix, m int) advertisers.Announcement {
	return advertisers.Announcement{Prefix: p, Metric: m}
}

type sent struct {
	to  netip.AddrPort
	pkt Packet
	at  time.Time
}

// next returns the next packet the speaker sent, failing after a bound.
func next(t *testing.T, c *memConn, auth Auth) sent {
	t.Helper()
	select {
	case p := <-c.Out:
		plain, _, err := auth.Verify(p.Data)
		if err != nil {
			t.Fatalf("speaker sent a packet its own Verify rejects: %v", err)
		}
		var pkt Packet
		if err := pkt.UnmarshalBinary(plain); err != nil {
			t.Fatalf("speaker sent a malformed packet: %v", err)
		}
		return sent{p.Addr.AddrPort(), pkt, p.At}
	case <-time.After(2 * time.Second):
		t.Fatal("no packet sent within 2s")
	}
	return sent{}
}

// quiet asserts that nothing is sent for d.
func quiet(t *testing.T, c *memConn, d time.Duration) {
	t.Helper()
	select {
	case p := <-c.Out:
		t.Fatalf("unexpected packet to %v: %x", p.Addr, p.Data)
	case <-time.After(d):
	}
}

func metrics(p Packet) map[netip.Prefix]int {
	m := map[netip.Prefix]int{}
	for _, e := range p.Entries {
		m[e.Prefix] = e.Metric
	}
	return m
}

func wantUpdate(t *testing.T, got sent, to netip.AddrPort, want map[netip.Prefix]int) {
	t.Helper()
	if got.to != to || got.pkt.Command != CommandResponse {
		t.Fatalf("sent command %d to %v, want a Response to %v", got.pkt.Command, got.to, to)
	}
	if m := metrics(got.pkt); !mapsEqual(m, want) {
		t.Fatalf("entries %v, want %v", m, want)
	}
	for _, e := range got.pkt.Entries {
		if e.AFI != AFIInet || e.NextHop != netip.IPv4Unspecified() {
			t.Fatalf("entry %+v: want AFI 2 and next hop 0.0.0.0", e)
		}
	}
}

func mapsEqual(a, b map[netip.Prefix]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func inject(c *memConn, from netip.AddrPort, auth Auth, pkt Packet) {
	plain, err := pkt.MarshalBinary()
	if err != nil {
		panic(err)
	}
	wire, err := auth.Sign(plain, 1)
	if err != nil {
		panic(err)
	}
	c.In <- memPacket{Addr: net.UDPAddrFromAddrPort(from), Data: wire}
}

func response(entries ...Entry) Packet {
	return Packet{Command: CommandResponse, Version: Version2, Entries: entries}
}

func waitStats(t *testing.T, s *Speaker, ok func(Stats) bool) Stats {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if st := s.Stats(); ok(st) {
			return st
		}
	}
	t.Fatalf("stats never matched: %+v", s.Stats())
	return Stats{}
}

func TestTriggeredUpdatesCarryOnlyChanges(t *testing.T) {
	s, c := newTestSpeaker(t, Config{})
	set(t, s, ann(vipA, 1))
	wantUpdate(t, next(t, c, Auth{}), group, map[netip.Prefix]int{vipA: 1})

	set(t, s, ann(vipA, 1)) // no change, nothing sent
	quiet(t, c, 50*time.Millisecond)

	set(t, s, ann(vipA, 3), ann(vipB, 2))
	wantUpdate(t, next(t, c, Auth{}), group, map[netip.Prefix]int{vipA: 3, vipB: 2})

	set(t, s, ann(vipA, 3)) // B withdrawn: poisoned, A unchanged and not repeated
	wantUpdate(t, next(t, c, Auth{}), group, map[netip.Prefix]int{vipB: 16})

	set(t, s, ann(vipA, 16)) // metric 16 is announced as is
	wantUpdate(t, next(t, c, Auth{}), group, map[netip.Prefix]int{vipA: 16})
	if st := s.Stats(); st.Sent != 4 {
		t.Fatalf("sent %d packets, want 4", st.Sent)
	}
}

func TestUpdatesAlsoGoToNeighbors(t *testing.T) {
	nb := netip.MustParseAddr("10.0.0.9")
	s, c := newTestSpeaker(t, Config{Interfaces: []Interface{{Name: "eth0", Neighbors: []netip.Addr{nb}}}})
	set(t, s, ann(vipA, 2))
	wantUpdate(t, next(t, c, Auth{}), group, map[netip.Prefix]int{vipA: 2})
	wantUpdate(t, next(t, c, Auth{}), netip.AddrPortFrom(nb, Port), map[netip.Prefix]int{vipA: 2})
}

func TestPeriodicUpdatesAndWithdrawal(t *testing.T) {
	defer func(d time.Duration) { minUpdateInterval = d }(minUpdateInterval)
	minUpdateInterval = time.Millisecond
	s, c := newTestSpeaker(t, Config{UpdateInterval: 40 * time.Millisecond, WithdrawCycles: 2})
	set(t, s, ann(vipA, 1), ann(vipB, 5))
	wantUpdate(t, next(t, c, Auth{}), group, map[netip.Prefix]int{vipA: 1, vipB: 5})
	wantUpdate(t, next(t, c, Auth{}), group, map[netip.Prefix]int{vipA: 1, vipB: 5}) // periodic: full table
	set(t, s, ann(vipA, 1))
	// The triggered update may race with a periodic one: collect until B
	// has been poisoned twice by periodic updates and then disappears.
	var withB, afterB int
	poisoned := false
	for i := 0; i < 20 && afterB < 2; i++ {
		m := metrics(next(t, c, Auth{}).pkt)
		if m[vipA] != 1 && m[vipB] != 16 {
			t.Fatalf("update %v lacks A", m)
		}
		switch b, ok := m[vipB]; {
		case ok && b == 5 && !poisoned:
			continue // a periodic update sent before Set took effect
		case ok && b != 16:
			t.Fatalf("B sent with metric %d after withdrawal", b)
		case ok:
			poisoned = true
			withB++
			if afterB > 0 {
				t.Fatal("B came back after being forgotten")
			}
		default:
			afterB++
		}
	}
	// One triggered plus two periodic updates carry B's poison.
	if withB != 3 || afterB < 2 {
		t.Fatalf("B poisoned in %d updates (want 3), then %d updates without it", withB, afterB)
	}
}

// TestNeverSendsUnknownPrefix drives the speaker through sets, withdrawals,
// periodic updates, whole-table Requests and poison, and checks that every
// entry it sent named a prefix it had been given.
func TestNeverSendsUnknownPrefix(t *testing.T) {
	defer func(d time.Duration) { minUpdateInterval = d }(minUpdateInterval)
	minUpdateInterval = time.Millisecond
	s, c := newTestSpeaker(t, Config{UpdateInterval: 20 * time.Millisecond, WithdrawCycles: 1})
	given := map[netip.Prefix]bool{vipA: true, vipB: true}
	other := netip.MustParsePrefix("10.9.9.0/24")
	set(t, s, ann(vipA, 1), ann(vipB, 2))
	inject(c, router, Auth{}, WholeTableRequest())
	inject(c, router, Auth{}, request(routeEntry(other, 16), routeEntry(vipA, 16)))
	inject(c, router, Auth{}, response(routeEntry(other, 16), routeEntry(vipA, 16)))
	set(t, s, ann(vipB, 2))
	inject(c, router, Auth{}, response(routeEntry(other, 1)))
	time.Sleep(150 * time.Millisecond)
	_ = s.Close()
	n := 0
	for drained := false; !drained; {
		select {
		case p := <-c.Out:
			n++
			var pkt Packet
			plain, _, _ := Auth{}.Verify(p.Data)
			if err := pkt.UnmarshalBinary(plain); err != nil {
				t.Fatal(err)
			}
			for _, e := range pkt.Entries {
				if !given[e.Prefix] {
					t.Fatalf("sent %v, which was never given to Set", e.Prefix)
				}
			}
		default:
			drained = true
		}
	}
	if n < 5 {
		t.Fatalf("only %d packets: the check saw too little", n)
	}
}

func TestAnswersRequests(t *testing.T) {
	s, c := newTestSpeaker(t, Config{})
	set(t, s, ann(vipA, 1), ann(vipB, 3))
	next(t, c, Auth{})

	inject(c, router, Auth{}, WholeTableRequest())
	wantUpdate(t, next(t, c, Auth{}), router, map[netip.Prefix]int{vipA: 1, vipB: 3})

	// A query tool on another port gets its answer on that port.
	tool := netip.MustParseAddrPort("10.0.0.7:40000")
	inject(c, tool, Auth{}, WholeTableRequest())
	wantUpdate(t, next(t, c, Auth{}), tool, map[netip.Prefix]int{vipA: 1, vipB: 3})

	// A specific Request gets back the asked entries that are ours, with
	// our metric; other prefixes are left out (not echoed with 16).
	unknown := netip.MustParsePrefix("10.9.0.0/16")
	inject(c, router, Auth{}, request(routeEntry(vipB, 16), routeEntry(unknown, 16)))
	wantUpdate(t, next(t, c, Auth{}), router, map[netip.Prefix]int{vipB: 3})
	// Nothing to answer: no answer.
	inject(c, router, Auth{}, request(routeEntry(unknown, 16)))
	waitStats(t, s, func(st Stats) bool { return st.RequestsAnswered == 3 && st.Received == 4 })
	quiet(t, c, 50*time.Millisecond)
}

func request(entries ...Entry) Packet {
	return Packet{Command: CommandRequest, Version: Version2, Entries: entries}
}

func TestPoisonHeardReadvertises(t *testing.T) {
	var mu sync.Mutex
	var heard []netip.Prefix
	s, c := newTestSpeaker(t, Config{OnPoisonHeard: func(p netip.Prefix) {
		mu.Lock()
		heard = append(heard, p)
		mu.Unlock()
	}})
	heardList := func(n int) []netip.Prefix {
		for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			mu.Lock()
			h := slices.Clone(heard)
			mu.Unlock()
			if len(h) >= n {
				return h
			}
		}
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(heard)
	}
	set(t, s, ann(vipA, 3), ann(vipB, 2))
	next(t, c, Auth{})

	// The router loses the route to A: we re-advertise at once.
	inject(c, router, Auth{}, response(routeEntry(vipA, 16)))
	first := next(t, c, Auth{})
	wantUpdate(t, first, group, map[netip.Prefix]int{vipA: 3, vipB: 2})
	waitStats(t, s, func(st Stats) bool { return st.PoisonsHeard == 1 })
	if h := heardList(1); len(h) != 1 || h[0] != vipA {
		t.Fatalf("OnPoisonHeard calls: %v", h)
	}

	// The same poison again (a poisoned reverse in every update) is not news.
	inject(c, router, Auth{}, response(routeEntry(vipA, 16)))
	waitStats(t, s, func(st Stats) bool { return st.Received == 2 })
	quiet(t, c, 50*time.Millisecond)

	// Poison from a port other than 520 is not a router's update.
	inject(c, netip.MustParseAddrPort("10.0.0.5:5000"), Auth{}, response(routeEntry(vipB, 16)))
	waitStats(t, s, func(st Stats) bool { return st.Received == 3 })
	quiet(t, c, 50*time.Millisecond)

	// A second router poisons B right after: rate-limited to one
	// re-advertisement per 200 ms, so it goes out at the end of the gap.
	inject(c, netip.MustParseAddrPort("10.0.0.6:520"), Auth{}, response(routeEntry(vipB, 16)))
	second := next(t, c, Auth{})
	wantUpdate(t, second, group, map[netip.Prefix]int{vipA: 3, vipB: 2})
	if gap := second.at.Sub(first.at); gap < readvertiseGap-20*time.Millisecond {
		t.Fatalf("second re-advertisement %v after the first, want about %v", gap, readvertiseGap)
	}
	if h := heardList(2); len(h) != 2 || h[1] != vipB {
		t.Fatalf("OnPoisonHeard calls: %v", h)
	}
	// Poison of a prefix that is not ours is ignored.
	inject(c, router, Auth{}, response(routeEntry(netip.MustParsePrefix("10.1.0.0/16"), 16)))
	waitStats(t, s, func(st Stats) bool { return st.Received == 5 })
	quiet(t, c, 250*time.Millisecond)
	if st, h := s.Stats(), heardList(2); st.PoisonsHeard != 2 || len(h) != 2 {
		t.Fatalf("stats %+v, OnPoisonHeard calls %v", st, h)
	}
}

// A router that announces our prefix with a worse metric than ours would
// give it uses another path, and takes ours when it hears it: we
// re-advertise, once per change. A path as good as ours (metric ours + 1,
// the router's hop) or better is left alone.
func TestWorsePathHeardReadvertises(t *testing.T) {
	s, c := newTestSpeaker(t, Config{})
	set(t, s, ann(vipA, 3), ann(vipB, 2))
	next(t, c, Auth{})

	inject(c, router, Auth{}, response(routeEntry(vipA, 4), routeEntry(vipB, 1))) // ours + 1, and better than ours
	waitStats(t, s, func(st Stats) bool { return st.Received == 1 })
	quiet(t, c, 50*time.Millisecond)

	inject(c, router, Auth{}, response(routeEntry(vipA, 12))) // the other replica's relay metric, two hops away
	wantUpdate(t, next(t, c, Auth{}), group, map[netip.Prefix]int{vipA: 3, vipB: 2})
	waitStats(t, s, func(st Stats) bool { return st.WorsePathsHeard == 1 && st.PoisonsHeard == 0 })

	// The same worse path in the router's next update is not news.
	inject(c, router, Auth{}, response(routeEntry(vipA, 12)))
	waitStats(t, s, func(st Stats) bool { return st.Received == 3 })
	quiet(t, c, 250*time.Millisecond)
	if st := s.Stats(); st.WorsePathsHeard != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestNoReadvertiseOnlyCounts(t *testing.T) {
	s, c := newTestSpeaker(t, Config{NoReadvertise: true})
	set(t, s, ann(vipA, 3))
	next(t, c, Auth{})
	inject(c, router, Auth{}, response(routeEntry(vipA, 16)))
	waitStats(t, s, func(st Stats) bool { return st.PoisonsHeard == 1 })
	quiet(t, c, 250*time.Millisecond)
}

func TestDropsBadPackets(t *testing.T) {
	good := Auth{Type: AuthMD5, KeyID: 1, Key: []byte("right")}
	wrong := Auth{Type: AuthMD5, KeyID: 1, Key: []byte("wrong")}
	var called atomic.Int32
	s, c := newTestSpeaker(t, Config{Auth: good, OnPoisonHeard: func(netip.Prefix) { called.Add(1) }})
	set(t, s, ann(vipA, 1))
	next(t, c, good)

	inject(c, router, wrong, response(routeEntry(vipA, 16)))                                             // wrong key
	inject(c, router, Auth{}, response(routeEntry(vipA, 16)))                                            // unauthenticated Response
	c.In <- memPacket{Addr: net.UDPAddrFromAddrPort(router), Data: []byte{2, 2, 0}}                      // short
	c.In <- memPacket{Addr: net.UDPAddrFromAddrPort(router), Data: mustSign(good, with(20, 0, 0, 0, 0))} // signed, metric 0
	st := waitStats(t, s, func(st Stats) bool { return st.Received == 4 })
	if st.AuthFailed != 2 || st.Malformed != 2 {
		t.Fatalf("stats %+v: want 2 auth failures and 2 malformed", st)
	}
	quiet(t, c, 50*time.Millisecond)
	if called.Load() != 0 {
		t.Fatal("a rejected packet reached the poison watcher")
	}

	// Unauthenticated Requests get no answer, so they cannot make the
	// speaker sign anything: not a specific one, not from a query port.
	inject(c, router, Auth{}, request(routeEntry(vipA, 16), routeEntry(netip.MustParsePrefix("10.9.0.0/16"), 16)))
	inject(c, netip.MustParseAddrPort("10.0.0.7:40000"), Auth{}, WholeTableRequest())
	st = waitStats(t, s, func(st Stats) bool { return st.Received == 6 })
	if st.AuthFailed != 4 || st.RequestsAnswered != 0 {
		t.Fatalf("stats %+v: want 4 auth failures and no answer", st)
	}
	quiet(t, c, 50*time.Millisecond)

	// FRR sends its start-up Request unauthenticated. It is not answered,
	// but a router on the link restarted: the link gets the table at once,
	// as a periodic update would send it (authenticated, to the group).
	inject(c, router, Auth{}, WholeTableRequest())
	wantUpdate(t, next(t, c, good), group, map[netip.Prefix]int{vipA: 1})
	quiet(t, c, 50*time.Millisecond)
}

func mustSign(a Auth, plain []byte) []byte {
	b, err := a.Sign(plain, 9)
	if err != nil {
		panic(err)
	}
	return b
}

func TestTriggeredDelayMergesChanges(t *testing.T) {
	s, c := newTestSpeaker(t, Config{TriggeredDelay: 150 * time.Millisecond})
	set(t, s, ann(vipA, 1))
	first := next(t, c, Auth{})
	wantUpdate(t, first, group, map[netip.Prefix]int{vipA: 1})
	set(t, s, ann(vipA, 2))
	set(t, s, ann(vipA, 4), ann(vipB, 1))
	second := next(t, c, Auth{})
	wantUpdate(t, second, group, map[netip.Prefix]int{vipA: 4, vipB: 1})
	if gap := second.at.Sub(first.at); gap < 130*time.Millisecond {
		t.Fatalf("held-back update went out %v after the first", gap)
	}
	quiet(t, c, 50*time.Millisecond)
}

// Periodic updates falling between Close's two poisons must not announce
// the live metrics again.
func TestCloseStopsPeriodicUpdates(t *testing.T) {
	defer func(d time.Duration) { minUpdateInterval = d }(minUpdateInterval)
	minUpdateInterval = time.Millisecond
	s, c := newTestSpeaker(t, Config{UpdateInterval: 5 * time.Millisecond})
	set(t, s, ann(vipA, 1), ann(vipB, 2))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	poisons := 0
	for len(c.Out) > 0 {
		m := metrics(next(t, c, Auth{}).pkt)
		switch {
		case m[vipA] == 16 && m[vipB] == 16:
			poisons++
		case poisons > 0:
			t.Fatalf("after the first poison the speaker sent %v", m)
		}
	}
	if poisons != 2 {
		t.Fatalf("%d poison updates, want 2", poisons)
	}
}

// wantPoisonedAndClosed: the speaker sent the group every prefix with
// metric 16 twice, at least 50ms apart, and closed the socket.
func wantPoisonedAndClosed(t *testing.T, c *memConn, auth Auth, prefixes ...netip.Prefix) {
	t.Helper()
	poison := map[netip.Prefix]int{}
	for _, p := range prefixes {
		poison[p] = MetricInfinity
	}
	a, b := next(t, c, auth), next(t, c, auth)
	wantUpdate(t, a, group, poison)
	wantUpdate(t, b, group, poison)
	if gap := b.at.Sub(a.at); gap < 50*time.Millisecond {
		t.Fatalf("poison repeated after %v, want at least 50ms", gap)
	}
	select {
	case <-c.Closed():
	default:
		t.Fatal("socket not closed")
	}
}

func TestClosePoisonsTwice(t *testing.T) {
	s, c := newTestSpeaker(t, Config{})
	set(t, s, ann(vipA, 1), ann(vipB, 2))
	next(t, c, Auth{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wantPoisonedAndClosed(t, c, Auth{}, vipA, vipB)
	if err := s.Set(context.Background(), []advertisers.Announcement{ann(vipA, 1)}); err == nil {
		t.Fatal("Set after Close succeeded")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestSetRejectsInvalid(t *testing.T) {
	s, c := newTestSpeaker(t, Config{})
	for _, anns := range [][]advertisers.Announcement{
		{ann(vipA, 0)},
		{ann(vipA, 17)},
		{ann(vipA, 1), ann(vipA, 2)},
		{ann(netip.MustParsePrefix("10.1.2.3/24"), 1)},
		{ann(netip.MustParsePrefix("2001:db8::/64"), 1)},
		{{Metric: 1}},
	} {
		if err := s.Set(context.Background(), anns); err == nil {
			t.Errorf("Set(%v) accepted", anns)
		}
	}
	quiet(t, c, 20*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Set(ctx, []advertisers.Announcement{ann(vipA, 1)}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Set with a cancelled context: %v", err)
	}
}

func TestConfigValidation(t *testing.T) {
	conns := map[string]net.PacketConn{"eth0": newMemConn()}
	for _, cfg := range []Config{
		{},
		{Interfaces: []Interface{{Name: "eth0"}, {Name: "eth0"}}},
		{Interfaces: []Interface{{Name: "eth0"}}, UpdateInterval: 500 * time.Millisecond},
		{Interfaces: []Interface{{Name: "eth0"}}, TriggeredDelay: -1},
		{Interfaces: []Interface{{Name: "eth0", Neighbors: []netip.Addr{netip.MustParseAddr("::1")}}}},
		{Interfaces: []Interface{{Name: "eth0"}}, Auth: Auth{Type: AuthMD5}},
		{Interfaces: []Interface{{Name: "eth1"}}},
	} {
		if s, err := NewWithConns(cfg, conns); err == nil {
			_ = s.Close()
			t.Errorf("config %+v accepted", cfg)
		}
	}
}

func TestQuery(t *testing.T) {
	s, c := newTestSpeaker(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	type result struct {
		m   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		m, err := s.Query(ctx, "eth0", router.Addr(), vipA)
		done <- result{m, err}
	}()
	req := next(t, c, Auth{})
	if req.to != router || req.pkt.Command != CommandRequest || len(req.pkt.Entries) != 1 ||
		req.pkt.Entries[0].Prefix != vipA || req.pkt.Entries[0].Metric != 16 {
		t.Fatalf("query sent %+v to %v", req.pkt, req.to)
	}
	// A periodic update from the router (several entries) is not the answer.
	inject(c, router, Auth{}, response(routeEntry(vipA, 9), routeEntry(vipB, 9)))
	inject(c, router, Auth{}, response(routeEntry(vipA, 4)))
	if r := <-done; r.err != nil || r.m != 4 {
		t.Fatalf("Query = %d, %v; want 4", r.m, r.err)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if _, err := s.Query(short, "eth0", router.Addr(), vipB); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("unanswered query: %v", err)
	}
	if _, err := s.Query(ctx, "eth9", router.Addr(), vipB); err == nil {
		t.Fatal("query on an unknown interface accepted")
	}
}
