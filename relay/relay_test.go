package relay

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/ripcord/ripcord/lab/netns"
	"github.com/ripcord/ripcord/lab/netns/netnstest"
	"github.com/ripcord/ripcord/lab/services"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// The test topology, routed like the lab:
//
//	client 10.0.1.2 --- 10.0.1.1 router 10.0.2.1 --- 10.0.2.2 relayer (VIP on lo)
//	                                    10.0.3.1 --- 10.0.3.2 peer    (VIP on lo)
//
// and the same in IPv6 (fd00:N::x, VIP6 fd00:9::9). The router sends the VIP
// and the VIP6 to the relayer. Each replica runs a Manager with the other as
// its peer, a TCP server and a UDP server per family that answer with their
// own name and the client address they saw.
var (
	vip      = netip.MustParseAddr("10.0.9.9")
	vip6     = netip.MustParseAddr("fd00:9::9")
	clientIP = netip.MustParseAddr("10.0.1.2")
	client6  = netip.MustParseAddr("fd00:1::2")
	relayIP  = netip.MustParseAddr("10.0.2.2")
	peerIP   = netip.MustParseAddr("10.0.3.2")
	tcpPort  = Port{"tcp", 8080}
	udpPort  = Port{"udp", 1812}
)

type replica struct {
	name string
	ns   *netns.NS
	m    *Manager
	tcp  *tcpServer
	udp  *udpServer
	tcp6 *tcpServer
	udp6 *udpServer
}

type topo struct {
	client, router *netns.NS
	relayer, peer  *replica
}

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("relay: needs root for network namespaces")
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// newTopo builds the namespaces and servers; the Managers are left to the
// test (startManager).
func newTopo(t testing.TB) *topo {
	needRoot(t)
	tp := &topo{client: netnstest.New(t, "rlc"), router: netnstest.New(t, "rlr")}
	tp.relayer = &replica{name: "relayer", ns: netnstest.New(t, "rla")}
	tp.peer = &replica{name: "peer", ns: netnstest.New(t, "rlb")}
	// The peer answers from the VIP through the router, whose route to the
	// VIP points at the relayer: the router must not filter by reverse path
	// strictly (a namespace inherits the host's setting).
	_, err := tp.router.Exec(context.Background(), "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0")
	must(t, err)
	must(t, netns.Veth(netns.End{NS: tp.client, Dev: "eth0", Addr: pfx("10.0.1.2/24"), Addr6: pfx("fd00:1::2/64")},
		netns.End{NS: tp.router, Dev: "c0", Addr: pfx("10.0.1.1/24"), Addr6: pfx("fd00:1::1/64")}))
	must(t, netns.Veth(netns.End{NS: tp.relayer.ns, Dev: "eth0", Addr: pfx("10.0.2.2/24"), Addr6: pfx("fd00:2::2/64")},
		netns.End{NS: tp.router, Dev: "a0", Addr: pfx("10.0.2.1/24"), Addr6: pfx("fd00:2::1/64")}))
	must(t, netns.Veth(netns.End{NS: tp.peer.ns, Dev: "eth0", Addr: pfx("10.0.3.2/24"), Addr6: pfx("fd00:3::2/64")},
		netns.End{NS: tp.router, Dev: "b0", Addr: pfx("10.0.3.1/24"), Addr6: pfx("fd00:3::1/64")}))
	_, err = tp.router.Exec(context.Background(), "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
	must(t, err)
	for _, args := range [][]string{
		{"route", "add", vip.String() + "/32", "via", relayIP.String()},
		{"-6", "route", "add", vip6.String() + "/128", "via", "fd00:2::2"},
	} {
		_, err = tp.router.IP(args...)
		must(t, err)
	}
	for _, gw := range []string{"10.0.1.1", "fd00:1::1"} {
		_, err = tp.client.IP("route", "add", "default", "via", gw)
		must(t, err)
	}
	for _, r := range []*replica{tp.relayer, tp.peer} {
		must(t, r.ns.AddAddr("lo", netip.PrefixFrom(vip, 32)))
		must(t, r.ns.AddAddr("lo", netip.PrefixFrom(vip6, 128)))
		gws := []string{"10.0.2.1", "fd00:2::1"}
		if r == tp.peer {
			gws = []string{"10.0.3.1", "fd00:3::1"}
		}
		for _, gw := range gws {
			_, err := r.ns.IP("route", "add", "default", "via", gw)
			must(t, err)
		}
		r.tcp = startTCP(t, r.ns, r.name, tcpPort.Num)
		r.udp = startUDP(t, r.ns, r.name, udpPort.Num)
		r.tcp6 = startTCP6(t, r.ns, r.name, tcpPort.Num)
		r.udp6 = startUDP6(t, r.ns, r.name, udpPort.Num)
	}
	return tp
}

// startManager runs New inside the replica's namespace.
func (r *replica) startManager(t testing.TB, local, peer netip.Addr) {
	t.Helper()
	must(t, r.ns.Do(func() (err error) {
		r.m, err = New(context.Background(), Config{Local: local, Peers: []netip.Addr{peer}, Poll: 100 * time.Millisecond, IPv6: true})
		return err
	}))
	t.Cleanup(func() {
		if err := r.m.Close(); err != nil {
			t.Error(err)
		}
	})
}

func (tp *topo) startManagers(t testing.TB) {
	tp.relayer.startManager(t, relayIP, peerIP)
	tp.peer.startManager(t, peerIP, relayIP)
}

func want(mode Mode, peer netip.Addr, ports ...Port) []Want {
	return []Want{{Service: "svc", VIP: vip, Ports: ports, Mode: mode, Peer: peer}}
}

// tcpServer answers every line with "NAME CLIENTADDR".
type tcpServer struct {
	net  string // tcp4 or tcp6
	name string
	ns   *netns.NS
	port uint16
	mu   sync.Mutex
	ln   net.Listener
}

func startTCP(t testing.TB, ns *netns.NS, name string, port uint16) *tcpServer {
	s := &tcpServer{net: "tcp4", name: name, ns: ns, port: port}
	s.open(t)
	t.Cleanup(s.close)
	return s
}

func startTCP6(t testing.TB, ns *netns.NS, name string, port uint16) *tcpServer {
	s := &tcpServer{net: "tcp6", name: name, ns: ns, port: port}
	s.open(t)
	t.Cleanup(s.close)
	return s
}

func (s *tcpServer) open(t testing.TB) {
	t.Helper()
	var ln net.Listener
	must(t, s.ns.Do(func() (err error) {
		ln, err = net.Listen(s.net, fmt.Sprintf(":%d", s.port))
		return err
	}))
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					if _, err := r.ReadString('\n'); err != nil {
						return
					}
					ap := c.RemoteAddr().(*net.TCPAddr).AddrPort()
					fmt.Fprintf(c, "%s %s\n", s.name, ap.Addr().Unmap())
				}
			}()
		}
	}()
}

func (s *tcpServer) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		s.ln.Close()
		s.ln = nil
	}
}

// udpServer answers every datagram with "NAME CLIENTADDR", from the address
// the request was sent to (IP_PKTINFO), as FreeRADIUS does.
type udpServer struct {
	v6   bool
	name string
	ns   *netns.NS
	port uint16
	mu   sync.Mutex
	pc   net.PacketConn
}

func startUDP(t testing.TB, ns *netns.NS, name string, port uint16) *udpServer {
	s := &udpServer{name: name, ns: ns, port: port}
	s.open(t)
	t.Cleanup(s.close)
	return s
}

// startUDP6 is startUDP over IPv6 (IPV6_PKTINFO).
func startUDP6(t testing.TB, ns *netns.NS, name string, port uint16) *udpServer {
	s := &udpServer{v6: true, name: name, ns: ns, port: port}
	s.open(t)
	t.Cleanup(s.close)
	return s
}

func (s *udpServer) open(t testing.TB) {
	t.Helper()
	network := "udp4"
	if s.v6 {
		network = "udp6"
	}
	var c net.PacketConn
	must(t, s.ns.Do(func() (err error) {
		c, err = net.ListenPacket(network, fmt.Sprintf(":%d", s.port))
		return err
	}))
	// reply answers one datagram from the address it was sent to.
	var reply func(buf []byte) error
	if s.v6 {
		pc := ipv6.NewPacketConn(c)
		must(t, pc.SetControlMessage(ipv6.FlagDst, true))
		reply = func(buf []byte) error {
			_, cm, from, err := pc.ReadFrom(buf)
			if err == nil && cm != nil {
				pc.WriteTo(s.answer(from), &ipv6.ControlMessage{Src: cm.Dst}, from)
			}
			return err
		}
	} else {
		pc := ipv4.NewPacketConn(c)
		must(t, pc.SetControlMessage(ipv4.FlagDst, true))
		reply = func(buf []byte) error {
			_, cm, from, err := pc.ReadFrom(buf)
			if err == nil && cm != nil {
				pc.WriteTo(s.answer(from), &ipv4.ControlMessage{Src: cm.Dst}, from)
			}
			return err
		}
	}
	s.mu.Lock()
	s.pc = c
	s.mu.Unlock()
	go func() {
		buf := make([]byte, 1500)
		for reply(buf) == nil {
		}
	}()
}

func (s *udpServer) answer(from net.Addr) []byte {
	return []byte(fmt.Sprintf("%s %s", s.name, from.(*net.UDPAddr).AddrPort().Addr().Unmap()))
}

func (s *udpServer) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pc != nil {
		s.pc.Close()
		s.pc = nil
	}
}

// askTCP connects from the client to the VIP and returns the answer.
func askTCP(ns *netns.NS, timeout time.Duration) (string, error) {
	return askTCPAt(ns, vip, timeout)
}

func askTCPAt(ns *netns.NS, addr netip.Addr, timeout time.Duration) (string, error) {
	c, err := dialTCPAt(ns, addr, tcpPort.Num, timeout)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return ask(c, timeout)
}

func dialTCP(ns *netns.NS, port uint16, timeout time.Duration) (net.Conn, error) {
	return dialTCPAt(ns, vip, port, timeout)
}

func dialTCPAt(ns *netns.NS, addr netip.Addr, port uint16, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := ns.Do(func() (err error) {
		c, err = net.DialTimeout("tcp", netip.AddrPortFrom(addr, port).String(), timeout)
		return err
	})
	return c, err
}

func ask(c net.Conn, timeout time.Duration) (string, error) {
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte("who\n")); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

// askUDP sends one datagram from a connected socket, which only accepts a
// reply from the VIP itself.
func askUDP(ns *netns.NS, timeout time.Duration) (string, error) {
	return askUDPAt(ns, vip, timeout)
}

func askUDPAt(ns *netns.NS, addr netip.Addr, timeout time.Duration) (string, error) {
	c, err := dialUDPAt(ns, addr, udpPort.Num)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return askDatagram(c, timeout)
}

func dialUDP(ns *netns.NS, port uint16) (net.Conn, error) {
	return dialUDPAt(ns, vip, port)
}

func dialUDPAt(ns *netns.NS, addr netip.Addr, port uint16) (net.Conn, error) {
	var c net.Conn
	err := ns.Do(func() (err error) {
		c, err = net.Dial("udp", netip.AddrPortFrom(addr, port).String())
		return err
	})
	return c, err
}

func askDatagram(c net.Conn, timeout time.Duration) (string, error) {
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte("who")); err != nil {
		return "", err
	}
	buf := make([]byte, 1500)
	n, err := c.Read(buf)
	return string(buf[:n]), err
}

// answerTimeout bounds a request that must be answered (generous: other
// tests load the machine); silence is how long a request that must not be
// answered is given.
const (
	answerTimeout = 5 * time.Second
	silence       = 2 * time.Second
)

func expectTCP(t testing.TB, tp *topo, wantAnswer string) {
	t.Helper()
	got, err := askTCP(tp.client, answerTimeout)
	if err != nil || got != wantAnswer {
		t.Fatalf("TCP answer %q, %v; want %q", got, err, wantAnswer)
	}
}

func expectUDP(t testing.TB, tp *topo, wantAnswer string) {
	t.Helper()
	got, err := askUDP(tp.client, answerTimeout)
	if err != nil || got != wantAnswer {
		t.Fatalf("UDP answer %q, %v; want %q", got, err, wantAnswer)
	}
}

func TestRelayModes(t *testing.T) {
	tp := newTopo(t)
	tp.startManagers(t)
	ctx := context.Background()
	local, relayed := "relayer "+clientIP.String(), "peer "+clientIP.String()

	// Off: answered locally.
	must(t, tp.relayer.m.Set(ctx, nil))
	expectTCP(t, tp, local)
	expectUDP(t, tp, local)

	// A connection that began locally stays local when the relay switches on.
	kept, err := dialTCP(tp.client, tcpPort.Num, answerTimeout)
	must(t, err)
	defer kept.Close()
	if got, err := ask(kept, answerTimeout); err != nil || got != local {
		t.Fatalf("kept connection: %q, %v", got, err)
	}

	// All: answered by the peer, which sees the client's own address.
	must(t, tp.relayer.m.Set(ctx, want(All, peerIP, tcpPort, udpPort)))
	expectTCP(t, tp, relayed)
	expectUDP(t, tp, relayed)
	if got, err := ask(kept, answerTimeout); err != nil || got != local {
		t.Fatalf("connection begun before the relay: %q, %v; want still %q", got, err, local)
	}

	// A relayed connection keeps its peer when the relay is switched off.
	moved, err := dialTCP(tp.client, tcpPort.Num, answerTimeout)
	must(t, err)
	defer moved.Close()
	if got, err := ask(moved, answerTimeout); err != nil || got != relayed {
		t.Fatalf("relayed connection: %q, %v", got, err)
	}

	// The peer's SYN-ACK announced an MSS that fits the tunnel; the direct
	// connection keeps the full size.
	if got := mss(t, moved); got > DefaultMTU-40 {
		t.Errorf("MSS of the relayed connection %d, want at most %d", got, DefaultMTU-40)
	}
	if got := mss(t, kept); got != 1448 {
		t.Errorf("MSS of the direct connection %d, want 1448", got)
	}
	// A request larger than the tunnel's MTU goes through.
	big := strings.Repeat("x", 5000) + "\n"
	moved.SetDeadline(time.Now().Add(answerTimeout))
	if _, err := moved.Write([]byte(big)); err != nil {
		t.Fatal(err)
	}
	if got, err := bufio.NewReader(moved).ReadString('\n'); err != nil || got != relayed+"\n" {
		t.Fatalf("large request: %q, %v", got, err)
	}

	st := tp.relayer.m.Stats()
	if len(st) != 1 || st[0].Service != "svc" || st[0].Mode != All || st[0].Peer != peerIP || st[0].Since.IsZero() {
		t.Fatalf("stats %+v", st)
	}
	// Two TCP connections and one UDP flow; a TCP request is at least SYN,
	// ACK, data.
	if st[0].Flows != 3 || st[0].Packets < 7 || st[0].LastFlow.IsZero() || st[0].LastPacket.IsZero() {
		t.Errorf("stats after 3 relayed flows: %+v", st[0])
	}

	must(t, tp.relayer.m.Set(ctx, []Want{{Service: "svc", Mode: Off}}))
	expectTCP(t, tp, local)
	expectUDP(t, tp, local)
	if got, err := ask(moved, answerTimeout); err != nil || got != relayed {
		t.Fatalf("relayed connection after the relay is off: %q, %v; want still %q", got, err, relayed)
	}
	if st := tp.relayer.m.Stats(); st[0].Mode != Off || !st[0].Since.IsZero() || st[0].Peer != peerIP {
		t.Errorf("stats when off: %+v", st[0])
	}

	// Fallback: local while the listener is there, relayed once it is gone,
	// local again when it is back; no health check involved.
	must(t, tp.relayer.m.Set(ctx, want(Fallback, peerIP, tcpPort, udpPort)))
	expectTCP(t, tp, local)
	expectUDP(t, tp, local)
	tp.relayer.tcp.close()
	tp.relayer.udp.close()
	expectTCP(t, tp, relayed)
	expectUDP(t, tp, relayed)
	tp.relayer.tcp.open(t)
	tp.relayer.udp.open(t)
	expectTCP(t, tp, local)
	// The UDP flow relayed a moment ago keeps its peer for UDPTimeout; a new
	// source port is a new flow.
	expectUDP(t, tp, local)
}

func TestRelayNoLoop(t *testing.T) {
	tp := newTopo(t)
	tp.startManagers(t)
	ctx := context.Background()
	// Both replicas broken and relaying to each other: the relayed packets
	// arrive through the tunnel and are delivered, never relayed back.
	must(t, tp.relayer.m.Set(ctx, want(All, peerIP, tcpPort, udpPort)))
	must(t, tp.peer.m.Set(ctx, want(All, relayIP, tcpPort, udpPort)))
	tp.peer.tcp.close()
	tp.peer.udp.close()
	if got, err := askTCP(tp.client, silence); err == nil {
		t.Errorf("TCP answered %q with both replicas broken", got)
	}
	if got, err := askUDP(tp.client, silence); err == nil {
		t.Errorf("UDP answered %q with both replicas broken", got)
	}
	a, b := tp.relayer.m.Stats()[0], tp.peer.m.Stats()[0]
	if b.Packets != 0 {
		t.Errorf("the peer relayed %d packets that came through the tunnel", b.Packets)
	}
	if a.Flows != 2 || a.Packets > 10 {
		t.Errorf("relayer: %d flows, %d packets; want 2 flows and a handful of packets", a.Flows, a.Packets)
	}
}

// TestRelayIPv6: a service's VIP6 is relayed like its VIP, through the same
// tunnel (over IPv4) to the same peer, which sees the client's IPv6 address;
// fallback covers a closed IPv6 listener; and two replicas relaying to each
// other do not loop.
func TestRelayIPv6(t *testing.T) {
	tp := newTopo(t)
	tp.startManagers(t)
	ctx := context.Background()
	local, relayed := "relayer "+client6.String(), "peer "+client6.String()
	expect := func(addr netip.Addr, want string) {
		t.Helper()
		if got, err := askTCPAt(tp.client, addr, answerTimeout); err != nil || got != want {
			t.Fatalf("TCP answer from %v: %q, %v; want %q", addr, got, err, want)
		}
		if got, err := askUDPAt(tp.client, addr, answerTimeout); err != nil || got != want {
			t.Fatalf("UDP answer from %v: %q, %v; want %q", addr, got, err, want)
		}
	}
	both := func(mode Mode, peer netip.Addr) []Want {
		return []Want{{Service: "svc", VIP: vip, VIP6: vip6, Ports: []Port{tcpPort, udpPort}, Mode: mode, Peer: peer}}
	}
	expect(vip6, local)

	must(t, tp.relayer.m.Set(ctx, both(All, peerIP)))
	expect(vip6, relayed)
	expect(vip, "peer "+clientIP.String())
	// The peer's SYN-ACK announced an MSS that fits the tunnel with IPv6
	// headers; a request larger than the tunnel's MTU goes through.
	c, err := dialTCPAt(tp.client, vip6, tcpPort.Num, answerTimeout)
	must(t, err)
	defer c.Close()
	if got := mss(t, c); got > DefaultMTU-60 {
		t.Errorf("MSS of the relayed IPv6 connection %d, want at most %d", got, DefaultMTU-60)
	}
	if got, err := ask(c, answerTimeout); err != nil || got != relayed {
		t.Fatalf("relayed IPv6 connection: %q, %v", got, err)
	}
	c.SetDeadline(time.Now().Add(answerTimeout))
	if _, err := c.Write([]byte(strings.Repeat("x", 5000) + "\n")); err != nil {
		t.Fatal(err)
	}
	if got, err := bufio.NewReader(c).ReadString('\n'); err != nil || got != relayed+"\n" {
		t.Fatalf("large request: %q, %v", got, err)
	}
	// Counted with the IPv4 flows: 3 TCP connections and 2 UDP flows.
	if st := tp.relayer.m.Stats(); len(st) != 1 || st[0].Flows != 5 {
		t.Errorf("stats after 5 relayed flows in both families: %+v", st)
	}
	// A datagram larger than the tunnel's MTU: IPv6 routers do not
	// fragment, so the relayer answers the first with ICMPv6 Packet Too Big
	// (measured: that one is lost, the client's socket reports EMSGSIZE)
	// and the client sends the next ones in fragments that fit.
	big6 := func() (string, error) {
		c, err := dialUDPAt(tp.client, vip6, udpPort.Num)
		if err != nil {
			return "", err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(answerTimeout))
		if _, err := c.Write([]byte(strings.Repeat("x", 3000))); err != nil {
			return "", err
		}
		buf := make([]byte, 1500)
		n, err := c.Read(buf)
		return string(buf[:n]), err
	}
	if got, err := big6(); err == nil {
		t.Logf("a 3000-byte datagram answered at once (%q): the client knew the path MTU", got)
	} else if got, err := big6(); err != nil || got != relayed {
		t.Errorf("3000-byte datagram after Packet Too Big: %q, %v; want %q", got, err, relayed)
	}
	// The relayed connection keeps its peer when the relay is off.
	must(t, tp.relayer.m.Set(ctx, []Want{{Service: "svc", Mode: Off}}))
	expect(vip6, local)
	if got, err := ask(c, answerTimeout); err != nil || got != relayed {
		t.Fatalf("relayed IPv6 connection after the relay is off: %q, %v", got, err)
	}

	// Fallback: local while the IPv6 listeners are there, relayed once they
	// are gone (the IPv4 ones stay), local again when they are back.
	must(t, tp.relayer.m.Set(ctx, both(Fallback, peerIP)))
	expect(vip6, local)
	tp.relayer.tcp6.close()
	tp.relayer.udp6.close()
	expect(vip6, relayed)
	expect(vip, "relayer "+clientIP.String())
	tp.relayer.tcp6.open(t)
	tp.relayer.udp6.open(t)
	expect(vip6, local)

	// Both replicas relaying to each other, the peer's IPv6 servers down:
	// no answer, and the peer relays nothing back.
	must(t, tp.relayer.m.Set(ctx, both(All, peerIP)))
	must(t, tp.peer.m.Set(ctx, both(All, relayIP)))
	tp.peer.tcp6.close()
	tp.peer.udp6.close()
	if got, err := askTCPAt(tp.client, vip6, silence); err == nil {
		t.Errorf("TCP answered %q with both replicas broken", got)
	}
	if got, err := askUDPAt(tp.client, vip6, silence); err == nil {
		t.Errorf("UDP answered %q with both replicas broken", got)
	}
	if b := tp.peer.m.Stats()[0]; b.Packets != 0 {
		t.Errorf("the peer relayed %d packets that came through the tunnel", b.Packets)
	}
}

func TestRelayTunnelOnlyFromPeers(t *testing.T) {
	tp := newTopo(t)
	// The peer does not count the relayer among its peers: it drops what the
	// relayer's tunnel sends.
	tp.relayer.startManager(t, relayIP, peerIP)
	tp.peer.startManager(t, peerIP, netip.MustParseAddr("10.0.3.3"))
	must(t, tp.relayer.m.Set(context.Background(), want(All, peerIP, tcpPort, udpPort)))
	if got, err := askUDP(tp.client, silence); err == nil {
		t.Errorf("UDP answered %q through a tunnel from a stranger", got)
	}
}

// kernelState lists what a Manager may leave in a namespace: the table, its
// policy rules (and where the local rule is), its link and its routes.
func kernelState(t testing.TB, ns *netns.NS) string {
	t.Helper()
	tables, err := ns.Exec(context.Background(), "nft", "list", "tables")
	must(t, err)
	rules, err := ns.IP("rule", "show")
	must(t, err)
	rules6, err := ns.IP("-6", "rule", "show")
	must(t, err)
	links, err := ns.IP("-br", "link", "show", "type", "vxlan")
	must(t, err)
	routes, err := ns.IP("-4", "route", "show", "table", "all", "proto", "82")
	must(t, err)
	routes6, err := ns.IP("-6", "route", "show", "table", "all", "proto", "82")
	must(t, err)
	fwd, err := ns.Exec(context.Background(), "sysctl", "-n", "net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding")
	must(t, err)
	return "tables:\n" + tables + "rules:\n" + rules + "rules6:\n" + rules6 + "links:\n" + links +
		"routes:\n" + routes + routes6 + "forwarding:\n" + fwd
}

const cleanState = `tables:
rules:
0:	from all lookup local
32766:	from all lookup main
32767:	from all lookup default
rules6:
0:	from all lookup local
32766:	from all lookup main
links:
routes:
forwarding:
0
0
`

func TestRelayCleanup(t *testing.T) {
	needRoot(t)
	ns := netnstest.New(t, "rlx")
	must(t, netns.Veth(netns.End{NS: ns, Dev: "eth0", Addr: pfx("10.0.2.2/24")},
		netns.End{NS: netnstest.New(t, "rly"), Dev: "eth0", Addr: pfx("10.0.2.1/24")}))
	if got := kernelState(t, ns); got != cleanState {
		t.Fatalf("fresh namespace:\n%s", got)
	}
	start := func(ipv6 bool) *Manager {
		var m *Manager
		must(t, ns.Do(func() (err error) {
			m, err = New(context.Background(), Config{Local: relayIP, Peers: []netip.Addr{peerIP}, IPv6: ipv6})
			return err
		}))
		w := Want{Service: "svc", VIP: vip, Ports: []Port{tcpPort, udpPort}, Mode: All, Peer: peerIP}
		if ipv6 {
			w.VIP6 = vip6
		}
		must(t, m.Set(context.Background(), []Want{w}))
		return m
	}
	m := start(true)
	running := kernelState(t, ns)
	for _, s := range []string{"table ip ripcord_relay", "table ip6 ripcord_relay",
		"rules:\n10:	from all fwmark 0x10000/0xff0000 lookup 7263 proto 82\n11:	from all lookup local proto 82\n",
		"rules6:\n10:	from all fwmark 0x10000/0xff0000 lookup 7263 proto 82\n11:	from all lookup local proto 82\n",
		"ripcord-relay", "10.0.9.9 via 10.0.3.2 dev ripcord-relay table 7263 onlink",
		"fd00:9::9 via fe80::72:aff:fe00:302 dev ripcord-relay table 7263 metric 1024 onlink",
		"forwarding:\n1\n1\n"} {
		if !strings.Contains(running, s) {
			t.Errorf("running: no %q in\n%s", s, running)
		}
	}
	// A killed daemon leaves everything behind; the next one claims it.
	m.abandon()
	if got := kernelState(t, ns); got != running {
		t.Fatalf("abandoned: state changed:\n%s", got)
	}
	m = start(true)
	if got := kernelState(t, ns); got != running {
		t.Errorf("restarted:\n%s\nwant\n%s", got, running)
	}
	// A run without IPv6 after one with it removes the IPv6 objects and
	// switches IPv6 forwarding off again.
	m.abandon()
	m = start(false)
	running4 := kernelState(t, ns)
	for _, s := range []string{"table ip6", "fd00:9::9", "rules6:\n10:"} {
		if strings.Contains(running4, s) {
			t.Errorf("running without IPv6: %q in\n%s", s, running4)
		}
	}
	if !strings.Contains(running4, "forwarding:\n1\n0\n") {
		t.Errorf("running without IPv6: forwarding not IPv4 only:\n%s", running4)
	}
	must(t, m.Close())
	if got := kernelState(t, ns); got != cleanState {
		t.Errorf("after Close:\n%s\nwant\n%s", got, cleanState)
	}
	if err := m.Set(context.Background(), nil); err == nil {
		t.Error("Set after Close: no error")
	}
	must(t, m.Close())
}

// abandon stops the Manager's goroutine and drops its handles without
// touching the kernel: what a SIGKILL leaves.
func (m *Manager) abandon() {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	close(m.stop)
	<-m.done
	m.nft.CloseLasting()
	m.nl.Close()
	m.ns.Close()
}

// mss is the segment size a connection sends with.
func mss(t testing.TB, c net.Conn) int {
	t.Helper()
	raw, err := c.(*net.TCPConn).SyscallConn()
	must(t, err)
	var v int
	var serr error
	must(t, raw.Control(func(fd uintptr) { v, serr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_MAXSEG) }))
	must(t, serr)
	return v
}

func TestConfigErrors(t *testing.T) {
	a, b := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	for _, tc := range []struct {
		c   Config
		err string
	}{
		{Config{}, "relay: local address invalid IP: want an IPv4 address"},
		{Config{Local: netip.MustParseAddr("::1")}, "relay: local address ::1: want an IPv4 address"},
		{Config{Local: a, Peers: []netip.Addr{a}}, "relay: peer 10.0.0.1 is the local address"},
		{Config{Local: a, Peers: []netip.Addr{b, b}}, "relay: peer 10.0.0.2 listed twice"},
		{Config{Local: a, Peers: []netip.Addr{b}, MarkMask: 1}, "relay: mark mask 0x1 has no room for 1 peers"},
		{Config{Local: a, MarkMask: 0x0101}, "relay: mark mask 0x101: want one run of bits"},
		{Config{Local: a, MTU: 100}, "relay: MTU 100: want 576-65535"},
		{Config{Local: a, UDPTimeout: time.Millisecond}, "relay: flow timeouts (tcp 10m0s, udp 1ms): want at least 1s"},
		{Config{Local: a, Poll: -time.Second}, "relay: poll period -1s: want more than 0"},
		{Config{Local: a, VNI: 1 << 24}, "relay: VNI 16777216: want 1-16777215"},
		{Config{Local: a, Device: "a-very-long-name"}, `relay: device name "a-very-long-name": longer than 15 characters`},
	} {
		// defaults is what New checks first; calling New itself would
		// change this host's network if a case were wrongly accepted.
		err := tc.c.defaults()
		if err == nil || err.Error() != tc.err {
			t.Errorf("New(%+v) error = %v, want %q", tc.c, err, tc.err)
		}
	}
}

func TestSetErrors(t *testing.T) {
	m := &Manager{cfg: Config{Peers: []netip.Addr{peerIP}}}
	m6 := &Manager{cfg: Config{Peers: []netip.Addr{peerIP}, IPv6: true}, fams: []*family{{}, {v6: true}}}
	ok := Want{Service: "s", VIP: vip, Ports: []Port{tcpPort}, Mode: All, Peer: peerIP}
	for _, tc := range []struct {
		w   []Want
		err string
	}{
		{[]Want{{Mode: All}}, "relay: want without a service name"},
		{[]Want{{Service: "s", Mode: 7}}, `relay: service "s": unknown mode 7`},
		{[]Want{{Service: "s", Mode: All, VIP: netip.MustParseAddr("::1"), Peer: peerIP, Ports: ok.Ports}}, `relay: service "s": VIP ::1: want an IPv4 address`},
		{[]Want{{Service: "s", Mode: All, VIP: vip, Peer: peerIP}}, `relay: service "s": no ports to relay`},
		{[]Want{{Service: "s", Mode: All, VIP: vip, Peer: relayIP, Ports: ok.Ports}}, `relay: service "s": peer 10.0.2.2 is not one of the configured peers [10.0.3.2]`},
		{[]Want{{Service: "s", Mode: All, VIP: vip, Peer: peerIP, Ports: []Port{{"sctp", 1}}}}, `relay: service "s": bad port sctp/1`},
		{[]Want{ok, ok}, `relay: service "s" listed twice`},
		{[]Want{{Service: strings.Repeat("x", 201), Mode: Off}}, `relay: service name "xxxxxxxxxxxxxxxxxxxx"...: longer than 200 bytes`},
		{[]Want{ok, {Service: "t", VIP: vip, Ports: ok.Ports, Mode: Fallback, Peer: peerIP}}, `relay: services "s" and "t" both relay 10.0.9.9 tcp/8080`},
		{[]Want{{Service: "s", Mode: All, Peer: peerIP, Ports: ok.Ports}}, `relay: service "s": no VIP to relay`},
		{[]Want{{Service: "s", Mode: All, VIP6: vip, Peer: peerIP, Ports: ok.Ports}}, `relay: service "s": VIP6 10.0.9.9: want an IPv6 address`},
		{[]Want{{Service: "s", Mode: All, VIP6: vip6, Peer: peerIP, Ports: ok.Ports}}, `relay: service "s": VIP6 fd00:9::9: the relay was set up without IPv6`},
		{[]Want{{Service: "s", Mode: Off, VIP6: vip6, Peer: peerIP, Ports: ok.Ports}}, `relay: service "s": VIP6 fd00:9::9: the relay was set up without IPv6`},
		{[]Want{{Service: "s", Mode: Off, VIP: netip.MustParseAddr("::1"), Peer: peerIP, Ports: ok.Ports}}, `relay: service "s": VIP ::1: want an IPv4 address`},
		{[]Want{{Service: "s", VIP6: vip6, Ports: ok.Ports, Mode: All, Peer: peerIP}, {Service: "t", VIP: vip, VIP6: vip6, Ports: ok.Ports, Mode: Fallback, Peer: peerIP}},
			`relay: services "s" and "t" both relay fd00:9::9 tcp/8080`},
	} {
		m := m
		if tc.w[0].VIP6 == vip6 && len(tc.w) > 1 {
			m = m6
		}
		err := m.Set(context.Background(), tc.w)
		if err == nil || err.Error() != tc.err {
			t.Errorf("Set(%+v) error = %v, want %q", tc.w, err, tc.err)
		}
	}
}

// TestRelayFreeRADIUS relays to a real FreeRADIUS, which knows only the
// client's network as a RADIUS client: it answers only if it sees the
// client's own address, and its reply must come from the VIP. The local
// server is hung (SIGSTOP, its socket still bound): All's case.
func TestRelayFreeRADIUS(t *testing.T) {
	tp := newTopo(t)
	tp.startManagers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const port = 1645
	rad := map[*replica]*services.FreeRADIUS{}
	for _, r := range []*replica{tp.relayer, tp.peer} {
		f, err := services.StartFreeRADIUS(ctx, services.RadiusOptions{Dir: t.TempDir(), Netns: r.ns.Name,
			Secret: "s3cret", Marker: r.name, Listen: netip.AddrPortFrom(netip.IPv4Unspecified(), port),
			Clients: []netip.Prefix{pfx("10.0.1.0/24")}})
		must(t, err)
		t.Cleanup(func() { f.Stop() })
		rad[r] = f
	}
	req := t.TempDir() + "/request"
	must(t, os.WriteFile(req, []byte("User-Name = alice\nUser-Password = alice-pw\n"), 0o644))
	expect := func(from string) {
		t.Helper()
		out, err := tp.client.Exec(ctx, "radclient", "-x", "-r", "1", "-t", "5", "-f", req,
			fmt.Sprintf("%s:%d", vip, port), "auth", "s3cret")
		if err != nil || !strings.Contains(out, "Access-Accept") || !strings.Contains(out, "Hello alice from "+from) {
			t.Fatalf("want an Access-Accept from %s: %v\n%s", from, err, out)
		}
	}
	expect("relayer")
	must(t, rad[tp.relayer].Suspend())
	must(t, tp.relayer.m.Set(ctx, want(All, peerIP, Port{"udp", port})))
	expect("peer")
	must(t, rad[tp.relayer].Resume())
	must(t, tp.relayer.m.Set(ctx, nil))
	// radclient sends from a new source port: a new flow, delivered here.
	expect("relayer")
}

var update = flag.Bool("update", false, "rewrite testdata/*.golden from what the kernel shows")

// TestRuleset compares the nftables table for two services on two peers
// with testdata/TestRuleset.golden, as nft(8) lists it: what an operator
// sees. Refresh with go test ./relay -run TestRuleset -update.
func TestRuleset(t *testing.T) {
	needRoot(t)
	ns := netnstest.New(t, "rlg")
	var m *Manager
	must(t, ns.Do(func() (err error) {
		m, err = New(context.Background(), Config{Local: relayIP, Peers: []netip.Addr{peerIP, netip.MustParseAddr("10.0.4.2")}, IPv6: true})
		return err
	}))
	defer m.Close()
	must(t, m.Set(context.Background(), []Want{
		{Service: "ldap", VIP: vip, VIP6: vip6, Ports: []Port{{"tcp", 389}, {"tcp", 636}}, Mode: All, Peer: peerIP},
		{Service: "radius", VIP: netip.MustParseAddr("10.0.9.10"), Ports: []Port{{"udp", 1812}}, Mode: Fallback, Peer: netip.MustParseAddr("10.0.4.2")},
	}))
	for family, suffix := range map[string]string{"ip": "", "ip6": ".ip6"} {
		got, err := ns.Exec(context.Background(), "nft", "list", "table", family, DefaultTable)
		must(t, err)
		golden := filepath.Join("testdata", t.Name()+suffix+".golden")
		if *update {
			must(t, os.MkdirAll("testdata", 0o755))
			must(t, os.WriteFile(golden, []byte(got), 0o644))
		}
		want, err := os.ReadFile(golden)
		must(t, err)
		if diff := cmp.Diff(string(want), got); diff != "" {
			t.Errorf("nft list table %s (-%s +kernel):\n%s", family, golden, diff)
		}
	}
}

// TestRelayLeavesHostSettings: a host that forwards already, and whose local
// rule was moved by someone else (as Cilium does), keeps both as they were:
// no forward guard, no second local rule, nothing changed after Close.
func TestRelayLeavesHostSettings(t *testing.T) {
	needRoot(t)
	ns := netnstest.New(t, "rlh")
	ctx := context.Background()
	_, err := ns.Exec(ctx, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
	must(t, err)
	for _, args := range [][]string{{"rule", "add", "pref", "100", "lookup", "local"}, {"rule", "del", "pref", "0"},
		{"-6", "rule", "add", "pref", "100", "lookup", "local"}, {"-6", "rule", "del", "pref", "0"}} {
		_, err := ns.IP(args...)
		must(t, err)
	}
	before := kernelState(t, ns)
	var m *Manager
	must(t, ns.Do(func() (err error) {
		m, err = New(ctx, Config{Local: relayIP, Peers: []netip.Addr{peerIP}, IPv6: true})
		return err
	}))
	running := kernelState(t, ns)
	for _, family := range []string{"ip", "ip6"} {
		table, err := ns.Exec(ctx, "nft", "list", "table", family, DefaultTable)
		must(t, err)
		if strings.Contains(table, "chain forward") {
			t.Errorf("a forward guard on a host that forwarded already:\n%s", table)
		}
	}
	if strings.Count(running, "lookup local") != 2 || strings.Count(running, "100:	from all lookup local\n") != 2 {
		t.Errorf("the local rule, moved to 100 by someone else, changed:\n%s", running)
	}
	must(t, m.Close())
	if got := kernelState(t, ns); got != before {
		t.Errorf("after Close:\n%s\nwant\n%s", got, before)
	}
}

// TestRelayFallbackUnderLoad: a client asks every 50 ms, over a new TCP
// connection and with a UDP datagram, while the relayer's servers crash and
// come back. With Fallback standing no request goes unanswered: the next
// connection after the crash is the peer's, with no check involved. One
// failure is tolerated per protocol: a connection the kernel had queued for
// the listener at the very moment it closed is reset.
func TestRelayFallbackUnderLoad(t *testing.T) {
	tp := newTopo(t)
	tp.startManagers(t)
	must(t, tp.relayer.m.Set(context.Background(), want(Fallback, peerIP, tcpPort, udpPort)))
	answered := map[string]map[string]int{"tcp": {}, "udp": {}}
	failed := map[string]int{}
	for i := range 40 {
		switch i {
		case 10:
			tp.relayer.tcp.close()
			tp.relayer.udp.close()
		case 30:
			tp.relayer.tcp.open(t)
			tp.relayer.udp.open(t)
		}
		for proto, ask := range map[string]func(*netns.NS, time.Duration) (string, error){"tcp": askTCP, "udp": askUDP} {
			got, err := ask(tp.client, answerTimeout)
			if err != nil {
				failed[proto]++
				t.Logf("%s request %d: %v", proto, i, err)
				continue
			}
			answered[proto][strings.Fields(got)[0]]++
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, proto := range []string{"tcp", "udp"} {
		if failed[proto] > 1 || answered[proto]["peer"] < 19 || answered[proto]["relayer"] < 19 {
			t.Errorf("%s: answered %v, %d failed; want the peer to answer while the relayer's server was down", proto, answered[proto], failed[proto])
		}
	}
}

// TestRelayRescuesAtFailback: a client connects (to the VIP and to the
// VIP6) while the routes point at the peer; when they come back to the
// relayer (failback), its connections keep going to the peer instead of
// being reset, and new connections are answered here.
func TestRelayRescuesAtFailback(t *testing.T) {
	tp := newTopo(t)
	tp.startManagers(t)
	ctx := context.Background()
	routeTo := func(peer bool) {
		t.Helper()
		for _, r := range [][]string{{vip.String() + "/32", "10.0.2.2", "10.0.3.2"}, {vip6.String() + "/128", "fd00:2::2", "fd00:3::2"}} {
			gw := r[1]
			if peer {
				gw = r[2]
			}
			_, err := tp.router.IP("route", "replace", r[0], "via", gw)
			must(t, err)
		}
	}
	routeTo(true)
	type conn struct {
		c              net.Conn
		relayed, local string
	}
	var held []conn
	for _, a := range []struct{ vip, client netip.Addr }{{vip, clientIP}, {vip6, client6}} {
		c, err := dialTCPAt(tp.client, a.vip, tcpPort.Num, answerTimeout)
		must(t, err)
		defer c.Close()
		h := conn{c, "peer " + a.client.String(), "relayer " + a.client.String()}
		if got, err := ask(c, answerTimeout); err != nil || got != h.relayed {
			t.Fatalf("connection to the peer at %v: %q, %v", a.vip, got, err)
		}
		held = append(held, h)
	}
	// The service is off here, and its peer is known (it relayed there).
	must(t, tp.relayer.m.Set(ctx, []Want{{Service: "svc", VIP: vip, VIP6: vip6, Ports: []Port{tcpPort}, Mode: Off, Peer: peerIP}}))
	routeTo(false)
	for _, h := range held {
		for range 3 {
			if got, err := ask(h.c, answerTimeout); err != nil || got != h.relayed {
				t.Fatalf("the peer's connection after failback: %q, %v; want still %q", got, err, h.relayed)
			}
		}
	}
	expectTCP(t, tp, held[0].local)
	if got, err := askTCPAt(tp.client, vip6, answerTimeout); err != nil || got != held[1].local {
		t.Fatalf("new IPv6 connection after failback: %q, %v; want %q", got, err, held[1].local)
	}
	if st := tp.relayer.m.Stats()[0]; st.Flows != 2 || st.Packets < 6 {
		t.Errorf("stats: %d flows, %d packets; want the two rescued connections", st.Flows, st.Packets)
	}
}

// A process started with Pdeathsig is killed when the OS thread that forked it
// exits, not when the process does. The plugin host starts checkers that way,
// so the Manager must never let a thread die: in the daemon it shares the
// runtime's threads with the plugin host.
func TestRelayKeepsThreads(t *testing.T) {
	needRoot(t)
	ns := netnstest.New(t, "rlt")
	var m *Manager
	must(t, ns.Do(func() (err error) {
		m, err = New(context.Background(), Config{Local: netip.MustParseAddr("10.0.5.2"), Peers: []netip.Addr{netip.MustParseAddr("10.0.5.3")}})
		return err
	}))
	defer m.Close()
	var children []*exec.Cmd
	defer func() {
		for _, c := range children {
			c.Process.Kill()
			c.Wait()
		}
	}()
	for range 20 {
		c := exec.Command("sleep", "60")
		c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		must(t, c.Start())
		children = append(children, c)
		for range 5 {
			if _, err := m.readSysctl("net/ipv4/conf/all/forwarding"); err != nil {
				t.Fatal(err)
			}
		}
	}
	time.Sleep(100 * time.Millisecond)
	for i, c := range children {
		// A killed child stays a zombie until waited for.
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.Process.Pid))
		if err != nil || strings.Contains(string(stat), ") Z ") {
			t.Fatalf("child %d (pid %d) died while the relay worked in its namespace: %s %v", i, c.Process.Pid, stat, err)
		}
	}
}

// TestRelaySetPeers: the peers change without a restart. A peer added later
// is relayed to, and its tunnel is let in; one a service relays to cannot be
// removed; a removed one loses its number and kernel objects, which the next
// new peer reuses, while the other peers keep theirs and their flows; Close
// leaves nothing behind.
func TestRelaySetPeers(t *testing.T) {
	tp := newTopo(t)
	ctx := context.Background()
	local, relayed := "relayer "+clientIP.String(), "peer "+clientIP.String()
	stranger, another := netip.MustParseAddr("10.0.4.2"), netip.MustParseAddr("10.0.5.2")
	tp.relayer.startManager(t, relayIP, stranger)
	tp.peer.startManager(t, peerIP, stranger) // does not know the relayer yet
	if err := tp.relayer.m.Set(ctx, want(All, peerIP, tcpPort, udpPort)); err == nil {
		t.Fatal("relayed to a peer that is not configured")
	}
	must(t, tp.relayer.m.SetPeers([]netip.Addr{stranger, peerIP}))
	must(t, tp.relayer.m.Set(ctx, want(All, peerIP, tcpPort, udpPort)))
	if got, err := askUDP(tp.client, silence); err == nil {
		t.Errorf("UDP answered %q through the tunnel of a peer the other end does not know", got)
	}
	must(t, tp.peer.m.SetPeers([]netip.Addr{relayIP}))
	expectTCP(t, tp, relayed)
	expectUDP(t, tp, relayed)

	if err := tp.relayer.m.SetPeers([]netip.Addr{stranger}); err == nil || !strings.Contains(err.Error(), "cannot be removed") {
		t.Errorf("removing the peer a service relays to: %v", err)
	}
	conn, err := dialTCP(tp.client, tcpPort.Num, time.Second) // relayed, to number 1
	must(t, err)
	defer conn.Close()
	if got, err := ask(conn, time.Second); err != nil || !strings.HasPrefix(got, "peer") {
		t.Fatalf("relayed connection: %q, %v", got, err)
	}
	must(t, tp.relayer.m.SetPeers([]netip.Addr{peerIP}))
	kernel := func() string {
		rules, err := tp.relayer.ns.IP("rule", "show")
		must(t, err)
		table, err := tp.relayer.ns.Exec(ctx, "nft", "list", "table", "ip", DefaultTable)
		must(t, err)
		return rules + table
	}
	if k := kernel(); strings.Contains(k, "lookup 7263") || strings.Contains(k, "flows-0") ||
		!strings.Contains(k, "lookup 7264") || !strings.Contains(k, "flows-1") || strings.Contains(k, stranger.String()) {
		t.Errorf("after removing peer number 0 (%v), its rule or flow set is left, or number 1's is gone:\n%s", stranger, k)
	}
	if got, err := ask(conn, time.Second); err != nil || !strings.HasPrefix(got, "peer") {
		t.Errorf("the connection relayed to a peer that stays broke when another was removed: %q, %v", got, err)
	}
	expectTCP(t, tp, relayed)

	must(t, tp.relayer.m.SetPeers([]netip.Addr{peerIP, another}))
	if k := kernel(); !strings.Contains(k, "lookup 7263") || !strings.Contains(k, "flows-0") || !strings.Contains(k, another.String()) {
		t.Errorf("a new peer did not take the free number 0:\n%s", k)
	}
	// Off, the peer can go; new flows stay here.
	must(t, tp.relayer.m.Set(ctx, nil))
	must(t, tp.relayer.m.SetPeers([]netip.Addr{another}))
	expectTCP(t, tp, local)
	if st := tp.relayer.m.Stats(); len(st) != 1 || st[0].Peer.IsValid() {
		t.Errorf("an Off service still names the removed peer: %+v", st)
	}
	must(t, tp.relayer.m.Close())
	if got := kernelState(t, tp.relayer.ns); got != cleanState {
		t.Errorf("after Close:\n%s\nwant:\n%s", got, cleanState)
	}
}

// TestRelaySetPeersWhileSet: the daemon's relay loop calls Set while a
// reload calls SetPeers; a want validated against a peer that is removed
// meanwhile must be an error, never a crash or a route to no peer.
func TestRelaySetPeersWhileSet(t *testing.T) {
	needRoot(t)
	ns := netnstest.New(t, "rlp")
	other := netip.MustParseAddr("10.0.4.2")
	var m *Manager
	must(t, ns.Do(func() (err error) {
		m, err = New(context.Background(), Config{Local: relayIP, Peers: []netip.Addr{peerIP, other}})
		return err
	}))
	defer m.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 200; i++ {
			_ = m.SetPeers([]netip.Addr{peerIP}) // refused while other is relayed to: fine
			_ = m.SetPeers([]netip.Addr{peerIP, other})
		}
	}()
	for i := 0; i < 200; i++ {
		_ = m.Set(context.Background(), want(All, other, tcpPort))
		_ = m.Set(context.Background(), nil)
	}
	wg.Wait()
	must(t, m.Set(context.Background(), nil))
	must(t, m.SetPeers([]netip.Addr{peerIP}))
	table, err := ns.Exec(context.Background(), "nft", "list", "table", "ip", DefaultTable)
	must(t, err)
	if strings.Contains(table, other.String()) || strings.Contains(table, "flows-1") {
		t.Errorf("the removed peer %v is still in the table:\n%s", other, table)
	}
}

// TestRelayTunnelSettings: the VXLAN link carries the configured port, VNI
// and MTU, and the relayed connections' MSS follows the MTU.
func TestRelayTunnelSettings(t *testing.T) {
	needRoot(t)
	ns := netnstest.New(t, "rlt")
	var m *Manager
	must(t, ns.Do(func() (err error) {
		m, err = New(context.Background(), Config{Local: relayIP, Peers: []netip.Addr{peerIP}, VNI: 4242, Port: 4790, MTU: 1350})
		return err
	}))
	defer m.Close()
	link, err := ns.IP("-d", "link", "show", DefaultDevice)
	must(t, err)
	for _, want := range []string{"mtu 1350", "vxlan id 4242", "dstport 4790"} {
		if !strings.Contains(link, want) {
			t.Errorf("link lacks %q:\n%s", want, link)
		}
	}
	table, err := ns.Exec(context.Background(), "nft", "list", "table", "ip", DefaultTable)
	must(t, err)
	for _, want := range []string{"udp dport 4790", "maxseg size set 1310"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
}
