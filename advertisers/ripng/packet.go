package ripng

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/ripcord/ripcord/advertisers/rip"
)

// Wire constants (RFC 2080).
const (
	Version1 = 1
	// Port is the RIPng UDP port; routers accept Responses only from it.
	Port = 521
	// HopLimit is the hop limit of every packet: receivers drop a Response
	// with another, so that it surely came from the link (RFC 2080 §2.4.2).
	HopLimit = 255
	// MaxEntries is the most route entries in one packet on a 1500-byte
	// link: (1500 - 40 IPv6 - 8 UDP - 4 RIPng header) / 20.
	MaxEntries = 72

	headerLen = 4
	rteLen    = 20
	// metricNextHop marks a next-hop RTE (RFC 2080 §2.1.1).
	metricNextHop = 0xFF
)

// Group is the RIPng routers' multicast group.
var Group = netip.MustParseAddr("ff02::9")

// Sentinel errors of Marshal and Unmarshal, wrapped with detail.
var (
	ErrShort     = errors.New("ripng: packet too short")
	ErrLength    = errors.New("ripng: length is not a header plus whole entries")
	ErrVersion   = errors.New("ripng: not version 1")
	ErrCommand   = errors.New("ripng: unknown command")
	ErrNoEntries = errors.New("ripng: no route entries")
	ErrTooMany   = errors.New("ripng: more than 72 entries")
	ErrMetric    = errors.New("ripng: metric outside 1..16")
	ErrPrefixLen = errors.New("ripng: prefix length above 128")
	ErrHostBits  = errors.New("ripng: prefix has bits outside its length")
	ErrPrefix    = errors.New("ripng: prefix is not IPv6")
	ErrNextHop   = errors.New("ripng: next hop is not a link-local IPv6 address")
)

// Marshal encodes a RIPng packet, with the same checks Unmarshal applies, so
// nothing invalid is ever sent. Entries' AFI is ignored (RIPng has none). A
// next-hop RTE goes before each run of entries whose NextHop differs from
// the previous one's; an unset or unspecified NextHop means "via the sender".
func Marshal(p *rip.Packet) ([]byte, error) {
	if err := check(p); err != nil {
		return nil, err
	}
	b := make([]byte, headerLen, headerLen+rteLen*len(p.Entries))
	b[0], b[1] = p.Command, p.Version
	var hop netip.Addr // unspecified: via the sender
	for _, e := range p.Entries {
		if nh := nextHop(e.NextHop); nh != hop {
			b = appendRTE(b, nh, 0, 0, metricNextHop)
			hop = nh
		}
		b = appendRTE(b, e.Prefix.Addr(), e.RouteTag, uint8(e.Prefix.Bits()), uint8(e.Metric))
	}
	return b, nil
}

// nextHop is a as the wire carries it: the zero Addr for "via the sender".
func nextHop(a netip.Addr) netip.Addr {
	if !a.IsValid() || a.IsUnspecified() {
		return netip.Addr{}
	}
	return a.WithZone("")
}

func appendRTE(b []byte, a netip.Addr, tag uint16, plen, metric uint8) []byte {
	var addr [16]byte
	if a.IsValid() {
		addr = a.As16()
	}
	b = append(b, addr[:]...)
	return append(b, byte(tag>>8), byte(tag), plen, metric)
}

func check(p *rip.Packet) error {
	if p.Version != Version1 {
		return fmt.Errorf("%w: %d", ErrVersion, p.Version)
	}
	if p.Command != rip.CommandRequest && p.Command != rip.CommandResponse {
		return fmt.Errorf("%w: %d", ErrCommand, p.Command)
	}
	switch n := len(p.Entries); {
	case n == 0:
		return ErrNoEntries
	case n > MaxEntries:
		return fmt.Errorf("%w: %d", ErrTooMany, n)
	}
	for i, e := range p.Entries {
		if !e.Prefix.IsValid() || !e.Prefix.Addr().Is6() || e.Prefix.Addr().Zone() != "" {
			return fmt.Errorf("%w: entry %d", ErrPrefix, i)
		}
		if e.Prefix.Masked() != e.Prefix {
			return fmt.Errorf("%w: entry %d %v", ErrHostBits, i, e.Prefix)
		}
		if e.Metric < 1 || e.Metric > rip.MetricInfinity {
			return fmt.Errorf("%w: entry %d has %d", ErrMetric, i, e.Metric)
		}
		if nh := nextHop(e.NextHop); nh.IsValid() && !nh.IsLinkLocalUnicast() {
			return fmt.Errorf("%w: entry %d %v", ErrNextHop, i, e.NextHop)
		}
	}
	return nil
}

// Unmarshal decodes and checks a RIPng packet. Next-hop RTEs are applied to
// the entries after them (a next hop that is not link-local counts as "via
// the sender", RFC 2080 §2.1.1) and do not appear as entries. A whole-table
// Request decodes to the single entry ::/0 with metric 16.
func Unmarshal(b []byte) (rip.Packet, error) {
	if len(b) < headerLen+rteLen {
		return rip.Packet{}, fmt.Errorf("%w: %d bytes", ErrShort, len(b))
	}
	if (len(b)-headerLen)%rteLen != 0 {
		return rip.Packet{}, fmt.Errorf("%w: %d bytes", ErrLength, len(b))
	}
	// Header: the two "must be zero" bytes are ignored.
	p := rip.Packet{Command: b[0], Version: b[1]}
	var hop netip.Addr
	for i := headerLen; i < len(b); i += rteLen {
		r := b[i : i+rteLen]
		a := netip.AddrFrom16([16]byte(r[:16]))
		tag, plen, metric := uint16(r[16])<<8|uint16(r[17]), int(r[18]), int(r[19])
		if metric == metricNextHop {
			hop = netip.Addr{}
			if a.IsLinkLocalUnicast() {
				hop = a
			}
			continue
		}
		if plen > 128 {
			return rip.Packet{}, fmt.Errorf("%w: entry at byte %d has /%d", ErrPrefixLen, i, plen)
		}
		if len(p.Entries) == MaxEntries {
			return rip.Packet{}, fmt.Errorf("%w", ErrTooMany)
		}
		p.Entries = append(p.Entries, rip.Entry{RouteTag: tag, Prefix: netip.PrefixFrom(a, plen), NextHop: hop, Metric: metric})
	}
	if err := check(&p); err != nil {
		return rip.Packet{}, err
	}
	return p, nil
}
