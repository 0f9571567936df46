package rip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
)

// Wire constants (RFC 2453).
const (
	CommandRequest  = 1
	CommandResponse = 2

	Version2 = 2

	// Port is the RIP UDP port; routers accept Responses only from it.
	Port = 520

	// AFIInet is the address family of IPv4 route entries.
	AFIInet = 2
	// AFIUnspec marks the single entry of a whole-table Request.
	AFIUnspec = 0
	// AFIAuth marks an authentication entry (handled by Auth, not Packet).
	AFIAuth = 0xFFFF

	// MetricInfinity means unreachable.
	MetricInfinity = 16

	// MaxEntries is the most route entries one packet may carry
	// (an authentication entry counts against it).
	MaxEntries = 25

	headerLen = 4
	entryLen  = 20
)

// Multicast is the RIPv2 group (RFC 2453 §4.5).
var Multicast = netip.MustParseAddr("224.0.0.9")

// Sentinel errors returned by UnmarshalBinary and MarshalBinary, wrapped with
// detail; test with errors.Is.
var (
	ErrShort          = errors.New("rip: packet too short")
	ErrLength         = errors.New("rip: length is not a header plus whole entries")
	ErrVersion        = errors.New("rip: not version 2")
	ErrCommand        = errors.New("rip: unknown command")
	ErrNoEntries      = errors.New("rip: no entries")
	ErrTooManyEntries = errors.New("rip: more than 25 entries")
	ErrAFI            = errors.New("rip: unexpected address family")
	ErrMetric         = errors.New("rip: metric outside 1..16")
	ErrNetmask        = errors.New("rip: netmask not contiguous")
	ErrHostBits       = errors.New("rip: address has bits outside the netmask")
	ErrPrefix         = errors.New("rip: prefix is not IPv4")
	ErrNextHop        = errors.New("rip: next hop is not IPv4")
)

// Entry is one route entry. A whole-table Request carries a single entry
// with AFI 0 (AFIUnspec), Prefix 0.0.0.0/0 and metric 16.
type Entry struct {
	AFI      uint16
	RouteTag uint16
	Prefix   netip.Prefix
	NextHop  netip.Addr // 0.0.0.0 (or the zero Addr) = "via the sender"
	Metric   int
}

// Packet is a RIPv2 message without authentication; Auth adds and strips
// the authentication entry and trailer.
type Packet struct {
	Command uint8
	Version uint8
	Entries []Entry
}

// WholeTableRequest is the Request a router sends to learn everything
// (RFC 2453 §3.9.1).
func WholeTableRequest() Packet {
	return Packet{Command: CommandRequest, Version: Version2, Entries: []Entry{{
		AFI: AFIUnspec, Prefix: netip.PrefixFrom(netip.IPv4Unspecified(), 0),
		NextHop: netip.IPv4Unspecified(), Metric: MetricInfinity,
	}}}
}

// IsWholeTableRequest reports whether p asks for the whole table: RIPv2's
// single entry with AFI 0, or RIPng's single entry for ::/0 (RFC 2080
// §2.4.1), both with metric 16.
func (p *Packet) IsWholeTableRequest() bool {
	if p.Command != CommandRequest || len(p.Entries) != 1 || p.Entries[0].Metric != MetricInfinity {
		return false
	}
	e := p.Entries[0]
	if e.Prefix.Addr().Is6() {
		return e.Prefix == netip.PrefixFrom(netip.IPv6Unspecified(), 0)
	}
	return e.AFI == AFIUnspec
}

func (p *Packet) check() error {
	if p.Version != Version2 {
		return fmt.Errorf("%w: %d", ErrVersion, p.Version)
	}
	if p.Command != CommandRequest && p.Command != CommandResponse {
		return fmt.Errorf("%w: %d", ErrCommand, p.Command)
	}
	switch n := len(p.Entries); {
	case n == 0:
		return ErrNoEntries
	case n > MaxEntries:
		return fmt.Errorf("%w: %d", ErrTooManyEntries, n)
	}
	for i, e := range p.Entries {
		wholeTable := e.AFI == AFIUnspec && p.Command == CommandRequest && len(p.Entries) == 1
		if e.AFI != AFIInet && !wholeTable {
			return fmt.Errorf("%w: entry %d has %#04x", ErrAFI, i, e.AFI)
		}
		if e.Metric < 1 || e.Metric > MetricInfinity {
			return fmt.Errorf("%w: entry %d has %d", ErrMetric, i, e.Metric)
		}
		if !e.Prefix.IsValid() || !e.Prefix.Addr().Is4() {
			return fmt.Errorf("%w: entry %d", ErrPrefix, i)
		}
		if e.Prefix.Masked() != e.Prefix {
			return fmt.Errorf("%w: entry %d %v", ErrHostBits, i, e.Prefix)
		}
		if e.NextHop.IsValid() && !e.NextHop.Is4() {
			return fmt.Errorf("%w: entry %d", ErrNextHop, i)
		}
	}
	return nil
}

// MarshalBinary encodes the packet after the same checks UnmarshalBinary
// applies, so nothing invalid is ever sent.
func (p *Packet) MarshalBinary() ([]byte, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	b := make([]byte, headerLen+entryLen*len(p.Entries))
	b[0], b[1] = p.Command, p.Version
	for i, e := range p.Entries {
		putEntry(b[headerLen+i*entryLen:], e)
	}
	return b, nil
}

func putEntry(b []byte, e Entry) {
	binary.BigEndian.PutUint16(b[0:], e.AFI)
	binary.BigEndian.PutUint16(b[2:], e.RouteTag)
	addr := e.Prefix.Addr().As4()
	copy(b[4:8], addr[:])
	binary.BigEndian.PutUint32(b[8:], prefixMask(e.Prefix.Bits()))
	if e.NextHop.IsValid() {
		nh := e.NextHop.As4()
		copy(b[12:16], nh[:])
	}
	binary.BigEndian.PutUint32(b[16:], uint32(e.Metric))
}

func prefixMask(n int) uint32 {
	if n == 0 {
		return 0
	}
	return ^uint32(0) << (32 - n)
}

// UnmarshalBinary decodes and checks a packet without authentication (use
// Auth.Verify first on received bytes).
func (p *Packet) UnmarshalBinary(b []byte) error {
	if len(b) < headerLen+entryLen {
		return fmt.Errorf("%w: %d bytes", ErrShort, len(b))
	}
	if (len(b)-headerLen)%entryLen != 0 {
		return fmt.Errorf("%w: %d bytes", ErrLength, len(b))
	}
	// Header: the two "must be zero" bytes are ignored (RFC 2453 §4).
	q := Packet{Command: b[0], Version: b[1]}
	n := (len(b) - headerLen) / entryLen
	if n > MaxEntries {
		return fmt.Errorf("%w: %d", ErrTooManyEntries, n)
	}
	q.Entries = make([]Entry, n)
	for i := range n {
		e := b[headerLen+i*entryLen:]
		mask := binary.BigEndian.Uint32(e[8:])
		ones := bits.LeadingZeros32(^mask)
		if prefixMask(ones) != mask {
			return fmt.Errorf("%w: entry %d mask %#08x", ErrNetmask, i, mask)
		}
		metric := binary.BigEndian.Uint32(e[16:])
		if metric < 1 || metric > MetricInfinity {
			return fmt.Errorf("%w: entry %d has %d", ErrMetric, i, metric)
		}
		q.Entries[i] = Entry{
			AFI:      binary.BigEndian.Uint16(e[0:]),
			RouteTag: binary.BigEndian.Uint16(e[2:]),
			Prefix:   netip.PrefixFrom(netip.AddrFrom4([4]byte(e[4:8])), ones),
			NextHop:  netip.AddrFrom4([4]byte(e[12:16])),
			Metric:   int(metric),
		}
	}
	if err := q.check(); err != nil {
		return err
	}
	*p = q
	return nil
}
