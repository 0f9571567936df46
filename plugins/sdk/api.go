// Package sdk is the public API for ripcord checker plugins.
//
// A checker implements Checker and calls Serve from its main function:
//
//	func main() { sdk.Serve(mychecker{}) }
//
// The ripcord daemon starts the executable, talks to it over gRPC through
// hashicorp/go-plugin and calls Check on the daemon's schedule. Plugin authors
// never see the wire format. The types and helpers are plugins/checkapi's,
// under the same names here; ripcord's built-in checkers use checkapi
// directly, which links no gRPC. Serve holds every check's settings to the
// schema of Describe (ApplySchema) before Configure and Check see them, and
// asks a checker that implements TargetValidator about each check's target
// when the daemon loads its config.
//
// What every checker needs is here too: Dial (a connection bound to the
// check's ctx), NetFailure and NetReason (network errors as the shared
// reasons), Timer (phases that survive early returns), ReadSecretFile.
// Package sdktest tests a checker in process and through the daemon's own
// plugin host. docs/writing-a-checker.md walks through a whole plugin.
package sdk

import (
	"context"
	"net"

	"github.com/ripcord/ripcord/plugins/checkapi"
)

type (
	Checker         = checkapi.Checker
	TargetValidator = checkapi.TargetValidator
	Description     = checkapi.Description
	Field           = checkapi.Field
	FieldError      = checkapi.FieldError
	Settings        = checkapi.Settings
	Request         = checkapi.Request
	Status          = checkapi.Status
	Phase           = checkapi.Phase
	Result          = checkapi.Result
	Timer           = checkapi.Timer
	Span            = checkapi.Span
)

const (
	StatusFailed   = checkapi.StatusFailed
	StatusOK       = checkapi.StatusOK
	StatusDegraded = checkapi.StatusDegraded

	ReasonOK                 = checkapi.ReasonOK
	ReasonRefused            = checkapi.ReasonRefused
	ReasonTimeout            = checkapi.ReasonTimeout
	ReasonAuthFailed         = checkapi.ReasonAuthFailed
	ReasonRejected           = checkapi.ReasonRejected
	ReasonUnexpectedResponse = checkapi.ReasonUnexpectedResponse
	ReasonTLSInvalid         = checkapi.ReasonTLSInvalid
	ReasonUnavailable        = checkapi.ReasonUnavailable
	ReasonMisconfigured      = checkapi.ReasonMisconfigured
	ReasonCanceled           = checkapi.ReasonCanceled
	ReasonCheckerError       = checkapi.ReasonCheckerError

	EnvLogLevel   = checkapi.EnvLogLevel
	EnvStateDir   = checkapi.EnvStateDir
	MaxSecretSize = checkapi.MaxSecretSize
	Redacted      = checkapi.Redacted
)

// ErrEmptySecret is what ReadSecretFile wraps for an empty secret.
var ErrEmptySecret = checkapi.ErrEmptySecret

// OK returns a successful result.
func OK(msg string) *Result { return checkapi.OK(msg) }

// Failed returns a failed result with a reason.
func Failed(reason, format string, args ...any) *Result {
	return checkapi.Failed(reason, format, args...)
}

// Degraded returns a degraded result with a reason.
func Degraded(reason, format string, args ...any) *Result {
	return checkapi.Degraded(reason, format, args...)
}

// IsMisconfiguration reports whether a result's reason says the check itself
// is wrong rather than the service.
func IsMisconfiguration(reason string) bool { return checkapi.IsMisconfiguration(reason) }

// ReadSecretFile reads a secret from the first line of a file.
func ReadSecretFile(path string) (string, error) { return checkapi.ReadSecretFile(path) }

// RedactTarget replaces the password of target, if it has one, in text.
func RedactTarget(text, target string) string { return checkapi.RedactTarget(text, target) }

// StateDir returns the checker's state directory, or "" when the host gave none.
func StateDir() string { return checkapi.StateDir() }

// ApplySchema holds settings to the checker's schema (see Field); Serve does
// this before Configure and Check.
func ApplySchema(fields []Field, s Settings) (Settings, []FieldError, error) {
	return checkapi.ApplySchema(fields, s)
}

// ValidateSettings applies c's schema to s, then calls c's Configure on what
// the schema let through, and returns every field error once: what the
// daemon asks when it loads its config.
func ValidateSettings(ctx context.Context, c Checker, s Settings) ([]FieldError, error) {
	return checkapi.ValidateSettings(ctx, c, s)
}

// Dial connects to address, bound to ctx: the connection has ctx's deadline,
// and a read or write blocked on it returns at once when ctx is canceled (see
// checkapi.Dial).
func Dial(ctx context.Context, network, address string) (net.Conn, error) {
	return checkapi.Dial(ctx, network, address)
}

// NetReason says which shared reason a network error stands for.
func NetReason(ctx context.Context, err error) (reason string, ok bool) {
	return checkapi.NetReason(ctx, err)
}

// NetFailure is the failed result of a network error, with its reason.
func NetFailure(ctx context.Context, err error, format string, args ...any) *Result {
	return checkapi.NetFailure(ctx, err, format, args...)
}
