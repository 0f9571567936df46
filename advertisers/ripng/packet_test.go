package ripng

import (
	"bytes"
	"errors"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ripcord/ripcord/advertisers/rip"
)

func cat(parts ...[]byte) []byte { return slices.Concat(parts...) }

func addr16(s string) []byte { return netip.MustParseAddr(s).AsSlice() }

// Golden packets, one wire field per line.
var (
	// A Response announcing 2001:db8::10/128 with metric 1, via the sender.
	goldenResponse = cat(
		[]byte{0x02},           // command: Response
		[]byte{0x01},           // version 1
		[]byte{0x00, 0x00},     // must be zero
		addr16("2001:db8::10"), // prefix
		[]byte{0x00, 0x00},     // route tag
		[]byte{128},            // prefix length
		[]byte{0x01},           // metric 1
	)
	// A next-hop RTE, a /64 with tag 0x1234 and metric 3 through it, a
	// next-hop RTE back to the sender, and a poisoned /128.
	goldenNextHop = cat(
		[]byte{0x02, 0x01, 0x00, 0x00}, // Response, version 1
		addr16("fe80::1"),              // next hop
		[]byte{0x00, 0x00},             // route tag: 0
		[]byte{0},                      // prefix length: 0
		[]byte{0xFF},                   // metric 0xFF: a next-hop RTE
		addr16("2001:db8:1::"),         // prefix
		[]byte{0x12, 0x34},             // route tag 0x1234
		[]byte{64},                     // prefix length
		[]byte{0x03},                   // metric 3
		addr16("::"),                   // next hop :: = via the sender again
		[]byte{0x00, 0x00, 0x00, 0xFF}, // tag, length, metric 0xFF
		addr16("2001:db8::11"),         // prefix
		[]byte{0x00, 0x00},             // route tag
		[]byte{128},                    // prefix length
		[]byte{0x10},                   // metric 16: unreachable
	)
	// The whole-table Request: one RTE, ::/0, metric 16 (RFC 2080 §2.4.1),
	// byte for byte what FRR 8.4 ripngd sends at start-up (captured).
	goldenWholeTableRequest = cat(
		[]byte{0x01, 0x01, 0x00, 0x00}, // Request, version 1
		addr16("::"),                   // prefix ::
		[]byte{0x00, 0x00},             // route tag
		[]byte{0},                      // prefix length 0
		[]byte{0x10},                   // metric 16
	)
)

func TestPacketGolden(t *testing.T) {
	fe80 := netip.MustParseAddr("fe80::1")
	tests := []struct {
		name string
		wire []byte
		pkt  rip.Packet
	}{
		{"response", goldenResponse, rip.Packet{Command: rip.CommandResponse, Version: 1, Entries: []rip.Entry{
			{Prefix: netip.MustParsePrefix("2001:db8::10/128"), Metric: 1}}}},
		{"next hop", goldenNextHop, rip.Packet{Command: rip.CommandResponse, Version: 1, Entries: []rip.Entry{
			{Prefix: netip.MustParsePrefix("2001:db8:1::/64"), RouteTag: 0x1234, NextHop: fe80, Metric: 3},
			{Prefix: netip.MustParsePrefix("2001:db8::11/128"), Metric: 16}}}},
		{"whole table request", goldenWholeTableRequest, rip.Packet{Command: rip.CommandRequest, Version: 1,
			Entries: []rip.Entry{Protocol.WholeTable}}},
	}
	cmpAddr := cmp.Comparer(func(a, b netip.Addr) bool { return a == b })
	cmpPrefix := cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Marshal(&tc.pkt)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.wire) {
				t.Errorf("Marshal:\n got %x\nwant %x", got, tc.wire)
			}
			p, err := Unmarshal(tc.wire)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.pkt, p, cmpAddr, cmpPrefix); diff != "" {
				t.Errorf("Unmarshal (-want +got):\n%s", diff)
			}
		})
	}
	p, _ := Unmarshal(goldenWholeTableRequest)
	if !p.IsWholeTableRequest() {
		t.Error("the whole-table Request is not recognised as one")
	}
	p, _ = Unmarshal(goldenResponse)
	p.Command = rip.CommandRequest
	if p.IsWholeTableRequest() {
		t.Error("a specific Request for a /128 is taken for a whole-table Request")
	}
}

// with returns goldenResponse with bytes from off on replaced.
func with(off int, b ...byte) []byte {
	w := slices.Clone(goldenResponse)
	copy(w[off:], b)
	return w
}

func TestUnmarshalErrors(t *testing.T) {
	nextHopOnly := cat([]byte{2, 1, 0, 0}, addr16("fe80::1"), []byte{0, 0, 0, 0xFF})
	tests := []struct {
		name string
		wire []byte
		want error
	}{
		{"empty", nil, ErrShort},
		{"header only", goldenResponse[:4], ErrShort},
		{"partial entry", goldenResponse[:23], ErrShort},
		{"trailing bytes", append(slices.Clone(goldenResponse), 0), ErrLength},
		{"version 2", with(1, 2), ErrVersion},
		{"command 3", with(0, 3), ErrCommand},
		{"metric 0", with(23, 0), ErrMetric},
		{"metric 17", with(23, 17), ErrMetric},
		{"prefix length 129", with(22, 129), ErrPrefixLen},
		{"host bits", with(22, 64), ErrHostBits},
		{"only a next hop", nextHopOnly, ErrNoEntries},
		{"73 entries", cat(goldenResponse[:4], bytes.Repeat(goldenResponse[4:], 73)), ErrTooMany},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Unmarshal(tc.wire)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestMarshalRejectsInvalid(t *testing.T) {
	ok := rip.Entry{Prefix: netip.MustParsePrefix("2001:db8::10/128"), Metric: 1}
	tests := []struct {
		name string
		pkt  rip.Packet
		want error
	}{
		{"version 2", rip.Packet{Command: 2, Version: 2, Entries: []rip.Entry{ok}}, ErrVersion},
		{"no entries", rip.Packet{Command: 2, Version: 1}, ErrNoEntries},
		{"73 entries", rip.Packet{Command: 2, Version: 1, Entries: slices.Repeat([]rip.Entry{ok}, 73)}, ErrTooMany},
		{"IPv4 prefix", rip.Packet{Command: 2, Version: 1, Entries: []rip.Entry{{Prefix: netip.MustParsePrefix("10.0.0.1/32"), Metric: 1}}}, ErrPrefix},
		{"metric 17", rip.Packet{Command: 2, Version: 1, Entries: []rip.Entry{{Prefix: ok.Prefix, Metric: 17}}}, ErrMetric},
		{"global next hop", rip.Packet{Command: 2, Version: 1, Entries: []rip.Entry{{Prefix: ok.Prefix, Metric: 1,
			NextHop: netip.MustParseAddr("2001:db8::1")}}}, ErrNextHop},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Marshal(&tc.pkt); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

// A next hop that is not link-local counts as "via the sender" (RFC 2080
// §2.1.1): a router must not be steered off the link.
func TestGlobalNextHopIgnored(t *testing.T) {
	wire := cat([]byte{2, 1, 0, 0}, addr16("2001:db8::1"), []byte{0, 0, 0, 0xFF}, goldenResponse[4:])
	p, err := Unmarshal(wire)
	if err != nil {
		t.Fatal(err)
	}
	if nh := p.Entries[0].NextHop; nh.IsValid() {
		t.Fatalf("next hop = %v, want none", nh)
	}
}

// FuzzRoundTrip: whatever Unmarshal accepts marshals to a packet that
// decodes the same, and byte for byte the same (must-be-zero header bytes
// aside) when it has no next-hop RTEs, which Marshal writes only where the
// next hop changes.
func FuzzRoundTrip(f *testing.F) {
	f.Add(goldenResponse)          // one /128, metric 1
	f.Add(goldenNextHop)           // next-hop RTEs, tag, /64 and a poisoned /128
	f.Add(goldenWholeTableRequest) // ::/0, metric 16
	f.Add(with(2, 0xAB, 0xCD))     // nonzero must-be-zero bytes
	f.Add(with(22, 0))             // /0 on a host address: host bits
	f.Add([]byte{})                // empty
	f.Fuzz(func(t *testing.T, wire []byte) {
		p, err := Unmarshal(wire)
		if err != nil {
			return
		}
		out, err := Marshal(&p)
		if err != nil {
			t.Fatalf("accepted packet does not marshal: %v", err)
		}
		q, err := Unmarshal(out)
		if err != nil {
			t.Fatalf("marshalled packet does not decode: %v", err)
		}
		if !slices.Equal(p.Entries, q.Entries) || p.Command != q.Command || p.Version != q.Version {
			t.Fatalf("round trip changed the packet:\n in %x\nout %x", wire, out)
		}
		hasNextHop := false
		for i := headerLen; i < len(wire); i += rteLen {
			hasNextHop = hasNextHop || wire[i+rteLen-1] == metricNextHop
		}
		want := slices.Clone(wire)
		want[2], want[3] = 0, 0
		if !hasNextHop && !bytes.Equal(out, want) {
			t.Fatalf("round trip:\n in %x\nout %x", wire, out)
		}
	})
}
