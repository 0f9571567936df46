// Package lab builds the paper's two-site topology in network namespaces and
// runs it: two RIP routers (FRR ripd with default timers, or BIRD), two
// replicas each running real slapd, FreeRADIUS and nginx behind ripcord, and
// two clients that ask the anycast addresses which replica answers.
//
//	ca --- ra ========= rb --- cb
//	        |            |
//	       sa           sb
//
// The demo (`ripcord lab`), the end-to-end tests and the failover benchmark
// all use it.
package lab

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ripcord/ripcord/lab/netns"
	"github.com/ripcord/ripcord/lab/routers"
)

// Shape is how the replicas share the work.
type Shape string

const (
	// ShapeFailover: sa announces metric 1, sb metric 3; everyone uses sa
	// while it is healthy.
	ShapeFailover Shape = "failover"
	// ShapeLoadBalance: both announce metric 1; each site uses its own
	// replica.
	ShapeLoadBalance Shape = "loadbalance"
)

// The three services every replica runs, by their ripcord service names.
const (
	ServiceLDAP    = "ldap"
	ServiceRADIUS  = "radius"
	ServiceWebAuth = "webauth"
)

// Services lists the services in display order.
var Services = []string{ServiceLDAP, ServiceRADIUS, ServiceWebAuth}

// Addresses of the lab. They exist only inside the lab's own namespaces, so
// several labs can run side by side.
var (
	vips = map[string]netip.Prefix{
		ServiceLDAP:    netip.MustParsePrefix("10.77.100.1/32"),
		ServiceRADIUS:  netip.MustParsePrefix("10.77.100.2/32"),
		ServiceWebAuth: netip.MustParsePrefix("10.77.100.3/32"),
	}
	// linkNets number the five links; the router end is .1, the other .2.
	netRARB = netip.MustParsePrefix("10.77.0.0/24")
	netCARA = netip.MustParsePrefix("10.77.1.0/24")
	netSARA = netip.MustParsePrefix("10.77.2.0/24")
	netSBRB = netip.MustParsePrefix("10.77.3.0/24")
	netCBRB = netip.MustParsePrefix("10.77.4.0/24")
	// labNet covers every lab address: RADIUS clients are allowed from it.
	labNet = netip.MustParsePrefix("10.77.0.0/16")
)

// VIP is the anycast address of a service.
func VIP(service string) netip.Prefix { return vips[service] }

// The IPv6 side of a dual-stack lab (Options.IPv6): every link also has an
// IPv6 /64 (fd77:N::/64 beside 10.77.N.0/24, the router end ::1) and every
// service a vip6, announced with RIPng.
var (
	vips6 = map[string]netip.Prefix{
		ServiceLDAP:    netip.MustParsePrefix("fd77:100::1/128"),
		ServiceRADIUS:  netip.MustParsePrefix("fd77:100::2/128"),
		ServiceWebAuth: netip.MustParsePrefix("fd77:100::3/128"),
	}
	labNet6 = netip.MustParsePrefix("fd77::/16")
)

// VIP6 is the IPv6 anycast address of a service.
func VIP6(service string) netip.Prefix { return vips6[service] }

// Over6 names a service as probed over IPv6 ("ldap6"): the clients of a
// dual-stack lab ask both addresses, and keep the answers apart.
func Over6(service string) string { return service + "6" }

// probeTarget is the base service and the VIP a probed name stands for.
func probeTarget(name string) (string, netip.Addr) {
	if base, ok := strings.CutSuffix(name, "6"); ok && vips6[base].IsValid() {
		return base, VIP6(base).Addr()
	}
	return name, VIP(name).Addr()
}

// Probed lists what the clients ask: every service, and with IPv6 every
// service again over its vip6.
func (l *Lab) Probed() []string {
	if !l.Opts.IPv6 {
		return Services
	}
	out := slices.Clone(Services)
	for _, s := range Services {
		out = append(out, Over6(s))
	}
	return out
}

// link6 is the IPv6 /64 beside a link's IPv4 /24: 10.77.N.0/24 -> fd77:N::/64.
func link6(p netip.Prefix) netip.Prefix {
	a := p.Addr().As4()
	return netip.PrefixFrom(netip.AddrFrom16([16]byte{0xfd, 0x77, 0, a[2]}), 64)
}

// host6 is host n of a link's IPv6 /64.
func host6(p netip.Prefix, n byte) netip.Prefix {
	a := link6(p).Addr().As16()
	a[15] = n
	return netip.PrefixFrom(netip.AddrFrom16(a), 64)
}

// ripKey authenticates RIP on every link of the lab (keyed MD5, which FRR and
// BIRD both speak), as the router-side config in advertisers/rip/README.md
// recommends.
const ripKey = "lab-rip-key"

// SpareVIP is a service address no lab service uses that the routers
// accept from the replicas, as an operator lists a VIP in the routers'
// filters before adding its service (the reload test adds one).
var SpareVIP = netip.MustParsePrefix("10.77.100.4/32")

// Options describe a lab.
type Options struct {
	Shape Shape
	// Routers is "frr" (default) or "bird".
	Routers string
	// Protocol is what the replicas speak to the routers: "rip" (default)
	// or "bgp" (an eBGP session from each replica to its site router, the
	// routers iBGP peers; see lab/bgp.go).
	Protocol string
	// BGPHoldTime is the replicas' bgp.hold_time (default: ripcord's, 90s).
	BGPHoldTime time.Duration
	// SecondRouterB adds rb2, a second router at sb's site (BGP only):
	// linked to sb and rb, iBGP with rb; sb peers with both.
	SecondRouterB bool
	// NoAssist turns peer assistance off: replicas only poison their own
	// routes (the baseline).
	NoAssist bool
	// NoReadvertise sets rip.readvertise_on_poison: false on the replicas
	// (to measure what that re-advertisement is worth).
	NoReadvertise bool
	// LastResortMetric is the services' last_resort_metric (0: none).
	LastResortMetric int
	// FailbackDelay is the replicas' failback_delay (default 10s).
	FailbackDelay time.Duration
	// CheckInterval is the interval of every own service check (default
	// 500ms); the peer checks poll the peer's ripcord every 200ms.
	CheckInterval time.Duration
	// CheckTimeout is the timeout of every own service check (default the
	// interval, which is also its upper bound).
	CheckTimeout time.Duration
	// Fall is the fall of every own service check (default 2).
	Fall int
	// AssistDelay is assist.delay (default 100ms): the peer check fires
	// only after the peer sent its poison; this is the routers' slack to
	// process it before this replica's change arrives.
	AssistDelay time.Duration
	// IPv6 makes the lab dual-stack: every link and service also has an
	// IPv6 address, the routers run RIPng beside RIPv2 (FRR ripngd, BIRD
	// rip ng), ripcord announces each vip6 with RIPng, and the clients ask
	// both addresses (Probed). RIP only.
	IPv6 bool
	// Relay configures make-before-break on both replicas: each service's
	// port relayed to the peer while it is broken (needs assistance).
	Relay bool
	// FastInterval is the own checks' fast_interval (default 50ms with
	// Relay, else ripcord's default).
	FastInterval time.Duration
	// Ripcord is the ripcord binary run on the replicas. Required.
	Ripcord string
	// BaseDir holds the lab directory (default os.TempDir()). FRR runs as
	// user frr and must reach it, so avoid private test directories.
	BaseDir string
	// KeepFiles leaves the lab directory (configs and logs) in place after
	// Close.
	KeepFiles bool
	// Logf, when set, receives progress messages.
	Logf func(format string, args ...any)
}

func (o *Options) defaults() error {
	switch o.Shape {
	case "":
		o.Shape = ShapeFailover
	case ShapeFailover, ShapeLoadBalance:
	default:
		return fmt.Errorf("lab: unknown shape %q (failover or loadbalance)", o.Shape)
	}
	if o.SecondRouterB && o.Protocol != "bgp" {
		return errors.New("lab: a second router at sb's site needs protocol bgp")
	}
	switch o.Routers {
	case "":
		o.Routers = "frr"
	case "frr", "bird":
	default:
		return fmt.Errorf("lab: unknown routers %q (frr or bird)", o.Routers)
	}
	switch o.Protocol {
	case "":
		o.Protocol = "rip"
	case "rip", "bgp":
	default:
		return fmt.Errorf("lab: unknown protocol %q (rip or bgp)", o.Protocol)
	}
	if o.FailbackDelay <= 0 {
		o.FailbackDelay = 10 * time.Second
	}
	if o.CheckInterval <= 0 {
		o.CheckInterval = 500 * time.Millisecond
	}
	if o.CheckTimeout <= 0 {
		o.CheckTimeout = o.CheckInterval
	}
	if o.Fall <= 0 {
		o.Fall = 2
	}
	if o.AssistDelay <= 0 {
		o.AssistDelay = 100 * time.Millisecond
	}
	if o.IPv6 && o.Protocol != "rip" {
		return errors.New("lab: IPv6 needs protocol rip (RIPng beside RIPv2)")
	}
	if o.Relay && o.NoAssist {
		return errors.New("lab: Relay needs peer assistance (its peer checks say which peer is up)")
	}
	if o.FastInterval <= 0 && o.Relay {
		o.FastInterval = 50 * time.Millisecond
	}
	if o.FastInterval <= 0 {
		o.FastInterval = min(time.Second, o.CheckInterval)
	}
	if o.Ripcord == "" {
		return errors.New("lab: Options.Ripcord (the ripcord binary) is required")
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	return nil
}

// Router is one of the lab's routers.
type Router struct {
	Name   string // "ra" or "rb"
	NS     *netns.NS
	Router routers.Router
	// Links maps the neighbour's role name to the router's interface.
	Links map[string]string
}

// Client is one of the lab's client hosts.
type Client struct {
	Name string // "ca" or "cb"
	NS   *netns.NS
	Addr netip.Addr
}

// linkEnd is one end of a lab link, with its IPv6 address in a dual-stack lab.
func (l *Lab) linkEnd(ns *netns.NS, dev string, p netip.Prefix, n byte) netns.End {
	e := netns.End{NS: ns, Dev: dev, Addr: host(p, n)}
	if l.Opts.IPv6 {
		e.Addr6 = host6(p, n)
	}
	return e
}

// Lab is a running lab.
type Lab struct {
	Opts     Options
	Dir      string
	RA, RB   *Router
	RB2      *Router // only with Options.SecondRouterB
	SA, SB   *Replica
	CA, CB   *Client
	started  time.Time
	nss      []*netns.NS
	teardown []func() error
}

// Replicas returns sa and sb.
func (l *Lab) Replicas() []*Replica { return []*Replica{l.SA, l.SB} }

// Clients returns ca and cb.
func (l *Lab) Clients() []*Client { return []*Client{l.CA, l.CB} }

// Replica returns the replica with that role name.
func (l *Lab) Replica(name string) *Replica {
	for _, r := range l.Replicas() {
		if r.Name == name {
			return r
		}
	}
	return nil
}

// Namespaces returns the names of the lab's namespaces by role.
func (l *Lab) Namespaces() map[string]string {
	m := map[string]string{}
	for _, r := range []*Router{l.RA, l.RB} {
		if r != nil {
			m[r.Name] = r.NS.Name
		}
	}
	for _, r := range l.Replicas() {
		if r != nil {
			m[r.Name] = r.NS.Name
		}
	}
	for _, c := range l.Clients() {
		if c != nil {
			m[c.Name] = c.NS.Name
		}
	}
	return m
}

// Home is the replica each client uses while both replicas are healthy.
func (l *Lab) Home(client string) string {
	if l.Opts.Shape == ShapeLoadBalance && client == "cb" {
		return "sb"
	}
	return "sa"
}

// Build creates the namespaces and links, starts the routers, the services
// and ripcord on both replicas. It does not wait for the routes to converge:
// use WaitServing. On error everything already made is torn down.
func Build(ctx context.Context, opts Options) (*Lab, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("lab: needs root (network namespaces)")
	}
	if err := Prerequisites(opts.Routers); err != nil {
		return nil, err
	}
	base := opts.BaseDir
	if base == "" {
		base = os.TempDir()
	}
	dir, err := os.MkdirTemp(base, "ripcord-lab-")
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	// The routers run as user frr and need to traverse into their own
	// directories below this one.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	l := &Lab{Opts: opts, Dir: dir, started: time.Now()}
	if err := l.build(ctx); err != nil {
		return nil, errors.Join(err, l.Close())
	}
	return l, nil
}

func (l *Lab) newNS(role string) (*netns.NS, error) {
	ns, err := netns.New("rc" + role + "-")
	if err != nil {
		return nil, err
	}
	l.nss = append(l.nss, ns)
	return ns, nil
}

func host(p netip.Prefix, n byte) netip.Prefix {
	a := p.Addr().As4()
	a[3] = n
	return netip.PrefixFrom(netip.AddrFrom4(a), p.Bits())
}

func (l *Lab) build(ctx context.Context) error {
	o := l.Opts
	o.Logf("lab: building namespaces and links in %s", l.Dir)
	roles := map[string]*netns.NS{}
	for _, role := range []string{"ra", "rb", "sa", "sb", "ca", "cb"} {
		ns, err := l.newNS(role)
		if err != nil {
			return err
		}
		roles[role] = ns
	}
	l.RA = &Router{Name: "ra", NS: roles["ra"], Links: map[string]string{"ca": "ra-ca", "sa": "ra-sa", "rb": "ra-rb"}}
	l.RB = &Router{Name: "rb", NS: roles["rb"], Links: map[string]string{"cb": "rb-cb", "sb": "rb-sb", "ra": "rb-ra"}}
	l.CA = &Client{Name: "ca", NS: roles["ca"], Addr: host(netCARA, 2).Addr()}
	l.CB = &Client{Name: "cb", NS: roles["cb"], Addr: host(netCBRB, 2).Addr()}
	l.SA = &Replica{Name: "sa", NS: roles["sa"], Addr: host(netSARA, 2).Addr(), Gateway: host(netSARA, 1).Addr(), lab: l}
	l.SB = &Replica{Name: "sb", NS: roles["sb"], Addr: host(netSBRB, 2).Addr(), Gateway: host(netSBRB, 1).Addr(), lab: l}
	l.SA.peer, l.SB.peer = l.SB, l.SA
	if o.IPv6 {
		l.SA.Gateway6, l.SB.Gateway6 = host6(netSARA, 1).Addr(), host6(netSBRB, 1).Addr()
	}

	links := []struct {
		a, b       netns.End
		net        netip.Prefix // the host end's default route goes via the router end (.1)
		hostNSRole string
	}{
		{a: l.linkEnd(roles["ra"], "ra-rb", netRARB, 1), b: l.linkEnd(roles["rb"], "rb-ra", netRARB, 2)},
		{a: l.linkEnd(roles["ra"], "ra-ca", netCARA, 1), b: l.linkEnd(roles["ca"], "eth0", netCARA, 2), net: netCARA, hostNSRole: "ca"},
		{a: l.linkEnd(roles["ra"], "ra-sa", netSARA, 1), b: l.linkEnd(roles["sa"], "eth0", netSARA, 2), net: netSARA, hostNSRole: "sa"},
		{a: l.linkEnd(roles["rb"], "rb-sb", netSBRB, 1), b: l.linkEnd(roles["sb"], "eth0", netSBRB, 2), net: netSBRB, hostNSRole: "sb"},
		{a: l.linkEnd(roles["rb"], "rb-cb", netCBRB, 1), b: l.linkEnd(roles["cb"], "eth0", netCBRB, 2), net: netCBRB, hostNSRole: "cb"},
	}
	for _, ln := range links {
		if err := netns.Veth(ln.a, ln.b); err != nil {
			return err
		}
		if ln.net.IsValid() {
			if _, err := roles[ln.hostNSRole].IP("route", "add", "default", "via", host(ln.net, 1).Addr().String()); err != nil {
				return err
			}
			if o.IPv6 {
				if _, err := roles[ln.hostNSRole].IP("-6", "route", "add", "default", "via", host6(ln.net, 1).Addr().String()); err != nil {
					return err
				}
			}
		}
	}
	if o.SecondRouterB {
		if err := l.addSecondRouterB(); err != nil {
			return err
		}
	}
	for _, r := range l.allRouters() {
		// Routers forward between their links.
		if _, err := r.NS.Exec(ctx, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"); err != nil {
			return err
		}
		if o.IPv6 {
			if _, err := r.NS.Exec(ctx, "sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1"); err != nil {
				return err
			}
		}
	}

	o.Logf("lab: starting %s routers speaking %s (default timers)", o.Routers, o.Protocol)
	for _, r := range l.allRouters() {
		ifaces := slices.Sorted(maps.Values(r.Links))
		// A replica's link accepts only the service /32s, as the router-side
		// config in advertisers/rip/README.md does.
		accept := map[string][]netip.Prefix{}
		for _, rep := range []string{"sa", "sb"} {
			if ifname, ok := r.Links[rep]; ok {
				for _, svc := range Services {
					accept[ifname] = append(accept[ifname], VIP(svc))
					if o.IPv6 {
						accept[ifname] = append(accept[ifname], VIP6(svc))
					}
				}
				accept[ifname] = append(accept[ifname], SpareVIP)
			}
		}
		// The replicas' links are authenticated; the links between routers
		// are not (see routers.Auth.Only: FRR would not answer the startup
		// Request of a router that starts second).
		cfg := routers.Config{NS: r.NS, Interfaces: ifaces, BaseDir: l.Dir, AnnounceConnected: true, Accept: accept, RIPng: o.IPv6,
			Auth: routers.Auth{Mode: routers.AuthMD5, KeyID: 1, Key: ripKey, Only: slices.Sorted(maps.Keys(accept))}}
		var err error
		switch {
		case o.Protocol == "bgp":
			r.Router, err = l.startBGPRouter(ctx, r, cfg)
		case o.Routers == "bird":
			r.Router, err = routers.StartBIRD(ctx, cfg)
		default:
			r.Router, err = routers.StartFRR(ctx, cfg)
		}
		if err != nil {
			return fmt.Errorf("lab: router %s: %w", r.Name, err)
		}
		l.teardown = append(l.teardown, r.Router.Stop)
	}

	if err := l.waitRouted(ctx); err != nil {
		return err
	}

	// sa first: sb's slapd replicates from it.
	for _, rep := range l.Replicas() {
		o.Logf("lab: starting slapd, FreeRADIUS, nginx and ripcord on %s", rep.Name)
		if err := rep.start(ctx); err != nil {
			return fmt.Errorf("lab: replica %s: %w", rep.Name, err)
		}
	}
	return nil
}

// waitRouted waits until each site's router reaches the other site's
// networks: a relayed request is answered straight from the peer, across
// both routers, and a lab that starts before that loses it.
func (l *Lab) waitRouted(ctx context.Context) error {
	far := map[*Router][]netip.Prefix{l.RA: {netSBRB, netCBRB}, l.RB: {netSARA, netCARA}}
	if l.Opts.IPv6 {
		for r, nets := range far {
			for _, p := range nets {
				far[r] = append(far[r], link6(p))
			}
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for r, nets := range far {
		for _, p := range nets {
			for {
				k, err := r.Router.Kernel(ctx, p)
				if err != nil {
					return fmt.Errorf("lab: router %s: %w", r.Name, err)
				}
				if k.Present {
					break
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("lab: router %s has no route to %v after 20s", r.Name, p)
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(100 * time.Millisecond):
				}
			}
		}
	}
	return nil
}

// Close stops every process by pid (ripcord first, so it poisons its routes
// while the routers still listen) and deletes the namespaces. It is safe to
// call more than once.
func (l *Lab) Close() error {
	var errs []error
	for _, rep := range l.Replicas() {
		if rep != nil {
			errs = append(errs, rep.stopAll())
		}
	}
	for i := len(l.teardown) - 1; i >= 0; i-- {
		errs = append(errs, l.teardown[i]())
	}
	l.teardown = nil
	for _, ns := range l.nss {
		errs = append(errs, ns.Delete())
	}
	l.nss = nil
	err := errors.Join(errs...)
	if err == nil && l.Dir != "" && !l.Opts.KeepFiles {
		err = os.RemoveAll(l.Dir)
	}
	return err
}

// RouterRoute reads a router's RIP table entry for a service's VIP.
func (l *Lab) RouterRoute(ctx context.Context, r *Router, service string) (routers.Route, error) {
	return r.Router.Route(ctx, VIP(service))
}

// Prerequisites reports every program the lab needs that is missing, with
// the Debian packages to install.
func Prerequisites(routerKind string) error {
	type need struct{ path, pkg string }
	needs := []need{{"ip", "iproute2"}, {"slapd", "slapd"}, {"slapadd", "slapd"},
		{"freeradius", "freeradius"}, {"nginx", "nginx"}}
	if routerKind == "bird" {
		needs = append(needs, need{"bird", "bird2"}, need{"birdc", "bird2"})
	} else {
		needs = append(needs, need{"/usr/lib/frr/zebra", "frr"}, need{"/usr/lib/frr/ripd", "frr"},
			need{"/usr/lib/frr/bgpd", "frr"}, need{"vtysh", "frr"})
	}
	var missing, pkgs []string
	for _, n := range needs {
		if _, err := lookPath(n.path); err != nil {
			missing = append(missing, n.path)
			if !slices.Contains(pkgs, n.pkg) {
				pkgs = append(pkgs, n.pkg)
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("lab: missing %v: install with `apt-get install -y %s` (or run scripts/setup)",
			missing, strings.Join(pkgs, " "))
	}
	return nil
}

// labDir makes a subdirectory of the lab directory.
func (l *Lab) labDir(parts ...string) (string, error) {
	d := filepath.Join(append([]string{l.Dir}, parts...)...)
	if err := os.MkdirAll(d, 0o755); err != nil {
		return "", fmt.Errorf("lab: %w", err)
	}
	return d, nil
}

// LogTail returns the last lines of every ripcord log of the lab, for
// failure reports.
func (l *Lab) LogTail(lines int) string {
	var b strings.Builder
	for _, r := range l.Replicas() {
		if r == nil || r.Dir == "" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(r.Dir, "ripcord.log"))
		if err != nil {
			continue
		}
		all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(all) > lines {
			all = all[len(all)-lines:]
		}
		fmt.Fprintf(&b, "--- ripcord on %s (%s)\n%s\n", r.Name, r.Config, strings.Join(all, "\n"))
	}
	return b.String()
}

// WaitHealthy polls both ripcords until every service is up and announced
// with its base metric (over the lab's protocol), or ctx ends.
func (l *Lab) WaitHealthy(ctx context.Context) error {
	for {
		var notYet []string
		for _, r := range l.Replicas() {
			rep, err := r.Status()
			if err != nil {
				notYet = append(notYet, fmt.Sprintf("%s: %v", r.Name, err))
				continue
			}
			advs := []string{l.Opts.Protocol}
			if l.Opts.IPv6 {
				advs = append(advs, "ripng")
			}
			for _, s := range rep.Services {
				for _, p := range advs {
					if s.State != "up" || s.Announced[p] != r.metric() {
						notYet = append(notYet, fmt.Sprintf("%s/%s: %s (%s), %s metric %d", r.Name, s.Name, s.State, s.Reason, p, s.Announced[p]))
					}
				}
			}
		}
		if len(notYet) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("lab: replicas not healthy: %s", strings.Join(notYet, "; "))
		case <-time.After(200 * time.Millisecond):
		}
	}
}
