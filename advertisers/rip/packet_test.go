package rip

import (
	"bytes"
	"errors"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func cat(parts ...[]byte) []byte { return slices.Concat(parts...) }

// Golden packets, one wire field per line.
var (
	// A Response announcing 10.255.0.1/32 with metric 1, next hop 0.0.0.0.
	goldenResponse = cat(
		[]byte{0x02},                   // command: Response
		[]byte{0x02},                   // version 2
		[]byte{0x00, 0x00},             // must be zero
		[]byte{0x00, 0x02},             // AFI: IPv4
		[]byte{0x00, 0x00},             // route tag
		[]byte{10, 255, 0, 1},          // address
		[]byte{0xFF, 0xFF, 0xFF, 0xFF}, // netmask /32
		[]byte{0, 0, 0, 0},             // next hop: via the sender
		[]byte{0x00, 0x00, 0x00, 0x01}, // metric 1
	)
	// Two entries: a /24 with tag 0x1234 and an explicit next hop, metric 3,
	// and a poisoned /32.
	goldenTwoEntries = cat(
		[]byte{0x02, 0x02, 0x00, 0x00}, // Response, version 2
		[]byte{0x00, 0x02},             // AFI: IPv4
		[]byte{0x12, 0x34},             // route tag 0x1234
		[]byte{192, 0, 2, 0},           // address
		[]byte{0xFF, 0xFF, 0xFF, 0x00}, // netmask /24
		[]byte{192, 0, 2, 7},           // next hop
		[]byte{0x00, 0x00, 0x00, 0x03}, // metric 3
		[]byte{0x00, 0x02},             // AFI: IPv4
		[]byte{0x00, 0x00},             // route tag
		[]byte{10, 255, 0, 2},          // address
		[]byte{0xFF, 0xFF, 0xFF, 0xFF}, // netmask /32
		[]byte{0, 0, 0, 0},             // next hop
		[]byte{0x00, 0x00, 0x00, 0x10}, // metric 16: unreachable
	)
	// The whole-table Request, byte for byte what FRR 8.4 and BIRD 2.0.12
	// send at start-up (captured).
	goldenWholeTableRequest = cat(
		[]byte{0x01, 0x02, 0x00, 0x00}, // Request, version 2
		[]byte{0x00, 0x00},             // AFI 0: whole table
		[]byte{0x00, 0x00},             // route tag
		[]byte{0, 0, 0, 0},             // address
		[]byte{0, 0, 0, 0},             // netmask /0
		[]byte{0, 0, 0, 0},             // next hop
		[]byte{0x00, 0x00, 0x00, 0x10}, // metric 16
	)
)

func TestPacketGolden(t *testing.T) {
	tests := []struct {
		name string
		pkt  Packet
		wire []byte
	}{
		{"response", Packet{Command: CommandResponse, Version: Version2, Entries: []Entry{
			{AFI: AFIInet, Prefix: netip.MustParsePrefix("10.255.0.1/32"), NextHop: netip.IPv4Unspecified(), Metric: 1},
		}}, goldenResponse},
		{"two entries", Packet{Command: CommandResponse, Version: Version2, Entries: []Entry{
			{AFI: AFIInet, RouteTag: 0x1234, Prefix: netip.MustParsePrefix("192.0.2.0/24"), NextHop: netip.MustParseAddr("192.0.2.7"), Metric: 3},
			{AFI: AFIInet, Prefix: netip.MustParsePrefix("10.255.0.2/32"), NextHop: netip.IPv4Unspecified(), Metric: 16},
		}}, goldenTwoEntries},
		{"whole-table request", WholeTableRequest(), goldenWholeTableRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.pkt.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.wire) {
				t.Fatalf("marshal:\n got %x\nwant %x", got, tt.wire)
			}
			var back Packet
			if err := back.UnmarshalBinary(tt.wire); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.pkt, back, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
				cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
				t.Fatalf("unmarshal (-want +got):\n%s", diff)
			}
		})
	}
	var req Packet
	if err := req.UnmarshalBinary(goldenWholeTableRequest); err != nil || !req.IsWholeTableRequest() {
		t.Fatalf("whole-table request not recognised: %v", err)
	}
}

// with returns goldenResponse with bytes at off replaced.
func with(off int, b ...byte) []byte {
	out := slices.Clone(goldenResponse)
	copy(out[off:], b)
	return out
}

func TestUnmarshalErrors(t *testing.T) {
	tooMany := cat(goldenResponse[:4], bytes.Repeat(goldenResponse[4:], 26))
	tests := []struct {
		name string
		wire []byte
		want error
	}{
		{"empty", nil, ErrShort},
		{"header only", goldenResponse[:4], ErrShort},
		{"partial entry", goldenResponse[:23], ErrShort},
		{"trailing bytes", cat(goldenResponse, []byte{0}), ErrLength},
		{"version 1", with(1, 1), ErrVersion},
		{"version 3", with(1, 3), ErrVersion},
		{"command 0", with(0, 0), ErrCommand},
		{"command 3", with(0, 3), ErrCommand},
		{"26 entries", tooMany, ErrTooManyEntries},
		{"AFI 0 in a response", with(4, 0, 0), ErrAFI},
		{"AFI auth without Verify", with(4, 0xFF, 0xFF), ErrAFI},
		{"metric 0", with(20, 0, 0, 0, 0), ErrMetric},
		{"metric 17", with(20, 0, 0, 0, 17), ErrMetric},
		{"metric huge", with(20, 0x80, 0, 0, 1), ErrMetric},
		{"netmask with a hole", with(12, 0xFF, 0x00, 0xFF, 0xFF), ErrNetmask},
		{"netmask low bit", with(12, 0x00, 0x00, 0x00, 0x01), ErrNetmask},
		{"host bits outside /24", with(12, 0xFF, 0xFF, 0xFF, 0x00), ErrHostBits},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Packet
			err := p.UnmarshalBinary(tt.wire)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestMarshalRejectsInvalid(t *testing.T) {
	ok := Entry{AFI: AFIInet, Prefix: netip.MustParsePrefix("10.0.0.0/8"), Metric: 1}
	many := make([]Entry, 26)
	for i := range many {
		many[i] = ok
	}
	tests := []struct {
		name string
		pkt  Packet
		want error
	}{
		{"no entries", Packet{Command: CommandResponse, Version: Version2}, ErrNoEntries},
		{"26 entries", Packet{Command: CommandResponse, Version: Version2, Entries: many}, ErrTooManyEntries},
		{"version 1", Packet{Command: CommandResponse, Version: 1, Entries: []Entry{ok}}, ErrVersion},
		{"command 9", Packet{Command: 9, Version: Version2, Entries: []Entry{ok}}, ErrCommand},
		{"metric 0", Packet{Command: CommandResponse, Version: Version2, Entries: []Entry{{AFI: AFIInet, Prefix: ok.Prefix}}}, ErrMetric},
		{"IPv6 prefix", Packet{Command: CommandResponse, Version: Version2, Entries: []Entry{{AFI: AFIInet, Prefix: netip.MustParsePrefix("2001:db8::/32"), Metric: 1}}}, ErrPrefix},
		{"no prefix", Packet{Command: CommandResponse, Version: Version2, Entries: []Entry{{AFI: AFIInet, Metric: 1}}}, ErrPrefix},
		{"host bits", Packet{Command: CommandResponse, Version: Version2, Entries: []Entry{{AFI: AFIInet, Prefix: netip.MustParsePrefix("10.1.2.3/8"), Metric: 1}}}, ErrHostBits},
		{"IPv6 next hop", Packet{Command: CommandResponse, Version: Version2, Entries: []Entry{{AFI: AFIInet, Prefix: ok.Prefix, NextHop: netip.MustParseAddr("::1"), Metric: 1}}}, ErrNextHop},
		{"AFI 0 in a response", Packet{Command: CommandResponse, Version: Version2, Entries: []Entry{{Prefix: ok.Prefix, Metric: 16}}}, ErrAFI},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.pkt.MarshalBinary(); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

// FuzzRoundTrip: whatever UnmarshalBinary accepts must marshal back to the
// same bytes, except the two must-be-zero header bytes, which are ignored
// on input and written as zero.
func FuzzRoundTrip(f *testing.F) {
	f.Add(goldenResponse)          // one /32, metric 1
	f.Add(goldenTwoEntries)        // tag, next hop, /24 and a poisoned /32
	f.Add(goldenWholeTableRequest) // AFI 0, metric 16
	f.Add(with(2, 0xAB, 0xCD))     // nonzero must-be-zero bytes
	f.Add(with(12, 0, 0, 0, 0))    // /0 mask on a host address: host bits
	f.Add(goldenFRRMD5Response)    // authenticated: AFI 0xFFFF rejected
	f.Add([]byte{})                // empty
	f.Fuzz(func(t *testing.T, wire []byte) {
		var p Packet
		if err := p.UnmarshalBinary(wire); err != nil {
			return
		}
		out, err := p.MarshalBinary()
		if err != nil {
			t.Fatalf("accepted packet does not marshal: %v", err)
		}
		want := slices.Clone(wire)
		want[2], want[3] = 0, 0
		if !bytes.Equal(out, want) {
			t.Fatalf("round trip:\n in %x\nout %x", wire, out)
		}
	})
}
