package routers

import (
	"context"
	"net/netip"
	"time"
)

// BGP is a router's BGP side. The router exchanges everything with its
// router neighbours and, from a replica neighbour, takes in only the service
// addresses: that is what an operator gives a host that may announce
// anycast /32s, and the configs are the snippets of advertisers/bgp/README.md.
type BGP struct {
	ASN      uint32
	RouterID netip.Addr
	// Neighbors are the sessions, in order.
	Neighbors []BGPNeighbor
}

// BGPNeighbor is one session of a BGP router.
type BGPNeighbor struct {
	// Name names the session (in BIRD, protocol bgp_NAME): letters, digits, _.
	Name    string
	Address netip.Addr
	ASN     uint32
	// Accept, when set, makes the neighbour a replica: the session is
	// passive (ripcord never listens), only these prefixes are accepted,
	// a route carrying GRACEFUL_SHUTDOWN (RFC 8326) gets LOCAL_PREF 0, and
	// nothing is sent to it. Without it the neighbour is a router of the
	// same AS (iBGP, next hop self, every route in both directions).
	Accept []netip.Prefix
	// Password, when set, makes the session use TCP MD5 signatures
	// (RFC 2385).
	Password string
}

// BGPPath is one path a BGP router holds for a prefix.
type BGPPath struct {
	From      netip.Addr // the neighbour it came from
	NextHop   netip.Addr
	ASPath    []uint32
	LocalPref int
	MED       int // -1: none
	// GracefulShutdown: the path carries the community 65535:0.
	GracefulShutdown bool
	Best             bool
	// Since is when the router last took in a change of this path.
	Since time.Time
}

// BGPRouter is a running BGP router.
type BGPRouter interface {
	Router
	// Paths lists every path the router holds for prefix (Adj-RIB-In after
	// import policy), the best first.
	Paths(ctx context.Context, prefix netip.Prefix) ([]BGPPath, error)
	// Established lists the neighbours whose session is up, with the time
	// it came up.
	Established(ctx context.Context) (map[netip.Addr]time.Time, error)
}

// bestRoute is Route for a BGP router: the best path, with the AS-path
// length in place of the RIP metric.
func bestRoute(paths []BGPPath) Route {
	for _, p := range paths {
		if p.Best {
			return Route{Present: true, Metric: len(p.ASPath), NextHop: p.NextHop}
		}
	}
	return Route{Metric: 16}
}
