// Package http checks a web server or web-auth portal: one request with an
// expected status and body, the server's certificate verified against the
// configured CA and name (never skipped), its expiry, and optionally a
// synthetic login POST with a test account.
package http

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/ripcord/ripcord/plugins/checkapi"
)

// Version of the checker.
const Version = "0.1.0"

// Reasons specific to this checker (the others come from sdk).
const (
	ReasonUnexpectedStatus = "unexpected_status" // a status not in expect_status
	ReasonRedirect         = "redirect"          // a redirect that was not expected or leaves the origin
	ReasonCertExpiring     = "cert_expiring"     // degraded: a certificate expires within cert_warn_days
	ReasonLoginFailed      = "login_failed"      // the login POST did not answer as configured
)

// Checker is the http checker.
type Checker struct{}

// New returns the http checker.
func New() checkapi.Checker { return Checker{} }

// Describe implements checkapi.Checker.
func (Checker) Describe() checkapi.Description {
	return checkapi.Description{
		Name:    "http",
		Version: Version,
		Summary: "HTTP(S) request with status, body, certificate and optional login form checks",
		Settings: []checkapi.Field{
			{Name: "method", Type: "string", Default: DefaultMethod, Help: "request method"},
			{Name: "host", Type: "string", Help: "Host header (the service's name when the target is one replica)"},
			{Name: "server_name", Type: "string", Help: "TLS SNI and certificate name; default host, else the URL's host"},
			{Name: "expect_status", Type: "int or []int", Default: fmt.Sprint(DefaultExpectStatus), Help: "acceptable status codes"},
			{Name: "body_contains", Type: "string", Help: "substring the body must contain"},
			{Name: "body_regex", Type: "string", Help: "RE2 expression the body must match"},
			{Name: "ca_file", Type: "string", Help: "PEM CA bundle instead of the system roots"},
			{Name: "follow_redirects", Type: "bool", Default: "false", Help: "follow up to 5 same-origin redirects"},
			{Name: "cert_warn_days", Type: "float", Default: fmt.Sprint(DefaultCertWarnDays), Help: "degrade when a certificate expires sooner; 0 disables"},
			{Name: "max_body", Type: "int", Default: fmt.Sprint(DefaultMaxBody), Help: "bytes of body read and matched"},
			{Name: "headers", Type: "map[string]string", Help: "extra request headers"},
			{Name: "login", Type: "object", Help: "form login: url, username, password_file, username_field, password_field, extra_fields, expect_status (302), expect_cookie, expect_location"},
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

// ValidateTarget implements checkapi.TargetValidator: an http:// or https:// URL.
func (Checker) ValidateTarget(target string) error {
	_, err := parseTarget(target)
	return err
}

// Check implements checkapi.Checker.
func (Checker) Check(ctx context.Context, req *checkapi.Request) (*checkapi.Result, error) {
	c, err := parseConfig(req.Settings)
	if err != nil {
		return nil, err
	}
	if errs := c.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("checkers/http: settings: %v", errs[0])
	}
	target, err := parseTarget(req.Target)
	if err != nil {
		return nil, fmt.Errorf("checkers/http: target %w", err)
	}
	p, err := newProbe(&c, target)
	if err != nil {
		return nil, err
	}
	return p.run(ctx), nil
}

// probe is one check in progress.
type probe struct {
	c       *Config
	target  *url.URL
	tlsConf *tls.Config
	jar     http.CookieJar // nil unless a later request may need what an earlier one set
	phases  map[string]time.Duration
	// earliest NotAfter seen in a verified chain (zero for plain http).
	notAfter time.Time
}

var phaseOrder = []string{"connect", "tls", "headers", "transfer", "login"}

func newProbe(c *Config, target *url.URL) (*probe, error) {
	tlsConf := &tls.Config{ServerName: c.ServerName}
	if tlsConf.ServerName == "" && c.Host != "" {
		tlsConf.ServerName = hostOnly(c.Host)
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("checkers/http: ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("checkers/http: ca_file: no PEM certificate in %s", c.CAFile)
		}
		tlsConf.RootCAs = pool
	}
	p := &probe{c: c, target: target, tlsConf: tlsConf, phases: map[string]time.Duration{}}
	if c.Login != nil || c.FollowRedirects {
		// So that the login POST, or the next hop, carries what the page
		// set (e.g. a CSRF or session cookie).
		p.jar, _ = cookiejar.New(nil)
	}
	return p, nil
}

// addPhase adds to a phase's time.
func (p *probe) addPhase(name string, d time.Duration) { p.phases[name] += d }

// tlsError marks errors of the handshake, so they are told from connection
// errors.
type tlsError struct{ err error }

func (e *tlsError) Error() string { return e.err.Error() }
func (e *tlsError) Unwrap() error { return e.err }

func (p *probe) run(ctx context.Context) *checkapi.Result {
	res := p.runChecks(ctx)
	for _, name := range phaseOrder {
		if d, ok := p.phases[name]; ok {
			res.AddPhase(name, d)
		}
	}
	if !p.notAfter.IsZero() {
		res.Observe("cert_days_left", daysLeft(p.notAfter))
	}
	return res
}

func daysLeft(t time.Time) float64 { return time.Until(t).Hours() / 24 }

func (p *probe) runChecks(ctx context.Context) *checkapi.Result {
	u := p.target
	var resp *http.Response
	var body []byte
	for hop := 0; ; hop++ {
		var err error
		resp, body, err = p.do(ctx, p.c.Method, u, nil, "")
		if err != nil {
			return p.transportFailure(ctx, err)
		}
		if p.c.ExpectStatus.contains(resp.StatusCode) || !isRedirect(resp.StatusCode) {
			break
		}
		loc, err := resp.Location()
		if err != nil {
			return checkapi.Failed(ReasonRedirect, "%s without a usable Location: %v", resp.Status, err)
		}
		if !p.c.FollowRedirects {
			return checkapi.Failed(ReasonRedirect, "%s to %s (expected %v; redirects are not followed)", resp.Status, loc, []int(p.c.ExpectStatus))
		}
		if !sameOrigin(u, loc) {
			return checkapi.Failed(ReasonRedirect, "%s to another origin: %s", resp.Status, loc)
		}
		if hop >= maxRedirects { // hop redirects followed so far
			return checkapi.Failed(ReasonRedirect, "more than %d redirects (last to %s)", maxRedirects, loc)
		}
		u = loc
	}
	if !p.c.ExpectStatus.contains(resp.StatusCode) {
		return checkapi.Failed(ReasonUnexpectedStatus, "%s from %s (expected %v)", resp.Status, u, []int(p.c.ExpectStatus))
	}
	if p.c.BodyContains != "" && !bytes.Contains(body, []byte(p.c.BodyContains)) {
		return checkapi.Failed(checkapi.ReasonUnexpectedResponse, "body of %s (%d bytes read) does not contain %q", u, len(body), p.c.BodyContains)
	}
	if re := p.c.bodyRegex; re != nil && !re.Match(body) {
		return checkapi.Failed(checkapi.ReasonUnexpectedResponse, "body of %s (%d bytes read) does not match %q", u, len(body), p.c.BodyRegex)
	}
	msg := fmt.Sprintf("%s, %d bytes", resp.Status, len(body))
	if p.c.Login != nil {
		if res := p.login(ctx); res != nil {
			return res
		}
		msg += ", login ok"
	}
	if !p.notAfter.IsZero() {
		left := daysLeft(p.notAfter)
		msg += fmt.Sprintf(", certificate valid %.1f more days", left)
		if warn := *p.c.CertWarnDays; warn > 0 && left < warn {
			return checkapi.Degraded(ReasonCertExpiring, "%s: below the %g-day warning", msg, warn)
		}
	}
	return checkapi.OK(msg)
}

// login posts the form and checks the answer; nil means it passed.
func (p *probe) login(ctx context.Context) *checkapi.Result {
	l := p.c.Login
	password, err := readPasswordFile(l.PasswordFile)
	if err != nil {
		return checkapi.Failed(ReasonLoginFailed, "%v", err)
	}
	u := p.target
	if l.URL != "" {
		ref, err := url.Parse(l.URL)
		if err != nil {
			return checkapi.Failed(ReasonLoginFailed, "login.url: %v", err)
		}
		u = p.target.ResolveReference(ref)
	}
	form := url.Values{}
	for k, v := range l.ExtraFields {
		form.Set(k, v)
	}
	form.Set(l.UsernameField, l.Username)
	form.Set(l.PasswordField, password)

	start := time.Now()
	resp, _, err := p.do(ctx, http.MethodPost, u, strings.NewReader(form.Encode()), "application/x-www-form-urlencoded")
	p.addPhase("login", time.Since(start))
	if err != nil {
		res := p.transportFailure(ctx, err)
		res.Message = "login: " + res.Message
		return res
	}
	loc := resp.Header.Get("Location")
	if !l.ExpectStatus.contains(resp.StatusCode) {
		return checkapi.Failed(ReasonLoginFailed, "login POST to %s: %s (expected %v), Location %q", u, resp.Status, []int(l.ExpectStatus), loc)
	}
	if l.ExpectLocation != "" && !strings.Contains(loc, l.ExpectLocation) {
		return checkapi.Failed(ReasonLoginFailed, "login POST to %s: Location %q does not contain %q", u, loc, l.ExpectLocation)
	}
	if l.ExpectCookie != "" {
		found := false
		for _, ck := range resp.Cookies() {
			if ck.Name == l.ExpectCookie && ck.Value != "" && ck.MaxAge >= 0 {
				found = true
				break
			}
		}
		if !found {
			return checkapi.Failed(ReasonLoginFailed, "login POST to %s: %s set no cookie %q", u, resp.Status, l.ExpectCookie)
		}
	}
	return nil
}

// do sends one request on a connection of its own (every check proves a
// fresh connection and handshake) and reads at most MaxBody bytes of the
// answer, adding the time of each phase to p.phases. Redirects are not
// followed here: runChecks follows them, same origin only, and counts them.
func (p *probe) do(ctx context.Context, method string, u *url.URL, body io.Reader, contentType string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, nil, err
	}
	if u.Host == p.target.Host && p.c.Host != "" {
		req.Host = p.c.Host
	}
	for k, v := range p.c.Headers {
		req.Header.Set(k, v)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("User-Agent", "ripcord-http/"+Version)
	req.Close = true
	if p.jar != nil {
		for _, ck := range p.jar.Cookies(u) {
			req.AddCookie(ck)
		}
	}
	resp, buf, err := p.exchange(ctx, req)
	if err != nil {
		// As net/http says it: "Get http://...: dial tcp ...".
		return nil, nil, &url.Error{Op: method[:1] + strings.ToLower(method[1:]), URL: u.String(), Err: err}
	}
	if p.jar != nil {
		if cks := resp.Cookies(); len(cks) > 0 {
			p.jar.SetCookies(u, cks)
		}
	}
	p.recordCert(resp.TLS)
	return resp, buf, nil
}

// exchange speaks HTTP/1.1 on a new connection itself rather than through
// http.Transport: in one goroutine and with a few allocations, where a
// transport per check starts its own dial, read and write goroutines. On
// the server it protects, that is half of what a check costs
// (docs/benchmarks.md).
func (p *probe) exchange(ctx context.Context, req *http.Request) (*http.Response, []byte, error) {
	addr := canonicalAddr(req.URL.Host, req.URL.Scheme)
	start := time.Now()
	// The context bounds the whole exchange (checkapi.Dial).
	raw, err := checkapi.Dial(ctx, "tcp", addr)
	p.addPhase("connect", time.Since(start))
	if err != nil {
		return nil, nil, err
	}
	defer raw.Close()
	conn := raw
	var state *tls.ConnectionState
	if req.URL.Scheme == "https" {
		tc := tls.Client(raw, p.tlsConfig(addr))
		start := time.Now()
		err := tc.HandshakeContext(ctx)
		p.addPhase("tls", time.Since(start))
		if err != nil {
			return nil, nil, &tlsError{err: err}
		}
		cs := tc.ConnectionState()
		conn, state = tc, &cs
	}
	if err := req.Write(conn); err != nil {
		return nil, nil, err
	}
	wrote := time.Now()
	br := bufio.NewReader(conn)
	_, err = br.Peek(1)
	firstByte := time.Now()
	p.span("headers", wrote, firstByte)
	if err != nil {
		return nil, nil, err
	}
	resp, err := readResponse(br, req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	resp.TLS = state
	buf, err := io.ReadAll(io.LimitReader(resp.Body, p.c.MaxBody))
	p.span("transfer", firstByte, time.Now())
	if err != nil {
		return nil, nil, err
	}
	return resp, buf, nil
}

// maxInformational bounds the 1xx answers (103 Early Hints, 100 Continue)
// read before the real one, as net/http does.
const maxInformational = 5

// readResponse reads the answer to req, skipping informational ones.
func readResponse(br *bufio.Reader, req *http.Request) (*http.Response, error) {
	for range maxInformational {
		resp, err := http.ReadResponse(br, req)
		if err != nil || resp.StatusCode < 100 || resp.StatusCode > 199 || resp.StatusCode == http.StatusSwitchingProtocols {
			return resp, err
		}
	}
	return nil, fmt.Errorf("more than %d informational (1xx) answers", maxInformational)
}

// tlsConfig is the TLS configuration for a connection to addr: the name
// overrides (host, server_name) belong to the target's origin only; a
// login URL on another host is verified under its own name.
func (p *probe) tlsConfig(addr string) *tls.Config {
	conf := p.tlsConf.Clone()
	if addr != canonicalAddr(p.target.Host, "https") || conf.ServerName == "" {
		conf.ServerName = hostOnly(addr)
	}
	return conf
}

func (p *probe) span(name string, from, to time.Time) {
	if to.After(from) {
		p.addPhase(name, to.Sub(from))
	}
}

// recordCert keeps the earliest expiry of the verified chain: an
// intermediate that expires first breaks the service just as well.
func (p *probe) recordCert(cs *tls.ConnectionState) {
	if cs == nil || len(cs.VerifiedChains) == 0 {
		return
	}
	for _, cert := range cs.VerifiedChains[0] {
		if p.notAfter.IsZero() || cert.NotAfter.Before(p.notAfter) {
			p.notAfter = cert.NotAfter
		}
	}
}

// transportFailure classifies an error that left no HTTP response.
func (p *probe) transportFailure(ctx context.Context, err error) *checkapi.Result {
	var tlsErr *tlsError
	var invalid x509.CertificateInvalidError
	var unknown x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	switch {
	case errors.As(err, &invalid):
		if invalid.Reason == x509.Expired {
			p.notAfter = invalid.Cert.NotAfter
			if time.Now().Before(invalid.Cert.NotBefore) {
				return checkapi.Failed(checkapi.ReasonTLSInvalid, "certificate not yet valid (valid from %s)", invalid.Cert.NotBefore.UTC().Format(time.RFC3339))
			}
			return checkapi.Failed(checkapi.ReasonTLSInvalid, "certificate expired on %s", invalid.Cert.NotAfter.UTC().Format(time.RFC3339))
		}
		return checkapi.Failed(checkapi.ReasonTLSInvalid, "certificate invalid: %v", invalid)
	case errors.As(err, &unknown):
		return checkapi.Failed(checkapi.ReasonTLSInvalid, "certificate untrusted: %v", unknown)
	case errors.As(err, &hostErr):
		return checkapi.Failed(checkapi.ReasonTLSInvalid, "hostname mismatch: %v", hostErr)
	}
	reason, known := checkapi.NetReason(ctx, err)
	switch {
	case reason == checkapi.ReasonTimeout, reason == checkapi.ReasonCanceled:
	case errors.As(err, &tlsErr):
		return checkapi.Failed(checkapi.ReasonTLSInvalid, "handshake failed: %v", tlsErr.err)
	case !known:
		// Connected, but the answer was garbage.
		reason = checkapi.ReasonUnexpectedResponse
	}
	return checkapi.Failed(reason, "%v", trimURLError(err))
}

// trimURLError drops the `Get "url": ` prefix net/http adds; the message
// names the URL where it matters.
func trimURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s %s: %w", ue.Op, ue.URL, ue.Err)
	}
	return err
}

func isRedirect(code int) bool {
	switch code {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

func sameOrigin(a, b *url.URL) bool {
	return a.Scheme == b.Scheme && canonicalAddr(a.Host, a.Scheme) == canonicalAddr(b.Host, b.Scheme)
}

// canonicalAddr is host:port with the scheme's default port filled in.
func canonicalAddr(host, scheme string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return strings.ToLower(host)
	}
	port := "80"
	if scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(strings.ToLower(strings.Trim(host, "[]")), port)
}

// hostOnly strips a port from host:port (and brackets from IPv6).
func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.Trim(hostport, "[]")
}
