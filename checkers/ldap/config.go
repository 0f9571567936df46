package ldap

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/ripcord/ripcord/plugins/checkapi"
)

// Duration is a time.Duration written as a Go duration string ("30s").
type Duration time.Duration

// UnmarshalJSON reads a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration string like \"30s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// Lag actions.
const (
	LagDegraded = "degraded"
	LagFailed   = "failed"
)

// Config are the settings of one LDAP check.
type Config struct {
	StartTLS     bool     `json:"start_tls"`
	CAFile       string   `json:"ca_file"`
	ServerName   string   `json:"server_name"`
	BindDN       string   `json:"bind_dn"`
	PasswordFile string   `json:"password_file"`
	Base         string   `json:"base"`
	Scope        string   `json:"scope"`
	Filter       string   `json:"filter"`
	Attributes   []string `json:"attributes"`
	MinEntries   int      `json:"min_entries"`
	// ExpectAttribute must be present on at least one entry, with
	// ExpectValue among its values when that is set.
	ExpectAttribute string `json:"expect_attribute"`
	ExpectValue     string `json:"expect_value"`

	// Replica freshness against Reference (an LDAP URL).
	Reference             string   `json:"reference"`
	MaxLag                Duration `json:"max_lag"`
	LagAction             string   `json:"lag_action"`
	ReferenceBindDN       string   `json:"reference_bind_dn"`
	ReferencePasswordFile string   `json:"reference_password_file"`
	// ReferenceServerName is the name in the reference's certificate:
	// the reference is usually given by address, so that the check does
	// not depend on DNS, and certificates name hosts.
	ReferenceServerName string   `json:"reference_server_name"`
	HeartbeatDN         string   `json:"heartbeat_dn"`
	HeartbeatInterval   Duration `json:"heartbeat_interval"`
	HeartbeatAttribute  string   `json:"heartbeat_attribute"`
}

// DefaultConfig holds the defaults; settings are decoded on top of a copy.
var DefaultConfig = Config{
	Scope:              "sub",
	Filter:             "(objectClass=*)",
	MinEntries:         1,
	LagAction:          LagDegraded,
	HeartbeatAttribute: "description",
}

// fields documents the settings; Describe returns it.
var fields = []checkapi.Field{
	{Name: "start_tls", Type: "bool", Default: "false", Help: "upgrade ldap:// with StartTLS before binding"},
	{Name: "ca_file", Type: "string", Help: "PEM CA bundle to verify the server certificate (default: system roots)"},
	{Name: "server_name", Type: "string", Help: "name expected in the target's certificate (default: the URL's host)"},
	{Name: "bind_dn", Type: "string", Help: "DN for a simple bind; empty means anonymous"},
	{Name: "password_file", Type: "string", Help: "file holding bind_dn's password (read at every check)"},
	{Name: "base", Type: "string", Help: "search base DN"},
	{Name: "scope", Type: "string", Default: "sub", Help: "base, one or sub"},
	{Name: "filter", Type: "string", Default: "(objectClass=*)", Help: "RFC 4515 search filter"},
	{Name: "attributes", Type: "[]string", Help: "attributes to return (default: none)"},
	{Name: "min_entries", Type: "int", Default: "1", Help: "fewer entries is reason no_entry"},
	{Name: "expect_attribute", Type: "string", Help: "an entry must carry this attribute"},
	{Name: "expect_value", Type: "string", Help: "... with this exact value"},
	{Name: "reference", Type: "string", Help: "LDAP URL of the provider (or a peer) to compare contextCSN with"},
	{Name: "max_lag", Type: "duration", Help: "replication lag above this is reason stale_replica"},
	{Name: "lag_action", Type: "string", Default: LagDegraded, Help: "status when stale: degraded or failed"},
	{Name: "reference_bind_dn", Type: "string", Help: "DN to bind to the reference (default: bind_dn)"},
	{Name: "reference_password_file", Type: "string", Help: "file holding reference_bind_dn's password"},
	{Name: "reference_server_name", Type: "string", Help: "name expected in the reference's certificate (ldaps:// or start_tls; default: the reference URL's host)"},
	{Name: "heartbeat_dn", Type: "string", Help: "existing entry on the reference, writable by the reference bind DN, rewritten when the reference has been idle for heartbeat_interval"},
	{Name: "heartbeat_interval", Type: "duration", Help: "longest idle time of the reference before a heartbeat write"},
	{Name: "heartbeat_attribute", Type: "string", Default: "description", Help: "attribute of heartbeat_dn that the heartbeat replaces"},
}

// ParseConfig decodes settings over the defaults and validates them.
func ParseConfig(settings checkapi.Settings) (Config, []checkapi.FieldError) {
	cfg := DefaultConfig
	if fes := settings.DecodeFields(&cfg); fes != nil {
		return cfg, fes
	}
	return cfg, cfg.Validate()
}

// Validate checks the settings, including that the files they name are
// readable, and returns one error per bad setting.
func (c Config) Validate() []checkapi.FieldError {
	var errs []checkapi.FieldError
	bad := func(field, format string, args ...any) {
		errs = append(errs, checkapi.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	switch c.Scope {
	case "base", "one", "sub":
	default:
		bad("scope", "must be base, one or sub, not %q", c.Scope)
	}
	if _, err := goldap.CompileFilter(c.Filter); err != nil {
		bad("filter", "%v", err)
	}
	if c.Base != "" {
		if _, err := goldap.ParseDN(c.Base); err != nil {
			bad("base", "%v", err)
		}
	}
	if c.MinEntries < 0 {
		bad("min_entries", "must not be negative")
	}
	if c.ExpectValue != "" && c.ExpectAttribute == "" {
		bad("expect_value", "needs expect_attribute")
	}
	checkBind(c.BindDN, c.PasswordFile, "bind_dn", "password_file", bad)
	if c.CAFile != "" {
		if err := loadCAFile(c.CAFile); err != nil {
			bad("ca_file", "%v", err)
		}
	}

	if c.Reference == "" {
		for _, f := range []struct {
			field string
			set   bool
		}{
			{"max_lag", c.MaxLag != 0},
			{"reference_bind_dn", c.ReferenceBindDN != ""},
			{"reference_password_file", c.ReferencePasswordFile != ""},
			{"reference_server_name", c.ReferenceServerName != ""},
			{"heartbeat_dn", c.HeartbeatDN != ""},
		} {
			if f.set {
				bad(f.field, "needs reference")
			}
		}
	} else {
		if _, err := parseTarget(c.Reference); err != nil {
			bad("reference", "%v", err)
		}
		if c.MaxLag <= 0 {
			bad("max_lag", "must be a positive duration when reference is set")
		}
	}
	switch c.LagAction {
	case LagDegraded, LagFailed:
	default:
		bad("lag_action", "must be %s or %s, not %q", LagDegraded, LagFailed, c.LagAction)
	}
	checkBind(c.ReferenceBindDN, c.ReferencePasswordFile, "reference_bind_dn", "reference_password_file", bad)
	if c.HeartbeatDN != "" {
		if _, err := goldap.ParseDN(c.HeartbeatDN); err != nil {
			bad("heartbeat_dn", "%v", err)
		}
		if c.HeartbeatInterval <= 0 {
			bad("heartbeat_interval", "must be a positive duration when heartbeat_dn is set")
		}
		if c.ReferenceBindDN == "" && c.BindDN == "" {
			bad("heartbeat_dn", "needs reference_bind_dn (or bind_dn) with write access")
		}
		if c.HeartbeatAttribute == "" {
			bad("heartbeat_attribute", "must not be empty")
		}
	} else if c.HeartbeatInterval != 0 {
		bad("heartbeat_interval", "needs heartbeat_dn")
	}
	return errs
}

func checkBind(dn, passwordFile, dnField, fileField string, bad func(string, string, ...any)) {
	switch {
	case dn == "" && passwordFile != "":
		bad(fileField, "needs %s", dnField)
	case dn != "" && passwordFile == "":
		bad(fileField, "required with %s", dnField)
	case dn != "":
		if _, err := goldap.ParseDN(dn); err != nil {
			bad(dnField, "%v", err)
		}
		if _, err := readPassword(passwordFile); err != nil {
			bad(fileField, "%v", err)
		}
	}
}

// readPassword reads a password file (checkapi.ReadSecretFile).
func readPassword(path string) (string, error) {
	pw, err := checkapi.ReadSecretFile(path)
	if errors.Is(err, checkapi.ErrEmptySecret) {
		return "", fmt.Errorf("%w (an empty password is an unauthenticated bind)", err)
	}
	return pw, err
}

func loadCAFile(path string) error {
	_, err := caPool(path)
	return err
}

func caPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}
