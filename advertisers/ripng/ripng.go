// Package ripng is an announce-only RIPng speaker (RFC 2080): it tells the
// routers on a host's links about the host's IPv6 service addresses and
// learns nothing. The speaker itself is advertisers/rip's, which does the
// same for RIPv2 (declarative Set, triggered and periodic updates, answering
// Requests, re-advertising on heard poison, poison on Close); this package
// adds RIPng's wire format and sockets.
//
// Wire facts: UDP port 521 to ff02::9, from the link-local address of the
// interface, hop limit 255 (routers drop Responses with any other). RIPng has
// no authentication of its own (RFC 2080 leaves it to IPsec): filter on the
// router what it accepts from a replica's link.
package ripng

import (
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"github.com/ripcord/ripcord/advertisers/rip"
)

// Protocol is RIPng for rip.Config.Protocol.
var Protocol = &rip.Protocol{
	Name: "advertisers/ripng", Version: Version1, Port: Port, Group: Group, Is6: true, MaxEntries: MaxEntries,
	Marshal: Marshal, Unmarshal: Unmarshal, Listen: listen,
	WholeTable: rip.Entry{Prefix: netip.PrefixFrom(netip.IPv6Unspecified(), 0), Metric: rip.MetricInfinity},
}

// NewWithConns starts a RIPng speaker on already-open sockets (tests pass
// in-memory ones); see rip.NewWithConns. cfg.Auth must be none.
func NewWithConns(cfg rip.Config, conns map[string]net.PacketConn) (*rip.Speaker, error) {
	cfg.Protocol = Protocol
	return rip.NewWithConns(cfg, conns)
}

// New opens one socket per interface and starts the speaker. Each socket is
// bound to [::]:521 and to its device (SO_BINDTODEVICE), sends to ff02::9
// out of its interface with hop limit 255 (multicast and unicast), so the
// kernel picks the interface's link-local address as source, joins ff02::9
// and does not loop its own multicast back. Needs root.
func New(cfg rip.Config) (*rip.Speaker, error) {
	cfg.Protocol = Protocol
	return rip.New(cfg)
}

// CheckInterface reports whether New can speak on interface name: it
// exists and has a link-local IPv6 address to send from. Config validation
// calls it.
func CheckInterface(name string) error {
	_, err := lookupInterface(name)
	return err
}

func lookupInterface(name string) (*net.Interface, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, fmt.Errorf("advertisers/ripng: interface %s: %w", name, err)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return nil, fmt.Errorf("advertisers/ripng: interface %s: %w", name, err)
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(ipn.IP); ok && ip.Is6() && ip.IsLinkLocalUnicast() {
				return ifi, nil
			}
		}
	}
	return nil, fmt.Errorf("advertisers/ripng: %s has no link-local IPv6 address (RIPng speaks from it)", name)
}

func listen(name string) (net.PacketConn, error) {
	ifi, err := lookupInterface(name)
	if err != nil {
		return nil, err
	}
	join := &syscall.IPv6Mreq{Interface: uint32(ifi.Index)}
	copy(join.Multiaddr[:], Group.AsSlice())
	return rip.ListenOnDevice("advertisers/ripng", name, "udp6", fmt.Sprintf("[::]:%d", Port), func(s int, set func(string, error)) {
		set("IPV6_V6ONLY", syscall.SetsockoptInt(s, syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY, 1))
		set("IPV6_MULTICAST_HOPS", syscall.SetsockoptInt(s, syscall.IPPROTO_IPV6, syscall.IPV6_MULTICAST_HOPS, HopLimit))
		set("IPV6_UNICAST_HOPS", syscall.SetsockoptInt(s, syscall.IPPROTO_IPV6, syscall.IPV6_UNICAST_HOPS, HopLimit))
		set("IPV6_MULTICAST_LOOP", syscall.SetsockoptInt(s, syscall.IPPROTO_IPV6, syscall.IPV6_MULTICAST_LOOP, 0))
		set("IPV6_MULTICAST_IF", syscall.SetsockoptInt(s, syscall.IPPROTO_IPV6, syscall.IPV6_MULTICAST_IF, ifi.Index))
		set("IPV6_JOIN_GROUP", syscall.SetsockoptIPv6Mreq(s, syscall.IPPROTO_IPV6, syscall.IPV6_JOIN_GROUP, join))
	})
}
