package core

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ripcord/ripcord/plugins/checkapi"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// step is one event at a time offset, followed by what must hold after it.
type step struct {
	at     time.Duration
	check  string          // check name; "" = just Advance; "drain"/"undrain"
	peer   bool            // result of a peer check
	status checkapi.Status // result status
	reason string          // result reason
	// recovering: the peer check reports its peer in failback hold-down
	recovering bool

	state  State
	metric int
	why    string // substring of the service reason, optional
}

func ok(at time.Duration, check string, st State, m int) step {
	return step{at: at, check: check, status: checkapi.StatusOK, reason: "ok", state: st, metric: m}
}
func fail(at time.Duration, check string, st State, m int) step {
	return step{at: at, check: check, status: checkapi.StatusFailed, reason: "refused", state: st, metric: m}
}
func deg(at time.Duration, check string, st State, m int) step {
	return step{at: at, check: check, status: checkapi.StatusDegraded, reason: "stale_replica", state: st, metric: m}
}
func tick(at time.Duration, st State, m int) step { return step{at: at, state: st, metric: m} }

func spec(mod func(*ServiceSpec)) ServiceSpec {
	s := ServiceSpec{
		Name: "ldap", VIP: netip.MustParsePrefix("192.0.2.10/32"),
		Metric: 1, DegradedPenalty: 2, DownMetric: 16, DrainMetric: 15,
		FailbackDelay: 10 * time.Second,
		Checks:        []CheckSpec{{Name: "a", Rise: 2, Fall: 2}},
	}
	if mod != nil {
		mod(&s)
	}
	return s
}

func peerOK(at time.Duration, st State, m int) step {
	return step{at: at, check: "sa", peer: true, status: checkapi.StatusOK, state: st, metric: m}
}
func peerFail(at time.Duration, st State, m int) step {
	return step{at: at, check: "sa", peer: true, status: checkapi.StatusFailed, reason: "timeout", state: st, metric: m}
}

func TestServiceTransitions(t *testing.T) {
	s := time.Second
	withLastResort := func(m int) ServiceSpec {
		return spec(func(sp *ServiceSpec) {
			sp.Metric, sp.LastResortMetric = 3, m
			sp.Checks[0].Rise, sp.Checks[0].Fall = 1, 1
			sp.Assist = &AssistSpec{Metric: 2, Peers: []CheckSpec{{Name: "sa", Rise: 1, Fall: 1}}}
		})
	}
	twoChecks := func(sp *ServiceSpec) {
		sp.Checks = []CheckSpec{{Name: "a", Rise: 1, Fall: 1}, {Name: "b", Rise: 1, Fall: 1}}
	}
	tests := []struct {
		name  string
		spec  ServiceSpec
		steps []step
	}{
		{"starting announces down metric until rise", spec(nil), []step{
			tick(0, Starting, 16),
			ok(1*s, "a", Starting, 16),
			ok(2*s, "a", Up, 1),
		}},
		{"starting to down after fall", spec(nil), []step{
			fail(1*s, "a", Starting, 16),
			fail(2*s, "a", Down, 16),
		}},
		{"up to down only after fall consecutive failures", spec(nil), []step{
			ok(1*s, "a", Starting, 16), ok(2*s, "a", Up, 1),
			fail(3*s, "a", Up, 1),
			ok(4*s, "a", Up, 1), // a success resets the failure run
			fail(5*s, "a", Up, 1),
			fail(6*s, "a", Down, 16),
		}},
		{"failback waits for the hold-down", spec(nil), []step{
			ok(1*s, "a", Starting, 16), ok(2*s, "a", Up, 1),
			fail(3*s, "a", Up, 1), fail(4*s, "a", Down, 16),
			ok(5*s, "a", Down, 16),
			{at: 6 * s, check: "a", status: checkapi.StatusOK, reason: "ok", state: Down, metric: 16, why: "failback hold-down"},
			tick(15*s, Down, 16),
			tick(16*s, Up, 1), // healthy since 6 s (rise 2) + 10 s
		}},
		{"failure during hold-down restarts it", spec(nil), []step{
			ok(1*s, "a", Starting, 16), ok(2*s, "a", Up, 1),
			fail(3*s, "a", Up, 1), fail(4*s, "a", Down, 16),
			ok(5*s, "a", Down, 16), ok(6*s, "a", Down, 16),
			fail(8*s, "a", Down, 16), fail(9*s, "a", Down, 16),
			ok(10*s, "a", Down, 16), ok(11*s, "a", Down, 16),
			tick(17*s, Down, 16), // would have been up at 16 s without the relapse
			tick(21*s, Up, 1),
		}},
		{"a flapping check never restores priority", spec(func(sp *ServiceSpec) {
			sp.Checks[0].Rise, sp.Checks[0].Fall = 1, 1
		}), []step{
			ok(0, "a", Up, 1),
			fail(2*s, "a", Down, 16), ok(4*s, "a", Down, 16), fail(6*s, "a", Down, 16),
			ok(8*s, "a", Down, 16), fail(10*s, "a", Down, 16), ok(12*s, "a", Down, 16),
			tick(21*s, Down, 16), tick(22*s, Up, 1),
		}},
		{"degraded takes fall results in a row", spec(nil), []step{
			ok(1*s, "a", Starting, 16), ok(2*s, "a", Up, 1),
			deg(3*s, "a", Up, 1),
			ok(4*s, "a", Up, 1), // an ok result resets the run
			deg(5*s, "a", Up, 1),
			{at: 6 * s, check: "a", status: checkapi.StatusDegraded, reason: "stale_replica", state: Degraded, metric: 3, why: "a: stale_replica"},
		}},
		{"degraded recovers after rise ok results and the hold-down", spec(nil), []step{
			ok(1*s, "a", Starting, 16), ok(2*s, "a", Up, 1),
			deg(3*s, "a", Up, 1), deg(4*s, "a", Degraded, 3),
			ok(5*s, "a", Degraded, 3),
			{at: 6 * s, check: "a", status: checkapi.StatusOK, reason: "ok", state: Degraded, metric: 3, why: "degraded hold-down, 10s left"},
			tick(15*s, Degraded, 3),
			tick(16*s, Up, 1), // clean since 6 s (rise 2) + 10 s
		}},
		{"fall degraded results in a row restart the hold-down, fewer do not", spec(nil), []step{
			ok(1*s, "a", Starting, 16), ok(2*s, "a", Up, 1),
			deg(3*s, "a", Up, 1), deg(4*s, "a", Degraded, 3),
			ok(5*s, "a", Degraded, 3), ok(6*s, "a", Degraded, 3),
			deg(7*s, "a", Degraded, 3), ok(8*s, "a", Degraded, 3), // one: the hold-down goes on
			deg(9*s, "a", Degraded, 3), deg(10*s, "a", Degraded, 3), // two: it starts again
			ok(11*s, "a", Degraded, 3), ok(12*s, "a", Degraded, 3),
			tick(21*s, Degraded, 3),
			tick(22*s, Up, 1),
		}},
		{"lag hovering around max_lag: alternating results never flap", spec(nil), []step{
			ok(1*s, "a", Starting, 16), ok(2*s, "a", Up, 1),
			deg(3*s, "a", Up, 1), ok(4*s, "a", Up, 1), deg(5*s, "a", Up, 1), ok(6*s, "a", Up, 1),
			deg(7*s, "a", Up, 1), deg(8*s, "a", Degraded, 3),
			ok(9*s, "a", Degraded, 3), deg(10*s, "a", Degraded, 3), ok(11*s, "a", Degraded, 3),
			ok(12*s, "a", Degraded, 3), deg(13*s, "a", Degraded, 3), ok(14*s, "a", Degraded, 3),
			tick(21*s, Degraded, 3), tick(22*s, Up, 1), // ok since 12 s + 10 s
		}},
		{"starting with degraded results is degraded at once", spec(nil), []step{
			deg(1*s, "a", Starting, 16), deg(2*s, "a", Degraded, 3),
		}},
		{"a failed result counts towards degraded", spec(func(sp *ServiceSpec) { sp.Checks[0].Fall = 3 }), []step{
			ok(1*s, "a", Starting, 16), ok(2*s, "a", Up, 1),
			deg(3*s, "a", Up, 1), fail(4*s, "a", Up, 1), deg(5*s, "a", Degraded, 3),
		}},
		{"require all: one failing check is down", spec(twoChecks), []step{
			ok(0, "a", Starting, 16), ok(0, "b", Up, 1),
			fail(1*s, "b", Down, 16),
		}},
		{"require any: one failing check is degraded, both down", spec(func(sp *ServiceSpec) {
			twoChecks(sp)
			sp.Require = 1
		}), []step{
			ok(0, "a", Up, 1), // one passing check decides "any"
			ok(0, "b", Up, 1),
			fail(1*s, "b", Degraded, 3),
			fail(2*s, "a", Down, 16),
		}},
		{"require any: undecided checks do not hold up a decision", spec(func(sp *ServiceSpec) {
			twoChecks(sp)
			sp.Require = 1
		}), []step{
			fail(0, "a", Starting, 16), // b may still pass
			fail(0, "b", Down, 16),
		}},
		{"drain and undrain", spec(nil), []step{
			ok(1*s, "a", Starting, 16), ok(2*s, "a", Up, 1),
			{at: 3 * s, check: "drain", state: Drained, metric: 15},
			ok(4*s, "a", Drained, 15),
			{at: 5 * s, check: "undrain", state: Up, metric: 1},
		}},
		{"down wins over drain", spec(nil), []step{
			ok(1*s, "a", Starting, 16), ok(2*s, "a", Up, 1),
			{at: 3 * s, check: "drain", state: Drained, metric: 15},
			fail(4*s, "a", Drained, 15), fail(5*s, "a", Down, 16),
		}},
		{"assist after the delay while up, back when the peer returns", spec(func(sp *ServiceSpec) {
			sp.Metric = 3
			sp.Assist = &AssistSpec{Metric: 2, Delay: 200 * time.Millisecond, Peers: []CheckSpec{{Name: "sa", Rise: 1, Fall: 1}}}
		}), []step{
			ok(0, "a", Starting, 16), ok(1*s, "a", Up, 3),
			{at: 2 * s, check: "sa", peer: true, status: checkapi.StatusOK, state: Up, metric: 3},
			{at: 3 * s, check: "sa", peer: true, status: checkapi.StatusFailed, reason: "timeout", state: Up, metric: 3},
			tick(3*s+199*time.Millisecond, Up, 3),
			tick(3*s+200*time.Millisecond, Up, 2),
			{at: 4 * s, check: "sa", peer: true, status: checkapi.StatusOK, state: Up, metric: 3},
		}},
		{"never assist while own checks fail", spec(func(sp *ServiceSpec) {
			sp.Checks[0].Fall = 1
			sp.Assist = &AssistSpec{Metric: 2, Peers: []CheckSpec{{Name: "sa", Rise: 1, Fall: 1}}}
		}), []step{
			ok(0, "a", Starting, 16), ok(1*s, "a", Up, 1),
			{at: 2 * s, check: "sa", peer: true, status: checkapi.StatusFailed, reason: "timeout", state: Up, metric: 2},
			fail(3*s, "a", Down, 16),
		}},
		{"last resort while down and no peer serves", withLastResort(14), []step{
			ok(0, "a", Up, 3),
			peerOK(0, Up, 3),
			fail(1*s, "a", Down, 16), // the peer serves: poison
			peerFail(2*s, Down, 14),  // nobody serves: the last-resort route
			{at: 3 * s, check: "sa", peer: true, status: checkapi.StatusOK, recovering: true,
				state: Down, metric: 14, why: "last resort"}, // a peer in its hold-down does not serve yet
			peerOK(4*s, Down, 16),
			peerFail(5*s, Down, 14),
			ok(6*s, "a", Down, 14), // in its own hold-down, still the last resort
			tick(16*s, Up, 2),      // back, assisting the failed peer
			peerOK(17*s, Up, 3),
		}},
		{"no last resort before every peer check decided", withLastResort(14), []step{
			ok(0, "a", Up, 3),
			fail(1*s, "a", Down, 16),
			peerFail(2*s, Down, 14),
		}},
		{"no last resort when set to 0", withLastResort(0), []step{
			ok(0, "a", Up, 3), peerOK(0, Up, 3),
			fail(1*s, "a", Down, 16),
			peerFail(2*s, Down, 16),
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			svc := NewService(tc.spec, t0)
			for i, st := range tc.steps {
				now := t0.Add(st.at)
				switch {
				case st.check == "":
					svc.Advance(now)
				case st.check == "drain" || st.check == "undrain":
					svc.SetDrained(now, st.check == "drain")
				case st.peer:
					r := &checkapi.Result{Status: st.status, Reason: st.reason}
					if st.recovering {
						r.Observations = map[string]float64{PeerRecovering: 1}
					}
					svc.ObservePeer(now, st.check, r)
				default:
					svc.Observe(now, st.check, &checkapi.Result{Status: st.status, Reason: st.reason})
				}
				if got := svc.State(); got != st.state {
					t.Fatalf("step %d (%s %s at %s): state %s, want %s (reason %q)", i, st.check, st.status, st.at, got, st.state, svc.reason)
				}
				if got := svc.Metric(now); got != st.metric {
					t.Fatalf("step %d (%s at %s): metric %d, want %d", i, st.check, st.at, got, st.metric)
				}
				if st.why != "" && !strings.Contains(svc.reason, st.why) {
					t.Fatalf("step %d: reason %q does not contain %q", i, svc.reason, st.why)
				}
			}
		})
	}
}

func TestNextWake(t *testing.T) {
	svc := NewService(spec(func(sp *ServiceSpec) { sp.Checks[0].Rise, sp.Checks[0].Fall = 1, 1 }), t0)
	svc.Observe(t0, "a", checkapi.OK(""))
	svc.Observe(t0.Add(time.Second), "a", checkapi.Failed("refused", ""))
	if w := svc.NextWake(t0.Add(time.Second)); !w.IsZero() {
		t.Fatalf("down and unhealthy: NextWake = %v, want zero", w)
	}
	if svc.Status(t0.Add(time.Second)).Recovering {
		t.Fatal("failing service reported as recovering")
	}
	svc.Observe(t0.Add(2*time.Second), "a", checkapi.OK(""))
	if w, want := svc.NextWake(t0.Add(2*time.Second)), t0.Add(12*time.Second); !w.Equal(want) {
		t.Fatalf("NextWake = %v, want %v (hold-down end)", w, want)
	}
	if st := svc.Status(t0.Add(2 * time.Second)); !st.Recovering || st.State != "down" {
		t.Fatalf("in hold-down: %+v, want down and recovering", st)
	}
	svc.Advance(t0.Add(12 * time.Second))
	if st := svc.Status(t0.Add(12 * time.Second)); st.Recovering || st.State != "up" {
		t.Fatalf("after hold-down: %+v", st)
	}
	// The hold-down of a degraded service ends at a wake too.
	svc.Observe(t0.Add(13*time.Second), "a", checkapi.Degraded("stale_replica", ""))
	svc.Observe(t0.Add(14*time.Second), "a", checkapi.OK(""))
	if w, want := svc.NextWake(t0.Add(14*time.Second)), t0.Add(24*time.Second); svc.State() != Degraded || !w.Equal(want) {
		t.Fatalf("degraded hold-down: state %s, NextWake = %v, want %v", svc.State(), w, want)
	}
	if !svc.Advance(t0.Add(24*time.Second)) || svc.State() != Up {
		t.Fatalf("at the end of the degraded hold-down: state %s", svc.State())
	}
}

func TestStatusSnapshot(t *testing.T) {
	svc := NewService(spec(func(sp *ServiceSpec) { sp.Checks[0].Rise = 1 }), t0)
	r := checkapi.OK("bound").AddPhase("bind", 2*time.Millisecond).Observe("replication_lag_seconds", 0.5)
	svc.Observe(t0, "a", r)
	st := svc.Status(t0)
	if st.State != "up" || st.Metric != 1 || st.Transitions != 1 || len(st.Checks) != 1 {
		t.Fatalf("status = %+v", st)
	}
	c := st.Checks[0]
	if c.State != "pass" || c.Latency != 2*time.Millisecond || c.Observations["replication_lag_seconds"] != 0.5 {
		t.Fatalf("check status = %+v", c)
	}
}

// Time alone (the end of assist.delay) changes the metric; Advance must say
// so, or the engine never publishes it.
func TestAdvanceReportsTimeDrivenChanges(t *testing.T) {
	svc := NewService(spec(func(sp *ServiceSpec) {
		sp.Checks[0].Rise = 1
		sp.Assist = &AssistSpec{Metric: 2, Delay: time.Second, Peers: []CheckSpec{{Name: "p", Rise: 1, Fall: 1}}}
	}), t0)
	svc.Observe(t0, "a", checkapi.OK(""))
	svc.ObservePeer(t0, "p", checkapi.Failed("refused", ""))
	if svc.Advance(t0.Add(500 * time.Millisecond)) {
		t.Fatal("Advance before the delay reported a change")
	}
	if !svc.Advance(t0.Add(time.Second)) {
		t.Fatal("Advance at the end of the assist delay did not report the metric change")
	}
	if svc.Advance(t0.Add(2 * time.Second)) {
		t.Fatal("Advance reported a change twice")
	}
}
