package relay

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A hung server (SIGSTOPped, stuck in its accept loop) keeps its listening
// socket, so the fallback relay cannot see it, and checks see it only when
// they time out. Its socket can: the kernel still completes handshakes into
// the accept queue (TCP) and queues datagrams (UDP), and nobody takes them
// out. A queue that is not empty and has not shrunk for StallAfter marks the
// service Stalled.

// queueKey is one listening socket's protocol, local address and port.
type queueKey struct {
	proto string
	addr  netip.Addr // unmapped; the unspecified address for a wildcard socket
	port  uint16
}

// sockDiag reads the receive queues of listening sockets through
// NETLINK_SOCK_DIAG, in the namespace it was opened in.
type sockDiag struct {
	fd  int
	seq uint32
	buf []byte
}

func openSockDiag() (*sockDiag, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, fmt.Errorf("relay: sock_diag socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("relay: sock_diag bind: %w", err)
	}
	// A stuck kernel answer must not hang Stats.
	tv := unix.NsecToTimeval(time.Second.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("relay: sock_diag timeout: %w", err)
	}
	return &sockDiag{fd: fd, buf: make([]byte, 64<<10)}, nil
}

func (d *sockDiag) close() { unix.Close(d.fd) }

// Socket states as inet_diag filters them (include/net/tcp_states.h): TCP
// listeners, and UDP sockets that are not connected (servers).
const (
	tcpListen = 10
	tcpClose  = 7
)

// queues returns the receive queue of every TCP listener (its accept queue,
// in connections) and every unconnected UDP socket (in bytes), IPv4 and IPv6.
func (d *sockDiag) queues() (map[queueKey]uint32, error) {
	out := map[queueKey]uint32{}
	for _, q := range []struct {
		proto    string
		protocol uint8
		state    uint
	}{{"tcp", unix.IPPROTO_TCP, tcpListen}, {"udp", unix.IPPROTO_UDP, tcpClose}} {
		for _, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
			if err := d.dump(family, q.protocol, 1<<q.state, func(addr netip.Addr, port uint16, rq uint32) {
				k := queueKey{q.proto, addr, port}
				out[k] = max(out[k], rq)
			}); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// dump sends one SOCK_DIAG_BY_FAMILY dump request (struct inet_diag_req_v2)
// and calls fn for every socket in the answer (struct inet_diag_msg).
func (d *sockDiag) dump(family, protocol uint8, states uint32, fn func(netip.Addr, uint16, uint32)) error {
	const reqLen = unix.SizeofNlMsghdr + 56
	d.seq++
	req := make([]byte, reqLen)
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], reqLen)
	ne.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	ne.PutUint32(req[8:], d.seq)
	body := req[unix.SizeofNlMsghdr:]
	body[0], body[1] = family, protocol
	ne.PutUint32(body[4:], states)
	if err := unix.Sendto(d.fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("relay: sock_diag request: %w", err)
	}
	for {
		n, _, err := unix.Recvfrom(d.fd, d.buf, 0)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) {
				err = os.ErrDeadlineExceeded
			}
			return fmt.Errorf("relay: sock_diag answer: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(d.buf[:n])
		if err != nil {
			return fmt.Errorf("relay: sock_diag answer: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Seq != d.seq {
				continue // the tail of an earlier, abandoned dump
			}
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return nil
			case unix.NLMSG_ERROR:
				if len(m.Data) >= 4 {
					if errno := int32(ne.Uint32(m.Data)); errno != 0 {
						return fmt.Errorf("relay: sock_diag: %w", unix.Errno(-errno))
					}
				}
				return nil
			case unix.SOCK_DIAG_BY_FAMILY:
				parseDiagMsg(m.Data, fn)
			}
		}
	}
}

// parseDiagMsg reads one struct inet_diag_msg: family, state, timer,
// retrans, then inet_diag_sockid (ports big-endian, addresses in 16 bytes),
// expires, rqueue, wqueue, uid, inode. Short messages are skipped.
func parseDiagMsg(b []byte, fn func(netip.Addr, uint16, uint32)) {
	if len(b) < 72 {
		return
	}
	port := binary.BigEndian.Uint16(b[4:])
	var addr netip.Addr
	switch b[0] {
	case unix.AF_INET:
		addr = netip.AddrFrom4([4]byte(b[8:12]))
	case unix.AF_INET6:
		addr = netip.AddrFrom16([16]byte(b[8:24])).Unmap()
	default:
		return
	}
	fn(addr, port, binary.NativeEndian.Uint32(b[56:]))
}

// stall follows one service's fullest listener between reads.
type stall struct {
	since time.Time // when the queue was first seen non-empty, or last seen shrinking
	queue uint32
}

// observe takes the service's queue as read at now and reports whether it
// has been stuck (non-empty, never shrinking) for at least after.
func (s *stall) observe(now time.Time, queue uint32, after time.Duration) bool {
	switch {
	case queue == 0:
		s.since = time.Time{}
	case s.queue == 0 || queue < s.queue:
		s.since = now
	}
	s.queue = queue
	return queue > 0 && now.Sub(s.since) >= after
}

// serviceQueue is the fullest queue among the sockets that take the want's
// VIP and ports: bound to the VIP or to the wildcard address.
func serviceQueue(q map[queueKey]uint32, w Want) uint32 {
	var n uint32
	// A missing VIP6 is the invalid address, which no socket has.
	addrs := [...]netip.Addr{w.VIP, w.VIP6, netip.IPv4Unspecified(), netip.IPv6Unspecified()}
	for _, p := range w.Ports {
		for _, a := range addrs {
			n = max(n, q[queueKey{p.Proto, a, p.Num}])
		}
	}
	return n
}
