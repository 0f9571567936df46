package lab

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/ripcord/ripcord/lab/netns"
	"github.com/ripcord/ripcord/lab/routers"
)

// The lab over BGP, as an organisation would run it: the campus network is
// one AS (routerASN), its two routers are iBGP peers with next-hop-self; the
// replicas share one private AS for the anycast service (replicaASN), each
// with an eBGP session to its site router. The failover shape's priority is
// AS-path prepending (sb's metric 3 is two prepends), which both FRR and BIRD
// compare before anything else an operator would tune; MED would work too
// (the replicas share an AS).
const (
	routerASN  = 65000
	replicaASN = 65010
)

// The links of rb2, the second router at sb's site (Options.SecondRouterB).
var (
	netRB2SB = netip.MustParsePrefix("10.77.5.0/24")
	netRBRB2 = netip.MustParsePrefix("10.77.6.0/24")
)

// linkAddrs is the address of a neighbour (second) on a router's (first)
// link to it, for the links between routers and rb2's link to sb.
var linkAddrs = map[[2]string]netip.Addr{
	{"ra", "rb"}:  host(netRARB, 2).Addr(),
	{"rb", "ra"}:  host(netRARB, 1).Addr(),
	{"rb", "rb2"}: host(netRBRB2, 2).Addr(),
	{"rb2", "rb"}: host(netRBRB2, 1).Addr(),
	{"rb2", "sb"}: host(netRB2SB, 2).Addr(),
}

// routerIDs are the routers' BGP identifiers (an address of each).
var routerIDs = map[string]netip.Addr{
	"ra": host(netRARB, 1).Addr(), "rb": host(netRARB, 2).Addr(), "rb2": host(netRBRB2, 2).Addr(),
}

// allRouters returns ra, rb and, when there is one, rb2.
func (l *Lab) allRouters() []*Router {
	if l.RB2 != nil {
		return []*Router{l.RA, l.RB, l.RB2}
	}
	return []*Router{l.RA, l.RB}
}

// addSecondRouterB makes rb2 and its links to sb (sb's eth1) and rb; its
// router starts with the others.
func (l *Lab) addSecondRouterB() error {
	ns, err := l.newNS("rb2")
	if err != nil {
		return err
	}
	l.RB2 = &Router{Name: "rb2", NS: ns, Links: map[string]string{"sb": "rb2-sb", "rb": "rb2-rb"}}
	l.RB.Links["rb2"] = "rb-rb2"
	if err := netns.Veth(netns.End{NS: ns, Dev: "rb2-sb", Addr: host(netRB2SB, 1)}, netns.End{NS: l.SB.NS, Dev: "eth1", Addr: host(netRB2SB, 2)}); err != nil {
		return err
	}
	return netns.Veth(netns.End{NS: l.RB.NS, Dev: "rb-rb2", Addr: host(netRBRB2, 1)}, netns.End{NS: ns, Dev: "rb2-rb", Addr: host(netRBRB2, 2)})
}

// startBGPRouter starts a router as a BGP router: a session to each replica
// it is linked to (accepting only the service /32s) and one to each router.
func (l *Lab) startBGPRouter(ctx context.Context, r *Router, cfg routers.Config) (routers.Router, error) {
	b := routers.BGP{ASN: routerASN, RouterID: routerIDs[r.Name]}
	for _, rep := range l.Replicas() {
		if _, ok := r.Links[rep.Name]; ok {
			var accept []netip.Prefix
			for _, svc := range Services {
				accept = append(accept, VIP(svc))
			}
			addr, ok := linkAddrs[[2]string{r.Name, rep.Name}]
			if !ok {
				addr = rep.Addr
			}
			b.Neighbors = append(b.Neighbors, routers.BGPNeighbor{Name: rep.Name, Address: addr, ASN: replicaASN, Accept: accept,
				Password: bgpPassword})
		}
	}
	for _, other := range []string{"ra", "rb", "rb2"} {
		if _, ok := r.Links[other]; ok {
			b.Neighbors = append(b.Neighbors, routers.BGPNeighbor{Name: other, Address: linkAddrs[[2]string{r.Name, other}], ASN: routerASN})
		}
	}
	if l.Opts.Routers == "bird" {
		return routers.StartBIRDBGP(ctx, cfg, b)
	}
	return routers.StartFRRBGP(ctx, cfg, b)
}

// BGPRouter returns a router's BGP view, or nil when the lab speaks RIP.
func (r *Router) BGPRouter() routers.BGPRouter {
	b, _ := r.Router.(routers.BGPRouter)
	return b
}

// bgpSection is the bgp: section of a replica's ripcord configuration.
func (r *Replica) bgpSection() string {
	var b strings.Builder
	fmt.Fprintf(&b, "bgp:\n  asn: %d\n  router_id: %s\n  priority: prepend\n", replicaASN, r.Addr)
	if h := r.lab.Opts.BGPHoldTime; h > 0 {
		fmt.Fprintf(&b, "  hold_time: %s\n", h)
	}
	pw := filepath.Join(r.Dir, "bgp.pw")
	fmt.Fprintf(&b, "  peers:\n    - address: %s\n      asn: %d\n      password_file: %s\n", r.Gateway, routerASN, pw)
	if r.lab.RB2 != nil && r.Name == "sb" {
		fmt.Fprintf(&b, "    - address: %s\n      asn: %d\n      password_file: %s\n", host(netRB2SB, 1).Addr(), routerASN, pw)
	}
	return b.String()
}

// bgpPassword signs every session between a replica and a router with TCP
// MD5 (RFC 2385), as the router configs in advertisers/bgp/README.md do.
const bgpPassword = "lab-bgp-md5"

// SuspendRipcord stops ripcord with SIGSTOP, as a hung host would: nothing
// is withdrawn and no session is closed; BGP routers notice only when the
// hold time runs out.
func (r *Replica) SuspendRipcord() error { return r.signalRipcord(syscall.SIGSTOP) }

// ResumeRipcord continues a suspended ripcord.
func (r *Replica) ResumeRipcord() error { return r.signalRipcord(syscall.SIGCONT) }

func (r *Replica) signalRipcord(sig syscall.Signal) error {
	if !r.RipcordRunning() {
		return fmt.Errorf("lab: ripcord on %s is not running", r.Name)
	}
	return r.ripcord.Cmd.Process.Signal(sig)
}
