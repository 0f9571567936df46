package radius

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/ripcord/ripcord/plugins/checkapi"
)

// Modes of the check.
const (
	ModeAccessRequest = "access_request" // authenticate a dedicated test user
	ModeStatusServer  = "status_server"  // RFC 5997: proves only the packet loop is alive
)

// Config is the settings mapping of a radius check.
type Config struct {
	// SecretFile holds the shared secret (one line; surrounding white space
	// is ignored). Required.
	SecretFile string `json:"secret_file"`
	// User and PasswordFile name the test account (access_request only).
	User         string `json:"user"`
	PasswordFile string `json:"password_file"`
	// NASIdentifier is sent so the server's logs name the checker.
	NASIdentifier string `json:"nas_identifier"`
	// Mode is access_request or status_server.
	Mode string `json:"mode"`
	// AcceptReject counts an authentic Access-Reject as alive: the server
	// answered, even if the test account's back end said no.
	AcceptReject bool `json:"accept_reject"`
	// Retransmit is how many times the request is resent inside the
	// deadline when no answer came (UDP loss).
	Retransmit *int `json:"retransmit"`

	// omitMessageAuthenticator exists for tests that show a server drops
	// requests without one; settings can never set it.
	omitMessageAuthenticator bool
}

// DefaultConfig holds the defaults, documented in one place.
var DefaultConfig = Config{
	NASIdentifier: "ripcord",
	Mode:          ModeAccessRequest,
	Retransmit:    intPtr(1),
}

const maxRetransmit = 10

func intPtr(v int) *int { return &v }

// parseConfig decodes settings strictly over the defaults.
func parseConfig(s checkapi.Settings) (Config, error) {
	c := DefaultConfig
	c.Retransmit = nil
	if err := s.Decode(&c); err != nil {
		return c, fmt.Errorf("checkers/radius: settings: %w", err)
	}
	if c.Retransmit == nil {
		c.Retransmit = intPtr(*DefaultConfig.Retransmit)
	}
	return c, nil
}

// Validate reports every bad setting. It does not read the files: they may be
// provisioned after the configuration is loaded.
func (c Config) Validate() []checkapi.FieldError {
	var errs []checkapi.FieldError
	add := func(field, format string, args ...any) {
		errs = append(errs, checkapi.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	switch c.Mode {
	case ModeAccessRequest:
		if c.User == "" {
			add("user", "required in mode access_request")
		}
		if c.PasswordFile == "" {
			add("password_file", "required in mode access_request")
		}
	case ModeStatusServer:
		if c.User != "" || c.PasswordFile != "" {
			add("mode", "status_server sends no user: remove user and password_file")
		}
	default:
		add("mode", "must be access_request or status_server, not %q", c.Mode)
	}
	if len(c.NASIdentifier) > 253 {
		add("nas_identifier", "longer than 253 bytes")
	}
	if len(c.User) > 253 {
		add("user", "longer than 253 bytes")
	}
	if c.Retransmit != nil && (*c.Retransmit < 0 || *c.Retransmit > maxRetransmit) {
		add("retransmit", "must be between 0 and %d", maxRetransmit)
	}
	return errs
}

// validateTarget checks the host:port syntax of a target.
func validateTarget(target string) error {
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		return fmt.Errorf("%q: want host:port: %w", target, err)
	}
	if host == "" {
		return fmt.Errorf("%q: empty host", target)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: bad port", target)
	}
	return nil
}

// readSecretFile reads a secret file (checkapi.ReadSecretFile) without
// surrounding white space; an empty secret is an error.
func readSecretFile(field, name string) ([]byte, error) {
	secret, err := checkapi.ReadSecretFile(name)
	if secret = strings.TrimSpace(secret); err == nil && secret == "" {
		err = fmt.Errorf("%s %w", name, checkapi.ErrEmptySecret)
	}
	if err != nil {
		return nil, fmt.Errorf("checkers/radius: %s: %w", field, err)
	}
	return []byte(secret), nil
}
