package relay

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// BenchmarkRelayLatency measures what the relay adds to a request: the same
// request/response, side by side in one run, to a port the relayer answers
// itself (direct: client, router, relayer, router, client) and to a port it
// relays in All mode (client, router, relayer, tunnel through the router,
// peer, router, client). Each iteration sends one request of each kind,
// alternating, so both see the same load. Reported per kind: p50 and p99 in
// microseconds.
//
//	tcp:  one request on an open connection
//	conn: connect, one request, close (the relay's per-flow work)
//	udp:  one datagram and its reply, from a new socket each time
//
// The ipv4 sub-benchmark asks the VIP, ipv6 the VIP6 (the same tunnel, over
// IPv4).
func BenchmarkRelayLatency(b *testing.B) {
	b.Run("ipv4", func(b *testing.B) { benchRelayLatency(b, vip, clientIP) })
	b.Run("ipv6", func(b *testing.B) { benchRelayLatency(b, vip6, client6) })
}

func benchRelayLatency(b *testing.B, addr, client netip.Addr) {
	tp := newTopo(b)
	tp.startManagers(b)
	const directTCP, directUDP = 8081, 1813
	if addr.Is4() {
		startTCP(b, tp.relayer.ns, tp.relayer.name, directTCP)
		startUDP(b, tp.relayer.ns, tp.relayer.name, directUDP)
	} else {
		startTCP6(b, tp.relayer.ns, tp.relayer.name, directTCP)
		startUDP6(b, tp.relayer.ns, tp.relayer.name, directUDP)
	}
	must(b, tp.relayer.m.Set(context.Background(), []Want{{Service: "svc", VIP: vip, VIP6: vip6, Ports: []Port{tcpPort, udpPort}, Mode: All, Peer: peerIP}}))

	timeout := answerTimeout
	open := func(port uint16) net.Conn {
		c, err := dialTCPAt(tp.client, addr, port, timeout)
		must(b, err)
		b.Cleanup(func() { c.Close() })
		return c
	}
	tcpDirect, tcpRelayed := open(directTCP), open(tcpPort.Num)
	kinds := []struct {
		name string
		ask  func(relayed bool) (string, error)
	}{
		{"tcp", func(relayed bool) (string, error) {
			if relayed {
				return ask(tcpRelayed, timeout)
			}
			return ask(tcpDirect, timeout)
		}},
		{"conn", func(relayed bool) (string, error) {
			port := uint16(directTCP)
			if relayed {
				port = tcpPort.Num
			}
			c, err := dialTCPAt(tp.client, addr, port, timeout)
			if err != nil {
				return "", err
			}
			defer c.Close()
			return ask(c, timeout)
		}},
		{"udp", func(relayed bool) (string, error) {
			port := uint16(directUDP)
			if relayed {
				port = udpPort.Num
			}
			c, err := dialUDPAt(tp.client, addr, port)
			if err != nil {
				return "", err
			}
			defer c.Close()
			return askDatagram(c, timeout)
		}},
	}
	wantFrom := map[bool]string{false: "relayer " + client.String(), true: "peer " + client.String()}
	times := make(map[string][]time.Duration)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, k := range kinds {
			for _, relayed := range []bool{i%2 == 0, i%2 != 0} {
				start := time.Now()
				got, err := k.ask(relayed)
				d := time.Since(start)
				if err != nil || got != wantFrom[relayed] {
					b.Fatalf("%s relayed=%v: %q, %v", k.name, relayed, got, err)
				}
				key := k.name + "-direct"
				if relayed {
					key = k.name + "-relayed"
				}
				times[key] = append(times[key], d)
			}
		}
	}
	b.StopTimer()
	for key, ds := range times {
		slices.Sort(ds)
		b.ReportMetric(float64(ds[len(ds)/2].Microseconds()), key+"-p50-µs")
		b.ReportMetric(float64(ds[len(ds)*99/100].Microseconds()), key+"-p99-µs")
	}
}
