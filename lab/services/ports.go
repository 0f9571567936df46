package services

import (
	"fmt"
	"net"
	"net/netip"
)

// pickPort replaces port 0 by a port free on the host right now, for
// network "tcp" or "udp". Another process may take it before the server
// binds it; the Start functions retry with a new port when that happens.
func pickPort(network string, ap netip.AddrPort) (netip.AddrPort, error) {
	if ap.Port() != 0 {
		return ap, nil
	}
	port, err := freePort(network, netip.AddrPortFrom(ap.Addr(), 0).String())
	if err != nil {
		// The address may exist only inside a namespace: use a loopback port.
		if port, err = freePort(network, "127.0.0.1:0"); err != nil {
			return ap, fmt.Errorf("lab/services: pick a free %s port: %w", network, err)
		}
	}
	return netip.AddrPortFrom(ap.Addr(), port), nil
}

func freePort(network, addr string) (uint16, error) {
	if network == "udp" {
		c, err := net.ListenPacket("udp", addr)
		if err != nil {
			return 0, err
		}
		defer c.Close()
		return uint16(c.LocalAddr().(*net.UDPAddr).Port), nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port), nil
}
