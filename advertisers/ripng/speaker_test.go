package ripng

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ripcord/ripcord/advertisers"
	"github.com/ripcord/ripcord/advertisers/rip"
	"github.com/ripcord/ripcord/internal/memconn"
)

var (
	vip    = netip.MustParsePrefix("2001:db8::10/128")
	router = netip.MustParseAddrPort("[fe80::1%eth0]:521")
)

func newTestSpeaker(t *testing.T) (*rip.Speaker, *memconn.Conn) {
	t.Helper()
	c := memconn.New(&net.UDPAddr{IP: net.ParseIP("fe80::2"), Port: Port, Zone: "eth0"})
	s, err := NewWithConns(rip.Config{Interfaces: []rip.Interface{{Name: "eth0"}}, UpdateInterval: time.Hour},
		map[string]net.PacketConn{"eth0": c})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, c
}

type sent struct {
	to  netip.AddrPort
	pkt rip.Packet
}

func next(t *testing.T, c *memconn.Conn) sent {
	t.Helper()
	select {
	case p := <-c.Out:
		pkt, err := Unmarshal(p.Data)
		if err != nil {
			t.Fatalf("speaker sent a packet its own Unmarshal rejects: %v", err)
		}
		return sent{p.Addr.AddrPort(), pkt}
	case <-time.After(2 * time.Second):
		t.Fatal("no packet sent")
	}
	panic("unreachable")
}

func none(t *testing.T, c *memconn.Conn, within time.Duration) {
	t.Helper()
	select {
	case p := <-c.Out:
		t.Fatalf("unexpected packet to %v: %x", p.Addr, p.Data)
	case <-time.After(within):
	}
}

func wantUpdate(t *testing.T, s sent, to netip.AddrPort, metric int) {
	t.Helper()
	if s.to != to || s.pkt.Command != rip.CommandResponse || s.pkt.Version != Version1 || len(s.pkt.Entries) != 1 ||
		s.pkt.Entries[0].Prefix != vip || s.pkt.Entries[0].Metric != metric {
		t.Fatalf("sent %+v to %v, want a Response for %v with metric %d to %v", s.pkt, s.to, vip, metric, to)
	}
}

func inject(c *memconn.Conn, from netip.AddrPort, p rip.Packet) {
	wire, err := Marshal(&p)
	if err != nil {
		panic(err)
	}
	c.In <- memconn.Packet{Addr: net.UDPAddrFromAddrPort(from), Data: wire}
}

// The shared speaker, RIPng's way: updates to [ff02::9%eth0]:521, Requests
// answered by unicast, poison heard only from a link-local router, and
// poison on Close.
func TestSpeakerSpeaksRIPng(t *testing.T) {
	s, c := newTestSpeaker(t)
	group := netip.MustParseAddrPort("[ff02::9%eth0]:521")
	if err := s.Set(context.Background(), []advertisers.Announcement{{Prefix: vip, Metric: 2}}); err != nil {
		t.Fatal(err)
	}
	wantUpdate(t, next(t, c), group, 2)

	// A router starting up asks for the whole table.
	inject(c, router, rip.Packet{Command: rip.CommandRequest, Version: Version1, Entries: []rip.Entry{Protocol.WholeTable}})
	wantUpdate(t, next(t, c), router, 2)

	// Poison from a global address is no router's update: ignored.
	poison := rip.Packet{Command: rip.CommandResponse, Version: Version1, Entries: []rip.Entry{{Prefix: vip, Metric: 16}}}
	inject(c, netip.MustParseAddrPort("[2001:db8::1]:521"), poison)
	none(t, c, 300*time.Millisecond)
	// From the router's link-local address: re-advertised at once.
	inject(c, router, poison)
	wantUpdate(t, next(t, c), group, 2)
	if st := s.Stats(); st.PoisonsHeard != 1 || st.RequestsAnswered != 1 {
		t.Errorf("stats %+v, want 1 poison heard and 1 request answered", st)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wantUpdate(t, next(t, c), group, 16)
	wantUpdate(t, next(t, c), group, 16)
}

func TestSpeakerRefusesIPv4AndAuthentication(t *testing.T) {
	s, _ := newTestSpeaker(t)
	v4 := netip.MustParsePrefix("192.0.2.10/32")
	if s.Carries(v4) || !s.Carries(vip) {
		t.Error("Carries: want IPv6 only")
	}
	err := s.Set(context.Background(), []advertisers.Announcement{{Prefix: v4, Metric: 1}})
	if err == nil || !strings.Contains(err.Error(), "advertisers/ripng: 192.0.2.10/32 is not a canonical IPv6 prefix") {
		t.Errorf("Set IPv4: %v", err)
	}
	_, err = NewWithConns(rip.Config{Interfaces: []rip.Interface{{Name: "eth0"}}, Auth: rip.Auth{Type: rip.AuthMD5, Key: []byte("k")}},
		map[string]net.PacketConn{"eth0": memconn.New(nil)})
	if err == nil || !strings.Contains(err.Error(), "no authentication of its own") {
		t.Errorf("with MD5: %v", err)
	}
	_, err = NewWithConns(rip.Config{Interfaces: []rip.Interface{{Name: "eth0", Neighbors: []netip.Addr{netip.MustParseAddr("10.0.0.1")}}}},
		map[string]net.PacketConn{"eth0": memconn.New(nil)})
	if err == nil || !strings.Contains(err.Error(), "neighbour 10.0.0.1 on eth0 is not IPv6") {
		t.Errorf("IPv4 neighbour: %v", err)
	}
}
