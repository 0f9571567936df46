// Package radius checks a RADIUS server (RFC 2865) with one Access-Request
// for a dedicated test account or one Status-Server (RFC 5997), always signed
// with a Message-Authenticator, over a connected UDP socket.
package radius

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"layeh.com/radius"

	"github.com/ripcord/ripcord/plugins/checkapi"
)

// Version of the checker.
const Version = "0.1.0"

// Reasons specific to this checker (the others come from sdk).
const (
	// ReasonBadAuthenticator: a reply came back but its Response
	// Authenticator or Message-Authenticator is wrong, typically a shared
	// secret that differs between checker and server.
	ReasonBadAuthenticator = "bad_authenticator"
)

// Checker is the radius checker.
type Checker struct{}

// New returns the radius checker.
func New() checkapi.Checker { return Checker{} }

// Describe implements checkapi.Checker.
func (Checker) Describe() checkapi.Description {
	d := DefaultConfig
	return checkapi.Description{
		Name:    "radius",
		Version: Version,
		Summary: "RADIUS Access-Request or Status-Server with Message-Authenticator",
		Settings: []checkapi.Field{
			{Name: "secret_file", Type: "string", Required: true, Help: "file holding the shared secret"},
			{Name: "user", Type: "string", Help: "test account (mode access_request)"},
			{Name: "password_file", Type: "string", Help: "file holding the test account's password (mode access_request)"},
			{Name: "nas_identifier", Type: "string", Default: d.NASIdentifier, Help: "NAS-Identifier sent in every request"},
			{Name: "mode", Type: "string", Default: d.Mode, Help: "access_request or status_server"},
			{Name: "accept_reject", Type: "bool", Default: "false", Help: "count an authentic Access-Reject as alive"},
			{Name: "retransmit", Type: "int", Default: fmt.Sprint(*d.Retransmit), Help: "resends inside the deadline when no reply came"},
		},
	}
}

// Configure implements checkapi.Checker.
func (Checker) Configure(_ context.Context, s checkapi.Settings) ([]checkapi.FieldError, error) {
	c, err := parseConfig(s)
	if err != nil {
		var raw Config
		return s.DecodeFields(&raw), nil // names the offending key
	}
	return c.Validate(), nil
}

// ValidateTarget implements checkapi.TargetValidator: host:port.
func (Checker) ValidateTarget(target string) error { return validateTarget(target) }

// Check implements checkapi.Checker.
func (Checker) Check(ctx context.Context, req *checkapi.Request) (*checkapi.Result, error) {
	c, err := parseConfig(req.Settings)
	if err != nil {
		return nil, err
	}
	return check(ctx, req.Target, c)
}

func check(ctx context.Context, target string, c Config) (*checkapi.Result, error) {
	if errs := c.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("checkers/radius: settings: %v", errs[0])
	}
	if err := validateTarget(target); err != nil {
		return nil, fmt.Errorf("checkers/radius: target %w", err)
	}
	secret, err := readSecretFile("secret_file", c.SecretFile)
	if err != nil {
		return nil, err
	}
	var code radius.Code
	var attrs radius.Attributes
	var random [1 + authLen]byte
	if _, err := rand.Read(random[:]); err != nil {
		return nil, fmt.Errorf("checkers/radius: %w", err)
	}
	id := random[0]
	var reqAuth [authLen]byte
	copy(reqAuth[:], random[1:])

	switch c.Mode {
	case ModeAccessRequest:
		code = radius.CodeAccessRequest
		password, err := readSecretFile("password_file", c.PasswordFile)
		if err != nil {
			return nil, err
		}
		pw, err := radius.NewUserPassword(password, secret, reqAuth[:])
		if err != nil {
			return nil, fmt.Errorf("checkers/radius: password: %w", err)
		}
		attrs.Add(1, radius.Attribute(c.User)) // User-Name
		attrs.Add(2, pw)                       // User-Password
	case ModeStatusServer:
		code = radius.CodeStatusServer
	}
	if c.NASIdentifier != "" {
		attrs.Add(32, radius.Attribute(c.NASIdentifier)) // NAS-Identifier
	}
	packet, err := encodeRequest(code, id, reqAuth, secret, attrs, !c.omitMessageAuthenticator)
	if err != nil {
		return nil, fmt.Errorf("checkers/radius: encode: %w", err)
	}

	start := time.Now()
	rep, sent, err := exchange(ctx, target, packet, secret, *c.Retransmit)
	res := classify(ctx, target, c, rep, err)
	res.AddPhase("request", time.Since(start))
	res.Observe("retransmissions", float64(max(sent-1, 0)))
	return res, nil
}

// classify turns the outcome of the exchange into a result.
func classify(ctx context.Context, target string, c Config, rep *reply, err error) *checkapi.Result {
	var authErr *authenticatorError
	reason, _ := checkapi.NetReason(ctx, err)
	switch {
	case err == nil:
	case errors.As(err, &authErr):
		return checkapi.Failed(ReasonBadAuthenticator, "%s from %s: %v", codeName(authErr.code), target, authErr.err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return checkapi.Failed(checkapi.ReasonRefused, "nothing listens on %s (ICMP port unreachable)", target)
	case reason == checkapi.ReasonTimeout:
		// Hung, wrong secret, missing Message-Authenticator and loss all look
		// alike on the wire: the server stays silent.
		return checkapi.Failed(checkapi.ReasonTimeout, "no reply from %s within the deadline (server down or hung, packet loss, or a shared secret the server rejects)", target)
	default:
		// Unreachable network, unknown host: nobody answers us there either.
		return checkapi.NetFailure(ctx, err, "radius exchange with %s", target)
	}
	msg := codeName(rep.Code)
	if rep.ReplyMessage != "" {
		msg += fmt.Sprintf(" (Reply-Message %q)", rep.ReplyMessage)
	}
	switch rep.Code {
	case radius.CodeAccessAccept:
		return checkapi.OK(msg)
	case radius.CodeAccessReject:
		if c.AcceptReject {
			return checkapi.OK(msg + ", counted as alive (accept_reject)")
		}
		return checkapi.Failed(checkapi.ReasonRejected, "%s", msg)
	}
	return checkapi.Failed(checkapi.ReasonUnexpectedResponse, "%s", msg)
}

// authenticatorError is a reply with our identifier that failed verification.
type authenticatorError struct {
	code radius.Code
	err  error
}

func (e *authenticatorError) Error() string { return e.err.Error() }

// exchange sends packet over a connected UDP socket (so ICMP port unreachable
// surfaces as ECONNREFUSED) and waits for the matching reply. The time left
// until ctx's deadline is split evenly between the first send and the
// retransmissions; each resend is the same packet (same ID and
// authenticator, RFC 5080 §2.2.1). It returns how many times it sent.
func exchange(ctx context.Context, target string, packet, secret []byte, retransmit int) (*reply, int, error) {
	conn, err := checkapi.Dial(ctx, "udp", target) // a cancel ends a blocked read
	if err != nil {
		return nil, 0, err
	}
	defer conn.Close()

	buf := make([]byte, maxPacket+1)
	attempts := retransmit + 1
	sent := 0
	for i := range attempts {
		if err := ctx.Err(); err != nil {
			return nil, sent, err
		}
		if _, err := conn.Write(packet); err != nil {
			return nil, sent + 1, err
		}
		sent++
		if err := conn.SetReadDeadline(attemptDeadline(ctx, attempts-i)); err != nil {
			return nil, sent, err
		}
		for {
			n, err := conn.Read(buf)
			if errors.Is(err, os.ErrDeadlineExceeded) && i < attempts-1 && ctx.Err() == nil {
				break // resend
			}
			if err != nil {
				if ctx.Err() != nil {
					return nil, sent, ctx.Err()
				}
				return nil, sent, err
			}
			// A late answer to an earlier check, or garbage: keep waiting.
			if n < headerLen || buf[1] != packet[1] {
				continue
			}
			rep, err := verifyReply(buf[:n], packet, secret)
			if err != nil {
				return nil, sent, &authenticatorError{code: radius.Code(buf[0]), err: err}
			}
			return rep, sent, nil
		}
	}
	return nil, sent, os.ErrDeadlineExceeded
}

// attemptDeadline gives the current attempt an equal share of the time left.
// Without a deadline each attempt waits one second and the last waits until
// ctx is cancelled.
func attemptDeadline(ctx context.Context, attemptsLeft int) time.Time {
	dl, ok := ctx.Deadline()
	if !ok {
		if attemptsLeft == 1 {
			return time.Time{}
		}
		return time.Now().Add(time.Second)
	}
	return time.Now().Add(time.Until(dl) / time.Duration(attemptsLeft))
}
