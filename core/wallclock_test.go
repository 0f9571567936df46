package core

import (
	"context"
	"fmt"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/ripcord/ripcord/plugins/checkapi"
)

// A wall-clock step (NTP, `date -s`) changes the time of day time.Now
// reports but not its monotonic reading, which Sub, Before and timers use as
// long as neither value lost it (Round, Truncate, UTC, In, Local, a JSON or
// Unix round trip). These tests give the engine a clock stepped by ±1 h in
// exactly that way, and check that no state changes because of it.

// wallStepped returns t with its wall reading moved by d (whole seconds) and
// its monotonic reading untouched: what time.Now returns after the system
// clock was stepped by d. The time package cannot build such a value, so
// this edits its representation (time/time.go: with the hasMonotonic bit set,
// bits 30-62 of wall count seconds since 1885); TestWallStepped checks that
// the result behaves as described.
func wallStepped(t time.Time, d time.Duration) time.Time {
	rep := (*struct {
		wall uint64
		ext  int64
		loc  *time.Location
	})(unsafe.Pointer(&t))
	if rep.wall&(1<<63) == 0 {
		panic("wallStepped: t has no monotonic reading")
	}
	rep.wall += uint64(int64(d/time.Second)) << 30
	return t
}

func TestWallStepped(t *testing.T) {
	now := time.Now()
	for _, d := range []time.Duration{time.Hour, -time.Hour} {
		s := wallStepped(now, d)
		if got := s.Sub(now); got != 0 {
			t.Errorf("step %v: Sub sees %v; the monotonic reading must be untouched", d, got)
		}
		if got := s.Round(0).Sub(now.Round(0)); got != d {
			t.Errorf("step %v: the wall readings differ by %v", d, got)
		}
		if got := s.Unix() - now.Unix(); got != int64(d/time.Second) {
			t.Errorf("step %v: Unix differs by %d s", d, got)
		}
		if later := wallStepped(now.Add(time.Second), d); later.Sub(s) != time.Second || !later.After(s) {
			t.Errorf("step %v: one monotonic second later is %v later", d, later.Sub(s))
		}
	}
}

// TestServiceIgnoresWallClockSteps steps the clock during a failback
// hold-down and during an assist delay. With monotonic readings (what
// time.Now gives) nothing may change early or late; the same steps on
// readings stripped of them must show the spurious transitions, or the
// scenario would not test anything.
func TestServiceIgnoresWallClockSteps(t *testing.T) {
	base := time.Now()
	sp := spec(func(sp *ServiceSpec) {
		sp.Checks = []CheckSpec{{Name: "a", Rise: 1, Fall: 1}}
		sp.Assist = &AssistSpec{Metric: 2, Delay: time.Second, Peers: []CheckSpec{{Name: "p", Rise: 1, Fall: 1}}}
	}) // failback_delay 10 s
	s := time.Second
	type event struct {
		at, wall time.Duration // monotonic time since start; wall offset in force
		do       string        // "ok", "fail", "peer-fail" or "" (just Advance)
		state    State
		metric   int
		wake     time.Duration // NextWake - now, when not zero
	}
	scenario := func(step time.Duration) []event {
		return []event{
			{at: 0, do: "ok", state: Up, metric: 1},
			{at: 1 * s, do: "peer-ok", state: Up, metric: 1},
			{at: 2 * s, do: "fail", state: Down, metric: 16},
			{at: 3 * s, do: "ok", state: Down, metric: 16, wake: 10 * s}, // hold-down until 13 s
			{at: 4 * s, wall: step, state: Down, metric: 16, wake: 9 * s},
			{at: 12900 * time.Millisecond, wall: step, state: Down, metric: 16},
			{at: 13100 * time.Millisecond, wall: step, state: Up, metric: 1},
			{at: 14 * s, wall: step, do: "peer-fail", state: Up, metric: 1, wake: s}, // assist from 15 s
			{at: 14500 * time.Millisecond, wall: 0, state: Up, metric: 1},            // stepped back
			{at: 14900 * time.Millisecond, state: Up, metric: 1},
			{at: 15100 * time.Millisecond, state: Up, metric: 2},
		}
	}
	run := func(step time.Duration, strip bool) []string {
		clock := func(e event) time.Time {
			now := wallStepped(base.Add(e.at), e.wall)
			if strip {
				now = now.Round(0)
			}
			return now
		}
		svc := NewService(sp, clock(event{}))
		var wrong []string
		for _, e := range scenario(step) {
			now := clock(e)
			res := map[string]*checkapi.Result{"ok": checkapi.OK("fine"), "fail": checkapi.Failed(checkapi.ReasonRefused, "refused"),
				"peer-ok": checkapi.OK("fine"), "peer-fail": checkapi.Failed(checkapi.ReasonRefused, "refused")}[e.do]
			switch e.do {
			case "ok", "fail":
				svc.Observe(now, "a", res)
			case "peer-ok", "peer-fail":
				svc.ObservePeer(now, "p", res)
			default:
				svc.Advance(now)
			}
			if got, m := svc.State(), svc.Metric(now); got != e.state || m != e.metric {
				wrong = append(wrong, fmt.Sprintf("at %v: %s metric %d, want %s metric %d", e.at, got, m, e.state, e.metric))
			}
			if w := svc.NextWake(now); e.wake != 0 && (w.IsZero() || w.Sub(now) != e.wake) {
				wrong = append(wrong, fmt.Sprintf("at %v: next wake-up in %v, want %v", e.at, w.Sub(now), e.wake))
			}
		}
		if n := svc.Status(clock(event{})).Transitions; len(wrong) == 0 && n != 3 {
			wrong = append(wrong, fmt.Sprintf("%d transitions, want 3 (up, down, up)", n))
		}
		return wrong
	}
	for _, step := range []time.Duration{time.Hour, -time.Hour} {
		if wrong := run(step, false); len(wrong) > 0 {
			t.Errorf("clock stepped by %v:\n%v", step, wrong)
		}
		if wrong := run(step, true); len(wrong) == 0 {
			t.Errorf("clock stepped by %v on readings without monotonic time: no spurious change, the scenario tests nothing", step)
		}
	}
}

// TestEngineIgnoresWallClockSteps runs the engine on a clock that is
// stepped forward during a failback hold-down and back during the next:
// each hold-down must last failback_delay, neither ending at once nor an
// hour late (the engine's wake-up timer is derived from the same clock).
func TestEngineIgnoresWallClockSteps(t *testing.T) {
	const holdDown = 400 * time.Millisecond
	var wall atomic.Int64 // current step, ns
	run := &scriptRunner{}
	run.status.Store(int32(checkapi.StatusOK))
	rec := &recorder{ch: make(chan struct{}, 1)}
	e := New(Options{
		Services: []ServiceSpec{{Name: "ldap", VIP: netip.MustParsePrefix("192.0.2.10/32"), Metric: 1, DownMetric: 16,
			DrainMetric: 10, FailbackDelay: holdDown, Checks: []CheckSpec{{Name: "bind", Rise: 1, Fall: 1}}}},
		Jobs: []Job{{Service: "ldap", Name: "bind", Checker: "x", Target: "t",
			Interval: 10 * time.Millisecond, Timeout: 10 * time.Millisecond}},
		Runner:  run,
		Publish: rec.publish,
		Now:     func() time.Time { return wallStepped(time.Now(), time.Duration(wall.Load())) },
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()
	rec.waitMetric(t, 1)
	for _, step := range []time.Duration{time.Hour, -time.Hour} {
		run.status.Store(int32(checkapi.StatusFailed))
		rec.waitMetric(t, 16)
		run.status.Store(int32(checkapi.StatusOK))
		for deadline := time.Now().Add(5 * time.Second); !e.Status()[0].Recovering; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the recovery never started its hold-down")
			}
		}
		// The hold-down counts from the check that saw the recovery, at
		// most a millisecond ago.
		recovered := time.Now()
		wall.Add(int64(step))
		rec.waitMetric(t, 1)
		if took := time.Since(recovered); took < holdDown-20*time.Millisecond || took > holdDown+2*time.Second {
			t.Errorf("clock stepped by %v in the hold-down: back after %v, want about %v", step, took, holdDown)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := e.Status()[0]; st.Transitions != 5 {
		t.Errorf("%d transitions, want 5 (starting, up, then down and up twice)", st.Transitions)
	}
}
