// Package config is ripcord's configuration: one strict YAML file. Unknown
// keys, bad values and inconsistencies are errors of the form
// FILE:LINE:COL: key: message. Defaults live in defaults.go.
package config

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ripcord/ripcord/advertisers/rip"
	"github.com/ripcord/ripcord/control"
	"github.com/ripcord/ripcord/core"
	"github.com/ripcord/ripcord/internal/regfile"
	"github.com/ripcord/ripcord/plugins/checkapi"
	"github.com/ripcord/ripcord/relay"
	"gopkg.in/yaml.v3"
)

// Config is the whole file.
type Config struct {
	// Node names this replica in status output and logs (default: hostname).
	Node string `yaml:"node"`
	// StateDir keeps what must survive a restart (drain flags, RIP sequence numbers).
	StateDir string  `yaml:"state_dir"`
	Log      Log     `yaml:"log"`
	Control  Control `yaml:"control"`
	Plugins  Plugins `yaml:"plugins"`
	RIP      *RIP    `yaml:"rip"`
	RIPng    *RIPng  `yaml:"ripng"`
	BGP      *BGP    `yaml:"bgp"`
	// RelayAddress is this replica's own unicast address, the local end of
	// the relay tunnels to its peers (default: the source address the
	// kernel picks towards the first relay peer).
	RelayAddress netip.Addr `yaml:"relay_address"`
	// RelayTunnel tunes the relay's VXLAN tunnel (zero: relay's defaults);
	// every replica must use the same port and VNI.
	RelayTunnel RelayTunnel `yaml:"relay_tunnel"`
	Services    []Service   `yaml:"services"`

	dec     *decoder
	secrets []secretFile
}

// Log selects the log output.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

// Control is the local API.
type Control struct {
	Socket        string `yaml:"socket"`         // unix socket, mode 0600
	MetricsListen string `yaml:"metrics_listen"` // host:port for Prometheus, empty = off
	// MetricsAllow lists the addresses or prefixes that may use
	// MetricsListen (Prometheus, the peers); empty = anyone.
	MetricsAllow []string `yaml:"metrics_allow"`
}

// MetricsAllowed is Control.MetricsAllow parsed (validated by Load).
func (c *Config) MetricsAllowed() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range c.Control.MetricsAllow {
		if p, err := parseNetwork(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// parseNetwork accepts an address (a host) or a prefix.
func parseNetwork(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is neither an address nor a prefix (example: 10.0.2.10 or 10.0.9.0/24)", s)
	}
	return p.Masked(), nil
}

// Plugins says where third-party checkers live and how they are pinned.
type Plugins struct {
	Dir    string            `yaml:"dir"`
	SHA256 map[string]string `yaml:"sha256"`
}

// RIP configures the announce-only RIPv2 speaker.
type RIP struct {
	Interfaces     []RIPInterface `yaml:"interfaces"`
	UpdateInterval Duration       `yaml:"update_interval"`
	Auth           RIPAuth        `yaml:"auth"`
	// ReadvertiseOnPoison re-sends our routes at once when a router on the
	// link advertises one of our VIPs with metric 16 (it lost its route).
	ReadvertiseOnPoison bool `yaml:"readvertise_on_poison"`
}

// RIPInterface is one link with routers on it.
type RIPInterface struct {
	Name      string       `yaml:"name"`
	Neighbors []netip.Addr `yaml:"neighbors"` // optional unicast updates
}

// RIPng configures the announce-only RIPng speaker (RFC 2080), which
// announces the services' vip6. RIPng has no authentication of its own.
type RIPng struct {
	Interfaces          []RIPInterface `yaml:"interfaces"`
	UpdateInterval      Duration       `yaml:"update_interval"`
	ReadvertiseOnPoison bool           `yaml:"readvertise_on_poison"`
}

// RIPAuth is RIP packet authentication.
type RIPAuth struct {
	Mode    string `yaml:"mode"` // one of rip.AuthModes()
	KeyID   int    `yaml:"key_id"`
	KeyFile string `yaml:"key_file"`
}

// BGP configures the optional embedded BGP speaker.
type BGP struct {
	ASN      uint32     `yaml:"asn"`
	RouterID netip.Addr `yaml:"router_id"`
	NextHop  netip.Addr `yaml:"next_hop"`
	// NextHop6 is the next hop of the vip6 routes; without it an IPv4
	// session carries no IPv6 routes (an IPv6 session uses its own address).
	NextHop6 netip.Addr `yaml:"next_hop6"`
	Priority string     `yaml:"priority"` // med or prepend
	// HoldTime is the hold time proposed to every router: how long a router
	// keeps our routes after the last message from a replica that hung or
	// vanished without closing its sessions.
	HoldTime Duration  `yaml:"hold_time"`
	Peers    []BGPPeer `yaml:"peers"`
}

// BGPPeer is one BGP neighbour.
type BGPPeer struct {
	Address      netip.Addr `yaml:"address"`
	ASN          uint32     `yaml:"asn"`
	Port         int        `yaml:"port"`
	PasswordFile string     `yaml:"password_file"`
}

// RelayTunnel: the relay's VXLAN port and network identifier, and the MTU of
// the tunnel (the path between the replicas less VXLAN's 50 bytes).
type RelayTunnel struct {
	Port int `yaml:"port"`
	VNI  int `yaml:"vni"`
	MTU  int `yaml:"mtu"`
}

// Service is one anycast address and the checks that decide its metric.
type Service struct {
	Name string `yaml:"name"`
	// VIP is the IPv4 service address (a /32), VIP6 the IPv6 one (a /128):
	// either or both. Both share the service's checks and state.
	VIP       netip.Prefix `yaml:"vip"`
	VIP6      netip.Prefix `yaml:"vip6"`
	Interface string       `yaml:"interface"`
	// Metric is this replica's base metric: equal on all replicas for load
	// balancing, higher on the standby for failover.
	Metric          int `yaml:"metric"`
	DegradedPenalty int `yaml:"degraded_penalty"` // added to Metric while degraded
	DownMetric      int `yaml:"down_metric"`      // 16 = poison
	DrainMetric     int `yaml:"drain_metric"`     // while drained
	// LastResortMetric, when set, is announced instead of DownMetric while
	// this replica is down and its peer checks say no peer serves either: a
	// failure every replica shares then leaves the service reachable.
	LastResortMetric int      `yaml:"last_resort_metric"`
	FailbackDelay    Duration `yaml:"failback_delay"` // healthy this long before restoring priority
	// Require combines the checks: "all", "any", or a number N (at least N pass).
	Require string  `yaml:"require"`
	Checks  []Check `yaml:"checks"`
	Assist  *Assist `yaml:"assist"`
	Relay   *Relay  `yaml:"relay"`
}

// Relay hands the service's new flows to a healthy peer in the kernel while
// this replica's service is broken (make-before-break): clients keep being
// answered from the VIP while the routes move to the peer.
type Relay struct {
	Ports []string `yaml:"ports"` // tcp/389, udp/1812
	// Peers are unicast addresses of peer replicas; each must be the host
	// of one of assist.peers, whose result says whether it is up (default:
	// every assist peer whose target host is an address).
	Peers []netip.Addr `yaml:"peers"`
	// Metric is announced while relaying before the routers moved: worse
	// than the peers', still reachable (default: drain_metric).
	Metric int `yaml:"metric"`
	// Quiet is how long no new flow must arrive before routers count as
	// moved (then poison), and how long no packet must be relayed before
	// the relay is removed.
	Quiet Duration `yaml:"quiet"`
	// Max bounds each of the two phases (relay before the poison, relay
	// after it) however busy the relay still is.
	Max      Duration `yaml:"max"`
	Fallback bool     `yaml:"fallback"` // while healthy, relay what no local socket takes (a crashed listener)
	OnDrain  bool     `yaml:"on_drain"` // a manual drain relays too
	// OnHang relays every new flow while the service looks hung: a check
	// timed out (before fall is reached), or its listening socket's queue
	// stands still (relay.Stats.Stalled). A hung service keeps its
	// listener, so fallback does not see it.
	OnHang bool `yaml:"on_hang"`

	// ParsedPorts are Ports, parsed.
	ParsedPorts []relay.Port `yaml:"-"`
	// PeerChecks names, for each of Peers, the assist peer check that says
	// whether it is up.
	PeerChecks []string `yaml:"-"`
}

// Assist is peer assistance: this replica checks its peers and, while its own
// checks pass and a peer is down, announces AssistMetric. The change makes the
// routers send a triggered update, so they re-learn this replica at once.
type Assist struct {
	Metric int      `yaml:"metric"`
	Delay  Duration `yaml:"delay"` // wait after seeing the peer fail, so routers dropped its route first
	Peers  []Check  `yaml:"peers"` // one check per peer replica (its own address, not the VIP)
}

// Check is one health check.
type Check struct {
	Name     string   `yaml:"name"`
	Checker  string   `yaml:"checker"`
	Target   string   `yaml:"target"`
	Interval Duration `yaml:"interval"`
	Timeout  Duration `yaml:"timeout"`
	Rise     int      `yaml:"rise"`
	Fall     int      `yaml:"fall"`
	// FastInterval is the wait between checks while a check is rising or
	// falling (its last result disagrees with its state), so that fall
	// failures take milliseconds (default: 1s, or interval if shorter).
	FastInterval Duration  `yaml:"fast_interval"`
	Settings     yaml.Node `yaml:"settings"`

	// SettingsJSON is Settings converted for the checker.
	SettingsJSON checkapi.Settings `yaml:"-"`
	path         string
}

// Options are the outside knowledge validation needs.
type Options struct {
	// KnownChecker reports whether a checker name can be resolved (built in,
	// or an executable in the plugin directory); nil accepts every name.
	KnownChecker func(cfg *Config, name string) error
	// Portable skips the checks that depend on this host (interfaces,
	// local addresses, state_dir), for a config meant for another machine.
	Portable bool
}

// Load reads and validates a config file. It must be a regular file of at
// most MaxConfigSize bytes. Relative paths in it are relative to its directory.
func Load(path string, o Options) (*Config, error) {
	b, err := regfile.Read(path, MaxConfigSize)
	if tl := (*regfile.TooLargeError)(nil); errors.As(err, &tl) {
		return nil, tooLarge(path)
	}
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, b, o)
}

// Parse decodes and validates config text; file names the source in errors,
// and its directory is where relative paths start.
func Parse(file string, b []byte, o Options) (*Config, error) {
	if len(b) > MaxConfigSize {
		return nil, tooLarge(file)
	}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&root); err != nil {
		return nil, yamlError(file, err)
	}
	c := &Config{}
	applyDefaults(c)
	d := &decoder{file: file, pos: map[string]*yaml.Node{}, keys: map[string]*yaml.Node{}, resolved: map[*yaml.Node]bool{}}
	if err := d.decode(&root, reflect.ValueOf(c).Elem(), ""); err != nil {
		return nil, err
	}
	c.dec = d
	if err := c.validate(o); err != nil {
		return nil, err
	}
	if !o.Portable {
		if err := c.checkHost(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

var lineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func yamlError(file string, err error) error {
	if m := lineRE.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: file, Line: line, Column: 1, Key: "(syntax)", Msg: m[2]}
	}
	return &Error{File: file, Line: 1, Column: 1, Key: "(syntax)", Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
}

// at builds an error located at path's value (or, failing that, its key).
func (c *Config) at(path, format string, args ...any) *Error {
	n := c.dec.pos[path]
	if n == nil {
		n = c.dec.keys[path]
	}
	if n == nil {
		// A missing key: point at the enclosing mapping.
		parent := path
		for n == nil && parent != "" {
			if i := strings.LastIndexAny(parent, ".["); i >= 0 {
				parent = parent[:i]
			} else {
				parent = ""
			}
			n = c.dec.pos[parent]
		}
	}
	return c.dec.errAt(n, path, format, args...)
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*$`)

func (c *Config) validate(o Options) error {
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return c.at("log.level", "must be debug, info, warn or error")
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		return c.at("log.format", "must be text or json")
	}
	if c.Control.Socket == "" {
		return c.at("control.socket", "must not be empty")
	}
	if err := control.CheckSocketPath(c.Control.Socket); err != nil {
		return c.at("control.socket", "%v", err)
	}
	if err := c.checkMetricsListen(); err != nil {
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(c.Plugins.SHA256)) {
		h := c.Plugins.SHA256[name]
		if len(h) != 64 || strings.Trim(strings.ToLower(h), "0123456789abcdef") != "" {
			return c.at("plugins.sha256."+name, "must be 64 hex digits (sha256sum of the executable)")
		}
	}
	if err := c.validateRIP(); err != nil {
		return err
	}
	if err := c.validateRIPng(); err != nil {
		return err
	}
	if err := c.validateBGP(); err != nil {
		return err
	}
	if c.RelayAddress.IsValid() && !c.RelayAddress.Is4() {
		return c.at("relay_address", "%s: the relay's tunnels are IPv4: want an IPv4 address", c.RelayAddress)
	}
	switch t := c.RelayTunnel; {
	case t.Port < 0 || t.Port > 65535:
		return c.at("relay_tunnel.port", "%d is outside 1-65535", t.Port)
	case t.VNI < 0 || t.VNI >= 1<<24:
		return c.at("relay_tunnel.vni", "%d is outside 1-16777215 (24 bits)", t.VNI)
	case t.MTU != 0 && (t.MTU < 1280 || t.MTU > 9000):
		return c.at("relay_tunnel.mtu", "%d is outside 1280-9000 (the tunnel carries IPv6 too, whose minimum is 1280; the path between the replicas less 50 bytes)", t.MTU)
	}
	if len(c.Services) == 0 {
		return c.at("services", "at least one service is required")
	}
	names := map[string]bool{}
	vips := map[netip.Prefix]string{}
	for i := range c.Services {
		s := &c.Services[i]
		p := fmt.Sprintf("services[%d]", i)
		if !nameRE.MatchString(s.Name) {
			return c.at(p+".name", "must be a lower-case name (letters, digits, _ . -)")
		}
		if len(s.Name) > maxServiceName {
			return c.at(p+".name", "is %d characters long: at most %d (it names a file in state_dir)", len(s.Name), maxServiceName)
		}
		if names[s.Name] {
			return c.at(p+".name", "duplicate service name %q", s.Name)
		}
		names[s.Name] = true
		if err := c.validateVIPs(s, p, vips); err != nil {
			return err
		}
		for _, m := range []struct {
			key string
			v   int
		}{{"metric", s.Metric}, {"down_metric", s.DownMetric}, {"drain_metric", s.DrainMetric}} {
			if m.v < 1 || m.v > 16 {
				return c.at(p+"."+m.key, "%d is outside 1-16", m.v)
			}
		}
		// Routers add 1 per hop, so an announced 15 is already unreachable
		// at the first router: metrics meant to keep a route must stay below.
		if s.Metric > maxReachable {
			return c.at(p+".metric", "%d leaves no room for router hops: at most %d (a router adds 1; 16 is unreachable)", s.Metric, maxReachable)
		}
		if s.DrainMetric <= s.Metric {
			return c.at(p+".drain_metric", "%d must be worse (higher) than metric %d: draining would not move traffic away, or would pull it in", s.DrainMetric, s.Metric)
		}
		if s.DrainMetric > maxReachable {
			return c.at(p+".drain_metric", "%d would cut clients off instead of draining: at most %d (a router adds 1; 16 is unreachable)", s.DrainMetric, maxReachable)
		}
		if s.DegradedPenalty < 0 || s.Metric+s.DegradedPenalty > maxReachable {
			return c.at(p+".degraded_penalty", "metric + degraded_penalty must stay within 1-%d, or a degraded replica becomes unreachable", maxReachable)
		}
		if s.DownMetric <= s.Metric {
			return c.at(p+".down_metric", "must be worse (higher) than metric %d", s.Metric)
		}
		if s.DownMetric == maxReachable+1 {
			return c.at(p+".down_metric", "15 is unreachable at the first router like 16, but is no poison: use 16, or at most %d to leave a last-resort route for routers with holddown timers", maxReachable)
		}
		if _, err := s.RequireN(); err != nil {
			return c.at(p+".require", "%v", err)
		}
		if len(s.Checks) == 0 {
			return c.at(p+".checks", "at least one check is required")
		}
		if n, _ := s.RequireN(); n > len(s.Checks) {
			return c.at(p+".require", "requires %d checks to pass but only %d are configured", n, len(s.Checks))
		}
		if err := c.validateChecks(s.Checks, p+".checks", o); err != nil {
			return err
		}
		if s.Assist != nil {
			a := s.Assist
			if a.Metric < 1 || a.Metric > maxReachable {
				return c.at(p+".assist.metric", "%d is outside 1-%d", a.Metric, maxReachable)
			}
			if a.Metric == s.Metric {
				return c.at(p+".assist.metric", "must differ from metric %d: the change is what makes routers update", s.Metric)
			}
			if len(a.Peers) == 0 {
				return c.at(p+".assist.peers", "at least one peer check is required")
			}
			if err := c.validateChecks(a.Peers, p+".assist.peers", o); err != nil {
				return err
			}
		}
		// A last-resort route for a down replica must lose to every
		// replica that works.
		if worst := s.worstWorking(); s.DownMetric < 16 && s.DownMetric <= worst {
			return c.at(p+".down_metric", "%d must be worse (higher) than every metric a working replica announces (up to %d here: metric + degraded_penalty, drain_metric, assist.metric), or a down replica attracts traffic", s.DownMetric, worst)
		}
		if err := c.validateLastResort(s, p); err != nil {
			return err
		}
		if err := c.validateRelay(s, p); err != nil {
			return err
		}
	}
	return nil
}

// validateLastResort: the last-resort route keeps a down replica reachable,
// so it must lose to every replica that works and stay reachable itself;
// only peer checks can tell that no peer serves.
func (c *Config) validateLastResort(s *Service, p string) error {
	lr := s.LastResortMetric
	switch {
	case lr == 0:
		return nil
	case lr < 0 || lr > maxReachable:
		return c.at(p+".last_resort_metric", "%d is outside 1-%d (a router adds 1; 16 is unreachable)", lr, maxReachable)
	case lr <= s.worstWorking():
		return c.at(p+".last_resort_metric", "%d must be worse (higher) than every metric a working replica announces (up to %d here: metric + degraded_penalty, drain_metric, assist.metric), or a down replica attracts traffic", lr, s.worstWorking())
	case lr >= s.DownMetric:
		return c.at(p+".last_resort_metric", "%d must be better (lower) than down_metric %d, or it changes nothing", lr, s.DownMetric)
	case s.Assist == nil:
		return c.at(p+".last_resort_metric", "needs assist.peers: only the peer checks can tell that no peer serves")
	}
	return nil
}

// validateVIPs checks a service's addresses: vip IPv4, vip6 IPv6, at least
// one, each routable and no other service's.
func (c *Config) validateVIPs(s *Service, p string, vips map[netip.Prefix]string) error {
	if !s.VIP.IsValid() && !s.VIP6.IsValid() {
		return c.at(p+".vip", "required: an IPv4 address in vip, an IPv6 address in vip6, or both")
	}
	for _, v := range []struct {
		key    string
		prefix netip.Prefix
		want6  bool
	}{{"vip", s.VIP, false}, {"vip6", s.VIP6, true}} {
		if !v.prefix.IsValid() {
			continue
		}
		a := v.prefix.Addr()
		switch {
		case a.Is6() && !v.want6:
			return c.at(p+"."+v.key, "%s is an IPv6 address: put it in vip6", a)
		case a.Is4() && v.want6:
			return c.at(p+"."+v.key, "%s is an IPv4 address: put it in vip", a)
		}
		if why := notRoutable(a); why != "" {
			return c.at(p+"."+v.key, "%s %s: a service address must be a routable unicast address", a, why)
		}
		if other, dup := vips[v.prefix]; dup {
			return c.at(p+"."+v.key, "%s is already the address of service %q", v.prefix, other)
		}
		vips[v.prefix] = s.Name
	}
	return nil
}

// VIPs are the service's addresses: the IPv4 one, then the IPv6 one.
func (s *Service) VIPs() []netip.Prefix { return (&core.ServiceSpec{VIP: s.VIP, VIP6: s.VIP6}).VIPs() }

// worstWorking is the highest metric the service announces while it works.
func (s *Service) worstWorking() int {
	w := max(s.Metric+s.DegradedPenalty, s.DrainMetric)
	if s.Assist != nil {
		w = max(w, s.Assist.Metric)
	}
	return w
}

// Reserved IPv6 ranges no service address may be in (besides loopback,
// unspecified, link-local and multicast, which netip recognises).
var reserved6 = []struct {
	prefix netip.Prefix
	why    string
}{
	{netip.MustParsePrefix("::/96"), "is in ::/96 (IPv4-compatible, deprecated)"},
	{netip.MustParsePrefix("::ffff:0:0/96"), "is IPv4-mapped (::ffff:0:0/96; an IPv4 address goes in vip)"},
	{netip.MustParsePrefix("100::/64"), "is in the discard prefix (100::/64)"},
	{netip.MustParsePrefix("fec0::/10"), "is site-local (fec0::/10, deprecated)"},
}

// notRoutable says why a is no service address, or returns "".
func notRoutable(a netip.Addr) string {
	if a.Is6() {
		return notRoutable6(a)
	}
	b := a.As4()
	switch {
	case b[0] == 0:
		return "is in 0.0.0.0/8 (this host on this network)"
	case a.IsLoopback():
		return "is a loopback address (127.0.0.0/8)"
	case a.IsLinkLocalUnicast():
		return "is link-local (169.254.0.0/16, never forwarded by routers)"
	case a.IsMulticast():
		return "is a multicast address (224.0.0.0/4)"
	case b == [4]byte{255, 255, 255, 255}:
		return "is the broadcast address"
	case b[0] >= 240:
		return "is reserved (240.0.0.0/4)"
	}
	return ""
}

func notRoutable6(a netip.Addr) string {
	switch {
	case a.IsUnspecified():
		return "is the unspecified address (::)"
	case a.IsLoopback():
		return "is the loopback address (::1)"
	case a.IsLinkLocalUnicast():
		return "is link-local (fe80::/10, never forwarded by routers)"
	case a.IsMulticast():
		return "is a multicast address (ff00::/8)"
	}
	for _, r := range reserved6 {
		if r.prefix.Contains(a) {
			return r.why
		}
	}
	return ""
}

func (c *Config) validateRelay(s *Service, p string) error {
	r := s.Relay
	if r == nil {
		return nil
	}
	p += ".relay"
	if len(r.Ports) == 0 {
		return c.at(p+".ports", "at least one port is required (tcp/389, udp/1812)")
	}
	r.ParsedPorts = nil
	for i, ps := range r.Ports {
		port, err := relay.ParsePort(ps)
		if err != nil {
			return c.at(fmt.Sprintf("%s.ports[%d]", p, i), "%v", err)
		}
		if slices.Contains(r.ParsedPorts, port) {
			return c.at(fmt.Sprintf("%s.ports[%d]", p, i), "duplicate port %s", port)
		}
		r.ParsedPorts = append(r.ParsedPorts, port)
	}
	if r.Metric == 0 {
		r.Metric = s.DrainMetric
	}
	if r.Metric <= s.Metric || r.Metric > maxReachable {
		return c.at(p+".metric", "%d must be worse than metric %d and at most %d: routers must keep a path to this replica until they hear the peer", r.Metric, s.Metric, maxReachable)
	}
	if r.Quiet.D() <= 0 {
		return c.at(p+".quiet", "must be positive")
	}
	if r.Max.D() < r.Quiet.D() {
		return c.at(p+".max", "must be at least quiet (%s)", r.Quiet)
	}
	if s.Assist == nil {
		return c.at(p, "needs assist.peers: ripcord relays only to a peer that a peer check sees up")
	}
	hosts := map[netip.Addr]string{}
	var order []netip.Addr
	for _, ch := range s.Assist.Peers {
		if a, ok := targetAddr(ch.Target); ok {
			if _, dup := hosts[a]; !dup {
				order = append(order, a)
				hosts[a] = ch.Name
			}
		}
	}
	if len(r.Peers) == 0 {
		if len(order) == 0 {
			return c.at(p+".peers", "no assist.peers target is an IP address to relay to: list the peers' unicast addresses here")
		}
		r.Peers = order
	}
	r.PeerChecks = nil
	for i, a := range r.Peers {
		if !a.Is4() {
			return c.at(fmt.Sprintf("%s.peers[%d]", p, i), "%s: the relay's tunnels are IPv4: want an IPv4 address", a)
		}
		name, ok := hosts[a]
		if !ok {
			return c.at(fmt.Sprintf("%s.peers[%d]", p, i), "no assist.peers check targets %s: ripcord relays only to a peer that a peer check sees up", a)
		}
		if a == c.RelayAddress {
			return c.at(fmt.Sprintf("%s.peers[%d]", p, i), "%s is this replica's relay_address", a)
		}
		if slices.Contains(r.Peers[:i], a) {
			return c.at(fmt.Sprintf("%s.peers[%d]", p, i), "duplicate peer %s", a)
		}
		r.PeerChecks = append(r.PeerChecks, name)
	}
	return nil
}

// targetAddr is the IPv4 host of a check target: a URL (http://10.0.2.10:9473),
// host:port, or a bare address.
func targetAddr(target string) (netip.Addr, bool) {
	host := target
	if u, err := url.Parse(target); err == nil && u.Host != "" {
		host = u.Hostname()
	} else if h, _, err := net.SplitHostPort(target); err == nil {
		host = h
	}
	a, err := netip.ParseAddr(host)
	return a, err == nil && a.Is4()
}

func (c *Config) validateChecks(checks []Check, p string, o Options) error {
	seen := map[string]bool{}
	for j := range checks {
		ch := &checks[j]
		cp := fmt.Sprintf("%s[%d]", p, j)
		ch.path = cp
		if !nameRE.MatchString(ch.Name) {
			return c.at(cp+".name", "must be a lower-case name (letters, digits, _ . -)")
		}
		if seen[ch.Name] {
			return c.at(cp+".name", "duplicate check name %q", ch.Name)
		}
		seen[ch.Name] = true
		if ch.Checker == "" {
			return c.at(cp+".checker", "required")
		}
		if o.KnownChecker != nil {
			if err := o.KnownChecker(c, ch.Checker); err != nil {
				return c.at(cp+".checker", "%v", err)
			}
		}
		if ch.Target == "" {
			return c.at(cp+".target", "required")
		}
		if ch.Interval.D() < minCheckInterval {
			return c.at(cp+".interval", "%s is below the floor of %s (each check costs CPU; more often detects nothing sooner that matters)", ch.Interval, minCheckInterval)
		}
		if ch.Timeout.D() < minCheckTimeout || ch.Timeout.D() > ch.Interval.D() {
			return c.at(cp+".timeout", "must be at least %s and at most the interval (%s)", minCheckTimeout, ch.Interval)
		}
		if ch.Rise < 1 {
			return c.at(cp+".rise", "must be at least 1")
		}
		if ch.Fall < 1 {
			return c.at(cp+".fall", "must be at least 1")
		}
		if ch.FastInterval == 0 {
			ch.FastInterval = Duration(min(DefaultFastInterval, ch.Interval.D()))
		}
		if ch.FastInterval.D() < minCheckInterval || ch.FastInterval.D() > ch.Interval.D() {
			return c.at(cp+".fast_interval", "must be at least %s and at most the interval (%s)", minCheckInterval, ch.Interval)
		}
		if ch.Settings.Kind != 0 && ch.Settings.Kind != yaml.MappingNode && ch.Settings.Tag != "!!null" {
			return c.at(cp+".settings", "expected a mapping, got %s", kindName(&ch.Settings))
		}
		if err := c.checkSettingsFiles(&ch.Settings, cp+".settings"); err != nil {
			return err
		}
		js, err := nodeToJSON(&ch.Settings)
		if err != nil {
			return c.at(cp+".settings", "%v", err)
		}
		ch.SettingsJSON = js
	}
	return nil
}

// validateRIPLinks checks what rip and ripng share: their interfaces, with
// neighbours of the section's family, and the update interval.
func (c *Config) validateRIPLinks(key string, ifcs []RIPInterface, interval Duration, want6 bool) error {
	if len(ifcs) == 0 {
		return c.at(key+".interfaces", "at least one interface is required")
	}
	seen := map[string]bool{}
	for i, ifc := range ifcs {
		p := fmt.Sprintf("%s.interfaces[%d]", key, i)
		if ifc.Name == "" {
			return c.at(p+".name", "required")
		}
		if seen[ifc.Name] {
			return c.at(p+".name", "duplicate interface %q", ifc.Name)
		}
		seen[ifc.Name] = true
		for j, n := range ifc.Neighbors {
			if n.Is6() != want6 {
				fam := map[bool]string{false: "IPv4", true: "IPv6"}[want6]
				return c.at(fmt.Sprintf("%s.neighbors[%d]", p, j), "%s: %s speaks to %s neighbours only", n, key, fam)
			}
		}
	}
	if interval.D() < minRIPInterval {
		return c.at(key+".update_interval", "must be at least %s", minRIPInterval)
	}
	return nil
}

func (c *Config) validateRIPng() error {
	if c.RIPng == nil {
		return nil
	}
	return c.validateRIPLinks("ripng", c.RIPng.Interfaces, c.RIPng.UpdateInterval, true)
}

func (c *Config) validateRIP() error {
	if c.RIP == nil {
		return nil
	}
	r := c.RIP
	if err := c.validateRIPLinks("rip", r.Interfaces, r.UpdateInterval, false); err != nil {
		return err
	}
	mode, known := rip.ParseAuthType(r.Auth.Mode)
	switch {
	case !known:
		modes := rip.AuthModes()
		return c.at("rip.auth.mode", "must be %s or %s", strings.Join(modes[:len(modes)-1], ", "), modes[len(modes)-1])
	case mode == rip.AuthNone:
		if r.Auth.KeyFile != "" {
			return c.at("rip.auth.key_file", "set, but auth mode is none")
		}
	default:
		if r.Auth.KeyFile == "" {
			return c.at("rip.auth.key_file", "required for auth mode %s", r.Auth.Mode)
		}
		r.Auth.KeyFile = c.resolve(r.Auth.KeyFile)
		if err := c.checkFile("rip.auth.key_file", r.Auth.KeyFile); err != nil {
			return c.at("rip.auth.key_file", "%v", err)
		}
		// The speaker's own rules for the key (its length for the mode).
		key, _ := checkapi.ReadSecretFile(r.Auth.KeyFile)
		if err := (rip.Auth{Type: mode, Key: []byte(key)}).Validate(); err != nil {
			return c.at("rip.auth.key_file", "%s: %s", r.Auth.KeyFile, strings.TrimPrefix(err.Error(), "rip: "))
		}
		if r.Auth.KeyID < 0 || r.Auth.KeyID > 255 {
			return c.at("rip.auth.key_id", "%d is outside 0-255", r.Auth.KeyID)
		}
	}
	return nil
}

func (c *Config) validateBGP() error {
	if c.BGP == nil {
		return nil
	}
	b := c.BGP
	if b.ASN == 0 {
		return c.at("bgp.asn", "required")
	}
	if !b.RouterID.IsValid() {
		return c.at("bgp.router_id", "required")
	}
	if !b.RouterID.Is4() {
		return c.at("bgp.router_id", "%s: a BGP identifier is an IPv4 address, also on IPv6 sessions", b.RouterID)
	}
	if b.RouterID.IsUnspecified() {
		return c.at("bgp.router_id", "must not be 0.0.0.0")
	}
	if b.NextHop.IsValid() && !b.NextHop.Is4() {
		return c.at("bgp.next_hop", "%s: want an IPv4 address (the next hop of the IPv4 routes)", b.NextHop)
	}
	if nh := b.NextHop6; nh.IsValid() && (!nh.Is6() || notRoutable(nh) != "") {
		return c.at("bgp.next_hop6", "%s: want a global IPv6 address of this replica (the next hop of the IPv6 routes)", nh)
	}
	if b.Priority != "med" && b.Priority != "prepend" {
		return c.at("bgp.priority", "must be med or prepend")
	}
	if h := b.HoldTime.D(); h < minBGPHoldTime {
		return c.at("bgp.hold_time", "%s is below %s (RFC 4271)", h, minBGPHoldTime)
	}
	if len(b.Peers) == 0 {
		return c.at("bgp.peers", "at least one peer is required")
	}
	for i, p := range b.Peers {
		pp := fmt.Sprintf("bgp.peers[%d]", i)
		if !p.Address.IsValid() {
			return c.at(pp+".address", "required")
		}
		if p.Address.IsUnspecified() {
			return c.at(pp+".address", "must not be %s", p.Address)
		}
		if p.Address.IsLinkLocalUnicast() || p.Address.IsMulticast() || p.Address.IsLoopback() && p.Address.Is6() {
			return c.at(pp+".address", "%s: a BGP peer needs a unicast address that is not link-local", p.Address)
		}
		if slices.ContainsFunc(b.Peers[:i], func(q BGPPeer) bool { return q.Address == p.Address }) {
			return c.at(pp+".address", "%s is listed twice", p.Address)
		}
		if p.ASN == 0 {
			return c.at(pp+".asn", "required")
		}
		if b.Priority == "prepend" && p.ASN == b.ASN {
			// Our ASN in the AS_PATH of an iBGP route makes the router
			// drop it as a loop.
			return c.at(pp+".asn", "priority prepend needs eBGP, but this peer has our asn %d: use priority med", b.ASN)
		}
		if p.Port < 0 || p.Port > 65535 {
			return c.at(pp+".port", "%d is not a port", p.Port)
		}
		if p.PasswordFile != "" {
			b.Peers[i].PasswordFile = c.resolve(p.PasswordFile)
			if err := c.checkFile(pp+".password_file", b.Peers[i].PasswordFile); err != nil {
				return c.at(pp+".password_file", "%v", err)
			}
			if pw, _ := checkapi.ReadSecretFile(b.Peers[i].PasswordFile); len(pw) > maxTCPMD5Key {
				return c.at(pp+".password_file", "%s: the password is %d bytes; Linux takes TCP MD5 keys of at most %d", b.Peers[i].PasswordFile, len(pw), maxTCPMD5Key)
			}
		}
	}
	return nil
}

// maxTCPMD5Key is TCP_MD5SIG_MAXKEYLEN (linux/tcp.h).
const maxTCPMD5Key = 80

// RequireN returns how many checks must pass: 0 means all.
func (s *Service) RequireN() (int, error) {
	switch s.Require {
	case "all":
		return 0, nil
	case "any":
		return 1, nil
	}
	n, err := strconv.Atoi(s.Require)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("must be all, any, or a number of checks (at least 1)")
	}
	return n, nil
}

// SettingsErrors turns a checker's field errors into located config errors:
// each at its key (a list entry at its value), or, for a key that is missing
// or for the settings as a whole, at the nearest enclosing one that exists.
func (c *Config) SettingsErrors(ch *Check, fes []checkapi.FieldError) error {
	var located []*Error
	for _, fe := range fes {
		p := ch.path + ".settings"
		if fe.Field != "" {
			p += "." + fe.Field
		}
		located = append(located, c.dec.errAt(c.settingNode(ch, p), p, "%s", fe.Message))
	}
	slices.SortStableFunc(located, func(a, b *Error) int { return cmp.Or(a.Line-b.Line, a.Column-b.Column) })
	var errs []error
	for _, e := range located {
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

// settingNode finds where the setting at path is written.
func (c *Config) settingNode(ch *Check, path string) *yaml.Node {
	root := ch.path + ".settings"
	for p := path; len(p) >= len(root); {
		if n := c.dec.keys[p]; n != nil {
			return n
		}
		if n := c.dec.pos[p]; n != nil && n.Kind != 0 && (p != root || n.Tag != "!!null") {
			return n
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	if n := c.dec.keys[root]; n != nil {
		return n
	}
	return c.dec.keys[ch.path+".name"]
}

// Configurer validates one check's target and settings (plugins.Host's
// Configure): targetErr says why the target is invalid, or is "".
type Configurer func(ctx context.Context, checker string, req *checkapi.Request) (targetErr string, fieldErrs []checkapi.FieldError, err error)

// ConfigureChecks asks each check's checker to validate its target and
// settings and reports what is wrong at its line: the target at the
// target's, each setting at its own key.
func (c *Config) ConfigureChecks(ctx context.Context, configure Configurer) error {
	var errs []error
	for _, ch := range c.AllChecks() {
		targetErr, fes, err := configure(ctx, ch.Checker, &checkapi.Request{Target: ch.Target, Settings: ch.SettingsJSON})
		if err != nil {
			errs = append(errs, c.at(ch.path+".checker", "%v", err))
			continue
		}
		if targetErr != "" {
			errs = append(errs, c.at(ch.path+".target", "%s", targetErr))
		}
		if err := c.SettingsErrors(ch, fes); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// AllChecks returns every check of every service, peer checks included.
func (c *Config) AllChecks() []*Check {
	var out []*Check
	for i := range c.Services {
		s := &c.Services[i]
		for j := range s.Checks {
			out = append(out, &s.Checks[j])
		}
		if s.Assist != nil {
			for j := range s.Assist.Peers {
				out = append(out, &s.Assist.Peers[j])
			}
		}
	}
	return out
}

// Warnings lists valid but probably unintended settings, for validate and
// the daemon's start-up log.
func (c *Config) Warnings() []string {
	var w []string
	if c.RIP == nil && c.RIPng == nil && c.BGP == nil {
		w = append(w, "no rip, ripng or bgp section: the service addresses are put on their interfaces but announced to no router")
	}
	has4, has6 := false, false
	for _, s := range c.Services {
		has4, has6 = has4 || s.VIP.IsValid(), has6 || s.VIP6.IsValid()
	}
	if has6 && c.RIPng == nil && c.BGP == nil && (c.RIP != nil) {
		w = append(w, "services have a vip6 but there is no ripng or bgp section: the IPv6 addresses are announced to no router")
	}
	if has4 && c.RIP == nil && c.BGP == nil && c.RIPng != nil {
		w = append(w, "services have a vip but there is no rip or bgp section: the IPv4 addresses are announced to no router")
	}
	if b := c.BGP; b != nil && has6 && !b.NextHop6.IsValid() && !slices.ContainsFunc(b.Peers, func(p BGPPeer) bool { return p.Address.Is6() }) {
		w = append(w, "services have a vip6 but bgp has only IPv4 peers and no next_hop6: BGP announces no IPv6 address")
	}
	if c.RIPng != nil && !has6 {
		w = append(w, "ripng is configured but no service has a vip6: it announces nothing")
	}
	usesPeer := false
	for _, ch := range c.AllChecks() {
		usesPeer = usesPeer || ch.Checker == "peer"
	}
	if usesPeer && c.Control.MetricsListen == "" {
		w = append(w, "assist uses checker peer, which reads a peer's control.metrics_listen; this replica has none, so its peers cannot watch it the same way")
	}
	for _, s := range c.Services {
		if s.Assist != nil && s.FailbackDelay.D() < 5*time.Second {
			w = append(w, fmt.Sprintf("service %s: failback_delay %s is short: a repaired replica may take its traffic back before routers settle", s.Name, s.FailbackDelay))
		}
	}
	return append(w, c.secretWarnings()...)
}
