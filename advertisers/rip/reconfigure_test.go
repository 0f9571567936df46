package rip

import (
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// TestReconfigureTouchesOnlyWhatChanged: an added interface gets the table,
// an added neighbour gets it by unicast, a removed interface is poisoned
// twice and closed, and the link that did not change hears nothing.
func TestReconfigureTouchesOnlyWhatChanged(t *testing.T) {
	nb := netip.MustParseAddr("10.0.0.9")
	s, c0 := newTestSpeaker(t, Config{})
	set(t, s, ann(vipA, 1), ann(vipB, 3))
	next(t, c0, Auth{})
	table := map[netip.Prefix]int{vipA: 1, vipB: 3}

	c1 := newMemConn()
	changes, err := s.ReconfigureWithConns(Config{UpdateInterval: time.Hour,
		Interfaces: []Interface{{Name: "eth0", Neighbors: []netip.Addr{nb}}, {Name: "eth1"}}},
		map[string]net.PacketConn{"eth1": c1})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"neighbors on eth0 [10.0.0.9]", "added interface eth1"}; !slices.Equal(changes, want) {
		t.Errorf("changes %q, want %q", changes, want)
	}
	wantUpdate(t, next(t, c0, Auth{}), netip.AddrPortFrom(nb, Port), table) // the new neighbour only
	wantUpdate(t, next(t, c1, Auth{}), group, table)
	quiet(t, c0, 100*time.Millisecond)
	quiet(t, c1, 0)

	// The same configuration again: nothing happens.
	if changes, err := s.ReconfigureWithConns(Config{UpdateInterval: time.Hour,
		Interfaces: []Interface{{Name: "eth0", Neighbors: []netip.Addr{nb}}, {Name: "eth1"}}}, nil); err != nil || changes != nil {
		t.Fatalf("unchanged: %q, %v", changes, err)
	}
	quiet(t, c0, 50*time.Millisecond)
	quiet(t, c1, 0)

	// eth1 removed, and the neighbour: eth1 is poisoned twice and closed,
	// eth0 hears nothing now and only the group hears the next change.
	if _, err := s.ReconfigureWithConns(Config{UpdateInterval: time.Hour, Interfaces: []Interface{{Name: "eth0"}}}, nil); err != nil {
		t.Fatal(err)
	}
	wantPoisonedAndClosed(t, c1, Auth{}, vipA, vipB)
	quiet(t, c0, 50*time.Millisecond)
	set(t, s, ann(vipA, 2), ann(vipB, 3))
	wantUpdate(t, next(t, c0, Auth{}), group, map[netip.Prefix]int{vipA: 2})
	quiet(t, c0, 50*time.Millisecond)
	quiet(t, c1, 0)
}

// TestReconfigureAuthentication: a new key re-sends the table on every link
// signed with it and is the one received packets must carry; a link removed
// at the same time is poisoned with the key its routers know.
func TestReconfigureAuthentication(t *testing.T) {
	oldKey := Auth{Type: AuthMD5, KeyID: 1, Key: []byte("old")}
	newKey := Auth{Type: AuthMD5, KeyID: 2, Key: []byte("new")}
	c0, c1 := newMemConn(), newMemConn()
	s, err := NewWithConns(Config{UpdateInterval: time.Hour, Auth: oldKey,
		Interfaces: []Interface{{Name: "eth0"}, {Name: "eth1"}}}, map[string]net.PacketConn{"eth0": c0, "eth1": c1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	set(t, s, ann(vipA, 1))
	next(t, c0, oldKey)
	next(t, c1, oldKey)

	changes, err := s.ReconfigureWithConns(Config{UpdateInterval: time.Hour, Auth: newKey, Interfaces: []Interface{{Name: "eth0"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"removed interface eth1", "authentication md5 key-id 2 (key hidden)"}; !slices.Equal(changes, want) {
		t.Errorf("changes %q, want %q", changes, want)
	}
	wantUpdate(t, next(t, c0, newKey), group, map[netip.Prefix]int{vipA: 1})
	wantPoisonedAndClosed(t, c1, oldKey, vipA)

	inject(c0, router, oldKey, WholeTableRequest())
	waitStats(t, s, func(st Stats) bool { return st.AuthFailed == 1 })
	quiet(t, c0, 50*time.Millisecond)
	inject(c0, router, newKey, WholeTableRequest())
	wantUpdate(t, next(t, c0, newKey), router, map[netip.Prefix]int{vipA: 1})
}

// TestReconfigureUpdateInterval: a shorter interval takes effect at once,
// without waiting for the old, long one to run out.
func TestReconfigureUpdateInterval(t *testing.T) {
	defer func(d time.Duration) { minUpdateInterval = d }(minUpdateInterval)
	minUpdateInterval = time.Millisecond
	s, c := newTestSpeaker(t, Config{})
	set(t, s, ann(vipA, 1))
	next(t, c, Auth{})
	quiet(t, c, 50*time.Millisecond)
	changes, err := s.ReconfigureWithConns(Config{UpdateInterval: 30 * time.Millisecond, NoReadvertise: true,
		Interfaces: []Interface{{Name: "eth0"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"update interval 30ms", "re-advertising on heard poison false"}; !slices.Equal(changes, want) {
		t.Errorf("changes %q, want %q", changes, want)
	}
	start := time.Now()
	wantUpdate(t, next(t, c, Auth{}), group, map[netip.Prefix]int{vipA: 1})
	wantUpdate(t, next(t, c, Auth{}), group, map[netip.Prefix]int{vipA: 1})
	if took := time.Since(start); took > time.Second {
		t.Fatalf("two periodic updates took %v at a 30ms interval", took)
	}
}

// TestReconfigureRefusedChangesNothing: an invalid configuration, a socket
// that cannot be had, or a closed speaker leave everything as it was.
func TestReconfigureRefusedChangesNothing(t *testing.T) {
	s, c := newTestSpeaker(t, Config{})
	set(t, s, ann(vipA, 1))
	next(t, c, Auth{})
	for _, cfg := range []Config{
		{Interfaces: []Interface{{Name: "eth0"}, {Name: "eth0"}}},
		{Interfaces: []Interface{{Name: "eth0"}}, UpdateInterval: time.Millisecond},
		{Interfaces: []Interface{{Name: "eth0"}, {Name: "eth9"}}}, // no socket
	} {
		if _, err := s.ReconfigureWithConns(cfg, nil); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
	quiet(t, c, 50*time.Millisecond)
	set(t, s, ann(vipA, 2))
	wantUpdate(t, next(t, c, Auth{}), group, map[netip.Prefix]int{vipA: 2})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReconfigureWithConns(Config{Interfaces: []Interface{{Name: "eth0"}}}, nil); err == nil {
		t.Error("a closed speaker was reconfigured")
	}
}
