package checkapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// NetReason says what a network error err, met while checking within ctx,
// tells about the service, in the reasons every checker shares:
//
//   - ReasonCanceled: ctx was canceled (not a verdict on the service)
//   - ReasonTimeout: no answer before the deadline (of ctx, or of a socket)
//   - ReasonRefused: nothing answers there: connection refused, host or
//     network unreachable, a name that does not resolve, any failed dial
//   - ReasonTLSInvalid: the certificate or the TLS handshake was refused
//   - ReasonUnexpectedResponse: the connection was reset or closed mid-answer
//
// ok is false for any other error: the caller knows best what it means
// (a protocol error is usually unexpected_response). NetFailure is the
// one call for the usual case.
func NetReason(ctx context.Context, err error) (reason string, ok bool) {
	var (
		dnsErr  *net.DNSError
		opErr   *net.OpError
		netErr  net.Error
		unknown x509.UnknownAuthorityError
		invalid x509.CertificateInvalidError
		host    x509.HostnameError
		verify  *tls.CertificateVerificationError
		alert   tls.AlertError
		record  tls.RecordHeaderError
	)
	switch {
	case err == nil:
		return "", false
	case errors.Is(ctx.Err(), context.Canceled), errors.Is(err, context.Canceled):
		return ReasonCanceled, true
	case ctx.Err() != nil, errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &netErr) && netErr.Timeout():
		return ReasonTimeout, true
	case errors.As(err, &unknown), errors.As(err, &invalid), errors.As(err, &host), errors.As(err, &verify),
		errors.As(err, &alert), errors.As(err, &record):
		return ReasonTLSInvalid, true
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		errors.As(err, &dnsErr), errors.As(err, &opErr) && opErr.Op == "dial":
		return ReasonRefused, true
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF):
		return ReasonUnexpectedResponse, true
	}
	return "", false
}

// NetFailure is the failed result for a network error err: its reason is
// NetReason's (ReasonUnavailable for an error NetReason does not know), its
// message says what was being done (format, args) and what went wrong.
//
//	conn, err := checkapi.Dial(ctx, "tcp", req.Target)
//	if err != nil {
//		return checkapi.NetFailure(ctx, err, "connect to %s", req.Target), nil
//	}
func NetFailure(ctx context.Context, err error, format string, args ...any) *Result {
	what := fmt.Sprintf(format, args...)
	reason, ok := NetReason(ctx, err)
	switch {
	case !ok:
		reason = ReasonUnavailable
	case reason == ReasonTimeout:
		return Failed(reason, "%s: no answer within the check's deadline", what)
	case reason == ReasonCanceled:
		return Failed(reason, "%s: canceled", what)
	}
	return Failed(reason, "%s: %v", what, err)
}

// Dial connects like net.Dialer.DialContext and ties the connection to ctx:
// ctx's deadline becomes the connection's, so reads and writes end with the
// check, and canceling ctx ends a read or write blocked on it at once, which
// NetReason then reports as ReasonCanceled rather than as a timeout. Close
// the connection as usual; that also lets go of ctx.
func Dial(ctx context.Context, network, address string) (net.Conn, error) {
	// No keep-alive probes on a connection that lives for one check: their
	// settings cost four system calls per connection.
	d := net.Dialer{KeepAlive: -1}
	conn, err := d.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	if deadline, ok := ctx.Deadline(); ok {
		if err := conn.SetDeadline(deadline); err != nil {
			conn.Close()
			return nil, err
		}
	}
	c := &ctxConn{Conn: conn}
	c.stop = context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	return c, nil
}

// ctxConn is a connection tied to a context by Dial.
type ctxConn struct {
	net.Conn
	stop func() bool
	once sync.Once
}

func (c *ctxConn) Close() error {
	c.once.Do(func() { c.stop() })
	return c.Conn.Close()
}
