// Package checkapi is what a ripcord checker implements and returns: the
// Checker interface, its Request and Result, the settings schema, and what
// every checker needs (Dial, NetFailure, Timer, ReadSecretFile). It links
// nothing but the standard library, so that the built-in checkers' process
// stays small; third-party plugins use the same API through plugins/sdk,
// which adds Serve.
package checkapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Checker is what a plugin implements. Configure and Check take ctx first;
// Check must return when ctx is done (its deadline is the check's timeout).
// A checker may also implement TargetValidator.
type Checker interface {
	// Describe names the checker and documents its settings.
	Describe() Description
	// Configure validates settings once, when the daemon loads its config.
	// It returns one FieldError per bad setting; the error return means the
	// checker itself broke.
	Configure(ctx context.Context, settings Settings) ([]FieldError, error)
	// Check probes target once. The Result says what the service did; a
	// non-nil error says the checker broke (it becomes reason checker_error).
	Check(ctx context.Context, req *Request) (*Result, error)
}

// TargetValidator is implemented by a checker that can tell a bad target
// (its syntax: a URL of the wrong scheme, host:port without a port) when the
// daemon loads its config, so that `ripcord validate` reports it at the
// check's target line instead of every check failing with checker_error.
// It must not contact the target.
type TargetValidator interface {
	ValidateTarget(target string) error
}

// Description is what Describe returns.
type Description struct {
	Name     string  // checker name as used in config ("ldap")
	Version  string  // checker version
	Summary  string  // one line for `ripcord checkers` and for a human running the plugin by hand
	Settings []Field // the settings schema
}

// Field documents one setting, and Serve holds every check's settings to
// it (ApplySchema) before Configure and Check see them: unknown keys,
// missing Required fields and values not of their Type are field errors,
// and an absent field gets its Default.
type Field struct {
	Name string // key in the YAML settings mapping
	// Type is one the SDK checks: string, int, float, bool, duration (a
	// string such as "2s"), object (a mapping), []T, map[string]T, or
	// "A or B" (either). Any other text is documentation only.
	Type     string
	Required bool
	// Default is written as JSON ("53", "[200]", "true") or, for a type
	// that takes a string, as the text itself ("udp", "2s").
	Default string
	Help    string
}

// FieldError says what is wrong with one setting.
type FieldError struct {
	Field   string // settings key, e.g. "bind_dn"
	Message string
}

func (e FieldError) Error() string {
	if e.Field == "" {
		return e.Message // the settings as a whole
	}
	return e.Field + ": " + e.Message
}

// Settings are the check's settings as JSON (converted from the YAML config).
type Settings []byte

// Decode unmarshals the settings into v strictly: unknown keys are errors.
func (s Settings) Decode(v any) error {
	if len(s) == 0 {
		return nil
	}
	d := json.NewDecoder(bytes.NewReader(s))
	d.DisallowUnknownFields()
	return d.Decode(v)
}

// Request is one check.
type Request struct {
	// Target is what to probe, in the checker's own syntax (a URL, host:port).
	Target string
	// Settings are the check's settings.
	Settings Settings
}

// Status is the verdict on the service.
type Status int

const (
	StatusFailed   Status = iota // the service does not work
	StatusOK                     // the service works
	StatusDegraded               // works, but worse than configured (slow, lagging, cert expiring)
)

func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusDegraded:
		return "degraded"
	case StatusFailed:
		return "failed"
	}
	return fmt.Sprintf("status(%d)", int(s))
}

// Reasons shared by the built-in checkers. A plugin may use others: a reason
// is a short lower_snake_case word for machines (metrics labels, alerts).
const (
	ReasonOK                 = "ok"
	ReasonRefused            = "refused"
	ReasonTimeout            = "timeout"
	ReasonAuthFailed         = "auth_failed"
	ReasonRejected           = "rejected"
	ReasonUnexpectedResponse = "unexpected_response"
	ReasonTLSInvalid         = "tls_invalid"
	ReasonUnavailable        = "unavailable"
	// ReasonMisconfigured: the check's own setup does not fit the server
	// (an entry it needs is missing, it may not write what it must). The
	// status still says whether the service works; the message says what
	// to fix.
	ReasonMisconfigured = "misconfigured"
	// ReasonCanceled: the check was canceled before it could tell (the
	// daemon stopping, a check run again); no verdict on the service.
	ReasonCanceled     = "canceled"
	ReasonCheckerError = "checker_error" // set by the daemon, never by a checker
)

// IsMisconfiguration reports whether a result says that the check itself is
// wrong (its credentials, shared secret, expected certificate or an entry it
// needs) rather than the service: such results hit every replica alike, so
// moving traffic cannot fix them and a human has to.
func IsMisconfiguration(reason string) bool {
	switch reason {
	case ReasonAuthFailed, ReasonRejected, ReasonTLSInvalid, ReasonMisconfigured:
		return true
	}
	return false
}

// Phase is the time one step of a check took.
type Phase struct {
	Name     string // connect, tls, bind, search, request, ...
	Duration time.Duration
}

// Result is what a check found.
type Result struct {
	Status  Status
	Reason  string // short machine word, see the Reason constants
	Message string // one line for humans
	Phases  []Phase
	// Observations are numbers worth graphing, e.g. "replication_lag_seconds".
	Observations map[string]float64
}

// OK returns a successful result.
func OK(msg string) *Result { return &Result{Status: StatusOK, Reason: ReasonOK, Message: msg} }

// Failed returns a failed result with a reason.
func Failed(reason, format string, args ...any) *Result {
	return &Result{Status: StatusFailed, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// Degraded returns a degraded result with a reason.
func Degraded(reason, format string, args ...any) *Result {
	return &Result{Status: StatusDegraded, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// AddPhase appends a phase timing; it returns r for chaining.
func (r *Result) AddPhase(name string, d time.Duration) *Result {
	r.Phases = append(r.Phases, Phase{Name: name, Duration: d})
	return r
}

// Observe records a numeric observation; it returns r for chaining.
func (r *Result) Observe(name string, v float64) *Result {
	if r.Observations == nil {
		r.Observations = map[string]float64{}
	}
	r.Observations[name] = v
	return r
}
