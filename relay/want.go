// Package relay hands new flows for a service address to a healthy peer in
// the kernel while this replica's service is broken but its host and links
// still work, so that clients keep being answered while the routes converge
// (make-before-break). Like the advertisers it is declarative: Set converges
// the kernel to a desired set of relays.
package relay

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Port is one transport port of a service, written "tcp/389" or "udp/1812".
type Port struct {
	Proto string // "tcp" or "udp"
	Num   uint16
}

func (p Port) String() string { return p.Proto + "/" + strconv.Itoa(int(p.Num)) }

// ParsePort reads "tcp/389" or "udp/1812".
func ParsePort(s string) (Port, error) {
	proto, num, ok := strings.Cut(s, "/")
	if !ok || (proto != "tcp" && proto != "udp") {
		return Port{}, fmt.Errorf("port %q: want tcp/N or udp/N", s)
	}
	n, err := strconv.ParseUint(num, 10, 16)
	if err != nil || n == 0 {
		return Port{}, fmt.Errorf("port %q: %q is not a port number 1-65535", s, num)
	}
	return Port{Proto: proto, Num: uint16(n)}, nil
}

// Mode says which new flows of a service are relayed.
type Mode int

const (
	Off Mode = iota
	// Fallback relays only the flows that no local socket would take (a
	// crashed listener): no detection time at all. It may stand while the
	// service is healthy.
	Fallback
	// All relays every new flow: the service is down, hung or drained here.
	All
)

var modeNames = [...]string{"off", "fallback", "all"}

func (m Mode) String() string {
	if int(m) < len(modeNames) {
		return modeNames[m]
	}
	return "mode(" + strconv.Itoa(int(m)) + ")"
}

// Want is the desired relay of one service.
type Want struct {
	Service string
	VIP     netip.Addr // IPv4; may be absent when VIP6 is set
	VIP6    netip.Addr // IPv6, relayed through the same tunnel to the same peer
	Ports   []Port
	Mode    Mode
	Peer    netip.Addr // the healthy peer's unicast address; one of Config.Peers
}

// vips are the want's addresses, IPv4 first.
func (w Want) vips() []netip.Addr {
	var a []netip.Addr
	for _, v := range []netip.Addr{w.VIP, w.VIP6} {
		if v.IsValid() {
			a = append(a, v)
		}
	}
	return a
}

// Stats is what a relay has carried since it was installed.
type Stats struct {
	Service    string
	Mode       Mode
	Peer       netip.Addr
	Since      time.Time // when the current mode began; zero while Off
	Flows      uint64    // new flows relayed
	Packets    uint64    // packets relayed
	LastFlow   time.Time // when a new relayed flow was last seen (zero: none)
	LastPacket time.Time // when a relayed packet was last seen (zero: none)
	// Queue is what waits in the fullest socket that takes the service's
	// VIP and ports here (TCP: connections not yet accepted; UDP: bytes),
	// and Stalled says it has been non-empty and not shrinking for
	// Config.StallAfter: the server is hung, whatever its checks say yet.
	Queue   uint32
	Stalled bool
}
