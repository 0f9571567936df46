package relay

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The tunnel is one VXLAN link with a fixed VNI and no learning. Every
// replica derives its link's MAC address from its unicast address, so the
// static FDB entry (peer MAC -> peer address) and the static neighbour entry
// (peer address -> peer MAC) that route a packet to a peer need no
// coordination. Relayed packets travel unchanged inside the tunnel; the peer,
// which holds the VIP on lo, delivers them locally and answers the client
// directly from the VIP (direct server return).

// tunnelMAC is the tunnel link's MAC address of the replica with unicast
// address a: locally administered, 02:72 ("r") then the IPv4 address.
func tunnelMAC(a netip.Addr) net.HardwareAddr {
	b := a.As4()
	return net.HardwareAddr{0x02, 0x72, b[0], b[1], b[2], b[3]}
}

func dupNS(h netns.NsHandle) (netns.NsHandle, error) {
	fd, err := unix.Dup(int(h))
	return netns.NsHandle(fd), err
}

// family is one address family's share of the kernel objects: its nftables
// table, its policy rules and its forwarding switch. The tunnel (over IPv4)
// carries both.
type family struct {
	v6         bool
	table      *nftables.Table
	moved      []netlink.Rule // the local rules we moved away, restored by Close
	forwarding bool           // we switched forwarding on; Close switches it off
	hadGuard   bool           // an earlier run had switched forwarding on and died
	ctTimeout  bool           // the kernel took the conntrack timeout policy of rescued connections
}

func (f *family) af() int {
	if f.v6 {
		return unix.AF_INET6
	}
	return unix.AF_INET
}

func (f *family) forwardingKey() string {
	if f.v6 {
		return "net/ipv6/conf/all/forwarding"
	}
	return "net/ipv4/conf/all/forwarding"
}

func (f *family) has(a netip.Addr) bool { return a.IsValid() && a.Is6() == f.v6 }

// tunnelLinkLocal is the IPv6 link-local address of the replica with unicast
// address a on the tunnel (EUI-64 of its tunnel MAC): the gateway of the
// IPv6 VIP routes into the tunnel. No link holds it; the static neighbour
// entry is all the route needs.
func tunnelLinkLocal(a netip.Addr) netip.Addr {
	mac := tunnelMAC(a)
	return netip.AddrFrom16([16]byte{0: 0xfe, 1: 0x80, 8: mac[0] ^ 2, 9: mac[1], 10: mac[2], 11: 0xff, 12: 0xfe, 13: mac[3], 14: mac[4], 15: mac[5]})
}

// cleanup removes what an earlier run of the Manager left: its tables, its
// rules (putting a local rule back first if it had moved it), and its link
// (its routes go with the link). It notes whether that run had switched
// forwarding on (its table held the forward guard). unused are families
// this run does not set up: an earlier run's forwarding is switched off
// there at once.
func (m *Manager) cleanup(unused ...*family) error {
	for _, f := range slices.Concat(m.fams, unused) {
		if t, err := m.nft.ListTableOfFamily(m.cfg.Table, f.table.Family); err == nil && t != nil {
			if _, err := m.nft.ListChain(f.table, guardChain); err == nil {
				f.hadGuard = true
			}
			m.nft.DelTable(f.table)
			if err := m.nft.Flush(); err != nil {
				return fmt.Errorf("relay: remove leftover table %s: %w", m.cfg.Table, err)
			}
			m.log.Info("relay: removed a table an earlier run left", "table", m.cfg.Table, "ipv6", f.v6)
		}
		rules, err := m.nl.RuleList(f.af())
		if err != nil {
			return fmt.Errorf("relay: list rules: %w", err)
		}
		var ours []netlink.Rule
		foreignLocal := false
		for _, r := range rules {
			if r.Protocol == Protocol {
				ours = append(ours, r)
			} else if isLocalRule(r) {
				foreignLocal = true
			}
		}
		if len(ours) > 0 && !foreignLocal && slices.ContainsFunc(ours, isLocalRule) {
			// An earlier run moved the local rule and died: put the kernel's
			// default back before removing the moved copy.
			r := localRule(f, 0, unix.RTPROT_KERNEL)
			if err := m.nl.RuleAdd(&r); err != nil {
				return fmt.Errorf("relay: restore local rule: %w", err)
			}
		}
		for _, r := range ours {
			if err := m.nl.RuleDel(&r); err != nil && !errors.Is(err, unix.ENOENT) {
				return fmt.Errorf("relay: remove leftover rule %s: %w", r, err)
			}
		}
		if len(ours) > 0 {
			m.log.Info("relay: removed policy rules an earlier run left", "rules", len(ours), "ipv6", f.v6)
		}
		if f.hadGuard && slices.Contains(unused, f) {
			if err := m.sysctl(f.forwardingKey(), "0"); err != nil {
				return err
			}
		}
	}
	if l, err := m.nl.LinkByName(m.cfg.Device); err == nil {
		if l.Type() != "vxlan" {
			return fmt.Errorf("relay: link %s exists and is a %s, not this relay's VXLAN link: choose another device name", m.cfg.Device, l.Type())
		}
		if err := m.nl.LinkDel(l); err != nil {
			return fmt.Errorf("relay: remove leftover link %s: %w", m.cfg.Device, err)
		}
		m.log.Info("relay: removed a link an earlier run left", "link", m.cfg.Device)
	}
	return nil
}

func isLocalRule(r netlink.Rule) bool {
	return r.Table == unix.RT_TABLE_LOCAL && r.Mark == 0 && r.Src == nil && r.Dst == nil && r.IifName == "" && r.OifName == ""
}

func localRule(f *family, prio int, proto uint8) netlink.Rule {
	r := *netlink.NewRule()
	r.Family = f.af()
	r.Priority = prio
	r.Table = unix.RT_TABLE_LOCAL
	r.Protocol = proto
	return r
}

// setup creates the tunnel link, one policy rule per peer and family, moves
// the local rules after them, switches forwarding on (guarded) and writes the
// base nftables objects.
func (m *Manager) setup() error {
	la := netlink.NewLinkAttrs()
	la.Name = m.cfg.Device
	la.HardwareAddr = tunnelMAC(m.cfg.Local)
	la.MTU = m.cfg.MTU
	vx := &netlink.Vxlan{
		LinkAttrs: la,
		VxlanId:   int(m.cfg.VNI),
		SrcAddr:   m.cfg.Local.AsSlice(),
		Port:      int(m.cfg.Port),
		Learning:  false,
	}
	if err := m.nl.LinkAdd(vx); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("relay: add VXLAN link %s (VNI %d, UDP port %d): another VXLAN link uses this VNI and port: choose another vni or port: %w", m.cfg.Device, m.cfg.VNI, m.cfg.Port, err)
		}
		return fmt.Errorf("relay: add VXLAN link %s: %w", m.cfg.Device, err)
	}
	link, err := m.nl.LinkByName(m.cfg.Device)
	if err != nil {
		return fmt.Errorf("relay: find link %s: %w", m.cfg.Device, err)
	}
	m.link = link
	// Relayed packets arrive with the client's source address, whose route
	// is not through the tunnel: strict reverse-path filtering would drop
	// them, and any filtering drops everything on a link without an IPv4
	// address. So: loose, and the IPv4 dummy address (RFC 7600), which is
	// the same on every replica and routes nothing (no prefix route).
	if err := m.sysctl("net/ipv4/conf/"+m.cfg.Device+"/rp_filter", "2"); err != nil {
		return err
	}
	dummy := &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(192, 0, 0, 8), Mask: net.CIDRMask(32, 32)},
		Scope: unix.RT_SCOPE_LINK, Flags: unix.IFA_F_NOPREFIXROUTE}
	if err := m.nl.AddrAdd(link, dummy); err != nil {
		return fmt.Errorf("relay: address %s on %s: %w", dummy.IPNet, m.cfg.Device, err)
	}
	if len(m.fams) > 1 {
		// IPv6 needs no address on the link (measured: forwarding into it
		// and local delivery from it work without one), and none is made,
		// so the link sends no router solicitations, reports or duplicate
		// address probes into a tunnel that has nowhere to flood them.
		if err := m.sysctl("net/ipv6/conf/"+m.cfg.Device+"/disable_ipv6", "0"); err != nil {
			return err
		}
		if err := m.nl.LinkSetIP6AddrGenMode(link, 1 /* IN6_ADDR_GEN_MODE_NONE */); err != nil {
			return fmt.Errorf("relay: no IPv6 link-local address on %s: %w", m.cfg.Device, err)
		}
	} else {
		// The tunnel carries IPv4 only; without IPv6 the link sends no
		// router solicitations and reports into it.
		_ = m.sysctl("net/ipv6/conf/"+m.cfg.Device+"/disable_ipv6", "1")
	}
	if err := m.nl.LinkSetUp(link); err != nil {
		return fmt.Errorf("relay: set %s up: %w", m.cfg.Device, err)
	}
	for i := range m.cfg.Peers {
		if err := m.linkPeer(i); err != nil {
			return err
		}
	}
	for _, f := range m.fams {
		if err := m.moveLocalRule(f); err != nil {
			return err
		}
		fwd, err := m.readSysctl(f.forwardingKey())
		if err != nil {
			return err
		}
		if fwd == "0" || f.hadGuard {
			// Relaying forwards packets. Switch forwarding on, and let the
			// guard chain drop every forwarded packet that is not relayed,
			// so the host does not become a router for anything else.
			if err := m.sysctl(f.forwardingKey(), "1"); err != nil {
				return err
			}
			f.forwarding = true
		}
		if err := m.writeBase(f); err != nil {
			return err
		}
	}
	return nil
}

// linkPeer makes the tunnel reach peer i: the FDB entry that sends its MAC
// to its address, the neighbour entries of its gateways, and the policy rule
// per family that sends packets with its mark to its routing table. What
// exists already (an earlier attempt) is kept. Its flow sets are the
// nftables side's (writeBase, SetPeers).
func (m *Manager) linkPeer(i int) error {
	p := m.cfg.Peers[i]
	if err := m.nl.NeighAppend(m.fdbEntry(p)); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("relay: FDB entry for peer %v: %w", p, err)
	}
	for _, f := range m.fams {
		nb := m.neighbour(f, p)
		if err := m.nl.NeighSet(nb); err != nil {
			return fmt.Errorf("relay: neighbour entry %v for peer %v: %w", nb.IP, p, err)
		}
		r := m.peerRule(f, i)
		if err := m.nl.RuleAdd(&r); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("relay: add rule %s: %w", r, err)
		}
	}
	return nil
}

// unlinkPeer removes what linkPeer made, and the routes of peer i's table.
// Nothing must refer to its flow sets any more.
func (m *Manager) unlinkPeer(i int, p netip.Addr) error {
	var errs []error
	for _, f := range m.fams {
		m.nft.DelSet(flowSet(f, i))
		if err := m.nft.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("relay: remove flow set of peer %v: %w", p, err))
		}
	}
	for _, f := range m.fams {
		r := m.peerRule(f, i)
		if err := m.nl.RuleDel(&r); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("relay: remove rule %s: %w", r, err))
		}
		routes, err := m.nl.RouteListFiltered(f.af(), &netlink.Route{Table: m.cfg.RouteTable + i}, netlink.RT_FILTER_TABLE)
		if err != nil {
			errs = append(errs, fmt.Errorf("relay: list routes of table %d: %w", m.cfg.RouteTable+i, err))
		}
		for _, rt := range routes {
			if err := m.nl.RouteDel(&rt); err != nil && !errors.Is(err, unix.ESRCH) {
				errs = append(errs, fmt.Errorf("relay: remove route %s: %w", rt, err))
			}
		}
		if err := m.nl.NeighDel(m.neighbour(f, p)); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("relay: remove neighbour entry of peer %v: %w", p, err))
		}
	}
	if err := m.nl.NeighDel(m.fdbEntry(p)); err != nil && !errors.Is(err, unix.ENOENT) {
		errs = append(errs, fmt.Errorf("relay: remove FDB entry of peer %v: %w", p, err))
	}
	return errors.Join(errs...)
}

func (m *Manager) fdbEntry(p netip.Addr) *netlink.Neigh {
	return &netlink.Neigh{
		LinkIndex: m.link.Attrs().Index, Family: unix.AF_BRIDGE, State: unix.NUD_PERMANENT,
		Flags: unix.NTF_SELF, HardwareAddr: tunnelMAC(p), IP: p.AsSlice(),
	}
}

func (m *Manager) neighbour(f *family, p netip.Addr) *netlink.Neigh {
	return &netlink.Neigh{
		LinkIndex: m.link.Attrs().Index, Family: f.af(), State: unix.NUD_PERMANENT,
		HardwareAddr: tunnelMAC(p), IP: gateway(f, p).AsSlice(),
	}
}

func (m *Manager) peerRule(f *family, i int) netlink.Rule {
	r := *netlink.NewRule()
	r.Family = f.af()
	r.Priority = m.cfg.RulePriority
	r.Mark = m.mark(i)
	mask := m.cfg.MarkMask
	r.Mask = &mask
	r.Table = m.cfg.RouteTable + i
	r.Protocol = Protocol
	return r
}

// gateway is peer p's address in the family: the route of a VIP into the
// tunnel goes through it, and a static neighbour entry resolves it.
func gateway(f *family, p netip.Addr) netip.Addr {
	if f.v6 {
		return tunnelLinkLocal(p)
	}
	return p
}

// moveLocalRule moves the lookup of the local table after the fwmark rules:
// a relayed packet is addressed to a VIP this host holds, and would be
// delivered locally otherwise. The new local rule is added before the old one
// is removed, so local delivery never stops.
func (m *Manager) moveLocalRule(f *family) error {
	rules, err := m.nl.RuleList(f.af())
	if err != nil {
		return fmt.Errorf("relay: list rules: %w", err)
	}
	var early []netlink.Rule
	for _, r := range rules {
		if isLocalRule(r) && r.Priority <= m.cfg.RulePriority {
			early = append(early, r)
		}
	}
	if len(early) == 0 {
		return nil // already after ours (moved by someone else, e.g. Cilium)
	}
	r := localRule(f, m.cfg.RulePriority+1, Protocol)
	if err := m.nl.RuleAdd(&r); err != nil {
		return fmt.Errorf("relay: add local rule at priority %d: %w", r.Priority, err)
	}
	for _, r := range early {
		del := localRule(f, r.Priority, r.Protocol)
		if err := m.nl.RuleDel(&del); err != nil {
			return fmt.Errorf("relay: move local rule from priority %d: %w", r.Priority, err)
		}
		f.moved = append(f.moved, del)
	}
	return nil
}

// addRoute sends a VIP into the tunnel towards one peer, in that peer's table.
// Only for the VIP: the tunnel's own packets to the peer carry the same mark
// and must find the peer through the main table.
func (m *Manager) addRoute(r route) error {
	f := m.fams[0]
	if r.vip.Is6() {
		f = m.fams[1]
	}
	gw := gateway(f, m.cfg.Peers[r.peer])
	rt := &netlink.Route{
		Dst:       &net.IPNet{IP: r.vip.AsSlice(), Mask: net.CIDRMask(r.vip.BitLen(), r.vip.BitLen())},
		Gw:        gw.AsSlice(),
		LinkIndex: m.link.Attrs().Index,
		Table:     m.cfg.RouteTable + r.peer,
		Flags:     int(netlink.FLAG_ONLINK),
		Protocol:  Protocol,
	}
	if err := m.nl.RouteReplace(rt); err != nil {
		return fmt.Errorf("relay: route %v via %v in table %d: %w", r.vip, gw, rt.Table, err)
	}
	return nil
}

// teardown removes everything setup made, restoring the local rules before
// removing the moved copies.
func (m *Manager) teardown() error {
	var errs []error
	for _, f := range m.fams {
		m.nft.DelTable(f.table)
		if err := m.nft.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("relay: remove table %s: %w", m.cfg.Table, err))
		}
		for _, r := range f.moved {
			if err := m.nl.RuleAdd(&r); err != nil && !errors.Is(err, unix.EEXIST) {
				errs = append(errs, fmt.Errorf("relay: restore local rule at priority %d: %w", r.Priority, err))
			}
		}
		if rules, err := m.nl.RuleList(f.af()); err != nil {
			errs = append(errs, fmt.Errorf("relay: list rules: %w", err))
		} else {
			for _, r := range rules {
				if r.Protocol != Protocol {
					continue
				}
				if isLocalRule(r) && len(f.moved) == 0 && !otherLocalRule(rules) {
					continue // never leave the host without a local rule
				}
				if err := m.nl.RuleDel(&r); err != nil && !errors.Is(err, unix.ENOENT) {
					errs = append(errs, fmt.Errorf("relay: remove rule %s: %w", r, err))
				}
			}
		}
	}
	if l, err := m.nl.LinkByName(m.cfg.Device); err == nil && l.Type() == "vxlan" {
		if err := m.nl.LinkDel(l); err != nil {
			errs = append(errs, fmt.Errorf("relay: remove link %s: %w", m.cfg.Device, err))
		}
	}
	for _, f := range m.fams {
		if f.forwarding {
			if err := m.sysctl(f.forwardingKey(), "0"); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func otherLocalRule(rules []netlink.Rule) bool {
	for _, r := range rules {
		if isLocalRule(r) && r.Protocol != Protocol {
			return true
		}
	}
	return false
}

// inNS runs f on a thread switched into the Manager's namespace and switches
// it back before unlocking it, so the runtime can reuse the thread (a thread
// that dies takes the children it forked with Pdeathsig along; the plugin
// host guards its own with onOwnThread). Only when switching back fails is
// the thread left locked for the runtime to discard.
func (m *Manager) inNS(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("relay: own namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(m.ns); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("relay: enter namespace: %w", err)
			return
		}
		ferr := f()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("relay: leave namespace: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// sysctl writes /proc/sys/<key> in the Manager's namespace (per-namespace
// keys resolve to the namespace of the thread that opens them).
func (m *Manager) sysctl(key, value string) error {
	return m.inNS(func() error {
		if err := os.WriteFile("/proc/sys/"+key, []byte(value), 0o644); err != nil {
			return fmt.Errorf("relay: sysctl %s=%s: %w", strings.ReplaceAll(key, "/", "."), value, err)
		}
		return nil
	})
}

func (m *Manager) readSysctl(key string) (string, error) {
	var v string
	err := m.inNS(func() error {
		b, err := os.ReadFile("/proc/sys/" + key)
		if err != nil {
			return fmt.Errorf("relay: sysctl %s: %w", strings.ReplaceAll(key, "/", "."), err)
		}
		v = strings.TrimSpace(string(b))
		return nil
	})
	return v, err
}
