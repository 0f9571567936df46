package relay

import (
	"context"
	"encoding/binary"
	"github.com/ripcord/ripcord/lab/netns/netnstest"
	"net"
	"net/netip"
	"testing"
	"time"
)

func TestStallObserve(t *testing.T) {
	ms := time.Millisecond
	t0 := time.Unix(1000, 0)
	for _, tc := range []struct {
		name   string
		queues []uint32 // read 50 ms apart
		want   []bool
	}{
		{"empty is never stalled", []uint32{0, 0, 0, 0}, []bool{false, false, false, false}},
		{"a queue that stays", []uint32{0, 1, 1, 1, 1}, []bool{false, false, false, true, true}},
		{"a queue that grows", []uint32{2, 3, 5, 8}, []bool{false, false, true, true}},
		{"shrinking starts over", []uint32{3, 3, 2, 2, 2}, []bool{false, false, false, false, true}},
		{"emptied starts over", []uint32{1, 1, 1, 0, 1, 1}, []bool{false, false, true, false, false, false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s stall
			for i, q := range tc.queues {
				if got := s.observe(t0.Add(time.Duration(i)*50*ms), q, 100*ms); got != tc.want[i] {
					t.Fatalf("read %d (queue %d): stalled %v, want %v", i, q, got, tc.want[i])
				}
			}
		})
	}
}

func TestParseDiagMsg(t *testing.T) {
	msg := func(family byte, addr []byte, port uint16, rq uint32) []byte {
		b := make([]byte, 72)
		b[0] = family
		b[4], b[5] = byte(port>>8), byte(port)
		copy(b[8:], addr)
		binary.NativeEndian.PutUint32(b[56:], rq)
		return b
	}
	type got struct {
		addr netip.Addr
		port uint16
		rq   uint32
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want []got
	}{
		{"ipv4", msg(2, []byte{10, 0, 9, 9}, 389, 3), []got{{netip.MustParseAddr("10.0.9.9"), 389, 3}}},
		{"ipv6 wildcard", msg(10, make([]byte, 16), 1812, 640), []got{{netip.IPv6Unspecified(), 1812, 640}}},
		{"ipv4-mapped", msg(10, netip.MustParseAddr("::ffff:10.0.9.9").AsSlice(), 636, 1), []got{{netip.MustParseAddr("10.0.9.9"), 636, 1}}},
		{"short", msg(2, nil, 389, 1)[:71], nil},
		{"other family", msg(1, nil, 389, 1), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var all []got
			parseDiagMsg(tc.b, func(a netip.Addr, p uint16, rq uint32) { all = append(all, got{a, p, rq}) })
			if len(all) != len(tc.want) || (len(all) == 1 && all[0] != tc.want[0]) {
				t.Fatalf("got %+v, want %+v", all, tc.want)
			}
		})
	}
}

// A listener nobody accepts from (a hung server) and a UDP socket nobody
// reads: the kernel queues what clients send, and Stats calls the service
// stalled once the queue has stood for StallAfter; taking the queue out
// ends it.
func TestRelayStalled(t *testing.T) {
	needRoot(t)
	ns := netnstest.New(t, "rls")
	must(t, ns.AddAddr("lo", netip.PrefixFrom(vip, 32)))
	var m *Manager
	must(t, ns.Do(func() (err error) {
		m, err = New(context.Background(), Config{Local: netip.MustParseAddr("10.0.5.2"), Peers: []netip.Addr{netip.MustParseAddr("10.0.5.3")},
			StallAfter: 100 * time.Millisecond})
		return err
	}))
	defer m.Close()
	ports := []Port{{Proto: "tcp", Num: 7001}, {Proto: "udp", Num: 7002}}
	must(t, m.Set(context.Background(), []Want{{Service: "svc", VIP: vip, Ports: ports}}))

	var (
		ln net.Listener
		pc net.PacketConn
	)
	must(t, ns.Do(func() (err error) {
		if ln, err = net.Listen("tcp", "0.0.0.0:7001"); err != nil {
			return err
		}
		pc, err = net.ListenPacket("udp", netip.AddrPortFrom(vip, 7002).String())
		return err
	}))
	defer ln.Close()
	defer pc.Close()

	stats := func() Stats {
		t.Helper()
		for _, s := range m.Stats() {
			if s.Service == "svc" {
				return s
			}
		}
		t.Fatal("no stats for svc")
		return Stats{}
	}
	waitStalled := func(what string, want bool) Stats {
		t.Helper()
		var s Stats
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(30 * time.Millisecond) {
			if s = stats(); s.Stalled == want {
				return s
			}
		}
		t.Fatalf("%s: stalled %v (queue %d), want %v", what, s.Stalled, s.Queue, want)
		return s
	}
	if s := stats(); s.Stalled || s.Queue != 0 {
		t.Fatalf("idle listener: %+v", s)
	}

	var conn net.Conn
	must(t, ns.Do(func() (err error) {
		conn, err = net.Dial("tcp", netip.AddrPortFrom(vip, 7001).String())
		return err
	}))
	defer conn.Close()
	time.Sleep(50 * time.Millisecond)
	if s := stats(); s.Stalled || s.Queue != 1 {
		t.Fatalf("just queued: stalled %v queue %d, want a queue of 1 not yet stalled", s.Stalled, s.Queue)
	}
	waitStalled("a connection nobody accepts", true)
	c, err := ln.Accept()
	must(t, err)
	c.Close()
	waitStalled("accepted", false)

	var udp net.Conn
	must(t, ns.Do(func() (err error) {
		udp, err = net.Dial("udp", netip.AddrPortFrom(vip, 7002).String())
		return err
	}))
	defer udp.Close()
	_, err = udp.Write([]byte("Access-Request"))
	must(t, err)
	s := waitStalled("a datagram nobody reads", true)
	if s.Queue == 0 {
		t.Fatalf("stalled with an empty queue: %+v", s)
	}
	buf := make([]byte, 100)
	_, _, err = pc.ReadFrom(buf)
	must(t, err)
	waitStalled("read", false)
}

// serviceQueue takes the sockets bound to the VIP, the VIP6 or a wildcard
// address, with the service's protocol and port, and no other.
func TestServiceQueue(t *testing.T) {
	w := Want{VIP: vip, VIP6: vip6, Ports: []Port{{"tcp", 389}}}
	for _, tc := range []struct {
		proto string
		addr  netip.Addr
		port  uint16
		want  uint32
	}{
		{"tcp", vip, 389, 5},
		{"tcp", vip6, 389, 5},
		{"tcp", netip.IPv4Unspecified(), 389, 5},
		{"tcp", netip.IPv6Unspecified(), 389, 5},
		{"tcp", netip.MustParseAddr("fd00:9::10"), 389, 0},
		{"udp", vip6, 389, 0},
		{"tcp", vip6, 636, 0},
	} {
		q := map[queueKey]uint32{{tc.proto, tc.addr, tc.port}: 5}
		if got := serviceQueue(q, w); got != tc.want {
			t.Errorf("socket %s %v:%d: queue %d, want %d", tc.proto, tc.addr, tc.port, got, tc.want)
		}
	}
}
