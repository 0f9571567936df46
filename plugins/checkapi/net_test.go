package checkapi_test

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ripcord/ripcord/plugins/checkapi"
	"github.com/ripcord/ripcord/plugins/sdk/sdktest"
)

// readAll dials addr with Dial and reads until an error.
func readAll(ctx context.Context, addr string) error {
	conn, err := checkapi.Dial(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = io.Copy(io.Discard, conn)
	if err == nil {
		err = io.EOF // io.Copy hides the end
	}
	return err
}

// The reasons of real network errors, each from a real socket where one can
// be had on loopback.
func TestNetReason(t *testing.T) {
	silent := sdktest.Serve(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	reset := sdktest.Serve(t, func(c net.Conn) {
		c.Read(make([]byte, 1)) // connected for sure: the reset is the answer's
		c.(*net.TCPConn).SetLinger(0)
	}) // RST on close
	closes := sdktest.Serve(t, func(c net.Conn) { c.Write([]byte("bye")) })
	tlsSrv := httptest.NewTLSServer(nil)
	defer tlsSrv.Close()

	for _, tc := range []struct {
		name   string
		run    func(ctx context.Context) error
		cancel time.Duration // cancel ctx after this; 0: never
		// timeout is the deadline, 300ms if zero: a handshake needs more
		// under the race detector.
		timeout time.Duration
		reason  string
		msg     string
	}{
		{name: "refused", run: func(ctx context.Context) error { return readAll(ctx, sdktest.ClosedPort(t)) },
			reason: checkapi.ReasonRefused, msg: "connection refused"},
		{name: "deadline", run: func(ctx context.Context) error { return readAll(ctx, silent) },
			reason: checkapi.ReasonTimeout, msg: "no answer within the check's deadline"},
		{name: "canceled, not a timeout", run: func(ctx context.Context) error { return readAll(ctx, silent) }, cancel: 50 * time.Millisecond,
			reason: checkapi.ReasonCanceled, msg: "canceled"},
		{name: "reset", run: func(ctx context.Context) error {
			conn, err := checkapi.Dial(ctx, "tcp", reset)
			if err != nil {
				return err
			}
			defer conn.Close()
			conn.Write([]byte("?"))
			_, err = conn.Read(make([]byte, 1))
			return err
		},
			reason: checkapi.ReasonUnexpectedResponse, msg: "connection reset by peer"},
		{name: "closed", run: func(ctx context.Context) error { return readAll(ctx, closes) },
			reason: checkapi.ReasonUnexpectedResponse, msg: "EOF"},
		{name: "untrusted certificate", run: func(ctx context.Context) error {
			conn, err := (&tls.Dialer{}).DialContext(ctx, "tcp", tlsSrv.Listener.Addr().String())
			if err == nil {
				conn.Close()
			}
			return err
		}, timeout: 10 * time.Second, reason: checkapi.ReasonTLSInvalid, msg: "certificate signed by unknown authority"},
		{name: "no such host", run: func(context.Context) error {
			return &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "nowhere.invalid", IsNotFound: true}}
		}, reason: checkapi.ReasonRefused, msg: "no such host"},
		{name: "unreachable", run: func(context.Context) error {
			return &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.EHOSTUNREACH)}
		}, reason: checkapi.ReasonRefused, msg: "no route to host"},
		{name: "not a network error", run: func(context.Context) error { return errors.New("malformed answer") },
			reason: checkapi.ReasonUnavailable, msg: "malformed answer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), cmp.Or(tc.timeout, 300*time.Millisecond))
			defer cancel()
			if tc.cancel > 0 {
				time.AfterFunc(tc.cancel, cancel)
			}
			start := time.Now()
			err := tc.run(ctx)
			if tc.cancel > 0 && time.Since(start) > 200*time.Millisecond {
				t.Errorf("a canceled read took %s to return", time.Since(start))
			}
			res := checkapi.NetFailure(ctx, err, "talk to %s", "x")
			if res.Status != checkapi.StatusFailed || res.Reason != tc.reason || !strings.HasPrefix(res.Message, "talk to x: ") ||
				!strings.Contains(res.Message, tc.msg) {
				t.Errorf("error %v: got %s %q, want %s with %q", err, res.Reason, res.Message, tc.reason, tc.msg)
			}
		})
	}
	if reason, ok := checkapi.NetReason(context.Background(), nil); ok || reason != "" {
		t.Errorf("checkapi.NetReason(nil) = %q, %v", reason, ok)
	}
}

// Dial gives the connection ctx's deadline.
func TestDialDeadline(t *testing.T) {
	silent := sdktest.Serve(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	conn, err := checkapi.Dial(ctx, "tcp", silent)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	_, err = conn.Read(make([]byte, 1))
	if !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) > time.Second {
		t.Errorf("read: %v after %s", err, time.Since(start))
	}
	if err := conn.Close(); err != nil {
		t.Error(err)
	}
	if err := conn.Close(); err == nil {
		t.Error("second Close: no error")
	}
}

func TestTimer(t *testing.T) {
	var tm checkapi.Timer
	probe := func() (*checkapi.Result, error) {
		connect := tm.Start("connect")
		time.Sleep(20 * time.Millisecond)
		connect.End()
		connect.End() // the first End counts
		defer tm.Start("expect").End()
		time.Sleep(10 * time.Millisecond)
		return checkapi.Failed(checkapi.ReasonTimeout, "early return"), nil
	}
	res, err := tm.Done(probe())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Phases) != 2 || res.Phases[0].Name != "connect" || res.Phases[1].Name != "expect" {
		t.Fatalf("phases %v", res.Phases)
	}
	if d := res.Phases[0].Duration; d < 20*time.Millisecond {
		t.Errorf("connect %s, want at least 20ms", d)
	}
	if d := res.Phases[1].Duration; d < 10*time.Millisecond {
		t.Errorf("expect %s, want at least 10ms", d)
	}
	// A phase still running when the result is made counts until then.
	var open checkapi.Timer
	open.Start("search")
	time.Sleep(5 * time.Millisecond)
	if p := open.Phases(); len(p) != 1 || p[0].Duration < 5*time.Millisecond {
		t.Errorf("open phase: %v", p)
	}
	if res, err := open.Done(nil, fmt.Errorf("broke")); res != nil || err == nil {
		t.Errorf("Done(nil, err) = %v, %v", res, err)
	}
}
