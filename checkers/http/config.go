package http

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/ripcord/ripcord/plugins/checkapi"
)

// Config is the settings mapping of an http check.
type Config struct {
	// Method of the request; default GET.
	Method string `json:"method"`
	// Host overrides the Host header, to check one replica by its own
	// address while asking for the service's name.
	Host string `json:"host"`
	// ServerName overrides the TLS SNI and the name the certificate must be
	// valid for; default: Host without its port, else the URL's host.
	ServerName string `json:"server_name"`
	// ExpectStatus lists the acceptable status codes (a number or a list);
	// default 200.
	ExpectStatus StatusList `json:"expect_status"`
	// BodyContains must occur in the first MaxBody bytes of the body.
	BodyContains string `json:"body_contains"`
	// BodyRegex (RE2) must match the first MaxBody bytes of the body.
	BodyRegex string `json:"body_regex"`
	// CAFile is a PEM bundle to verify the server with instead of the
	// system roots.
	CAFile string `json:"ca_file"`
	// FollowRedirects follows up to 5 redirects within the same origin
	// (scheme, host and port). Off by default: a login page that suddenly
	// redirects somewhere is a change worth failing on.
	FollowRedirects bool `json:"follow_redirects"`
	// CertWarnDays degrades the check (cert_expiring) when the earliest
	// certificate of the verified chain expires within this many days;
	// 0 turns the warning off. Default 14.
	CertWarnDays *float64 `json:"cert_warn_days"`
	// MaxBody caps how much of the body is read and matched; default 1 MiB.
	MaxBody int64 `json:"max_body"`
	// Headers are extra request headers.
	Headers map[string]string `json:"headers"`
	// Login, when set, also posts a login form with a test account.
	Login *LoginConfig `json:"login"`

	bodyRegex *regexp.Regexp
}

// LoginConfig is the deep check: a form POST with a test account.
type LoginConfig struct {
	// URL to post to, absolute or relative to the target; default the target.
	URL string `json:"url"`
	// Username and PasswordFile are the test account.
	Username     string `json:"username"`
	PasswordFile string `json:"password_file"`
	// UsernameField and PasswordField name the form fields; default
	// "username" and "password".
	UsernameField string `json:"username_field"`
	PasswordField string `json:"password_field"`
	// ExtraFields are posted as they are (e.g. a realm selector).
	ExtraFields map[string]string `json:"extra_fields"`
	// ExpectStatus lists acceptable statuses of the POST; default 302.
	ExpectStatus StatusList `json:"expect_status"`
	// ExpectCookie names a cookie the answer must set (non-empty value).
	ExpectCookie string `json:"expect_cookie"`
	// ExpectLocation must occur in the answer's Location header.
	ExpectLocation string `json:"expect_location"`
}

// StatusList is a list of status codes that also accepts a single number.
type StatusList []int

// UnmarshalJSON accepts 200 as well as [200, 204].
func (s *StatusList) UnmarshalJSON(b []byte) error {
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] != '[' {
		var one int
		if err := json.Unmarshal(t, &one); err != nil {
			return err
		}
		*s = StatusList{one}
		return nil
	}
	var many []int
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*s = many
	return nil
}

func (s StatusList) contains(code int) bool {
	for _, c := range s {
		if c == code {
			return true
		}
	}
	return false
}

// Defaults, documented in one place.
const (
	DefaultMethod        = "GET"
	DefaultExpectStatus  = 200
	DefaultCertWarnDays  = 14
	DefaultMaxBody       = 1 << 20
	DefaultUsernameField = "username"
	DefaultPasswordField = "password"
	DefaultLoginStatus   = 302
	maxRedirects         = 5
	maxMaxBody           = 64 << 20
)

// parseConfig decodes settings strictly and fills in the defaults.
func parseConfig(s checkapi.Settings) (Config, error) {
	var c Config
	if err := s.Decode(&c); err != nil {
		return c, fmt.Errorf("checkers/http: settings: %w", err)
	}
	if c.Method == "" {
		c.Method = DefaultMethod
	}
	if len(c.ExpectStatus) == 0 {
		c.ExpectStatus = StatusList{DefaultExpectStatus}
	}
	if c.CertWarnDays == nil {
		d := float64(DefaultCertWarnDays)
		c.CertWarnDays = &d
	}
	if c.MaxBody == 0 {
		c.MaxBody = DefaultMaxBody
	}
	if l := c.Login; l != nil {
		if l.UsernameField == "" {
			l.UsernameField = DefaultUsernameField
		}
		if l.PasswordField == "" {
			l.PasswordField = DefaultPasswordField
		}
		if len(l.ExpectStatus) == 0 {
			l.ExpectStatus = StatusList{DefaultLoginStatus}
		}
	}
	return c, nil
}

// Validate reports every bad setting and compiles body_regex. Files are not
// read here: they may be provisioned after the configuration is loaded.
func (c *Config) Validate() []checkapi.FieldError {
	var errs []checkapi.FieldError
	add := func(field, format string, args ...any) {
		errs = append(errs, checkapi.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	if !validToken(c.Method) {
		add("method", "%q is not an HTTP method", c.Method)
	}
	if strings.ContainsAny(c.Host, " \t\r\n/") {
		add("host", "%q is not a host name", c.Host)
	}
	if strings.ContainsAny(c.ServerName, " \t\r\n/:") {
		add("server_name", "%q is not a host name", c.ServerName)
	}
	checkStatuses(c.ExpectStatus, "expect_status", add)
	if c.BodyRegex != "" {
		re, err := regexp.Compile(c.BodyRegex)
		if err != nil {
			add("body_regex", "%v", err)
		}
		c.bodyRegex = re
	}
	if *c.CertWarnDays < 0 {
		add("cert_warn_days", "must not be negative")
	}
	if c.MaxBody < 0 || c.MaxBody > maxMaxBody {
		add("max_body", "must be between 1 and %d bytes", maxMaxBody)
	}
	for k, v := range c.Headers {
		switch {
		case !validToken(k):
			add("headers", "%q is not a header name", k)
		case strings.EqualFold(k, "Host"):
			add("headers", "set the Host header with the host setting")
		case strings.ContainsAny(v, "\r\n"):
			add("headers", "value of %s contains a line break", k)
		}
	}
	if l := c.Login; l != nil {
		if l.URL != "" {
			if _, err := url.Parse(l.URL); err != nil {
				add("login.url", "%v", err)
			}
		}
		if l.Username == "" {
			add("login.username", "required")
		}
		if l.PasswordFile == "" {
			add("login.password_file", "required")
		}
		checkStatuses(l.ExpectStatus, "login.expect_status", add)
	}
	return errs
}

func checkStatuses(s StatusList, field string, add func(string, string, ...any)) {
	for _, code := range s {
		if code < 100 || code > 599 {
			add(field, "%d is not an HTTP status", code)
		}
	}
}

// validToken reports whether s is an RFC 9110 token (methods, header names).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r > 0x7e || r <= ' ' || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return true
}

// parseTarget checks that the target is an absolute http or https URL.
func parseTarget(target string) (*url.URL, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q: want an http:// or https:// URL", target)
	}
	return u, nil
}

func readPasswordFile(name string) (string, error) {
	pw, err := checkapi.ReadSecretFile(name)
	if err != nil {
		return "", fmt.Errorf("checkers/http: login.password_file: %w", err)
	}
	return pw, nil
}
