package rip

// Interop tests against real FRR ripd and BIRD 2 in network namespaces the
// tests create: a server namespace (the VIP /32 on lo, our speaker on rs0)
// linked by a veth to a router namespace (the router on sr0).

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ripcord/ripcord/advertisers"
	"github.com/ripcord/ripcord/lab/netns"
	"github.com/ripcord/ripcord/lab/netns/netnstest"
	"github.com/ripcord/ripcord/lab/routers"
)

var (
	labVIP     = netip.MustParsePrefix("10.255.0.1/32")
	labServer  = netip.MustParsePrefix("10.200.0.2/24")
	labRouter  = netip.MustParsePrefix("10.200.0.1/24")
	labServer2 = netip.MustParsePrefix("10.200.1.2/24")
	labRouter2 = netip.MustParsePrefix("10.200.1.1/24")
)

const (
	srvIf  = "rs0" // server side of the link
	rtrIf  = "sr0" // router side
	srvIf2 = "rs1"
	rtrIf2 = "sr1"
	poll   = 20 * time.Millisecond
)

type lab struct {
	t      testing.TB
	srv    *netns.NS
	rtr    *netns.NS
	srv2   *netns.NS // only in two-server labs
	link2  bool      // the router has a second link (to srv2, or to srv by addLink2)
	router routers.Router
	accept map[string][]netip.Prefix // the router's import filter, if any
}

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("interop tests need root for network namespaces")
	}
}

// newLab builds server + router namespaces; the router is not started.
func newLab(t testing.TB) *lab {
	t.Helper()
	needRoot(t)
	lb := &lab{t: t, srv: netnstest.New(t, "rcs"), rtr: netnstest.New(t, "rcr")}
	if err := netns.Veth(
		netns.End{NS: lb.srv, Dev: srvIf, Addr: labServer},
		netns.End{NS: lb.rtr, Dev: rtrIf, Addr: labRouter},
	); err != nil {
		t.Fatal(err)
	}
	if err := lb.srv.AddAddr("lo", labVIP); err != nil {
		t.Fatal(err)
	}
	return lb
}

// addServer2 links a second server namespace to the router.
func (lb *lab) addServer2() {
	lb.t.Helper()
	lb.srv2 = netnstest.New(lb.t, "rcs")
	if err := netns.Veth(
		netns.End{NS: lb.srv2, Dev: srvIf2, Addr: labServer2},
		netns.End{NS: lb.rtr, Dev: rtrIf2, Addr: labRouter2},
	); err != nil {
		lb.t.Fatal(err)
	}
	if err := lb.srv2.AddAddr("lo", labVIP); err != nil {
		lb.t.Fatal(err)
	}
	lb.link2 = true
}

// addLink2 links the server namespace to the router a second time.
func (lb *lab) addLink2() {
	lb.t.Helper()
	if err := netns.Veth(
		netns.End{NS: lb.srv, Dev: srvIf2, Addr: labServer2},
		netns.End{NS: lb.rtr, Dev: rtrIf2, Addr: labRouter2},
	); err != nil {
		lb.t.Fatal(err)
	}
	lb.link2 = true
}

func (lb *lab) startRouter(kind string, auth routers.Auth) {
	lb.t.Helper()
	ifaces := []string{rtrIf}
	if lb.link2 {
		ifaces = append(ifaces, rtrIf2)
	}
	cfg := routers.Config{NS: lb.rtr, Interfaces: ifaces, Auth: auth, Accept: lb.accept}
	var err error
	switch kind {
	case "frr":
		lb.router, err = routers.StartFRR(context.Background(), cfg)
	case "bird":
		lb.router, err = routers.StartBIRD(context.Background(), cfg)
	default:
		err = fmt.Errorf("unknown router %q", kind)
	}
	if err != nil {
		lb.t.Fatal(err) // also when frr or bird2 is not installed
	}
	r := lb.router
	lb.t.Cleanup(func() {
		if err := r.Stop(); err != nil {
			lb.t.Errorf("stop %s: %v (logs in %s)", r.Kind(), err, r.Dir())
		}
	})
}

// speaker starts a speaker with its sockets inside ns.
func (lb *lab) speaker(ns *netns.NS, cfg Config) *Speaker {
	lb.t.Helper()
	var s *Speaker
	err := ns.Do(func() (err error) {
		s, err = New(cfg)
		return err
	})
	if err != nil {
		lb.t.Fatal(err)
	}
	lb.t.Cleanup(func() { _ = s.Close() })
	return s
}

// rawConn opens another port-520 socket on the server's link, for packets
// the speaker would never send (bad digests, old sequence numbers).
func (lb *lab) rawConn() net.PacketConn {
	lb.t.Helper()
	var c net.PacketConn
	if err := lb.srv.Do(func() (err error) {
		c, err = listen(srvIf)
		return err
	}); err != nil {
		lb.t.Fatal(err)
	}
	lb.t.Cleanup(func() { _ = c.Close() })
	return c
}

func announce(t *testing.T, s *Speaker, metric int) time.Time {
	t.Helper()
	start := time.Now()
	if err := s.Set(context.Background(), []advertisers.Announcement{{Prefix: labVIP, Metric: metric}}); err != nil {
		t.Fatal(err)
	}
	return start
}

// state is what the router holds for the VIP: RIP table and kernel.
type state struct {
	rip    routers.Route
	kernel routers.KernelRoute
}

func (lb *lab) state() state {
	lb.t.Helper()
	ctx := context.Background()
	r, err := lb.router.Route(ctx, labVIP)
	if err != nil {
		lb.t.Fatal(err)
	}
	k, err := lb.router.Kernel(ctx, labVIP)
	if err != nil {
		lb.t.Fatal(err)
	}
	return state{r, k}
}

// waitRoute polls until the router's RIP table has the VIP with metric via
// via, and the kernel route agrees; metric 16 waits for the route to be gone
// from both. It fails the test after limit, and returns the time taken
// from since.
func (lb *lab) waitRoute(since time.Time, limit time.Duration, metric int, via netip.Addr) time.Duration {
	lb.t.Helper()
	var st state
	for deadline := since.Add(limit); ; {
		st = lb.state()
		if metric == MetricInfinity {
			if !st.rip.Present && !st.kernel.Present {
				return time.Since(since)
			}
		} else if st.rip.Present && st.rip.Metric == metric && st.rip.NextHop == via &&
			st.kernel.Present && st.kernel.Gateway == via {
			return time.Since(since)
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(poll)
	}
	lb.t.Fatalf("%s: after %v: want metric %d via %v; RIP table %+v, kernel %+v (logs in %s)",
		lb.router.Kind(), limit, metric, via, st.rip, st.kernel, lb.router.Dir())
	return 0
}

// stayAbsent checks for a while that the router did not learn the VIP,
// and that it did receive and reject packets (so they were not just lost).
func (lb *lab) stayAbsent(d time.Duration, why string) {
	lb.t.Helper()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if st := lb.state(); st.rip.Present || st.kernel.Present {
			lb.t.Fatalf("%s: learned the VIP despite %s: %+v", lb.router.Kind(), why, st)
		}
	}
	n, err := lb.router.Rejected(context.Background())
	if err != nil {
		lb.t.Fatal(err)
	}
	if n == 0 {
		lb.t.Fatalf("%s: no packet counted as rejected after %s: did they arrive? (logs in %s)", lb.router.Kind(), why, lb.router.Dir())
	}
}

func (lb *lab) stayMetric(d time.Duration, metric int, why string) {
	lb.t.Helper()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if st := lb.state(); st.rip.Metric != metric {
			lb.t.Fatalf("%s: metric changed to %d despite %s", lb.router.Kind(), st.rip.Metric, why)
		}
	}
}

var kinds = []string{"frr", "bird"}

var serverAddr = labServer.Addr()

// TestInteropAnnounce: the router runs first; the VIP is learned with our
// metric + 1, follows metric changes, disappears on metric 16, comes back,
// and leaves when the speaker closes.
func TestInteropAnnounce(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			lb := newLab(t)
			lb.startRouter(kind, routers.Auth{})
			s := lb.speaker(lb.srv, Config{Interfaces: []Interface{{Name: srvIf}}})

			took := lb.waitRoute(announce(t, s, 1), time.Second, 2, serverAddr)
			t.Logf("%s learned the VIP in %v", kind, took)

			took = lb.waitRoute(announce(t, s, 3), 500*time.Millisecond, 4, serverAddr)
			t.Logf("%s: metric change in %v", kind, took)

			took = lb.waitRoute(announce(t, s, MetricInfinity), 500*time.Millisecond, MetricInfinity, netip.Addr{})
			t.Logf("%s: metric 16 removed the route in %v", kind, took)

			took = lb.waitRoute(announce(t, s, 1), 500*time.Millisecond, 2, serverAddr)
			t.Logf("%s: re-announcement restored it in %v", kind, took)

			// Close blocks while it repeats the poison; watch the router
			// meanwhile.
			start := time.Now()
			closed := make(chan error, 1)
			go func() { closed <- s.Close() }()
			took = lb.waitRoute(start, 500*time.Millisecond, MetricInfinity, netip.Addr{})
			t.Logf("%s: Close withdrew the route in %v", kind, took)
			if err := <-closed; err != nil {
				t.Fatal(err)
			}
			if st := s.Stats(); st.Malformed != 0 || st.AuthFailed != 0 {
				t.Errorf("the router's packets were not all understood: %+v", st)
			}
		})
	}
}

// TestInteropRouterAcceptsOnlyServicePrefixes: with the router-side config
// the README recommends (FRR prefix-list + distribute-list in, BIRD import
// filter), a replica that announces a default route or someone else's prefix
// gets only its service /32 into the router.
func TestInteropRouterAcceptsOnlyServicePrefixes(t *testing.T) {
	rogue := []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("10.9.9.9/32"),
		netip.MustParsePrefix("10.255.0.0/24")}
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			lb := newLab(t)
			lb.accept = map[string][]netip.Prefix{rtrIf: {labVIP}}
			lb.startRouter(kind, routers.Auth{})
			s := lb.speaker(lb.srv, Config{Interfaces: []Interface{{Name: srvIf}}})
			set := []advertisers.Announcement{{Prefix: labVIP, Metric: 1}}
			for _, p := range rogue {
				set = append(set, advertisers.Announcement{Prefix: p, Metric: 1})
			}
			start := time.Now()
			if err := s.Set(context.Background(), set); err != nil {
				t.Fatal(err)
			}
			lb.waitRoute(start, time.Second, 2, serverAddr)
			// Same packet as the VIP: had the filter let them in, they
			// would be there by now; give the router one more second.
			time.Sleep(time.Second)
			for _, p := range rogue {
				r, err := lb.router.Route(context.Background(), p)
				if err != nil {
					t.Fatal(err)
				}
				k, err := lb.router.Kernel(context.Background(), p)
				if err != nil {
					t.Fatal(err)
				}
				if r.Present || k.Present {
					t.Errorf("%s accepted %s from the replica: RIP %+v, kernel %+v (logs in %s)", kind, p, r, k, lb.router.Dir())
				}
			}
		})
	}
}

// TestInteropRouterStartsLater: the speaker announces first; a router that
// starts afterwards asks for the table and is answered at once, long
// before the next periodic update.
//
// With MD5 too: FRR sends that Request without authentication; it is not
// answered, but makes the speaker re-send its table to the link.
func TestInteropRouterStartsLater(t *testing.T) {
	for _, tc := range []struct {
		kind string
		md5  bool
	}{{"frr", false}, {"bird", false}, {"frr", true}, {"bird", true}} {
		name := tc.kind
		if tc.md5 {
			name += "/md5"
		}
		t.Run(name, func(t *testing.T) {
			kind := tc.kind
			lb := newLab(t)
			cfg := Config{Interfaces: []Interface{{Name: srvIf}}, UpdateInterval: time.Hour}
			var rauth routers.Auth
			if tc.md5 {
				cfg.Auth = Auth{Type: AuthMD5, KeyID: 3, Key: []byte("k3y")}
				rauth = routers.Auth{Mode: routers.AuthMD5, KeyID: 3, Key: "k3y"}
			}
			s := lb.speaker(lb.srv, cfg)
			announce(t, s, 2)
			start := time.Now()
			lb.startRouter(kind, rauth)
			ready := time.Now()
			took := lb.waitRoute(ready, time.Second, 3, serverAddr)
			t.Logf("%s: ready %v after start, learned the VIP %v later", kind, ready.Sub(start), took)
			st := s.Stats()
			if kind == "frr" && tc.md5 {
				if st.RequestsAnswered != 0 || st.AuthFailed == 0 {
					t.Errorf("FRR's unauthenticated Request: want it dropped, not answered: %+v", st)
				}
			} else if st.RequestsAnswered == 0 {
				t.Errorf("route learned without a Request being answered: %+v", st)
			}
		})
	}
}

func (s *Speaker) lastSeq() uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seq.last
}

// sendSigned sends one Response for the VIP from the raw socket.
func sendSigned(t *testing.T, c net.PacketConn, auth Auth, seq uint32, metric int, corrupt bool) {
	t.Helper()
	pkt := Packet{Command: CommandResponse, Version: Version2, Entries: []Entry{routeEntry(labVIP, metric)}}
	plain, err := pkt.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	wire, err := auth.Sign(plain, seq)
	if err != nil {
		t.Fatal(err)
	}
	if corrupt {
		wire[len(wire)-1] ^= 0x55
	}
	if _, err := c.WriteTo(wire, &net.UDPAddr{IP: Multicast.AsSlice(), Port: Port}); err != nil {
		t.Fatal(err)
	}
}

// TestInteropMD5: keyed MD5 with the right key is accepted by both routers;
// a wrong key and a bad digest are not. BIRD also rejects a sequence number
// lower than the last one it accepted; FRR 8.4 does not check sequence
// numbers at all, which the test records.
func TestInteropMD5(t *testing.T) {
	good := Auth{Type: AuthMD5, KeyID: 1, Key: []byte("s3cret-key")}
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			lb := newLab(t)
			lb.startRouter(kind, routers.Auth{Mode: routers.AuthMD5, KeyID: 1, Key: "s3cret-key"})
			raw := lb.rawConn()
			now := uint32(time.Now().Unix())

			wrong := good
			wrong.Key = []byte("other-key")
			for range 3 {
				sendSigned(t, raw, wrong, now, 1, false)
				sendSigned(t, raw, good, now, 1, true)
				lb.stayAbsent(300*time.Millisecond, "a wrong key and a bad digest")
			}

			// Both auth-data length styles are accepted.
			for _, adl := range []int{16, 20} {
				a := good
				a.MD5AuthDataLen = adl
				sendSigned(t, raw, a, now, adl/4, false) // metric 4 or 5
				lb.waitRoute(time.Now(), time.Second, adl/4+1, serverAddr)
			}

			s := lb.speaker(lb.srv, Config{Interfaces: []Interface{{Name: srvIf}}, Auth: good})
			lb.waitRoute(announce(t, s, 1), time.Second, 2, serverAddr)
			lb.waitRoute(announce(t, s, 2), 500*time.Millisecond, 3, serverAddr)

			// Replay: a correctly signed packet with an older sequence number.
			old := s.lastSeq() - 100
			before, err := lb.router.Rejected(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			sendSigned(t, raw, good, old, 7, false)
			if kind == "bird" {
				lb.stayMetric(500*time.Millisecond, 3, "an older sequence number")
				if after, err := lb.router.Rejected(context.Background()); err != nil || after <= before {
					t.Fatalf("bird logged no rejection of the replay (%d -> %d, %v)", before, after, err)
				}
			} else {
				lb.waitRoute(time.Now(), time.Second, 8, serverAddr)
				t.Log("frr accepted a lower sequence number (FRR 8.4 does not check it)")
			}
			if st := s.Stats(); st.AuthFailed != 0 || st.Malformed != 0 {
				t.Errorf("router packets failed our verification: %+v", st)
			}
		})
	}
}

// TestInteropPlain: the RIPv2 simple password, right and wrong.
func TestInteropPlain(t *testing.T) {
	good := Auth{Type: AuthPlain, Key: []byte("plain-pw")}
	wrong := Auth{Type: AuthPlain, Key: []byte("plain-pW")}
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			lb := newLab(t)
			lb.startRouter(kind, routers.Auth{Mode: routers.AuthPlain, Key: "plain-pw"})
			raw := lb.rawConn()
			for range 3 {
				sendSigned(t, raw, wrong, 0, 1, false)
				sendSigned(t, raw, Auth{}, 0, 1, false) // no authentication at all
				lb.stayAbsent(200*time.Millisecond, "a wrong password and a missing one")
			}
			s := lb.speaker(lb.srv, Config{Interfaces: []Interface{{Name: srvIf}}, Auth: good})
			lb.waitRoute(announce(t, s, 1), time.Second, 2, serverAddr)
		})
	}
}

// TestInteropHMACSHA256: BIRD accepts RFC 4822 HMAC-SHA-256 from the
// speaker and rejects a wrong key.
func TestInteropHMACSHA256(t *testing.T) {
	lb := newLab(t)
	lb.startRouter("bird", routers.Auth{Mode: routers.AuthHMACSHA256, KeyID: 7, Key: "hmac-secret"})
	good := Auth{Type: AuthHMACSHA256, KeyID: 7, Key: []byte("hmac-secret")}
	wrong := good
	wrong.Key = []byte("hmac-secreT")
	raw := lb.rawConn()
	now := uint32(time.Now().Unix())
	for range 3 {
		sendSigned(t, raw, wrong, now, 1, false)
		sendSigned(t, raw, good, now, 1, true)
		lb.stayAbsent(300*time.Millisecond, "a wrong key and a bad digest")
	}
	s := lb.speaker(lb.srv, Config{Interfaces: []Interface{{Name: srvIf}}, Auth: good})
	lb.waitRoute(announce(t, s, 1), time.Second, 2, serverAddr)
	lb.waitRoute(announce(t, s, 4), 500*time.Millisecond, 5, serverAddr)
	// BIRD's own HMAC-signed packets pass our verification.
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats().Received == 0 && time.Now().Before(deadline) {
		time.Sleep(poll)
	}
	if st := s.Stats(); st.Received == 0 || st.AuthFailed != 0 {
		t.Errorf("BIRD's packets: %+v", st)
	}
}

// TestInteropQuery asks FRR for its metric with a specific Request.
func TestInteropQuery(t *testing.T) {
	lb := newLab(t)
	lb.startRouter("frr", routers.Auth{})
	s := lb.speaker(lb.srv, Config{Interfaces: []Interface{{Name: srvIf}}})
	lb.waitRoute(announce(t, s, 1), time.Second, 2, serverAddr)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	m, err := s.Query(ctx, srvIf, labRouter.Addr(), labVIP)
	if err != nil || m != 2 {
		t.Fatalf("Query VIP = %d, %v; want 2", m, err)
	}
	m, err = s.Query(ctx, srvIf, labRouter.Addr(), netip.MustParsePrefix("10.254.9.0/24"))
	if err != nil || m != MetricInfinity {
		t.Fatalf("Query unknown prefix = %d, %v; want 16", m, err)
	}
}

// TestInteropPoisonHeard: two replicas behind one router, the active one
// with metric 1, the standby with 3. When the active one poisons, the
// router's triggered update carries metric 16 to the standby, which
// re-advertises at once, so the router switches within a second instead of
// waiting up to 30 s for the standby's periodic update.
func TestInteropPoisonHeard(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			lb := newLab(t)
			lb.addServer2()
			lb.startRouter(kind, routers.Auth{})
			var heard atomic.Int32
			active := lb.speaker(lb.srv, Config{Interfaces: []Interface{{Name: srvIf}}, UpdateInterval: time.Hour})
			standby := lb.speaker(lb.srv2, Config{Interfaces: []Interface{{Name: srvIf2}}, UpdateInterval: time.Hour,
				OnPoisonHeard: func(p netip.Prefix) {
					if p == labVIP {
						heard.Add(1)
					}
				}})
			announce(t, standby, 3)
			lb.waitRoute(announce(t, active, 1), time.Second, 2, serverAddr)
			start := announce(t, active, MetricInfinity)
			took := lb.waitRoute(start, 2*time.Second, 4, labServer2.Addr())
			t.Logf("%s: switched to the standby %v after the poison", kind, took)
			if heard.Load() == 0 || standby.Stats().PoisonsHeard == 0 {
				t.Fatalf("standby did not report the poison: %+v", standby.Stats())
			}
		})
	}
}

// TestInteropViews: what the router holds, as each replica sees it, agrees
// with the router's own table: FRR answers specific Requests, BIRD is read
// from its updates (poisoned reverse marks the route through us).
func TestInteropViews(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			lb := newLab(t)
			lb.addServer2()
			lb.startRouter(kind, routers.Auth{})
			active := lb.speaker(lb.srv, Config{Interfaces: []Interface{{Name: srvIf}}})
			standby := lb.speaker(lb.srv2, Config{Interfaces: []Interface{{Name: srvIf2}}})
			announce(t, standby, 3)
			lb.waitRoute(announce(t, active, 1), time.Second, 2, serverAddr)

			view := func(s *Speaker, want RouterView) {
				t.Helper()
				var got []RouterView
				for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
					ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
					got = s.Views(ctx, []netip.Prefix{labVIP})
					cancel()
					if len(got) == 1 && got[0].Known == want.Known && got[0].Metric == want.Metric &&
						got[0].ViaUs == want.ViaUs && got[0].Announced == want.Announced && got[0].Router == want.Router {
						if d := got[0].Disagreement(); d != "" {
							t.Errorf("%s: unexpected disagreement: %s", kind, d)
						}
						return
					}
				}
				t.Fatalf("%s: views %+v, want one like %+v (logs in %s)", kind, got, want, lb.router.Dir())
			}
			router1, router2 := labRouter.Addr(), labRouter2.Addr()
			view(active, RouterView{Router: router1, Known: true, Metric: 2, ViaUs: true, Announced: 1})
			view(standby, RouterView{Router: router2, Known: true, Metric: 2, ViaUs: false, Announced: 3})

			// BIRD paces triggered updates 5 s apart (min(5 s, update
			// time / 2)): the one that tells the standby about the poison
			// may wait for the last one's 5 s to pass.
			lb.waitRoute(announce(t, active, MetricInfinity), 7*time.Second, 4, labServer2.Addr())
			view(standby, RouterView{Router: router2, Known: true, Metric: 4, ViaUs: true, Announced: 3})
			// The poisoned replica: the router holds the standby's route.
			view(active, RouterView{Router: router1, Known: true, Metric: 4, ViaUs: false, Announced: MetricInfinity})
		})
	}
}

// TestInteropReconfigure: a running speaker gets the router's key, then
// moves from one link to the other. The router follows each change at
// once, with the periodic update an hour away: the new key re-sends the
// table, the removed link is poisoned and the added one announced.
func TestInteropReconfigure(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			lb := newLab(t)
			lb.addLink2()
			lb.startRouter(kind, routers.Auth{Mode: routers.AuthMD5, KeyID: 1, Key: "new-key"})
			key := Auth{Type: AuthMD5, KeyID: 1, Key: []byte("old-key")}
			s := lb.speaker(lb.srv, Config{Interfaces: []Interface{{Name: srvIf}}, UpdateInterval: time.Hour, Auth: key})
			announce(t, s, 1)
			lb.stayAbsent(300*time.Millisecond, "the old key")

			reconfigure := func(ifc string) time.Time {
				t.Helper()
				start := time.Now()
				cfg := Config{Interfaces: []Interface{{Name: ifc}}, UpdateInterval: time.Hour,
					Auth: Auth{Type: AuthMD5, KeyID: 1, Key: []byte("new-key")}}
				if err := lb.srv.Do(func() error { _, err := s.Reconfigure(cfg); return err }); err != nil {
					t.Fatal(err)
				}
				return start
			}
			took := lb.waitRoute(reconfigure(srvIf), time.Second, 2, serverAddr)
			t.Logf("%s: learned the VIP %v after the key changed", kind, took)
			took = lb.waitRoute(reconfigure(srvIf2), 2*time.Second, 2, labServer2.Addr())
			t.Logf("%s: moved to the other link in %v", kind, took)
		})
	}
}
