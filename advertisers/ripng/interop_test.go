package ripng

// Interop tests against real FRR ripngd and BIRD 2 ("protocol rip ng") in
// network namespaces the tests create: a server namespace (the VIP /128 on
// lo, our speaker on rs0) linked by a veth to a router namespace (the router
// on sr0). RIPng speaks from the link's link-local addresses; the IPv4
// addresses are for ripd, which runs beside ripngd.

import (
	"context"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ripcord/ripcord/advertisers"
	"github.com/ripcord/ripcord/advertisers/rip"
	"github.com/ripcord/ripcord/lab/netns"
	"github.com/ripcord/ripcord/lab/netns/netnstest"
	"github.com/ripcord/ripcord/lab/routers"
)

var (
	labVIP   = netip.MustParsePrefix("2001:db8:ff::1/128")
	labOther = netip.MustParsePrefix("2001:db8:bad::1/128") // announced, never accepted
)

// linkLocal is the link-local address of dev in ns.
func linkLocal(t *testing.T, ns *netns.NS, dev string) netip.Addr {
	t.Helper()
	out, err := ns.IP("-6", "-o", "addr", "show", "dev", dev, "scope", "link")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range strings.Fields(out) {
		if p, err := netip.ParsePrefix(f); err == nil && p.Addr().IsLinkLocalUnicast() {
			return p.Addr()
		}
	}
	t.Fatalf("no link-local address on %s: %q", dev, out)
	return netip.Addr{}
}

// TestInterop: a router started after the speaker learns the VIP from the
// answer to its start-up Request (the speaker sends no periodic update in
// the test's time), keeps out what its filter refuses, follows a metric
// change at once (triggered update) and drops the route on Close (poison),
// with the speaker's link-local address as next hop in RIP and kernel.
func TestInterop(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("interop tests need root for network namespaces")
	}
	for _, kind := range []string{"frr", "bird"} {
		t.Run(kind, func(t *testing.T) {
			srv, rtr := netnstest.New(t, "rcs"), netnstest.New(t, "rcr")
			if err := netns.Veth(netns.End{NS: srv, Dev: "rs0", Addr: netip.MustParsePrefix("10.200.0.2/24")},
				netns.End{NS: rtr, Dev: "sr0", Addr: netip.MustParsePrefix("10.200.0.1/24")}); err != nil {
				t.Fatal(err)
			}
			if err := srv.AddAddr("lo", labVIP); err != nil {
				t.Fatal(err)
			}
			via := linkLocal(t, srv, "rs0")
			var s *rip.Speaker
			if err := srv.Do(func() (err error) {
				s, err = New(rip.Config{Interfaces: []rip.Interface{{Name: "rs0"}}, UpdateInterval: time.Hour})
				return err
			}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			set := func(metric int) {
				t.Helper()
				err := s.Set(context.Background(), []advertisers.Announcement{{Prefix: labVIP, Metric: metric}, {Prefix: labOther, Metric: 1}})
				if err != nil {
					t.Fatal(err)
				}
			}
			set(1)

			cfg := routers.Config{NS: rtr, Interfaces: []string{"sr0"}, RIPng: true,
				Accept: map[string][]netip.Prefix{"sr0": {labVIP}}}
			var r routers.Router
			var err error
			if kind == "frr" {
				r, err = routers.StartFRR(context.Background(), cfg)
			} else {
				r, err = routers.StartBIRD(context.Background(), cfg)
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := r.Stop(); err != nil {
					t.Errorf("stop %s: %v", kind, err)
				}
			})
			wait := func(what string, limit time.Duration, metric int) time.Duration {
				t.Helper()
				start := time.Now()
				var rt routers.Route
				var kr routers.KernelRoute
				for time.Since(start) < limit {
					rt, _ = r.Route(context.Background(), labVIP)
					kr, _ = r.Kernel(context.Background(), labVIP)
					ok := rt.Present && rt.Metric == metric && rt.NextHop == via && kr.Present && kr.Gateway == via && kr.Dev == "sr0"
					if metric == rip.MetricInfinity {
						ok = !rt.Present && !kr.Present
					}
					if ok {
						return time.Since(start)
					}
					time.Sleep(20 * time.Millisecond)
				}
				routes, _ := rtr.IP("-6", "route")
				t.Logf("kernel IPv6 routes of the router:\n%s", routes)
				t.Fatalf("%s: %s: after %v want metric %d via %v; RIPng table %+v, kernel %+v (logs in %s)",
					kind, what, limit, metric, via, rt, kr, r.Dir())
				return 0
			}
			took := wait("router started later", 10*time.Second, 2)
			t.Logf("%s learned the VIP %v after it was ready", kind, took)
			if st := s.Stats(); st.RequestsAnswered == 0 {
				t.Errorf("route learned without a Request answered: %+v", st)
			}
			if rt, _ := r.Route(context.Background(), labOther); rt.Present {
				t.Errorf("the router accepted %v, which its filter refuses: %+v", labOther, rt)
			}
			set(3)
			t.Logf("%s: metric change seen after %v", kind, wait("metric 3", 5*time.Second, 4))
			// What the router holds, as `ripcord status` shows it: asked
			// with a specific Request (FRR) or read from its updates (BIRD).
			router := linkLocal(t, rtr, "sr0")
			var views []rip.RouterView
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				views = s.Views(ctx, []netip.Prefix{labVIP})
				cancel()
				if len(views) == 1 && views[0].Router.WithZone("") == router && views[0].Known && views[0].Metric == 4 &&
					views[0].ViaUs && views[0].Announced == 3 && views[0].Disagreement() == "" {
					break
				}
			}
			if len(views) != 1 || views[0].Metric != 4 || !views[0].ViaUs || views[0].Disagreement() != "" {
				t.Fatalf("%s: views %+v, want the router %v holding metric 4 via us", kind, views, router)
			}
			t.Logf("%s: view %+v", kind, views[0])
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: poison on Close seen after %v", kind, wait("Close", 5*time.Second, rip.MetricInfinity))
		})
	}
}
