// Command ripcord-checker-tcpconnect is a third-party ripcord checker plugin:
// it opens a TCP connection to the target host:port and, if configured, sends
// a string and waits for an expected one (a banner such as "SSH-").
//
// It uses only github.com/ripcord/ripcord/plugins/sdk, as any third-party
// checker would. Build it, install it into the daemon's plugin directory and
// name it in a check; see README.md and docs/writing-a-checker.md.
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/ripcord/ripcord/plugins/sdk"
)

const version = "0.1.0"

// maxRead bounds how much of the response is searched for Expect.
const maxRead = 4096

func main() { sdk.Serve(checker{}) }

// settings are the check's settings (YAML `settings:` of the check).
type settings struct {
	Send   string `json:"send"`   // written once connected
	Expect string `json:"expect"` // must appear in the first maxRead bytes received
}

type checker struct{}

func (checker) Describe() sdk.Description {
	return sdk.Description{
		Name:    "tcpconnect",
		Version: version,
		Summary: "connects to host:port over TCP, optionally sends a string and expects a reply",
		Settings: []sdk.Field{
			{Name: "send", Type: "string", Help: "sent once connected (YAML escapes such as \\r\\n work in double quotes)"},
			{Name: "expect", Type: "string", Help: fmt.Sprintf("must appear within the first %d bytes received", maxRead)},
		},
	}
}

func (checker) Configure(_ context.Context, s sdk.Settings) ([]sdk.FieldError, error) {
	var cfg settings
	if errs := s.DecodeFields(&cfg); errs != nil {
		return errs, nil // e.g. {Field: "expetc", Message: "unknown setting"}
	}
	if len(cfg.Expect) > maxRead {
		return []sdk.FieldError{{Field: "expect", Message: fmt.Sprintf("longer than %d bytes", maxRead)}}, nil
	}
	return nil, nil
}

func (checker) Check(ctx context.Context, req *sdk.Request) (*sdk.Result, error) {
	var cfg settings
	if err := req.Settings.Decode(&cfg); err != nil {
		return nil, fmt.Errorf("settings: %w", err) // Configure should have caught it
	}
	if _, _, err := net.SplitHostPort(req.Target); err != nil {
		return nil, fmt.Errorf("target %q: want host:port", req.Target)
	}

	// The deadline of ctx is the check's timeout: the dial honours it, and
	// the connection gets it too.
	start := time.Now()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", req.Target)
	if err != nil {
		return failure(err, "connect to %s", req.Target).AddPhase("connect", time.Since(start)), nil
	}
	defer conn.Close()
	connected := time.Now()
	phases := []sdk.Phase{{Name: "connect", Duration: connected.Sub(start)}}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) }) // canceled: unblock
	defer stop()

	if cfg.Send != "" {
		t := time.Now()
		_, err := conn.Write([]byte(cfg.Send))
		phases = append(phases, sdk.Phase{Name: "send", Duration: time.Since(t)})
		if err != nil {
			return withPhases(failure(err, "send to %s", req.Target), phases), nil
		}
	}
	if cfg.Expect != "" {
		t := time.Now()
		got, err := readUntil(conn, []byte(cfg.Expect))
		phases = append(phases, sdk.Phase{Name: "expect", Duration: time.Since(t)})
		switch {
		case err == nil:
		case isTimeout(err):
			return withPhases(sdk.Failed(sdk.ReasonTimeout, "no %q from %s before the deadline (got %s)",
				cfg.Expect, req.Target, excerpt(got)), phases), nil
		default:
			return withPhases(sdk.Failed(sdk.ReasonUnexpectedResponse, "no %q from %s: %v (got %s)",
				cfg.Expect, req.Target, err, excerpt(got)), phases), nil
		}
	}
	return withPhases(sdk.OK(fmt.Sprintf("connected to %s", conn.RemoteAddr())), phases), nil
}

var errTooLong = fmt.Errorf("not within the first %d bytes", maxRead)

// readUntil reads from conn until want has been received, the connection
// ends, or maxRead bytes came without it. It returns what it read.
func readUntil(conn net.Conn, want []byte) ([]byte, error) {
	var buf []byte
	chunk := make([]byte, 512)
	for len(buf) < maxRead {
		n, err := conn.Read(chunk[:min(len(chunk), maxRead-len(buf))])
		buf = append(buf, chunk[:n]...)
		switch {
		case bytes.Contains(buf, want):
			return buf, nil
		case errors.Is(err, io.EOF):
			return buf, errors.New("connection closed")
		case err != nil:
			return buf, err
		}
	}
	return buf, errTooLong
}

// failure maps a network error to a result with the right reason.
func failure(err error, format string, args ...any) *sdk.Result {
	what := fmt.Sprintf(format, args...)
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return sdk.Failed(sdk.ReasonRefused, "%s: connection refused", what)
	case isTimeout(err):
		return sdk.Failed(sdk.ReasonTimeout, "%s: no answer before the deadline", what)
	}
	return sdk.Failed(sdk.ReasonUnavailable, "%s: %v", what, err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
}

func withPhases(r *sdk.Result, phases []sdk.Phase) *sdk.Result {
	r.Phases = phases
	return r
}

// excerpt quotes the start of what was received, for messages.
func excerpt(b []byte) string {
	if len(b) == 0 {
		return "nothing"
	}
	if len(b) > 64 {
		return fmt.Sprintf("%q...", b[:64])
	}
	return fmt.Sprintf("%q", b)
}
