package routers

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
)

const frrBgpd = "/usr/lib/frr/bgpd"

// FRRBGP is zebra + bgpd in one namespace.
type FRRBGP struct{ *FRR }

var _ BGPRouter = (*FRRBGP)(nil)

// StartFRRBGP starts zebra and bgpd with the config frrBgpdConf writes
// (FRR's default timers: keepalive 60 s, hold 180 s, MRAI 0) and waits
// until bgpd answers on its vty socket. The connected networks of the
// router are redistributed, so hosts at both sites reach each other.
func StartFRRBGP(ctx context.Context, cfg Config, b BGP) (*FRRBGP, error) {
	// Ready once bgpd's vty socket exists: vtysh itself can take seconds
	// on a busy machine, and every query waits for bgpd anyway.
	f, err := startFRR(ctx, cfg, frrBgpd, frrBgpdConf(b), func(ctx context.Context, f *FRR) error {
		_, err := os.Stat(filepath.Join(f.dir, "bgpd.vty"))
		return err
	})
	if err != nil {
		return nil, err
	}
	return &FRRBGP{f}, nil
}

// frrBgpdConf is the router side of advertisers/bgp/README.md. Route-maps
// and lists come before `router bgp`: a route-map used before it is defined
// denies everything until FRR's route-map timer runs.
func frrBgpdConf(b BGP) string {
	var s strings.Builder
	s.WriteString("frr defaults traditional\nhostname bgpd\n!\n")
	var replicas, peers []BGPNeighbor
	for _, n := range b.Neighbors {
		if len(n.Accept) > 0 {
			replicas = append(replicas, n)
		} else {
			peers = append(peers, n)
		}
	}
	if len(replicas) > 0 {
		// One list for all replicas: every replica may announce every
		// service address, and nothing else.
		var seen []netip.Prefix
		seq := 0
		for _, n := range replicas {
			for _, p := range n.Accept {
				if !containsPrefix(seen, p) {
					seen = append(seen, p)
					seq += 5
					fmt.Fprintf(&s, "ip prefix-list ripcord-services seq %d permit %s\n", seq, p)
				}
			}
		}
		s.WriteString(`!
bgp community-list standard gshut permit graceful-shutdown
!
route-map from-ripcord permit 10
 match ip address prefix-list ripcord-services
 match community gshut
 set local-preference 0
!
route-map from-ripcord permit 20
 match ip address prefix-list ripcord-services
!
route-map to-ripcord deny 10
!
`)
	}
	fmt.Fprintf(&s, "router bgp %d\n bgp router-id %s\n", b.ASN, b.RouterID)
	for _, n := range b.Neighbors {
		fmt.Fprintf(&s, " neighbor %s remote-as %d\n", n.Address, n.ASN)
		if len(n.Accept) > 0 {
			fmt.Fprintf(&s, " neighbor %s description ripcord on %s\n neighbor %s passive\n", n.Address, n.Name, n.Address)
		} else {
			fmt.Fprintf(&s, " neighbor %s description %s\n", n.Address, n.Name)
		}
		if n.Password != "" {
			fmt.Fprintf(&s, " neighbor %s password %s\n", n.Address, n.Password)
		}
	}
	s.WriteString(" !\n address-family ipv4 unicast\n  redistribute connected\n")
	for _, n := range replicas {
		fmt.Fprintf(&s, "  neighbor %s route-map from-ripcord in\n  neighbor %s route-map to-ripcord out\n", n.Address, n.Address)
	}
	for _, n := range peers {
		if n.ASN == b.ASN {
			fmt.Fprintf(&s, "  neighbor %s next-hop-self\n", n.Address)
		}
	}
	s.WriteString(" exit-address-family\n!\n")
	return s.String()
}

func containsPrefix(ps []netip.Prefix, p netip.Prefix) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}

// Kind implements Router.
func (f *FRRBGP) Kind() string { return "frr" }

// Route implements Router: the best path, its AS-path length as metric.
func (f *FRRBGP) Route(ctx context.Context, prefix netip.Prefix) (Route, error) {
	paths, err := f.Paths(ctx, prefix)
	if err != nil {
		return Route{}, err
	}
	return bestRoute(paths), nil
}

// Rejected implements Router: BGP has no RIP packets to reject.
func (f *FRRBGP) Rejected(context.Context) (int, error) { return 0, nil }

// Paths implements BGPRouter with `show bgp ipv4 unicast PREFIX json`.
func (f *FRRBGP) Paths(ctx context.Context, prefix netip.Prefix) ([]BGPPath, error) {
	out, err := f.vtysh(ctx, "show bgp ipv4 unicast "+prefix.String()+" json")
	if err != nil {
		return nil, err
	}
	return parseFRRPaths([]byte(out))
}

func parseFRRPaths(out []byte) ([]BGPPath, error) {
	var v struct {
		Paths []struct {
			ASPath struct {
				Segments []struct {
					List []uint32 `json:"list"`
				} `json:"segments"`
			} `json:"aspath"`
			MED       *int `json:"metric"`
			LocalPref *int `json:"locPrf"`
			Community struct {
				String string `json:"string"`
			} `json:"community"`
			Nexthops []struct {
				IP string `json:"ip"`
			} `json:"nexthops"`
			Peer struct {
				PeerID string `json:"peerId"`
			} `json:"peer"`
			Bestpath struct {
				Overall bool `json:"overall"`
			} `json:"bestpath"`
			LastUpdate struct {
				Epoch int64 `json:"epoch"`
			} `json:"lastUpdate"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		return nil, fmt.Errorf("routers: frr bgp paths %q: %w", out, err)
	}
	var paths []BGPPath
	for _, p := range v.Paths {
		bp := BGPPath{MED: -1, LocalPref: 100, Best: p.Bestpath.Overall, Since: time.Unix(p.LastUpdate.Epoch, 0),
			GracefulShutdown: strings.Contains(p.Community.String, "graceful-shutdown")}
		for _, seg := range p.ASPath.Segments {
			bp.ASPath = append(bp.ASPath, seg.List...)
		}
		if p.MED != nil {
			bp.MED = *p.MED
		}
		if p.LocalPref != nil {
			bp.LocalPref = *p.LocalPref
		}
		bp.From, _ = netip.ParseAddr(p.Peer.PeerID)
		if len(p.Nexthops) > 0 {
			nh, err := netip.ParseAddr(p.Nexthops[0].IP)
			if err != nil {
				return nil, fmt.Errorf("routers: frr next hop %q: %w", p.Nexthops[0].IP, err)
			}
			bp.NextHop = nh
		}
		if bp.Best {
			paths = append([]BGPPath{bp}, paths...)
		} else {
			paths = append(paths, bp)
		}
	}
	return paths, nil
}

// Established implements BGPRouter with `show bgp ipv4 unicast summary json`.
func (f *FRRBGP) Established(ctx context.Context) (map[netip.Addr]time.Time, error) {
	out, err := f.vtysh(ctx, "show bgp ipv4 unicast summary json")
	if err != nil {
		return nil, err
	}
	return parseFRRSummary([]byte(out))
}

func parseFRRSummary(out []byte) (map[netip.Addr]time.Time, error) {
	var v struct {
		Peers map[string]struct {
			State       string `json:"state"`
			UptimeEpoch int64  `json:"peerUptimeEstablishedEpoch"`
		} `json:"peers"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		return nil, fmt.Errorf("routers: frr bgp summary %q: %w", out, err)
	}
	up := map[netip.Addr]time.Time{}
	for addr, p := range v.Peers {
		a, err := netip.ParseAddr(addr)
		if err != nil {
			return nil, fmt.Errorf("routers: frr bgp peer %q: %w", addr, err)
		}
		if p.State == "Established" {
			up[a] = time.Unix(p.UptimeEpoch, 0)
		}
	}
	return up, nil
}
