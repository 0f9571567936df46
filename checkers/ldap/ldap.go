// Package ldap checks an LDAP server the way its clients use it: connect
// (ldap://, ldaps:// or StartTLS), simple bind, search, and optionally compare
// the replica's contextCSN with a reference server's to catch a replica that
// answers but no longer replicates.
package ldap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/ripcord/ripcord/plugins/checkapi"
)

// Name is the checker's name in configuration.
const Name = "ldap"

// Version is the checker's version.
const Version = "0.1.0"

// Reasons of this checker besides the shared ones in sdk.
const (
	ReasonUnwilling    = "unwilling"      // result 53, e.g. olcRestrict: read
	ReasonNoSuchObject = "no_such_object" // result 32, the search base is gone
	ReasonNoEntry      = "no_entry"       // fewer than min_entries, or the expected value is missing
	ReasonStaleReplica = "stale_replica"  // replication lag above max_lag, or a SID never synced
	// ReasonFreshnessUnknown: the reference cannot be read, and what was
	// last read from it does not show the replica behind.
	ReasonFreshnessUnknown = "freshness_unknown"
)

// DefaultTimeout bounds a check whose context has no deadline.
const DefaultTimeout = 10 * time.Second

// Phase names.
const (
	PhaseConnect   = "connect"
	PhaseTLS       = "tls"
	PhaseBind      = "bind"
	PhaseSearch    = "search"
	PhaseReference = "reference"
)

// Checker is the LDAP checker. Its state is what it last read from each
// reference (memory), and its heartbeat writes.
type Checker struct {
	memory *memory

	mu    sync.Mutex
	beats map[string]*beat // reference URL + heartbeat DN
}

// beat is the state of one heartbeat entry.
type beat struct {
	at      time.Time // last write (or attempt)
	refused string    // why the server refused the last write: a configuration problem
}

// New returns the LDAP checker. It remembers reference readings in
// checkapi.StateDir() when the daemon gives it one.
func New() checkapi.Checker { return newChecker(checkapi.StateDir()) }

func newChecker(stateDir string) *Checker {
	return &Checker{memory: newMemory(stateDir), beats: map[string]*beat{}}
}

// Describe names the checker and documents its settings.
func (c *Checker) Describe() checkapi.Description {
	return checkapi.Description{
		Name:     Name,
		Version:  Version,
		Summary:  "bind and search an LDAP server; optionally compare its contextCSN with a reference",
		Settings: slices.Clone(fields),
	}
}

// Configure validates settings.
func (c *Checker) Configure(_ context.Context, settings checkapi.Settings) ([]checkapi.FieldError, error) {
	_, errs := ParseConfig(settings)
	return errs, nil
}

// ValidateTarget implements checkapi.TargetValidator: an ldap:// or ldaps://
// URL of a host, without base, scope or filter.
func (c *Checker) ValidateTarget(s string) error {
	_, err := parseTarget(s)
	return err
}

// Check probes req.Target once within ctx's deadline.
func (c *Checker) Check(ctx context.Context, req *checkapi.Request) (*checkapi.Result, error) {
	cfg, errs := ParseConfig(req.Settings)
	if len(errs) > 0 {
		return nil, fmt.Errorf("checkers/ldap: invalid %w", checkapi.SettingsError(errs))
	}
	target, err := parseTarget(req.Target)
	if err != nil {
		return nil, fmt.Errorf("checkers/ldap: target: %w", err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	p := &probe{ctx: ctx, cfg: cfg, res: &checkapi.Result{}}
	return p.timer.Done(p.run(c, target))
}

// target is a parsed LDAP URL.
type target struct {
	url      string
	ldaps    bool
	host     string
	hostPort string
}

func parseTarget(s string) (target, error) {
	u, err := url.Parse(s)
	if err != nil {
		return target{}, err
	}
	t := target{url: s, host: u.Hostname()}
	port := u.Port()
	switch strings.ToLower(u.Scheme) {
	case "ldap":
		if port == "" {
			port = "389"
		}
	case "ldaps":
		t.ldaps = true
		if port == "" {
			port = "636"
		}
	default:
		return target{}, fmt.Errorf("%q: scheme must be ldap or ldaps", s)
	}
	if t.host == "" {
		return target{}, fmt.Errorf("%q: no host", s)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return target{}, fmt.Errorf("%q: base, scope and filter are settings, not URL parts", s)
	}
	t.hostPort = net.JoinHostPort(t.host, port)
	return t, nil
}

// failure is what went wrong with the service, as reason and message.
type failure struct {
	reason string
	msg    string
}

// probe is one run of Check.
type probe struct {
	ctx   context.Context
	cfg   Config
	res   *checkapi.Result
	timer checkapi.Timer // the phases of res
}

func (p *probe) run(c *Checker, t target) (*checkapi.Result, error) {
	s, f, err := p.open(t, p.cfg.ServerName, p.cfg.BindDN, p.cfg.PasswordFile, true)
	if err != nil {
		return nil, err
	}
	if f != nil {
		return p.fail(f), nil
	}
	defer s.close()

	search := p.timer.Start(PhaseSearch)
	n, f := p.search(s)
	search.End()
	if f != nil {
		return p.fail(f), nil
	}
	p.res.Observe("entries", float64(n))
	p.res.Status, p.res.Reason = checkapi.StatusOK, checkapi.ReasonOK
	p.res.Message = fmt.Sprintf("%d entries for %s under %q", n, p.cfg.Filter, p.cfg.Base)

	if p.cfg.Reference != "" {
		reference := p.timer.Start(PhaseReference)
		err := p.freshness(c, t, s)
		reference.End()
		if err != nil {
			return nil, err
		}
	}
	return p.res, nil
}

func (p *probe) fail(f *failure) *checkapi.Result {
	p.res.Status, p.res.Reason, p.res.Message = checkapi.StatusFailed, f.reason, f.msg
	return p.res
}

// session is one LDAP connection bounded by the check's deadline.
type session struct {
	tcp  net.Conn // tied to the check's ctx (checkapi.Dial)
	conn *goldap.Conn
}

func (s *session) close() {
	// Closing the socket first makes go-ldap's Close return at once.
	s.tcp.Close()
	s.conn.Close()
}

// open connects, secures and binds. go-ldap's timeouts are per step, so the
// one deadline of the check is enforced on the socket itself: a read/write
// deadline, and closing it when ctx ends early.
func (p *probe) open(t target, serverName, bindDN, passwordFile string, timed bool) (*session, *failure, error) {
	timer := &p.timer
	if !timed {
		timer = &checkapi.Timer{} // the reference's steps count as one phase, PhaseReference
	}
	tlsConfig, err := p.tlsConfig(t, serverName)
	if err != nil {
		return nil, nil, err
	}
	deadline, _ := p.ctx.Deadline()

	connect := timer.Start(PhaseConnect)
	tcp, err := checkapi.Dial(p.ctx, "tcp", t.hostPort)
	connect.End()
	if err != nil {
		return nil, p.classify(PhaseConnect, t.url, err), nil
	}
	s := &session{tcp: tcp}

	var conn net.Conn = tcp
	if t.ldaps {
		handshake := timer.Start(PhaseTLS)
		tc := tls.Client(tcp, tlsConfig)
		err := tc.HandshakeContext(p.ctx)
		handshake.End()
		if err != nil {
			tcp.Close()
			return nil, p.classify(PhaseTLS, t.url, err), nil
		}
		conn = tc
	}
	s.conn = goldap.NewConn(conn, t.ldaps)
	s.conn.Start()
	s.conn.SetTimeout(time.Until(deadline))

	if p.cfg.StartTLS && !t.ldaps {
		handshake := timer.Start(PhaseTLS)
		err := s.conn.StartTLS(tlsConfig)
		handshake.End()
		if err != nil {
			s.close()
			return nil, p.classify(PhaseTLS, t.url, err), nil
		}
	}
	if bindDN != "" {
		password, err := readPassword(passwordFile)
		if err != nil {
			s.close()
			return nil, nil, fmt.Errorf("checkers/ldap: password: %w", err)
		}
		bind := timer.Start(PhaseBind)
		err = s.conn.Bind(bindDN, password)
		bind.End()
		if err != nil {
			s.close()
			return nil, p.classify(PhaseBind, t.url, err), nil
		}
	}
	return s, nil, nil
}

func (p *probe) tlsConfig(t target, serverName string) (*tls.Config, error) {
	cfg := &tls.Config{ServerName: t.host, MinVersion: tls.VersionTLS12}
	if serverName != "" {
		cfg.ServerName = serverName
	}
	if p.cfg.CAFile != "" {
		pool, err := caPool(p.cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("checkers/ldap: ca_file: %w", err)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// expired says whether the check's deadline has passed or it was cancelled:
// every error after that is the deadline's doing.
func (p *probe) expired() bool {
	if p.ctx.Err() != nil {
		return true
	}
	deadline, _ := p.ctx.Deadline()
	return !time.Now().Before(deadline)
}

func (p *probe) classify(phase, what string, err error) *failure {
	f := &failure{msg: fmt.Sprintf("%s %s: %v", phase, what, err)}
	var ldapErr *goldap.Error
	reason, _ := checkapi.NetReason(p.ctx, err)
	switch {
	case reason == checkapi.ReasonCanceled:
		f.reason = reason
	case p.expired() || reason == checkapi.ReasonTimeout:
		f.reason = checkapi.ReasonTimeout
		f.msg = fmt.Sprintf("%s %s: no answer within the check's deadline: %v", phase, what, err)
	case reason == checkapi.ReasonRefused && !errors.As(err, &ldapErr):
		f.reason = checkapi.ReasonRefused
	case phase == PhaseTLS:
		f.reason = checkapi.ReasonTLSInvalid
	case errors.As(err, &ldapErr):
		switch ldapErr.ResultCode {
		case goldap.LDAPResultInvalidCredentials:
			f.reason = checkapi.ReasonAuthFailed
		case goldap.LDAPResultBusy, goldap.LDAPResultUnavailable, goldap.ErrorNetwork:
			f.reason = checkapi.ReasonUnavailable
		case goldap.LDAPResultUnwillingToPerform:
			f.reason = ReasonUnwilling
		case goldap.LDAPResultNoSuchObject:
			f.reason = ReasonNoSuchObject
		default:
			f.reason = checkapi.ReasonUnexpectedResponse
		}
	case phase == PhaseConnect:
		// No route, unknown host: nothing answers LDAP there, as for a
		// refused connection (the http checker says the same).
		f.reason = checkapi.ReasonRefused
	default:
		f.reason = checkapi.ReasonUnexpectedResponse
	}
	return f
}

var scopes = map[string]int{"base": goldap.ScopeBaseObject, "one": goldap.ScopeSingleLevel, "sub": goldap.ScopeWholeSubtree}

// search runs the configured search and checks its entries.
func (p *probe) search(s *session) (int, *failure) {
	cfg := p.cfg
	attrs := slices.Clone(cfg.Attributes)
	if cfg.ExpectAttribute != "" && !slices.ContainsFunc(attrs, func(a string) bool { return strings.EqualFold(a, cfg.ExpectAttribute) }) {
		attrs = append(attrs, cfg.ExpectAttribute)
	}
	if len(attrs) == 0 {
		attrs = []string{"1.1"} // RFC 4511: no attributes
	}
	// Only count entries: no need to fetch more than min_entries of them.
	sizeLimit := 0
	if cfg.ExpectAttribute == "" {
		sizeLimit = cfg.MinEntries
	}
	req := goldap.NewSearchRequest(cfg.Base, scopes[cfg.Scope], goldap.NeverDerefAliases, sizeLimit,
		p.timeLimit(), false, cfg.Filter, attrs, nil)
	res, err := s.conn.Search(req)
	if err != nil && !(goldap.IsErrorWithCode(err, goldap.LDAPResultSizeLimitExceeded) && res != nil) {
		return 0, p.classify(PhaseSearch, fmt.Sprintf("%s under %q", cfg.Filter, cfg.Base), err)
	}
	n := len(res.Entries)
	if n < cfg.MinEntries {
		return n, &failure{reason: ReasonNoEntry,
			msg: fmt.Sprintf("search %s under %q: %d entries, want at least %d", cfg.Filter, cfg.Base, n, cfg.MinEntries)}
	}
	if cfg.ExpectAttribute != "" && !hasValue(res.Entries, cfg.ExpectAttribute, cfg.ExpectValue) {
		want := "attribute " + cfg.ExpectAttribute
		if cfg.ExpectValue != "" {
			want += fmt.Sprintf(" = %q", cfg.ExpectValue)
		}
		return n, &failure{reason: ReasonNoEntry,
			msg: fmt.Sprintf("search %s under %q: %d entries, none with %s", cfg.Filter, cfg.Base, n, want)}
	}
	return n, nil
}

// timeLimit is the server-side time limit in whole seconds (0 = none).
func (p *probe) timeLimit() int {
	deadline, _ := p.ctx.Deadline()
	return max(1, int(math.Ceil(time.Until(deadline).Seconds())))
}

func hasValue(entries []*goldap.Entry, attr, value string) bool {
	for _, e := range entries {
		values := e.GetEqualFoldAttributeValues(attr)
		if value == "" && len(values) > 0 || value != "" && slices.Contains(values, value) {
			return true
		}
	}
	return false
}

// freshness compares the replica's contextCSN with the reference's. The
// replica is read first so that a change landing between the two reads makes
// the reference newer, never the replica. A reference that cannot be read
// is judged by what was last read from it (unknown).
func (p *probe) freshness(c *Checker, t target, replica *session) error {
	nc, f := p.namingContext(replica)
	if f != nil {
		p.fail(f)
		return nil
	}
	repValues, f := p.readContextCSN(replica, nc, "replica")
	if f != nil {
		p.fail(f)
		return nil
	}
	repCSNs, err := ParseContextCSNs(repValues)
	if err != nil {
		p.fail(&failure{reason: checkapi.ReasonUnexpectedResponse, msg: "replica contextCSN: " + err.Error()})
		return nil
	}

	ref, _ := parseTarget(p.cfg.Reference) // validated
	read := reading{Target: t.url, Reference: ref.url, Context: nc}
	rs, refValues, refCSNs, f, err := p.readReference(ref, nc)
	if err != nil {
		return err
	}
	if f != nil {
		p.res.Observe("reference_up", 0)
		p.unknown(c, read.key(), repCSNs, ref, f.msg)
		if checkapi.IsMisconfiguration(f.reason) && p.res.Reason == ReasonFreshnessUnknown {
			// The reference answers but refuses the check's credentials or
			// its certificate fails: a setting to fix, whatever the lag.
			p.res.Reason = checkapi.ReasonMisconfigured
			settings := "reference_bind_dn, reference_password_file"
			if f.reason == checkapi.ReasonTLSInvalid {
				settings = "ca_file, reference_server_name"
			}
			p.res.Message += fmt.Sprintf(" (%s: check %s)", f.reason, settings)
		}
		return nil
	}
	defer rs.close()
	p.res.Observe("reference_up", 1)
	read.At, read.CSNs = time.Now(), refValues
	memErr := c.memory.remember(read, time.Duration(p.cfg.MaxLag)/10)

	if fr := CompareCSNs(repCSNs, refCSNs); !p.judge(fr, ref, "") {
		p.res.Message += fmt.Sprintf("; replication lag %s", fr.Lag.Round(time.Millisecond))
	}
	if memErr != nil {
		p.res.Message += "; reading not saved (a restart forgets it): " + memErr.Error()
	}
	if p.cfg.HeartbeatDN != "" {
		p.heartbeat(c, rs, ref, refCSNs)
	}
	return nil
}

// readReference connects to the reference and reads its contextCSN of nc.
// A failure means the reference cannot be read; the session is open only
// when there is none.
func (p *probe) readReference(ref target, nc string) (*session, []string, map[int]CSN, *failure, error) {
	bindDN, passwordFile := p.cfg.ReferenceBindDN, p.cfg.ReferencePasswordFile
	if bindDN == "" {
		bindDN, passwordFile = p.cfg.BindDN, p.cfg.PasswordFile
	}
	rs, f, err := p.open(ref, p.cfg.ReferenceServerName, bindDN, passwordFile, false)
	if err != nil || f != nil {
		return nil, nil, nil, f, err
	}
	values, f := p.readContextCSN(rs, nc, "reference")
	if f != nil {
		rs.close()
		return nil, nil, nil, f, nil
	}
	csns, err := ParseContextCSNs(values)
	if err != nil || len(csns) == 0 {
		rs.close()
		return nil, nil, nil, &failure{reason: checkapi.ReasonUnexpectedResponse,
			msg: fmt.Sprintf("reference %s contextCSN %q: %v", ref.url, values, err)}, nil
	}
	return rs, values, csns, nil, nil
}

// judge records the comparison and makes the result stale_replica when the
// replica is behind by more than max_lag or misses a SID; suffix ends the
// message. It reports whether it did.
func (p *probe) judge(fr Freshness, ref target, suffix string) bool {
	p.res.Observe("replication_lag_seconds", fr.Lag.Seconds())
	p.res.Observe("replication_missing_sids", float64(len(fr.Missing)))
	switch {
	case len(fr.Missing) > 0:
		p.stale("replica has never received changes of SID %s from reference %s%s", sidList(fr.Missing), ref.url, suffix)
	case fr.Lag > time.Duration(p.cfg.MaxLag):
		p.stale("replica is %s behind reference %s for SID %03x (max_lag %s)%s",
			fr.Lag.Round(time.Millisecond), ref.url, fr.LagSID, time.Duration(p.cfg.MaxLag), suffix)
	default:
		return false
	}
	return true
}

// unknown judges a replica whose reference cannot be read by the last
// reading of the reference (memory): a replica behind that reading stays
// stale_replica until it has caught up with it. Otherwise the replica is
// at most (its lag behind that reading + the reading's age) behind: within
// max_lag that is ok, beyond it degraded, never failed whatever lag_action
// says, so a dead provider does not withdraw the replicas.
func (p *probe) unknown(c *Checker, key string, repCSNs map[int]CSN, ref target, why string) {
	r, ok := c.memory.recall(key)
	var refCSNs map[int]CSN
	if ok {
		refCSNs, _ = ParseContextCSNs(r.CSNs) // parsed before they were kept
	}
	if len(refCSNs) == 0 {
		p.res.Status, p.res.Reason = checkapi.StatusDegraded, ReasonFreshnessUnknown
		p.res.Message = fmt.Sprintf("freshness unknown: reference %s never read: %s", ref.url, why)
		return
	}
	age := time.Since(r.At)
	p.res.Observe("reference_age_seconds", age.Seconds())
	fr := CompareCSNs(repCSNs, refCSNs)
	if p.judge(fr, ref, fmt.Sprintf(", as last read %s ago; now unreadable: %s", age.Round(time.Millisecond), why)) {
		return
	}
	maxLag := time.Duration(p.cfg.MaxLag)
	bound := fr.Lag + age
	p.res.Reason = ReasonFreshnessUnknown
	if bound <= maxLag {
		p.res.Message += fmt.Sprintf("; freshness unknown: reference %s unreadable (%s); %s behind it as last read %s ago, so within max_lag for %s more",
			ref.url, why, fr.Lag.Round(time.Millisecond), age.Round(time.Millisecond), (maxLag - bound).Round(time.Millisecond))
		return
	}
	p.res.Status = checkapi.StatusDegraded
	p.res.Message = fmt.Sprintf("freshness unknown: reference %s last read %s ago, unreadable now (%s); the replica may be up to %s behind (max_lag %s)",
		ref.url, age.Round(time.Millisecond), why, bound.Round(time.Millisecond), maxLag)
}

func (p *probe) stale(format string, args ...any) {
	p.res.Status = checkapi.StatusDegraded
	if p.cfg.LagAction == LagFailed {
		p.res.Status = checkapi.StatusFailed
	}
	p.res.Reason = ReasonStaleReplica
	p.res.Message = fmt.Sprintf(format, args...)
}

func sidList(sids []int) string {
	s := make([]string, len(sids))
	for i, sid := range sids {
		s[i] = fmt.Sprintf("%03x", sid)
	}
	return strings.Join(s, ",")
}

// heartbeat writes heartbeat_dn on the reference when the reference has not
// changed for heartbeat_interval (its newest CSN is that old) and this
// checker has not written it for as long; also at the first check of this
// process, to learn early that the write works. Without writes an idle
// provider's contextCSN stands still and a replica that stopped replicating
// looks in sync; with them the reference's CSN is never older than the
// interval, so a dead replica's lag grows with time. A write the server
// refuses (no such entry, no access) is a configuration problem: reason
// misconfigured, retried at every check until it works. Other failures only
// add to the message; the replica itself is not at fault either way.
func (p *probe) heartbeat(c *Checker, rs *session, ref target, refCSNs map[int]CSN) {
	interval := time.Duration(p.cfg.HeartbeatInterval)
	var newest time.Time
	for _, csn := range refCSNs {
		if csn.Time.After(newest) {
			newest = csn.Time
		}
	}
	now := time.Now()
	key := ref.url + "\x00" + p.cfg.HeartbeatDN
	c.mu.Lock()
	b := c.beats[key]
	if b == nil {
		b = &beat{}
		c.beats[key] = b
	}
	due := b.refused != "" || b.at.IsZero() || now.Sub(newest) >= interval && now.Sub(b.at) >= interval
	if due {
		b.at = now // claimed before writing: concurrent checks write once
	}
	c.mu.Unlock()
	if !due {
		return
	}
	m := goldap.NewModifyRequest(p.cfg.HeartbeatDN, nil)
	m.Replace(p.cfg.HeartbeatAttribute, []string{"ripcord heartbeat " + now.UTC().Format(time.RFC3339Nano)})
	err := rs.conn.Modify(m)
	var refused string
	var le *goldap.Error
	switch {
	case err == nil:
		p.res.Observe("heartbeat_written", 1)
	case errors.As(err, &le) && le.ResultCode < goldap.ErrorNetwork && !p.expired():
		refused = fmt.Sprintf("heartbeat write of %s on reference %s refused: %v", p.cfg.HeartbeatDN, ref.url, err)
		if le.ResultCode == goldap.LDAPResultNoSuchObject {
			refused = fmt.Sprintf("heartbeat_dn %s does not exist on reference %s: create it (checkers/ldap README)",
				p.cfg.HeartbeatDN, ref.url)
		}
		p.res.Message += "; " + refused
		if p.res.Status == checkapi.StatusOK && p.res.Reason == checkapi.ReasonOK {
			p.res.Reason = checkapi.ReasonMisconfigured
		}
	default:
		p.res.Message += fmt.Sprintf("; heartbeat write on %s failed: %v", ref.url, err)
		return // says nothing about the configuration
	}
	c.mu.Lock()
	b.refused = refused
	c.mu.Unlock()
}

// namingContext finds the database suffix that holds base: contextCSN lives
// on the suffix entry, not on base.
func (p *probe) namingContext(s *session) (string, *failure) {
	res, err := s.conn.Search(goldap.NewSearchRequest("", goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0,
		p.timeLimit(), false, "(objectClass=*)", []string{"namingContexts"}, nil))
	if err != nil {
		return "", p.classify(PhaseReference, "root DSE namingContexts", err)
	}
	if len(res.Entries) != 1 {
		return "", &failure{reason: checkapi.ReasonUnexpectedResponse, msg: fmt.Sprintf("root DSE: %d entries", len(res.Entries))}
	}
	contexts := res.Entries[0].GetAttributeValues("namingContexts")
	base, err := goldap.ParseDN(p.cfg.Base)
	if err != nil {
		return "", &failure{reason: checkapi.ReasonUnexpectedResponse, msg: err.Error()}
	}
	best, bestLen := "", -1
	for _, nc := range contexts {
		dn, err := goldap.ParseDN(nc)
		if err != nil {
			continue
		}
		if (dn.EqualFold(base) || dn.AncestorOfFold(base)) && len(dn.RDNs) > bestLen {
			best, bestLen = nc, len(dn.RDNs)
		}
	}
	if bestLen < 0 {
		if p.cfg.Base == "" && len(contexts) == 1 {
			return contexts[0], nil
		}
		return "", &failure{reason: checkapi.ReasonUnexpectedResponse,
			msg: fmt.Sprintf("no naming context of %q holds base %q", contexts, p.cfg.Base)}
	}
	return best, nil
}

func (p *probe) readContextCSN(s *session, nc, side string) ([]string, *failure) {
	res, err := s.conn.Search(goldap.NewSearchRequest(nc, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0,
		p.timeLimit(), false, "(objectClass=*)", []string{"contextCSN"}, nil))
	if err != nil {
		return nil, p.classify(PhaseReference, side+" contextCSN of "+nc, err)
	}
	if len(res.Entries) != 1 {
		return nil, &failure{reason: checkapi.ReasonUnexpectedResponse,
			msg: fmt.Sprintf("%s contextCSN of %s: %d entries", side, nc, len(res.Entries))}
	}
	return res.Entries[0].GetAttributeValues("contextCSN"), nil
}
