// Package memconn is an in-memory net.PacketConn for tests of packet
// speakers (RIPv2, RIPng): the test injects received packets into In and
// reads what the speaker sent from Out, so no test needs root or a network.
package memconn

import (
	"errors"
	"net"
	"slices"
	"sync"
	"time"
)

// Packet is one datagram.
type Packet struct {
	Addr *net.UDPAddr // source of injected packets, destination of sent ones
	Data []byte
	At   time.Time // when the speaker wrote it
}

// Conn is the in-memory connection.
type Conn struct {
	In  chan Packet
	Out chan Packet

	local     *net.UDPAddr
	closeOnce sync.Once
	closed    chan struct{}
}

// New returns a connection whose LocalAddr is local.
func New(local *net.UDPAddr) *Conn {
	return &Conn{In: make(chan Packet, 16), Out: make(chan Packet, 1024), local: local, closed: make(chan struct{})}
}

func (c *Conn) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case p := <-c.In:
		return copy(b, p.Data), p.Addr, nil
	case <-c.closed:
		return 0, nil, net.ErrClosed
	}
}

func (c *Conn) WriteTo(b []byte, addr net.Addr) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	select {
	case c.Out <- Packet{addr.(*net.UDPAddr), slices.Clone(b), time.Now()}:
		return len(b), nil
	default:
		return 0, errors.New("memconn: output full")
	}
}

func (c *Conn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return nil
}

// Closed is closed when Close was called.
func (c *Conn) Closed() <-chan struct{} { return c.closed }

func (c *Conn) LocalAddr() net.Addr              { return c.local }
func (c *Conn) SetDeadline(time.Time) error      { return nil }
func (c *Conn) SetReadDeadline(time.Time) error  { return nil }
func (c *Conn) SetWriteDeadline(time.Time) error { return nil }
