// Package core decides, from check results, what each service should
// announce. It does no network I/O: checks run through a Runner and the
// outcome is a desired set of announcements.
package core

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/ripcord/ripcord/plugins/checkapi"
)

// State is a service's health as the routers should see it.
type State int

const (
	Starting State = iota // not every check has decided yet: announce as down
	Up                    // checks pass: announce the base metric
	Degraded              // checks pass with warnings, or some fail but enough pass
	Down                  // checks fail, or recovered but still in failback hold-down
	Drained               // an operator moved traffic away
)

var stateNames = [...]string{"starting", "up", "degraded", "down", "drained"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// CheckSpec is what the state machine needs to know about one check.
type CheckSpec struct {
	Name       string
	Rise, Fall int
}

// ServiceSpec is one service's policy.
type ServiceSpec struct {
	Name string
	// VIP (IPv4) and VIP6 (IPv6): one or both. They share the state, so
	// both are announced with the same metric.
	VIP             netip.Prefix
	VIP6            netip.Prefix
	Metric          int // base metric while up
	DegradedPenalty int // added while degraded
	DownMetric      int // while down or starting (16 = poison)
	// LastResortMetric (0: none) replaces DownMetric while down when every
	// peer check has decided and none sees a peer that serves.
	LastResortMetric int
	DrainMetric      int // while drained
	FailbackDelay    time.Duration
	Require          int // checks that must pass; 0 = all
	Checks           []CheckSpec
	Assist           *AssistSpec
	Relay            *RelaySpec // needs Assist: its peer checks say which peer is up
}

// AssistSpec is peer assistance: while this replica is up and a peer check
// is down for Delay, announce Metric instead of the base metric.
type AssistSpec struct {
	Metric int
	Delay  time.Duration
	Peers  []CheckSpec
}

// checkState counts consecutive results for rise/fall.
type checkState struct {
	spec      CheckSpec
	decided   bool // reached rise or fall at least once
	passing   bool
	okRun     int
	failRun   int
	last      *checkapi.Result
	lastAt    time.Time
	changedAt time.Time

	// warning is the degraded verdict, with rise/fall of its own: raised
	// after fall results in a row that are not ok, cleared after rise ok
	// results in a row, so one result does not flip the metric.
	warning           bool
	warnWhy           string // reason of the last result that was not ok
	cleanRun, warnRun int

	// recovering: the last passing result of a peer check reported its
	// peer in failback hold-down (PeerRecovering). A failure short of fall
	// leaves the check passing and keeps what the last pass said.
	recovering bool
}

func (c *checkState) observe(now time.Time, r *checkapi.Result) {
	c.last, c.lastAt = r, now
	pass := passes(r)
	if pass {
		c.okRun++
		c.failRun = 0
		c.recovering = r.Observations[PeerRecovering] == 1
	} else {
		c.failRun++
		c.okRun = 0
	}
	if r.Status == checkapi.StatusOK {
		c.cleanRun++
		c.warnRun = 0
	} else {
		c.warnRun++
		c.cleanRun = 0
		c.warnWhy = r.Reason
	}
	switch {
	case pass && (!c.decided || !c.passing) && c.okRun >= c.spec.Rise:
		c.decided, c.passing, c.changedAt = true, true, now
		c.warning = r.Status != checkapi.StatusOK // rise already counted these results
	case !pass && (!c.decided || c.passing) && c.failRun >= c.spec.Fall:
		c.decided, c.passing, c.changedAt = true, false, now
	case !c.warning && c.warnRun >= c.spec.Fall:
		c.warning = true
	case c.warning && c.cleanRun >= c.spec.Rise:
		c.warning = false
	}
}

// passes reports whether a result counts towards rise (degraded passes).
func passes(r *checkapi.Result) bool {
	return r.Status == checkapi.StatusOK || r.Status == checkapi.StatusDegraded
}

func (c *checkState) degraded() bool { return c.passing && c.warning }

// Service is the state machine of one service. It is not safe for concurrent
// use; the Engine serialises access.
type Service struct {
	spec   ServiceSpec
	checks []*checkState
	peers  []*checkState

	state   State
	reason  string
	since   time.Time
	drained bool

	// healthySince is when the checks last became healthy; used for the
	// failback hold-down after a Down.
	healthySince time.Time
	holdDown     bool // recovered from Down, waiting for FailbackDelay
	// cleanSince is when the checks last stopped being degraded; a
	// Degraded service waits FailbackDelay from then before Up (warnHold).
	cleanSince time.Time
	warnHold   bool

	peerDownSince time.Time // when a peer check last went down, zero if none is down
	transitions   int
	// metric is the metric as of the last Advance: time alone can change
	// Metric (assist delay), so a change is judged against this.
	metric int
	relay  relayState
}

// NewService starts a service in state Starting at now.
func NewService(spec ServiceSpec, now time.Time) *Service {
	s := &Service{spec: spec, state: Starting, reason: "waiting for first checks", since: now, metric: spec.DownMetric}
	for _, c := range spec.Checks {
		s.checks = append(s.checks, &checkState{spec: c})
	}
	if spec.Assist != nil {
		for _, c := range spec.Assist.Peers {
			s.peers = append(s.peers, &checkState{spec: c})
		}
	}
	s.relay.want = s.wantRelay() // Off, but named: the relay refuses nameless wants
	return s
}

// Observe records one result of the named check and re-evaluates.
// It reports whether the state or the announced metric changed.
func (s *Service) Observe(now time.Time, check string, r *checkapi.Result) bool {
	for _, c := range s.checks {
		if c.spec.Name == check {
			c.observe(now, r)
			return s.Advance(now)
		}
	}
	return false
}

// ObservePeer records one result of a peer check and re-evaluates.
func (s *Service) ObservePeer(now time.Time, check string, r *checkapi.Result) bool {
	for _, c := range s.peers {
		if c.spec.Name == check {
			c.observe(now, r)
			return s.Advance(now)
		}
	}
	return false
}

// SetDrained drains or undrains the service.
func (s *Service) SetDrained(now time.Time, on bool) bool {
	s.drained = on
	return s.Advance(now)
}

// health combines the checks: healthy, unhealthy, or not yet known.
func (s *Service) health() (known, healthy, warn bool, why string) {
	need := s.spec.Require
	if need == 0 {
		need = len(s.checks)
	}
	var pass, unknown int
	var failing []string
	for _, c := range s.checks {
		switch {
		case !c.decided:
			unknown++
		case c.passing:
			pass++
			if c.degraded() {
				warn = true
				failing = append(failing, c.spec.Name+": "+c.warnWhy)
			}
		default:
			warn = true
			failing = append(failing, c.spec.Name+": "+c.last.Reason)
		}
	}
	why = strings.Join(failing, ", ")
	switch {
	case pass >= need:
		return true, true, warn, why
	case pass+unknown < need:
		return true, false, warn, why
	}
	return false, false, warn, why
}

// Advance re-evaluates time-dependent rules (hold-down, assist delay) and the
// state. It reports whether the state or the announced metric changed.
func (s *Service) Advance(now time.Time) bool {
	oldState, oldMetric, oldReason := s.state, s.metric, s.reason
	known, healthy, warn, why := s.health()

	state, reason := s.state, s.reason
	switch {
	case !known:
		// Only possible before every check decided.
	case !healthy:
		state, reason = Down, why
		s.holdDown = true // a recovery must then prove itself for FailbackDelay
		s.healthySince = time.Time{}
		s.warnHold = false // the hold-down after Down covers it
	default:
		if s.healthySince.IsZero() {
			s.healthySince = now
		}
		if s.holdDown && now.Sub(s.healthySince) < s.spec.FailbackDelay {
			left := s.spec.FailbackDelay - now.Sub(s.healthySince)
			state, reason = Down, fmt.Sprintf("failback hold-down, %s left", left.Round(time.Second))
			break
		}
		s.holdDown = false
		state, reason = Up, "all checks pass"
		switch {
		case warn:
			state, reason = Degraded, why
			s.warnHold, s.cleanSince = true, time.Time{}
		case s.warnHold:
			// No longer degraded: the metric comes back only after the
			// checks have stayed clean for FailbackDelay.
			if s.cleanSince.IsZero() {
				s.cleanSince = now
			}
			if left := s.spec.FailbackDelay - now.Sub(s.cleanSince); left > 0 {
				state, reason = Degraded, fmt.Sprintf("degraded hold-down, %s left", left.Round(time.Second))
				break
			}
			s.warnHold = false
		}
	}
	if s.drained && state != Down && state != Starting {
		state, reason = Drained, "drained by operator"
	}
	s.updatePeers(now)
	state, reason = s.stepRelay(now, oldState, state, reason)
	if state != oldState {
		s.state, s.since = state, now
		s.transitions++
	}
	if s.lastResort() {
		reason += "; last resort: no peer serves"
	}
	s.reason = reason
	s.metric = s.Metric(now)
	oldWant := s.relay.want
	s.relay.want = s.wantRelay()
	wantChanged := s.relay.want.Mode != oldWant.Mode || s.relay.want.Peer != oldWant.Peer
	if wantChanged {
		s.relay.wantSince = now
	}
	return state != oldState || s.metric != oldMetric || reason != oldReason || wantChanged
}

func (s *Service) updatePeers(now time.Time) {
	down := slices.ContainsFunc(s.peers, func(c *checkState) bool { return c.decided && !c.passing })
	switch {
	case !down:
		s.peerDownSince = time.Time{}
	case s.peerDownSince.IsZero():
		s.peerDownSince = now
	}
}

// lastResort reports whether this down replica announces its last-resort
// route: every peer check has decided, and none sees a peer that serves (a
// peer waiting out its own failback hold-down does not serve yet; counting
// it would withdraw both replicas of a shared failure for that long).
func (s *Service) lastResort() bool {
	return s.spec.LastResortMetric > 0 && s.state == Down && len(s.peers) > 0 &&
		!slices.ContainsFunc(s.peers, func(c *checkState) bool { return !c.decided || (c.passing && !c.recovering) })
}

// assisting reports whether peer assistance is in force at now.
func (s *Service) assisting(now time.Time) bool {
	return s.spec.Assist != nil && s.state == Up && !s.peerDownSince.IsZero() &&
		now.Sub(s.peerDownSince) >= s.spec.Assist.Delay
}

// Metric is what the service should announce at now.
func (s *Service) Metric(now time.Time) int {
	if s.relay.phase == relayMoving && s.state == Down {
		// Keep a path here until the routers have heard the peer.
		return s.spec.Relay.Metric
	}
	switch s.state {
	case Up:
		if s.assisting(now) {
			return s.spec.Assist.Metric
		}
		return s.spec.Metric
	case Degraded:
		return min(s.spec.Metric+s.spec.DegradedPenalty, 16)
	case Drained:
		return s.spec.DrainMetric
	}
	if s.lastResort() {
		return s.spec.LastResortMetric
	}
	return s.spec.DownMetric
}

// NextWake returns when Advance should next be called because a timer rule
// may fire (hold-down end, assist delay end); zero if none is pending.
func (s *Service) NextWake(now time.Time) time.Time {
	var t time.Time
	if s.holdDown && s.state == Down && !s.healthySince.IsZero() {
		t = s.healthySince.Add(s.spec.FailbackDelay)
	}
	if s.warnHold && s.state == Degraded && !s.cleanSince.IsZero() {
		t = s.cleanSince.Add(s.spec.FailbackDelay)
	}
	if s.spec.Assist != nil && s.state == Up && !s.peerDownSince.IsZero() && !s.assisting(now) {
		a := s.peerDownSince.Add(s.spec.Assist.Delay)
		if t.IsZero() || a.Before(t) {
			t = a
		}
	}
	if r := s.relayWake(); !r.IsZero() && (t.IsZero() || r.Before(t)) {
		t = r
	}
	return t
}

// CheckStatus is one check's view for status output.
type CheckStatus struct {
	Name    string        `json:"name"`
	Peer    bool          `json:"peer,omitempty"`
	State   string        `json:"state"` // starting, pass, fail
	Status  string        `json:"status,omitempty"`
	Reason  string        `json:"reason,omitempty"`
	Message string        `json:"message,omitempty"`
	Latency time.Duration `json:"latency_ns,omitempty"`
	At      time.Time     `json:"at,omitzero"`
	// Observations are the checker's numbers, e.g. replication lag.
	Observations map[string]float64 `json:"observations,omitempty"`
}

// Status is a snapshot of the service.
type Status struct {
	Name      string    `json:"name"`
	VIP       string    `json:"vip,omitempty"`
	VIP6      string    `json:"vip6,omitempty"`
	State     string    `json:"state"`
	Reason    string    `json:"reason"`
	Since     time.Time `json:"since"`
	Metric    int       `json:"metric"`
	Assisting bool      `json:"assisting,omitempty"`
	// Recovering: down only because of the failback hold-down; its checks
	// pass and it will announce again when the hold-down ends.
	Recovering  bool          `json:"recovering,omitempty"`
	Drained     bool          `json:"drained,omitempty"`
	Transitions int           `json:"transitions"`
	Checks      []CheckStatus `json:"checks"`
	Relay       *RelayStatus  `json:"relay,omitempty"`
}

// VIPs are the service's valid addresses, IPv4 first.
func (sp *ServiceSpec) VIPs() []netip.Prefix {
	var out []netip.Prefix
	for _, v := range []netip.Prefix{sp.VIP, sp.VIP6} {
		if v.IsValid() {
			out = append(out, v)
		}
	}
	return out
}

// prefixString is p, or "" for the zero Prefix.
func prefixString(p netip.Prefix) string {
	if !p.IsValid() {
		return ""
	}
	return p.String()
}

// Status returns a snapshot for the control API.
func (s *Service) Status(now time.Time) Status {
	st := Status{
		Name: s.spec.Name, VIP: prefixString(s.spec.VIP), VIP6: prefixString(s.spec.VIP6), State: s.state.String(), Reason: s.reason,
		Since: s.since, Metric: s.Metric(now), Assisting: s.assisting(now), Drained: s.drained,
		Recovering:  s.state == Down && (s.holdDown && !s.healthySince.IsZero() || s.relay.held),
		Transitions: s.transitions, Relay: s.relayStatus(),
	}
	add := func(cs []*checkState, peer bool) {
		for _, c := range cs {
			x := CheckStatus{Name: c.spec.Name, Peer: peer, State: "starting"}
			if c.decided {
				x.State = map[bool]string{true: "pass", false: "fail"}[c.passing]
			}
			if r := c.last; r != nil {
				x.Status, x.Reason, x.Message, x.At = r.Status.String(), r.Reason, r.Message, c.lastAt
				x.Observations = r.Observations
				for _, p := range r.Phases {
					x.Latency += p.Duration
				}
			}
			st.Checks = append(st.Checks, x)
		}
	}
	add(s.checks, false)
	add(s.peers, true)
	return st
}

// Changing reports whether a check is rising or falling: its last result
// disagrees with what it counts as (passing or failing, and while passing,
// degraded or not), so the engine re-checks it at its fast interval.
func (s *Service) Changing(check string, peer bool) bool {
	cs := s.checks
	if peer {
		cs = s.peers
	}
	for _, c := range cs {
		if c.spec.Name == check && c.last != nil {
			return !c.decided || passes(c.last) != c.passing ||
				c.passing && (c.last.Status != checkapi.StatusOK) != c.warning
		}
	}
	return false
}

// State returns the current state.
func (s *Service) State() State { return s.state }
