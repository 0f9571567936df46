package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/bits"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Defaults of the Config knobs.
const (
	DefaultTable        = "ripcord_relay" // nftables tables (families ip and ip6)
	DefaultDevice       = "ripcord-relay" // the VXLAN link
	DefaultVNI          = 7263            // VXLAN network identifier
	DefaultPort         = 4789            // VXLAN UDP port (IANA)
	DefaultMTU          = 1450            // tunnel MTU: a 1500-byte path less VXLAN's 50 bytes
	DefaultMarkMask     = 0x00ff0000      // packet mark bits that pick the peer
	DefaultRouteTable   = 7263            // routing table of the first peer; peer i uses DefaultRouteTable+i
	DefaultRulePriority = 10              // the fwmark rules; the local rule moves to DefaultRulePriority+1
	DefaultTCPTimeout   = 10 * time.Minute
	DefaultUDPTimeout   = 30 * time.Second
	DefaultPoll         = time.Second
	DefaultStallAfter   = 100 * time.Millisecond
	// Protocol marks the policy rules and routes the Manager adds (rtnetlink
	// protocol number), so that a later run can find what a killed one left.
	Protocol = 82
)

// Config configures a Manager. Local and Peers are required; zero knobs take
// the defaults above. Every peer must run a Manager with the same Device
// settings (VNI, Port) and this replica among its Peers.
type Config struct {
	Local  netip.Addr   // this replica's unicast address (tunnel source)
	Peers  []netip.Addr // every peer this replica relays to or receives relayed flows from
	Logger *slog.Logger
	// IPv6 relays IPv6 VIPs too (Want.VIP6), through the same tunnel. It
	// switches IPv6 forwarding on if it is off, and with forwarding on the
	// kernel ignores router advertisements on interfaces with accept_ra 1:
	// hence not by default.
	IPv6 bool

	// Namespace, when set, is the network namespace to work in; the Manager
	// keeps its own copy of the handle. Otherwise it works in the namespace of
	// the thread that calls New (so New may run inside netns.NS.Do).
	Namespace *netns.NsHandle

	Table        string
	Device       string
	VNI          uint32
	Port         uint16
	MTU          int
	MarkMask     uint32
	RouteTable   int
	RulePriority int
	// TCPTimeout is how long a relayed TCP flow stays relayed after its last
	// packet; UDPTimeout how long a relayed UDP flow stays relayed after its
	// first datagram (not refreshed, so a steady client returns to local
	// delivery when the relay is switched off).
	TCPTimeout time.Duration
	UDPTimeout time.Duration
	// Poll is the period of the counter poll that dates LastFlow and
	// LastPacket.
	Poll time.Duration
	// StallAfter is how long a service's listening socket must hold a
	// queue that does not shrink before Stats calls it Stalled. Healthy
	// servers empty their queues in microseconds.
	StallAfter time.Duration
}

func (c *Config) defaults() error {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Table == "" {
		c.Table = DefaultTable
	}
	if c.Device == "" {
		c.Device = DefaultDevice
	}
	if c.VNI == 0 {
		c.VNI = DefaultVNI
	}
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.MTU == 0 {
		c.MTU = DefaultMTU
	}
	if c.MarkMask == 0 {
		c.MarkMask = DefaultMarkMask
	}
	if c.RouteTable == 0 {
		c.RouteTable = DefaultRouteTable
	}
	if c.RulePriority == 0 {
		c.RulePriority = DefaultRulePriority
	}
	if c.TCPTimeout == 0 {
		c.TCPTimeout = DefaultTCPTimeout
	}
	if c.UDPTimeout == 0 {
		c.UDPTimeout = DefaultUDPTimeout
	}
	if c.Poll == 0 {
		c.Poll = DefaultPoll
	}
	if c.StallAfter == 0 {
		c.StallAfter = DefaultStallAfter
	}
	switch {
	case !c.Local.Is4():
		return fmt.Errorf("relay: local address %v: want an IPv4 address", c.Local)
	case len(c.Device) > unix.IFNAMSIZ-1:
		return fmt.Errorf("relay: device name %q: longer than %d characters", c.Device, unix.IFNAMSIZ-1)
	case c.VNI >= 1<<24:
		return fmt.Errorf("relay: VNI %d: want 1-16777215", c.VNI)
	case c.MTU < 576 || c.MTU > 65535:
		return fmt.Errorf("relay: MTU %d: want 576-65535", c.MTU)
	case c.RulePriority < 1:
		return fmt.Errorf("relay: rule priority %d: want at least 1", c.RulePriority)
	case c.TCPTimeout < time.Second || c.UDPTimeout < time.Second:
		return fmt.Errorf("relay: flow timeouts (tcp %s, udp %s): want at least 1s", c.TCPTimeout, c.UDPTimeout)
	case c.Poll < 0:
		return fmt.Errorf("relay: poll period %s: want more than 0", c.Poll)
	case c.StallAfter < 0:
		return fmt.Errorf("relay: stall time %s: want more than 0", c.StallAfter)
	}
	if x := c.MarkMask >> bits.TrailingZeros32(c.MarkMask); x&(x+1) != 0 {
		return fmt.Errorf("relay: mark mask %#x: want one run of bits", c.MarkMask)
	}
	if err := c.roomFor(len(c.Peers)); err != nil {
		return err
	}
	return c.checkPeers(c.Peers)
}

// roomFor reports whether the mark mask can number n peers. Peer i (from 0)
// is marked (i+1) shifted into the mask's lowest bit; the whole mask marks
// flows that arrived through the tunnel.
func (c *Config) roomFor(n int) error {
	if uint64(n)+1 >= uint64(c.MarkMask>>bits.TrailingZeros32(c.MarkMask)) {
		return fmt.Errorf("relay: mark mask %#x has no room for %d peers", c.MarkMask, n)
	}
	return nil
}

func (c *Config) checkPeers(peers []netip.Addr) error {
	seen := map[netip.Addr]bool{}
	for _, p := range peers {
		switch {
		case !p.Is4():
			return fmt.Errorf("relay: peer %v: want an IPv4 address", p)
		case p == c.Local:
			return fmt.Errorf("relay: peer %v is the local address", p)
		case seen[p]:
			return fmt.Errorf("relay: peer %v listed twice", p)
		}
		seen[p] = true
	}
	return nil
}

const maxServiceName = 200

// Manager owns the relay's kernel objects in one network namespace. It is
// safe for concurrent use.
type Manager struct {
	cfg  Config
	log  *slog.Logger
	ns   netns.NsHandle
	nl   *netlink.Handle
	nft  *nftables.Conn
	link netlink.Link
	diag *sockDiag // nil if the kernel has no sock_diag: nothing is ever Stalled
	// fams is IPv4, then IPv6 with Config.IPv6.
	fams []*family

	mu       sync.Mutex
	services map[string]*service
	routes   map[route]bool // VIP routes present in the peer tables
	// leftover are removed peers (by number) whose kernel objects may
	// remain: SetPeers removes them before the number is used again.
	leftover map[int]netip.Addr
	closed   bool

	stop chan struct{}
	done chan struct{}
}

type service struct {
	want                 Want
	since                time.Time
	flows, packets       uint64
	lastFlow, lastPacket time.Time
	stall                stall
	stalled              bool
}

type route struct {
	vip  netip.Addr
	peer int
}

// New claims and removes what an earlier run left behind (its nftables table,
// its link, its policy rules and routes), then sets up the tunnel end and the
// policy routing. The tunnel stays up until Close, also while nothing is
// relayed, because this replica is the receiving end for its peers.
func New(ctx context.Context, c Config) (*Manager, error) {
	if err := c.defaults(); err != nil {
		return nil, err
	}
	c.Peers = slices.Clone(c.Peers) // SetPeers changes them in place
	var (
		ns  netns.NsHandle
		err error
	)
	if c.Namespace != nil {
		ns, err = dupNS(*c.Namespace)
	} else {
		ns, err = netns.Get()
	}
	if err != nil {
		return nil, fmt.Errorf("relay: network namespace: %w", err)
	}
	m := &Manager{
		cfg:      c,
		log:      c.Logger,
		ns:       ns,
		fams:     []*family{{table: &nftables.Table{Name: c.Table, Family: nftables.TableFamilyIPv4}}},
		services: map[string]*service{},
		routes:   map[route]bool{},
		leftover: map[int]netip.Addr{},
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	if m.nl, err = netlink.NewHandleAt(ns, unix.NETLINK_ROUTE); err != nil {
		ns.Close()
		return nil, fmt.Errorf("relay: netlink: %w", err)
	}
	if m.nft, err = nftables.New(nftables.WithNetNSFd(int(ns)), nftables.AsLasting()); err != nil {
		m.nl.Close()
		ns.Close()
		return nil, fmt.Errorf("relay: nftables: %w", err)
	}
	if err := m.inNS(func() (err error) { m.diag, err = openSockDiag(); return err }); err != nil {
		m.log.Warn("relay: cannot read socket queues: a hung server is seen only by its checks", "err", err)
	}
	v6 := &family{v6: true, table: &nftables.Table{Name: c.Table, Family: nftables.TableFamilyIPv6}}
	_, err = m.readSysctl(v6.forwardingKey())
	switch {
	case c.IPv6 && err != nil:
		err = fmt.Errorf("relay: IPv6: the kernel has none: %w", err)
	case c.IPv6:
		m.fams = append(m.fams, v6)
		err = m.cleanup()
	case err == nil:
		// What an earlier run with IPv6 may have left goes too.
		err = m.cleanup(v6)
	default:
		err = m.cleanup()
	}
	if err == nil {
		err = m.setup()
	}
	if err != nil {
		close(m.done)
		return nil, errors.Join(err, m.Close())
	}
	go m.poll()
	return m, nil
}

// mark is the packet mark that routes to peer i.
func (m *Manager) mark(i int) uint32 {
	return uint32(i+1) << bits.TrailingZeros32(m.cfg.MarkMask)
}

// peerIndex is p's number: its mark, routing table and flow set. cfg.Peers
// holds the peers by number; SetPeers leaves a removed peer's number free
// (the zero Addr) for the next new one.
func (m *Manager) peerIndex(p netip.Addr) int {
	if !p.IsValid() {
		return -1
	}
	return slices.Index(m.cfg.Peers, p)
}

// peers lists the configured peers, for messages.
func (m *Manager) peers() []netip.Addr {
	return slices.DeleteFunc(slices.Clone(m.cfg.Peers), func(p netip.Addr) bool { return !p.IsValid() })
}

// Set converges the relays to exactly want: a service that is absent is
// Off. Invalid input changes nothing. A service switched Off stops taking
// new flows at once; TCP connections it already relays keep going to their
// peer until they have been idle for TCPTimeout.
func (m *Manager) Set(ctx context.Context, want []Want) error {
	// Under the lock from the start: validation reads the peers, which
	// SetPeers changes.
	m.mu.Lock()
	defer m.mu.Unlock()
	next := map[string]Want{}
	owner := map[string]string{} // "vip proto/port" -> service, for overlaps
	for _, w := range want {
		if err := m.validate(w); err != nil {
			return err
		}
		if _, dup := next[w.Service]; dup {
			return fmt.Errorf("relay: service %q listed twice", w.Service)
		}
		if w.Mode != Off {
			for _, vip := range w.vips() {
				for _, p := range w.Ports {
					key := vip.String() + " " + p.String()
					if other, ok := owner[key]; ok {
						return fmt.Errorf("relay: services %q and %q both relay %s", other, w.Service, key)
					}
					owner[key] = w.Service
				}
			}
		}
		next[w.Service] = w
	}
	if m.closed {
		return errors.New("relay: manager closed")
	}
	// Work on copies: if the kernel refuses, nothing changes, and a retry
	// of the same Set starts from the same state.
	now := time.Now()
	services := make(map[string]*service, len(m.services)+len(next))
	for name, s := range m.services {
		c := *s
		services[name] = &c
	}
	var added []string
	for name, w := range next {
		s := services[name]
		if s == nil {
			s = &service{}
			services[name] = s
			added = append(added, name)
		}
		if w.Mode == Off && w.Peer.IsValid() && m.peerIndex(w.Peer) < 0 {
			w.Peer = netip.Addr{} // removed by SetPeers: no rescue to it
		}
		if w.Mode == Off {
			// Keep the address and ports (the connections already relayed
			// must still find their peer) and the peer (for Stats).
			if len(w.vips()) == 0 || len(w.Ports) == 0 {
				w.VIP, w.VIP6, w.Ports = s.want.VIP, s.want.VIP6, s.want.Ports
			}
			if !w.Peer.IsValid() {
				w.Peer = s.want.Peer
			}
		}
		if s.want.Mode != w.Mode || s.want.Peer != w.Peer {
			s.since = now
		}
		s.want = w
	}
	for name, s := range services {
		if _, ok := next[name]; !ok {
			s.want.Mode = Off
		}
		if s.want.Mode == Off {
			s.since = time.Time{}
		}
	}
	for _, s := range services {
		if !s.want.Peer.IsValid() {
			continue // the rescue of an Off service needs its peer's route too
		}
		for _, vip := range s.want.vips() {
			r := route{vip, m.peerIndex(s.want.Peer)}
			if m.routes[r] {
				continue
			}
			if err := m.addRoute(r); err != nil {
				return err
			}
			m.routes[r] = true // harmless without the rules: only relayed packets look there
		}
	}
	if err := m.writeRules(services, added); err != nil {
		return err
	}
	m.services = services
	for name, w := range next {
		if w.Mode != Off {
			m.log.Debug("relay set", "service", name, "mode", w.Mode, "peer", w.Peer, "vip", w.VIP, "ports", w.Ports)
		}
	}
	return nil
}

// SetPeers changes the peers, as a reload of the config does. A peer that
// stays keeps its kernel objects and the flows relayed to it; a new one gets
// its own, under the first free number (marks, routing tables and flow sets
// are numbered). A removed peer loses them: the TCP connections still
// relayed to it are delivered here from then on (and reset), and a service
// that is Off forgets it (no failback rescue to it). A peer that a service
// relays to (a mode other than Off) cannot be removed: switch the service
// Off first. After an error, calling it again finishes the job.
func (m *Manager) SetPeers(peers []netip.Addr) error {
	if err := m.cfg.checkPeers(peers); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errors.New("relay: manager closed")
	}
	gone := map[int]netip.Addr{}
	free := 0
	for i, p := range m.cfg.Peers {
		switch {
		case !p.IsValid():
			free++
		case !slices.Contains(peers, p):
			gone[i] = p
			free++
		}
	}
	var added []netip.Addr
	for _, p := range peers {
		if m.peerIndex(p) < 0 {
			added = append(added, p)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(m.services)) {
		w := m.services[name].want
		if _, ok := gone[m.peerIndex(w.Peer)]; ok && w.Mode != Off {
			return fmt.Errorf("relay: service %q relays to peer %v (%s): the peer cannot be removed before that ends", name, w.Peer, w.Mode)
		}
	}
	if err := m.cfg.roomFor(len(m.cfg.Peers) + max(0, len(added)-free)); err != nil {
		return err
	}

	// Removal: first nothing refers to the peer (service rules, the tunnel
	// guard), then its objects go. What fails to go is kept in leftover and
	// tried again by the next call, before its number is used again.
	for i, p := range gone {
		m.cfg.Peers[i] = netip.Addr{}
		m.leftover[i] = p
		for r := range m.routes {
			if r.peer == i {
				delete(m.routes, r)
			}
		}
		for _, s := range m.services {
			if s.want.Peer == p {
				s.want.Peer = netip.Addr{}
			}
		}
	}
	if len(m.leftover) > 0 {
		if err := m.rewrite(); err != nil {
			return err
		}
		var errs []error
		for i, p := range m.leftover {
			if err := m.unlinkPeer(i, p); err != nil {
				errs = append(errs, err)
				continue
			}
			delete(m.leftover, i)
			if _, now := gone[i]; now {
				m.log.Info("relay: peer removed", "peer", p)
			}
		}
		if err := errors.Join(errs...); err != nil {
			return err
		}
	}

	// Addition: its objects first, then the guard lets its tunnel in. A
	// peer whose objects cannot all be made leaves its number free again.
	for _, p := range added {
		i := slices.Index(m.cfg.Peers, netip.Addr{})
		if i < 0 {
			m.cfg.Peers = append(m.cfg.Peers, netip.Addr{})
			i = len(m.cfg.Peers) - 1
		}
		m.cfg.Peers[i] = p
		var err error
		for _, f := range m.fams {
			err = errors.Join(err, m.nft.AddSet(flowSet(f, i), nil))
		}
		if err == nil {
			err = m.nft.Flush()
		}
		if err != nil {
			err = fmt.Errorf("relay: flow sets of peer %v: %w", p, err)
		} else {
			err = m.linkPeer(i)
		}
		if err != nil {
			m.cfg.Peers[i] = netip.Addr{}
			m.leftover[i] = p
			return err
		}
		m.log.Info("relay: peer added", "peer", p)
	}
	for len(m.cfg.Peers) > 0 && !m.cfg.Peers[len(m.cfg.Peers)-1].IsValid() {
		m.cfg.Peers = m.cfg.Peers[:len(m.cfg.Peers)-1]
	}
	return m.rewrite()
}

// rewrite writes every service's rules and the tunnel guard again, for the
// peers as they are now.
func (m *Manager) rewrite() error {
	if err := m.guardTunnel(m.fams[0]); err != nil {
		return err
	}
	return m.writeRules(m.services, nil)
}

func (m *Manager) validate(w Want) error {
	if w.Service == "" {
		return errors.New("relay: want without a service name")
	}
	if len(w.Service) > maxServiceName {
		// It names nftables chains and counters, whose names are bounded.
		return fmt.Errorf("relay: service name %.20q...: longer than %d bytes", w.Service, maxServiceName)
	}
	if w.Mode < Off || w.Mode > All {
		return fmt.Errorf("relay: service %q: unknown mode %d", w.Service, int(w.Mode))
	}
	if w.Mode != Off && w.Peer.IsValid() && m.peerIndex(w.Peer) < 0 {
		return fmt.Errorf("relay: service %q: peer %v is not one of the configured peers %v", w.Service, w.Peer, m.peers())
	}
	// Also when Off: the addresses of an Off want keep their routes.
	switch {
	case w.VIP.IsValid() && !w.VIP.Is4():
		return fmt.Errorf("relay: service %q: VIP %v: want an IPv4 address", w.Service, w.VIP)
	case w.VIP6.IsValid() && (!w.VIP6.Is6() || w.VIP6.Is4In6() || w.VIP6.Zone() != ""):
		return fmt.Errorf("relay: service %q: VIP6 %v: want an IPv6 address", w.Service, w.VIP6)
	case w.VIP6.IsValid() && len(m.fams) < 2:
		return fmt.Errorf("relay: service %q: VIP6 %v: the relay was set up without IPv6", w.Service, w.VIP6)
	}
	if w.Mode == Off {
		return nil
	}
	switch {
	case len(w.vips()) == 0:
		return fmt.Errorf("relay: service %q: no VIP to relay", w.Service)
	case len(w.Ports) == 0:
		return fmt.Errorf("relay: service %q: no ports to relay", w.Service)
	case m.peerIndex(w.Peer) < 0:
		return fmt.Errorf("relay: service %q: peer %v is not one of the configured peers %v", w.Service, w.Peer, m.peers())
	}
	for _, p := range w.Ports {
		if (p.Proto != "tcp" && p.Proto != "udp") || p.Num == 0 {
			return fmt.Errorf("relay: service %q: bad port %v", w.Service, p)
		}
	}
	return nil
}

// Stats returns one entry per service ever given to Set, sorted by name.
// Counters are read from the kernel now; LastFlow and LastPacket are the
// time a counter was first seen higher than before, by this call or by the
// Manager's own poll (every Config.Poll), so they are accurate to the poll
// period.
func (m *Manager) Stats() []Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.closed {
		m.readCounters(time.Now())
	}
	out := make([]Stats, 0, len(m.services))
	for name, s := range m.services {
		out = append(out, Stats{
			Service: name, Mode: s.want.Mode, Peer: s.want.Peer, Since: s.since,
			Flows: s.flows, Packets: s.packets, LastFlow: s.lastFlow, LastPacket: s.lastPacket,
			Queue: s.stall.queue, Stalled: s.stalled,
		})
	}
	slices.SortFunc(out, func(a, b Stats) int { return strings.Compare(a.Service, b.Service) })
	return out
}

func (m *Manager) poll() {
	defer close(m.done)
	t := time.NewTicker(m.cfg.Poll)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case now := <-t.C:
			m.mu.Lock()
			if !m.closed {
				m.readCounters(now)
			}
			m.mu.Unlock()
		}
	}
}

// Close removes the Manager's table, rules, routes and link, puts the local
// rule back where it was, and switches forwarding off again if New switched
// it on. It is safe to call twice.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.mu.Unlock()
	close(m.stop)
	<-m.done
	err := m.teardown()
	m.nft.CloseLasting()
	if m.diag != nil {
		m.diag.close()
	}
	m.nl.Close()
	m.ns.Close()
	return err
}
