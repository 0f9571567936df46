package routers

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// BIRDBGP is BIRD 2 with BGP sessions in one namespace.
type BIRDBGP struct{ *BIRD }

var _ BGPRouter = (*BIRDBGP)(nil)

// StartBIRDBGP starts BIRD with the config birdBGPConf writes (BIRD's
// default timers: hold 240 s, keepalive 80 s) and waits until it answers.
// The connected networks of cfg.Interfaces go into BGP, so hosts at both
// sites reach each other.
func StartBIRDBGP(ctx context.Context, cfg Config, b BGP) (*BIRDBGP, error) {
	bird, err := startBIRD(ctx, cfg, func(dir string) string { return birdBGPConf(cfg, b, dir) },
		func(context.Context, *BIRD) error { return nil })
	if err != nil {
		return nil, err
	}
	return &BIRDBGP{bird}, nil
}

// birdBGPConf is the router side of advertisers/bgp/README.md.
func birdBGPConf(cfg Config, b BGP, dir string) string {
	var s strings.Builder
	fmt.Fprintf(&s, "log %q all;\nrouter id %s;\n", filepath.Join(dir, "bird.log"), b.RouterID)
	// Times with microseconds: Paths and Established read them.
	s.WriteString("timeformat route \"%F %T.%6f\";\ntimeformat protocol \"%F %T.%6f\";\n")
	s.WriteString("protocol device { scan time 10; }\n")
	s.WriteString("protocol kernel { ipv4 { import none; export all; }; }\n")
	s.WriteString("protocol direct {\n  ipv4;\n")
	for _, ifname := range cfg.Interfaces {
		fmt.Fprintf(&s, "  interface %q;\n", ifname)
	}
	s.WriteString("}\n")
	var services []string
	for _, n := range b.Neighbors {
		for _, p := range n.Accept {
			if !slicesContains(services, p.String()) {
				services = append(services, p.String())
			}
		}
	}
	if len(services) > 0 {
		fmt.Fprintf(&s, `define RIPCORD_SERVICES = [ %s ];
filter from_ripcord {
  if !(net ~ RIPCORD_SERVICES) then reject;
  # RFC 8326: a draining replica's route becomes the last resort.
  if (65535, 0) ~ bgp_community then bgp_local_pref = 0;
  accept;
}
`, strings.Join(services, ", "))
	}
	for _, n := range b.Neighbors {
		// "bgp_" keeps names such as ra (a BIRD keyword) out of the grammar.
		fmt.Fprintf(&s, "protocol bgp bgp_%s {\n  local as %d;\n  neighbor %s as %d;\n", n.Name, b.ASN, n.Address, n.ASN)
		if n.Password != "" {
			fmt.Fprintf(&s, "  password %q;\n", n.Password)
		}
		switch {
		case len(n.Accept) > 0:
			// BIRD's default error wait time (60-300 s) would keep a replica
			// that hung or lost its link out for a minute or more after it
			// is back, although ripcord retries every 5 s.
			s.WriteString("  passive on;\n  error wait time 5, 30;\n  ipv4 { import filter from_ripcord; export none; };\n")
		case n.ASN == b.ASN:
			s.WriteString("  direct;\n  ipv4 { import all; export all; next hop self; };\n")
		default:
			s.WriteString("  ipv4 { import all; export all; };\n")
		}
		s.WriteString("}\n")
	}
	return s.String()
}

func slicesContains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// Route implements Router: the best path, its AS-path length as metric.
func (b *BIRDBGP) Route(ctx context.Context, prefix netip.Prefix) (Route, error) {
	paths, err := b.Paths(ctx, prefix)
	if err != nil {
		return Route{}, err
	}
	return bestRoute(paths), nil
}

// Rejected implements Router: BGP has no RIP packets to reject.
func (b *BIRDBGP) Rejected(context.Context) (int, error) { return 0, nil }

// Paths implements BGPRouter with `show route PREFIX all`.
func (b *BIRDBGP) Paths(ctx context.Context, prefix netip.Prefix) ([]BGPPath, error) {
	out, err := b.birdc(ctx, "show", "route", prefix.String(), "all")
	if err != nil {
		if strings.Contains(out, "Network not found") {
			return nil, nil
		}
		return nil, err
	}
	return parseBIRDPaths(out)
}

// parseBIRDPaths reads the BGP routes of `show route X all`:
//
//	10.77.100.1/32       unicast [sa 2026-12-01 15:20:01.123456] * (100) [AS65010i]
//		via 10.77.2.2 on ra-sa
//		Type: BGP univ
//		BGP.as_path: 65010
//		BGP.next_hop: 10.77.2.2
//		BGP.local_pref: 100
//		BGP.community: (65535,0)
//	                     unicast [rb 2026-12-01 15:20:02.654321] (100) [AS65010i]
//		...
func parseBIRDPaths(out string) ([]BGPPath, error) {
	var paths []BGPPath
	var cur *BGPPath
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if i := strings.Index(line, "unicast ["); i >= 0 {
			paths = append(paths, BGPPath{MED: -1, LocalPref: 100})
			cur = &paths[len(paths)-1]
			rest := line[i+len("unicast ["):]
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return nil, fmt.Errorf("routers: bird route line %q", line)
			}
			f := strings.Fields(rest[:end])
			if len(f) >= 3 {
				if t, err := time.ParseInLocation("2006-01-02 15:04:05.999999", f[1]+" "+f[2], time.Local); err == nil {
					cur.Since = t
				}
			}
			cur.Best = strings.HasPrefix(strings.TrimSpace(rest[end+1:]), "*")
			continue
		}
		if cur == nil {
			continue
		}
		key, val, ok := strings.Cut(trimmed, ":")
		val = strings.TrimSpace(val)
		switch {
		case strings.HasPrefix(trimmed, "via "):
			f := strings.Fields(trimmed)
			nh, err := netip.ParseAddr(f[1])
			if err != nil {
				return nil, fmt.Errorf("routers: bird next hop in %q: %w", trimmed, err)
			}
			cur.NextHop = nh
		case !ok:
		case key == "BGP.as_path":
			for _, a := range strings.Fields(val) {
				n, err := strconv.ParseUint(a, 10, 32)
				if err != nil {
					return nil, fmt.Errorf("routers: bird as_path %q: %w", val, err)
				}
				cur.ASPath = append(cur.ASPath, uint32(n))
			}
		case key == "BGP.local_pref":
			n, err := strconv.Atoi(val)
			if err != nil {
				return nil, fmt.Errorf("routers: bird local_pref %q: %w", val, err)
			}
			cur.LocalPref = n
		case key == "BGP.med":
			n, err := strconv.Atoi(val)
			if err != nil {
				return nil, fmt.Errorf("routers: bird med %q: %w", val, err)
			}
			cur.MED = n
		case key == "BGP.community":
			cur.GracefulShutdown = strings.Contains(val, "(65535,0)")
		case key == "BGP.from" || (key == "BGP.next_hop" && !cur.From.IsValid()):
			// BGP.from appears only when it differs from the next hop.
			a, err := netip.ParseAddr(val)
			if err == nil {
				cur.From = a
			}
		}
	}
	// The table may hold non-BGP routes for the prefix (none in the lab);
	// the best comes first as with FRR.
	for i, p := range paths {
		if p.Best && i > 0 {
			paths[0], paths[i] = paths[i], paths[0]
		}
	}
	return paths, nil
}

// Established implements BGPRouter with `show protocols`.
func (b *BIRDBGP) Established(ctx context.Context) (map[netip.Addr]time.Time, error) {
	out, err := b.birdc(ctx, "show", "protocols", "all")
	if err != nil {
		return nil, err
	}
	return parseBIRDProtocols(out)
}

// parseBIRDProtocols reads `show protocols all`:
//
//	sa         BGP        ---        up     2026-12-01 15:20:01.123456  Established
//	  ...
//	  BGP state:          Established
//	    Neighbor address: 10.77.2.2
func parseBIRDProtocols(out string) (map[netip.Addr]time.Time, error) {
	up := map[netip.Addr]time.Time{}
	var since time.Time
	var established bool
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) >= 6 && f[1] == "BGP" && !strings.HasPrefix(line, " ") {
			established = f[len(f)-1] == "Established"
			since, _ = time.ParseInLocation("2006-01-02 15:04:05.999999", f[4]+" "+f[5], time.Local)
			continue
		}
		if len(f) == 3 && f[0] == "Neighbor" && f[1] == "address:" && established {
			a, err := netip.ParseAddr(f[2])
			if err != nil {
				return nil, fmt.Errorf("routers: bird neighbor %q: %w", line, err)
			}
			up[a] = since
		}
	}
	return up, nil
}
