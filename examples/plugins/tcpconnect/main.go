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
	"net"
	"strconv"
	"strings"

	"github.com/ripcord/ripcord/plugins/sdk"
)

const version = "0.2.0"

// maxMaxRead bounds max_read: a banner is short.
const maxMaxRead = 1 << 20

func main() { sdk.Serve(checker{}) }

// settings are the check's settings (YAML `settings:` of the check). The SDK
// has filled in the defaults of the schema (Describe) before they get here.
type settings struct {
	Send    string `json:"send"`     // written once connected
	Expect  string `json:"expect"`   // must appear in the first MaxRead bytes received
	MaxRead int    `json:"max_read"` // bytes searched for Expect
}

type checker struct{}

func (checker) Describe() sdk.Description {
	return sdk.Description{
		Name:    "tcpconnect",
		Version: version,
		Summary: "connects to host:port over TCP, optionally sends a string and expects a reply",
		Settings: []sdk.Field{
			{Name: "send", Type: "string", Help: "sent once connected (YAML escapes such as \\r\\n work in double quotes)"},
			{Name: "expect", Type: "string", Help: "must appear within the first max_read bytes received"},
			{Name: "max_read", Type: "int", Default: "4096", Help: "bytes read while looking for expect"},
		},
	}
}

// ValidateTarget lets `ripcord validate` refuse a target that is not
// host:port, at its line in the config.
func (checker) ValidateTarget(target string) error {
	_, port, err := net.SplitHostPort(target)
	if err != nil || strings.Contains(target, "/") {
		return fmt.Errorf("%q: want host:port", target)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port %q is not a number from 1 to 65535", target, port)
	}
	return nil
}

// Configure checks what the schema cannot: the SDK has already refused
// unknown keys and values of the wrong type.
func (checker) Configure(_ context.Context, s sdk.Settings) ([]sdk.FieldError, error) {
	var cfg settings
	if errs := s.DecodeFields(&cfg); errs != nil {
		return errs, nil
	}
	var errs []sdk.FieldError
	if cfg.MaxRead < 1 || cfg.MaxRead > maxMaxRead {
		errs = append(errs, sdk.FieldError{Field: "max_read", Message: fmt.Sprintf("must be from 1 to %d", maxMaxRead)})
	}
	if len(cfg.Expect) > cfg.MaxRead {
		errs = append(errs, sdk.FieldError{Field: "expect", Message: fmt.Sprintf("longer than max_read (%d bytes)", cfg.MaxRead)})
	}
	return errs, nil
}

func (c checker) Check(ctx context.Context, req *sdk.Request) (*sdk.Result, error) {
	var cfg settings
	if err := req.Settings.Decode(&cfg); err != nil {
		return nil, fmt.Errorf("settings: %w", err) // Configure should have caught it
	}
	if err := c.ValidateTarget(req.Target); err != nil {
		return nil, err
	}
	var t sdk.Timer
	return t.Done(probe(ctx, req.Target, cfg, &t)) // the phases, however probe returns
}

// probe runs the check, timing each phase with t.
func probe(ctx context.Context, target string, cfg settings, t *sdk.Timer) (*sdk.Result, error) {
	// sdk.Dial gives the connection the check's deadline and unblocks it
	// when the check is canceled.
	connect := t.Start("connect")
	conn, err := sdk.Dial(ctx, "tcp", target)
	connect.End()
	if err != nil {
		return sdk.NetFailure(ctx, err, "connect to %s", target), nil
	}
	defer conn.Close()
	if cfg.Send != "" {
		send := t.Start("send")
		_, err := conn.Write([]byte(cfg.Send))
		send.End()
		if err != nil {
			return sdk.NetFailure(ctx, err, "send to %s", target), nil
		}
	}
	if cfg.Expect != "" {
		defer t.Start("expect").End()
		got, err := readUntil(conn, []byte(cfg.Expect), cfg.MaxRead)
		switch {
		case errors.Is(err, errNotFound):
			return sdk.Failed(sdk.ReasonUnexpectedResponse, "no %q from %s in the first %d bytes (got %s)",
				cfg.Expect, target, cfg.MaxRead, excerpt(got)), nil
		case err != nil:
			return sdk.NetFailure(ctx, err, "no %q from %s (got %s)", cfg.Expect, target, excerpt(got)), nil
		}
	}
	return sdk.OK(fmt.Sprintf("connected to %s", conn.RemoteAddr())), nil
}

var errNotFound = errors.New("not found")

// readUntil reads from conn until want has been received, the connection
// ends (io.EOF), or limit bytes came without it (errNotFound). It returns
// what it read.
func readUntil(conn net.Conn, want []byte, limit int) ([]byte, error) {
	var buf []byte
	chunk := make([]byte, 512)
	for len(buf) < limit {
		n, err := conn.Read(chunk[:min(len(chunk), limit-len(buf))])
		buf = append(buf, chunk[:n]...)
		switch {
		case bytes.Contains(buf, want):
			return buf, nil
		case err != nil:
			return buf, err
		}
	}
	return buf, errNotFound
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

// The checker can tell a bad target at config time.
var _ sdk.TargetValidator = checker{}
