package rip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// New opens one socket per interface and starts the speaker. Each socket is
// bound to 0.0.0.0:520 and to its device (SO_BINDTODEVICE), so several
// interfaces can share port 520 and each socket hears only its own link. It
// sends multicast with TTL 1 out of the interface with the interface's
// primary IPv4 address as source (what routers require: source port 520 and
// an address on the link's subnet), joins 224.0.0.9 to hear Requests and
// neighbours' updates, and does not loop its own multicast back. Needs
// CAP_NET_BIND_SERVICE and CAP_NET_RAW (root). With cfg.Protocol set, the
// protocol's Listen opens the sockets (package ripng's for RIPng).
func New(cfg Config) (*Speaker, error) {
	if cfg.Protocol == nil {
		cfg.Protocol = RIPv2
	}
	listen := cfg.Protocol.Listen
	conns := map[string]net.PacketConn{}
	closeAll := func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}
	for _, ifc := range cfg.Interfaces {
		if _, dup := conns[ifc.Name]; dup {
			continue // validate reports it
		}
		c, err := listen(ifc.Name)
		if err != nil {
			closeAll()
			return nil, err
		}
		conns[ifc.Name] = c
	}
	s, err := NewWithConns(cfg, conns)
	if err != nil {
		closeAll()
		return nil, err
	}
	return s, nil
}

// primaryIPv4 is the first IPv4 address of an interface, which the kernel
// lists first as primary.
func primaryIPv4(ifi *net.Interface) (netip.Addr, error) {
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, err
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(ipn.IP); ok && ip.Unmap().Is4() {
				return ip.Unmap(), nil
			}
		}
	}
	return netip.Addr{}, fmt.Errorf("advertisers/rip: %s has no IPv4 address", ifi.Name)
}

// CheckInterface reports whether New can speak on interface name: it
// exists and has an IPv4 address to send from. Config validation calls it.
func CheckInterface(name string) error {
	_, _, err := lookupInterface(name)
	return err
}

func lookupInterface(name string) (*net.Interface, netip.Addr, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, netip.Addr{}, fmt.Errorf("advertisers/rip: interface %s: %w", name, err)
	}
	src, err := primaryIPv4(ifi)
	return ifi, src, err
}

func listen(name string) (net.PacketConn, error) {
	ifi, src, err := lookupInterface(name)
	if err != nil {
		return nil, err
	}
	mreq := &syscall.IPMreqn{Address: src.As4(), Ifindex: int32(ifi.Index)}
	join := &syscall.IPMreqn{Multiaddr: Multicast.As4(), Address: src.As4(), Ifindex: int32(ifi.Index)}
	return ListenOnDevice("advertisers/rip", name, "udp4", fmt.Sprintf("0.0.0.0:%d", Port), func(s int, set func(string, error)) {
		set("IP_MULTICAST_TTL", syscall.SetsockoptInt(s, syscall.IPPROTO_IP, syscall.IP_MULTICAST_TTL, 1))
		// Unicast goes only to directly connected routers too.
		set("IP_TTL", syscall.SetsockoptInt(s, syscall.IPPROTO_IP, syscall.IP_TTL, 1))
		set("IP_MULTICAST_LOOP", syscall.SetsockoptInt(s, syscall.IPPROTO_IP, syscall.IP_MULTICAST_LOOP, 0))
		set("IP_MULTICAST_IF", syscall.SetsockoptIPMreqn(s, syscall.IPPROTO_IP, syscall.IP_MULTICAST_IF, mreq))
		set("IP_ADD_MEMBERSHIP", syscall.SetsockoptIPMreqn(s, syscall.IPPROTO_IP, syscall.IP_ADD_MEMBERSHIP, join))
	})
}

// ListenOnDevice opens a UDP socket on addr bound to device ifname
// (SO_BINDTODEVICE, SO_REUSEADDR: one socket per interface on the same
// port), after options sets the protocol's own socket options; set keeps
// the first error. component prefixes errors. Package ripng opens its
// sockets with it too.
func ListenOnDevice(component, ifname, network, addr string, options func(fd int, set func(what string, err error))) (net.PacketConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			s := int(fd)
			set := func(what string, err error) {
				if err != nil && serr == nil {
					serr = fmt.Errorf("%s: %s on %s: %w", component, what, ifname, err)
				}
			}
			set("SO_REUSEADDR", syscall.SetsockoptInt(s, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1))
			set("SO_BINDTODEVICE", syscall.SetsockoptString(s, syscall.SOL_SOCKET, syscall.SO_BINDTODEVICE, ifname))
			options(s, set)
		})
		return errors.Join(err, serr)
	}}
	c, err := lc.ListenPacket(context.Background(), network, addr)
	if err != nil {
		return nil, fmt.Errorf("%s: listen on %s: %w", component, ifname, err)
	}
	return c, nil
}
