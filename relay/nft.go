package relay

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The nftables side, in one table of family ip and one of family ip6 (the
// same name, the same chains and sets, for the service's VIP and VIP6):
//
//	chain prerouting (filter, priority raw, before conntrack):
//	  iifname DEVICE accept                      arrived relayed: never again
//	  ip daddr VIP meta l4proto P th dport N jump svc-NAME    one per service port
//	chain svc-NAME:
//	  flow key in @flows-I (tcp: always, timeout refreshed; udp: unless off):
//	      count, mark peer I, notrack, accept
//	  new flow (tcp: SYN only; udp: any datagram):
//	      [fallback] socket found: return        a local listener takes it
//	      add key to @flows-J, count flow, mark peer J, notrack, accept
//	chain forward (only when the Manager switched forwarding on):
//	  mark not ours: drop
//	chain input (ip only: the tunnel runs over IPv4): VXLAN for our VNI
//	  not from a peer: drop
//	chains tunnel-in, tunnel-out: mark the conntrack entry of flows that come
//	  through the tunnel, clamp the MSS of the SYN-ACKs this host sends them
//	chain rescue (after conntrack): mid-stream TCP packets of connections this
//	  host never saw go to the service's peer (failback)
//
// The flow key is saddr . daddr . l4proto . sport . dport. A relayed flow
// stays with its peer whatever the service's mode becomes, so a TCP
// connection is never cut in the middle by a mode change; a flow that began
// locally (TCP without a SYN, not in a set) stays local. Relayed packets are
// not tracked: this replica only sees the client's half of the connection,
// which conntrack would call invalid. Each table has its own counters of a
// service; Stats adds them up.

const (
	preChain       = "prerouting"
	guardChain     = "forward"
	inputChain     = "input"
	tunnelInChain  = "tunnel-in"
	tunnelOutChain = "tunnel-out"
	rescueChain    = "rescue"
	// rescuedTimeout names the conntrack timeout policy of rescued
	// connections: their later packets are untracked, so the entry their
	// first packet made is of no use after it.
	rescuedTimeout = "rescued"
	// Flow sets are bounded: when one is full new flows are delivered
	// locally instead of relayed.
	flowSetSize = 65536
	// synTimeout is how long a relayed SYN is remembered until the next
	// packet of its connection refreshes it to TCPTimeout, so that a flood
	// of SYNs with forged sources leaves the set quickly.
	synTimeout = 30 * time.Second
)

var (
	flowKeyType = nftables.MustConcatSetType(
		nftables.TypeIPAddr, nftables.TypeIPAddr, nftables.TypeInetProto,
		nftables.TypeInetService, nftables.TypeInetService)
	flowKeyType6 = nftables.MustConcatSetType(
		nftables.TypeIP6Addr, nftables.TypeIP6Addr, nftables.TypeInetProto,
		nftables.TypeInetService, nftables.TypeInetService)
)

func flowSetName(peer int) string     { return "flows-" + strconv.Itoa(peer) }
func serviceChain(name string) string { return "svc-" + name }
func flowCounter(name string) string  { return "flows-" + name }
func pktCounter(name string) string   { return "packets-" + name }

func flowSet(f *family, peer int) *nftables.Set {
	key := flowKeyType
	if f.v6 {
		key = flowKeyType6
	}
	return &nftables.Set{
		Table: f.table, Name: flowSetName(peer), KeyType: key, Concatenation: true,
		Dynamic: true, HasTimeout: true, Size: flowSetSize,
	}
}

// writeBase creates a family's table, its base chains and one flow set per
// peer.
func (m *Manager) writeBase(f *family) error {
	m.nft.AddTable(f.table)
	m.nft.AddChain(&nftables.Chain{
		Name: preChain, Table: f.table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityRaw,
	})
	m.nft.AddRule(&nftables.Rule{Table: f.table, Chain: &nftables.Chain{Name: preChain, Table: f.table},
		Exprs: m.fromTunnel()})
	if f.forwarding {
		guard := m.nft.AddChain(&nftables.Chain{
			Name: guardChain, Table: f.table, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter,
		})
		m.nft.AddRule(&nftables.Rule{Table: f.table, Chain: guard, Exprs: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
				Mask: binaryutil.NativeEndian.PutUint32(m.cfg.MarkMask), Xor: make([]byte, 4)},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: make([]byte, 4)},
			&expr.Verdict{Kind: expr.VerdictDrop},
		}})
	}
	if !f.v6 {
		if err := m.guardTunnel(f); err != nil {
			return err
		}
	}
	m.clampTunnelMSS(f)
	m.nft.AddChain(&nftables.Chain{
		Name: rescueChain, Table: f.table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityMangle,
	})
	for i, p := range m.cfg.Peers {
		if p.IsValid() {
			if err := m.nft.AddSet(flowSet(f, i), nil); err != nil {
				return fmt.Errorf("relay: flow set: %w", err)
			}
		}
	}
	if err := m.nft.Flush(); err != nil {
		return fmt.Errorf("relay: create table %s: %w", m.cfg.Table, err)
	}
	// Optional: kernels without conntrack timeout policies keep a rescued
	// connection's entry until conntrack's own established timeout.
	l3 := uint16(unix.NFPROTO_IPV4)
	if f.v6 {
		l3 = unix.NFPROTO_IPV6
	}
	m.nft.AddObj(&nftables.NamedObj{Table: f.table, Name: rescuedTimeout, Type: nftables.ObjTypeCtTimeout,
		Obj: &expr.CtTimeout{L3Proto: l3, L4Proto: unix.IPPROTO_TCP,
			Policy: expr.CtStatePolicyTimeout{expr.CtStateTCPESTABLISHED: 60}}})
	if err := m.nft.Flush(); err != nil {
		m.log.Info("relay: no conntrack timeout policy; rescued connections keep their conntrack entries longer", "err", err)
	} else {
		f.ctTimeout = true
	}
	return nil
}

// guardTunnel drops VXLAN packets for the relay's VNI that do not come from a
// peer: the tunnel delivers whatever it carries, with any source address.
// SetPeers calls it again: the chain's one rule is replaced.
func (m *Manager) guardTunnel(f *family) error {
	peers := &nftables.Set{Table: f.table, Anonymous: true, Constant: true, KeyType: nftables.TypeIPAddr}
	var elems []nftables.SetElement
	for _, p := range m.peers() {
		elems = append(elems, nftables.SetElement{Key: p.AsSlice()})
	}
	if len(elems) == 0 {
		// An anonymous set needs an element: one no tunnel packet has.
		elems = append(elems, nftables.SetElement{Key: netip.IPv4Unspecified().AsSlice()})
	}
	if err := m.nft.AddSet(peers, elems); err != nil {
		return fmt.Errorf("relay: peer set: %w", err)
	}
	in := m.nft.AddChain(&nftables.Chain{
		Name: inputChain, Table: f.table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter,
	})
	m.nft.FlushChain(in)
	vni := binaryutil.BigEndian.PutUint32(m.cfg.VNI)[1:]
	m.nft.AddRule(&nftables.Rule{Table: f.table, Chain: in, Exprs: concat(isProto(unix.IPPROTO_UDP), []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(m.cfg.Port)},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 12, Len: 3}, // VXLAN header's VNI
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: vni},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Lookup{SourceRegister: 1, SetName: peers.Name, SetID: peers.ID, Invert: true},
		&expr.Verdict{Kind: expr.VerdictDrop},
	})})
	return nil
}

// clampTunnelMSS makes the connections that arrive through the tunnel fit
// it: their conntrack entry gets the tunnel mark, and the SYN-ACK this host
// sends for them announces an MSS that fits the tunnel's MTU. The client's
// segments then travel inside the tunnel whole, with no reliance on ICMP
// "fragmentation needed" reaching the client.
func (m *Manager) clampTunnelMSS(f *family) {
	in := m.nft.AddChain(&nftables.Chain{
		Name: tunnelInChain, Table: f.table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityMangle,
	})
	m.nft.AddRule(&nftables.Rule{Table: f.table, Chain: in, Exprs: concat(m.fromTunnel()[:2], []expr.Any{
		&expr.Ct{Key: expr.CtKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(^m.cfg.MarkMask),
			Xor:  binaryutil.NativeEndian.PutUint32(m.tunnelMark())},
		&expr.Ct{Key: expr.CtKeyMARK, Register: 1, SourceRegister: true},
	})})
	out := m.nft.AddChain(&nftables.Chain{
		Name: tunnelOutChain, Table: f.table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityMangle,
	})
	hdr := 40 // IPv4 and TCP headers
	if f.v6 {
		hdr = 60
	}
	mss := binaryutil.BigEndian.PutUint16(uint16(m.cfg.MTU - hdr))
	m.nft.AddRule(&nftables.Rule{Table: f.table, Chain: out, Exprs: concat([]expr.Any{
		&expr.Ct{Key: expr.CtKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(m.cfg.MarkMask), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(m.tunnelMark())},
	}, isProto(unix.IPPROTO_TCP), []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{0x12}, Xor: []byte{0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0x12}}, // SYN and ACK
		&expr.Exthdr{Op: expr.ExthdrOpTcpopt, Type: 2, Offset: 2, Len: 2, DestRegister: 1},
		&expr.Cmp{Op: expr.CmpOpGt, Register: 1, Data: mss},
		&expr.Immediate{Register: 1, Data: mss},
		&expr.Exthdr{Op: expr.ExthdrOpTcpopt, Type: 2, Offset: 2, Len: 2, SourceRegister: 1},
	})})
}

// tunnelMark is the conntrack mark of flows that arrived through the tunnel:
// all the mask's bits, which no peer index reaches.
func (m *Manager) tunnelMark() uint32 { return m.cfg.MarkMask }

func (m *Manager) fromTunnel() []expr.Any {
	name := make([]byte, unix.IFNAMSIZ)
	copy(name, m.cfg.Device)
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: name},
		&expr.Verdict{Kind: expr.VerdictAccept},
	}
}

// writeRules rewrites the dispatch rules and every service chain in one
// transaction, so packets see either the old rules or the new ones, and a
// failure changes nothing. Counters and flow sets are kept. added are the
// services new to the Manager.
func (m *Manager) writeRules(services map[string]*service, added []string) error {
	for _, f := range m.fams {
		m.writeFamilyRules(f, services, added)
	}
	if err := m.nft.Flush(); err != nil {
		return fmt.Errorf("relay: write rules: %w", err)
	}
	return nil
}

// writeFamilyRules queues the rewrite of one family's table. Every service
// has its chain and counters in both tables, whatever addresses it has.
func (m *Manager) writeFamilyRules(f *family, services map[string]*service, added []string) {
	pre := &nftables.Chain{Name: preChain, Table: f.table}
	for _, name := range slices.Sorted(slices.Values(added)) { // creation order is listing order
		m.nft.AddObj(&nftables.CounterObj{Table: f.table, Name: flowCounter(name)})
		m.nft.AddObj(&nftables.CounterObj{Table: f.table, Name: pktCounter(name)})
		m.nft.AddChain(&nftables.Chain{Name: serviceChain(name), Table: f.table})
	}
	m.nft.FlushChain(pre)
	m.nft.AddRule(&nftables.Rule{Table: f.table, Chain: pre, Exprs: m.fromTunnel()})
	rescue := &nftables.Chain{Name: rescueChain, Table: f.table}
	m.nft.FlushChain(rescue)
	m.nft.AddRule(&nftables.Rule{Table: f.table, Chain: rescue, Exprs: m.fromTunnel()})
	for _, name := range slices.Sorted(maps.Keys(services)) {
		s := services[name]
		chain := &nftables.Chain{Name: serviceChain(name), Table: f.table}
		m.nft.FlushChain(chain)
		vip := s.want.VIP
		if f.v6 {
			vip = s.want.VIP6
		}
		if !f.has(vip) {
			continue // no address of this family: nothing to dispatch
		}
		for _, p := range s.want.Ports {
			m.nft.AddRule(&nftables.Rule{Table: f.table, Chain: pre, Exprs: dispatch(vip, p, chain.Name)})
		}
		for _, rule := range m.serviceRules(f, name, s.want) {
			m.nft.AddRule(&nftables.Rule{Table: f.table, Chain: chain, Exprs: rule})
		}
		for _, rule := range m.rescueRules(f, vip, name, s.want) {
			m.nft.AddRule(&nftables.Rule{Table: f.table, Chain: rescue, Exprs: rule})
		}
	}
}

func dispatch(vip netip.Addr, p Port, chain string) []expr.Any {
	return concat(toPort(vip, p), []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: chain}})
}

// toPort matches packets to vip and port.
func toPort(vip netip.Addr, p Port) []expr.Any {
	off := uint32(16) // IPv4 destination
	if vip.Is6() {
		off = 24
	}
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: uint32(vip.BitLen() / 8)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: vip.AsSlice()},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{protoNum(p.Proto)}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(p.Num)},
	}
}

func protoNum(proto string) byte {
	if proto == "udp" {
		return unix.IPPROTO_UDP
	}
	return unix.IPPROTO_TCP
}

// serviceRules are the rules of one service's chain (see the table above).
func (m *Manager) serviceRules(f *family, name string, w Want) [][]expr.Any {
	var tcp, udp bool
	for _, p := range w.Ports {
		tcp = tcp || p.Proto == "tcp"
		udp = udp || p.Proto == "udp"
	}
	var rules [][]expr.Any
	for i, peer := range m.cfg.Peers {
		if !peer.IsValid() {
			continue // a removed peer's number, free
		}
		if tcp {
			// Known TCP flows keep their peer, also after the relay is off.
			rules = append(rules, concat(isProto(unix.IPPROTO_TCP), flowKey(f),
				[]expr.Any{
					&expr.Lookup{SourceRegister: 1, SetName: flowSetName(i)},
					&expr.Dynset{SrcRegKey: 1, SetName: flowSetName(i), Operation: unix.NFT_DYNSET_OP_UPDATE, Timeout: m.cfg.TCPTimeout},
				},
				m.relayTo(i, pktCounter(name))))
		}
		if udp && w.Mode != Off {
			rules = append(rules, concat(isProto(unix.IPPROTO_UDP), flowKey(f),
				[]expr.Any{&expr.Lookup{SourceRegister: 1, SetName: flowSetName(i)}},
				m.relayTo(i, pktCounter(name))))
		}
	}
	if w.Mode == Off {
		return rules
	}
	j := m.peerIndex(w.Peer)
	newFlow := func(match []expr.Any, timeout time.Duration) {
		if w.Mode == Fallback {
			// A local socket (listener or connection) takes the packet. The
			// socket expression ends the rule when it finds none; when it
			// finds one, its transparent flag is 0 or 1.
			rules = append(rules, concat(match, []expr.Any{
				&expr.Socket{Key: expr.SocketKeyTransparent, Register: 1},
				&expr.Cmp{Op: expr.CmpOpLte, Register: 1, Data: []byte{1}},
				&expr.Verdict{Kind: expr.VerdictReturn},
			}))
		}
		rules = append(rules, concat(match, m.newFlow(f, j, name, timeout)))
	}
	if tcp {
		newFlow(concat(isProto(unix.IPPROTO_TCP), []expr.Any{
			// SYN without ACK, RST or FIN: a new connection
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{0x17}, Xor: []byte{0}},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0x02}},
		}), min(synTimeout, m.cfg.TCPTimeout))
	}
	if udp {
		newFlow(isProto(unix.IPPROTO_UDP), m.cfg.UDPTimeout)
	}
	return rules
}

// rescueRules hand the peer the connections it holds: after the routes
// come back here (failback), the packets of a connection the clients opened
// with the peer meanwhile arrive here, and this host would reset them.
// Such a packet is the first this host's conntrack sees of its connection
// (state new, picked up mid-stream) and is not a SYN; when no local
// connection has its address and ports either, it goes to the service's peer
// (the last one it relayed to, in any mode) and its flow joins the peer's
// set, so the rest follows at the prerouting chain.
func (m *Manager) rescueRules(f *family, vip netip.Addr, name string, w Want) [][]expr.Any {
	j := m.peerIndex(w.Peer)
	if j < 0 {
		return nil
	}
	var rules [][]expr.Any
	for _, p := range w.Ports {
		if p.Proto != "tcp" {
			continue
		}
		match := concat(toPort(vip, p), []expr.Any{
			&expr.Ct{Key: expr.CtKeySTATE, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
				Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitNEW), Xor: make([]byte, 4)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{0x06}, Xor: []byte{0}},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0}}, // neither SYN nor RST
		})
		// A local connection (a full socket bound to the VIP itself) keeps
		// it: its conntrack entry may have been flushed.
		rules = append(rules, concat(match, []expr.Any{
			&expr.Socket{Key: expr.SocketKeyWildcard, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0}},
			&expr.Verdict{Kind: expr.VerdictAccept},
		}))
		var timeout []expr.Any
		if f.ctTimeout {
			timeout = []expr.Any{&expr.Objref{Type: int(nftables.ObjTypeCtTimeout), Name: rescuedTimeout}}
		}
		rules = append(rules, concat(match, flowKey(f), []expr.Any{
			&expr.Dynset{SrcRegKey: 1, SetName: flowSetName(j), Operation: unix.NFT_DYNSET_OP_ADD, Timeout: m.cfg.TCPTimeout},
		}, timeout, []expr.Any{
			&expr.Objref{Type: int(nftables.ObjTypeCounter), Name: flowCounter(name)},
			&expr.Objref{Type: int(nftables.ObjTypeCounter), Name: pktCounter(name)},
		}, m.markFor(j), []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}))
	}
	return rules
}

func concat(parts ...[]expr.Any) []expr.Any { return slices.Concat(parts...) }

func isProto(p byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}},
	}
}

// flowKey loads saddr . daddr . l4proto . sport . dport into the 32-bit
// registers from 8 on (register 1 is their first 16 bytes): 8-12 for IPv4,
// 8-18 for IPv6.
func flowKey(f *family) []expr.Any {
	src, n := uint32(12), uint32(4) // IPv4 source, address length
	if f.v6 {
		src, n = 8, 16
	}
	r := 8 + n/4 // the first register after the source address
	return []expr.Any{
		&expr.Payload{DestRegister: 8, Base: expr.PayloadBaseNetworkHeader, Offset: src, Len: n},
		&expr.Payload{DestRegister: r, Base: expr.PayloadBaseNetworkHeader, Offset: src + n, Len: n},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: r + n/4},
		&expr.Payload{DestRegister: r + n/4 + 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 2},
		&expr.Payload{DestRegister: r + n/4 + 2, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
	}
}

func (m *Manager) newFlow(f *family, peer int, name string, timeout time.Duration) []expr.Any {
	return concat(flowKey(f),
		[]expr.Any{
			&expr.Dynset{SrcRegKey: 1, SetName: flowSetName(peer), Operation: unix.NFT_DYNSET_OP_ADD, Timeout: timeout},
			&expr.Objref{Type: int(nftables.ObjTypeCounter), Name: flowCounter(name)},
		},
		m.relayTo(peer, pktCounter(name)))
}

// relayTo counts the packet, marks it for peer's routing table, leaves it
// untracked and accepts it.
func (m *Manager) relayTo(peer int, counter string) []expr.Any {
	return concat(
		[]expr.Any{&expr.Objref{Type: int(nftables.ObjTypeCounter), Name: counter}},
		m.markFor(peer),
		[]expr.Any{&expr.Notrack{}, &expr.Verdict{Kind: expr.VerdictAccept}})
}

// markFor sets the packet mark that routes to peer, keeping the mark's
// other bits.
func (m *Manager) markFor(peer int) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(^m.cfg.MarkMask),
			Xor:  binaryutil.NativeEndian.PutUint32(m.mark(peer))},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
	}
}

// readCounters updates every service's counters from the kernel and dates
// their growth. Called with m.mu held. (One request per counter: a dump of
// the table's objects would meet the ct timeout object, which the nftables
// library cannot read back.)
func (m *Manager) readCounters(now time.Time) {
	read := func(name string) (uint64, bool) {
		var n uint64
		for _, f := range m.fams {
			o, err := m.nft.GetObject(&nftables.CounterObj{Table: f.table, Name: name})
			c, ok := o.(*nftables.CounterObj)
			if err != nil || !ok {
				m.log.Warn("relay: read counter", "counter", name, "ipv6", f.v6, "err", err)
				return 0, false
			}
			n += c.Packets
		}
		return n, true
	}
	var queues map[queueKey]uint32
	if m.diag != nil {
		var err error
		if queues, err = m.diag.queues(); err != nil {
			m.log.Warn("relay: read socket queues", "err", err)
		}
	}
	for name, s := range m.services {
		s.stalled = s.stall.observe(now, serviceQueue(queues, s.want), m.cfg.StallAfter)
		if n, ok := read(flowCounter(name)); ok && n > s.flows {
			s.flows, s.lastFlow = n, now
		}
		if n, ok := read(pktCounter(name)); ok && n > s.packets {
			s.packets, s.lastPacket = n, now
		}
	}
}
