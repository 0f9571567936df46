package lab

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"syscall"

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

// startBGPRouter starts ra or rb as a BGP router: a session to the replica
// of its site (accepting only the service /32s) and one to the other router.
func (l *Lab) startBGPRouter(ctx context.Context, r *Router, cfg routers.Config) (routers.Router, error) {
	b := routers.BGP{ASN: routerASN, RouterID: l.routerAddr(r.Name)}
	for _, rep := range l.Replicas() {
		if _, ok := r.Links[rep.Name]; ok {
			var accept []netip.Prefix
			for _, svc := range Services {
				accept = append(accept, VIP(svc))
			}
			b.Neighbors = append(b.Neighbors, routers.BGPNeighbor{Name: rep.Name, Address: rep.Addr, ASN: replicaASN, Accept: accept})
		}
	}
	for _, other := range []string{"ra", "rb"} {
		if _, ok := r.Links[other]; ok {
			b.Neighbors = append(b.Neighbors, routers.BGPNeighbor{Name: other, Address: l.routerAddr(other), ASN: routerASN})
		}
	}
	if l.Opts.Routers == "bird" {
		return routers.StartBIRDBGP(ctx, cfg, b)
	}
	return routers.StartFRRBGP(ctx, cfg, b)
}

// routerAddr is a router's address on the link between the routers (also
// its router ID).
func (l *Lab) routerAddr(name string) netip.Addr {
	if name == "rb" {
		return host(netRARB, 2).Addr()
	}
	return host(netRARB, 1).Addr()
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
	fmt.Fprintf(&b, "  peers:\n    - address: %s\n      asn: %d\n", r.Gateway, routerASN)
	return b.String()
}

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
