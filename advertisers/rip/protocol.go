package rip

import (
	"net"
	"net/netip"
)

// Protocol is what RIPv2 and RIPng (RFC 2080, package advertisers/ripng) do
// differently: the wire format, the port, the group and the address family.
// The Speaker does all the rest for both: the declarative Set, periodic and
// triggered updates, answering Requests, re-advertising on heard poison and
// poisoning on Close.
type Protocol struct {
	// Name prefixes logs and errors: "advertisers/rip".
	Name    string
	Version uint8
	// Port is the UDP port routers send from and accept updates from.
	Port  int
	Group netip.Addr // the routers' multicast group
	// Is6: prefixes, neighbours and routers are IPv6; routers speak from
	// link-local addresses.
	Is6 bool
	// MaxEntries is the most route entries in one packet without
	// authentication.
	MaxEntries int
	// Authenticated: the protocol has authentication of its own (RIPng
	// leaves it to IPsec).
	Authenticated bool
	Marshal       func(*Packet) ([]byte, error)
	Unmarshal     func([]byte) (Packet, error)
	// Listen opens the socket of one interface (New, Reconfigure).
	Listen func(ifname string) (net.PacketConn, error)
	// WholeTable is the single entry of a whole-table Request.
	WholeTable Entry
}

// RIPv2 is RFC 2453, the Speaker's default protocol.
var RIPv2 = &Protocol{
	Name: "advertisers/rip", Version: Version2, Port: Port, Group: Multicast, MaxEntries: MaxEntries,
	Authenticated: true,
	Marshal:       (*Packet).MarshalBinary,
	Unmarshal: func(b []byte) (Packet, error) {
		var p Packet
		err := p.UnmarshalBinary(b)
		return p, err
	},
	Listen:     listen,
	WholeTable: WholeTableRequest().Entries[0],
}

// carries reports whether p is of the protocol's family.
func (pr *Protocol) carries(p netip.Prefix) bool { return p.IsValid() && p.Addr().Is6() == pr.Is6 }

// addr is the UDP address of a on the protocol's port, on link zone for
// IPv6 link-local and multicast addresses.
func (pr *Protocol) addr(a netip.Addr, zone string) *net.UDPAddr {
	if a.Is6() && (a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast()) && a.Zone() == "" {
		a = a.WithZone(zone)
	}
	return net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, uint16(pr.Port)))
}

func (pr *Protocol) family() string {
	if pr.Is6 {
		return "IPv6"
	}
	return "IPv4"
}
