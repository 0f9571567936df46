package core

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ripcord/ripcord/advertisers"
	"github.com/ripcord/ripcord/plugins/checkapi"
	"github.com/ripcord/ripcord/relay"
)

// scriptRunner answers with whatever status is set, and records deadlines.
type scriptRunner struct {
	status   atomic.Int32
	calls    atomic.Int32
	deadline atomic.Int64 // last ctx deadline minus call time, ns
}

func (r *scriptRunner) Check(ctx context.Context, _ string, _ *checkapi.Request) *checkapi.Result {
	r.calls.Add(1)
	if d, ok := ctx.Deadline(); ok {
		r.deadline.Store(int64(time.Until(d)))
	}
	if checkapi.Status(r.status.Load()) == checkapi.StatusOK {
		return checkapi.OK("fine")
	}
	return checkapi.Failed(checkapi.ReasonRefused, "connection refused")
}

type recorder struct {
	mu   sync.Mutex
	sets [][]advertisers.Announcement
	ch   chan struct{}
}

func (r *recorder) publish(a []advertisers.Announcement) {
	r.mu.Lock()
	r.sets = append(r.sets, a)
	r.mu.Unlock()
	select {
	case r.ch <- struct{}{}:
	default:
	}
}

// waitMetric waits (bounded) until the last published metric is m.
func (r *recorder) waitMetric(t *testing.T, m int) {
	t.Helper()
	r.waitMetricWithin(t, m, 5*time.Second)
}

// waitMetricWithin waits at most d until the last published metric is m.
func (r *recorder) waitMetricWithin(t *testing.T, m int, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		r.mu.Lock()
		n := len(r.sets)
		got := -1
		if n > 0 {
			got = r.sets[n-1][0].Metric
		}
		r.mu.Unlock()
		if got == m {
			return
		}
		select {
		case <-r.ch:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("metric did not become %d within %s (last %d)", m, d, got)
		}
	}
}

func TestEngineSchedulesAndPublishes(t *testing.T) {
	vip := netip.MustParsePrefix("192.0.2.10/32")
	run := &scriptRunner{}
	run.status.Store(int32(checkapi.StatusOK))
	rec := &recorder{ch: make(chan struct{}, 1)}
	e := New(Options{
		Services: []ServiceSpec{{Name: "ldap", VIP: vip, Metric: 1, DegradedPenalty: 2, DownMetric: 16, DrainMetric: 15,
			FailbackDelay: 100 * time.Millisecond, Checks: []CheckSpec{{Name: "bind", Rise: 2, Fall: 2}}}},
		Jobs: []Job{{Service: "ldap", Name: "bind", Checker: "x", Target: "t",
			Interval: 20 * time.Millisecond, Timeout: 15 * time.Millisecond}},
		Runner:  run,
		Publish: rec.publish,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()

	rec.waitMetric(t, 16) // starting
	rec.waitMetric(t, 1)  // up after rise
	if d := time.Duration(run.deadline.Load()); d <= 0 || d > 15*time.Millisecond {
		t.Errorf("runner saw deadline %s away, want within the 15ms timeout", d)
	}
	run.status.Store(int32(checkapi.StatusFailed))
	rec.waitMetric(t, 16)
	run.status.Store(int32(checkapi.StatusOK))
	rec.waitMetric(t, 1) // after the 100ms hold-down
	if err := e.SetDrained("ldap", true); err != nil {
		t.Fatal(err)
	}
	rec.waitMetric(t, 15)
	if st := e.Status()[0]; st.State != "drained" || !st.Drained {
		t.Errorf("status = %+v", st)
	}
	if err := e.SetDrained("nope", true); err == nil {
		t.Error("draining an unknown service must fail")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, set := range rec.sets {
		if len(set) != 1 || set[0].Prefix != vip {
			t.Fatalf("published a set with a prefix that is not configured: %v", set)
		}
	}
}

// TestEngineMarksDownAnnouncements: while starting or down, the set says
// Down, so BGP withdraws even with a down_metric below 16 (which RIP
// announces as a last-resort route).
func TestEngineMarksDownAnnouncements(t *testing.T) {
	run := &scriptRunner{}
	run.status.Store(int32(checkapi.StatusOK))
	rec := &recorder{ch: make(chan struct{}, 1)}
	e := New(Options{
		Services: []ServiceSpec{{Name: "ldap", VIP: netip.MustParsePrefix("192.0.2.10/32"), Metric: 1, DegradedPenalty: 2,
			DownMetric: 14, DrainMetric: 10, FailbackDelay: time.Hour, Checks: []CheckSpec{{Name: "bind", Rise: 1, Fall: 1}}}},
		Jobs:    []Job{{Service: "ldap", Name: "bind", Checker: "x", Target: "t", Interval: 20 * time.Millisecond, Timeout: 15 * time.Millisecond}},
		Runner:  run,
		Publish: rec.publish,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()
	rec.waitMetric(t, 1)
	run.status.Store(int32(checkapi.StatusFailed))
	rec.waitMetric(t, 14)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if first := rec.sets[0][0]; first.Metric != 14 || !first.Down {
		t.Errorf("starting: %+v, want metric 14 and Down", first)
	}
	for _, set := range rec.sets {
		if a := set[0]; a.Down != (a.Metric == 14) {
			t.Errorf("published %+v: Down must be set exactly while down or starting", a)
		}
	}
	if last := rec.sets[len(rec.sets)-1][0]; !last.Down {
		t.Errorf("down: %+v, want Down", last)
	}
}

// TestEngineAnnouncesLastResort: a down replica whose peer checks fail too
// announces its last_resort_metric, and not as Down, so BGP announces it
// rather than withdraw.
func TestEngineAnnouncesLastResort(t *testing.T) {
	run := &scriptRunner{}
	run.status.Store(int32(checkapi.StatusOK))
	rec := &recorder{ch: make(chan struct{}, 1)}
	one := []CheckSpec{{Name: "bind", Rise: 1, Fall: 1}}
	peer := []CheckSpec{{Name: "sb", Rise: 1, Fall: 1}}
	job := Job{Service: "ldap", Name: "bind", Checker: "x", Target: "t", Interval: 20 * time.Millisecond, Timeout: 15 * time.Millisecond}
	peerJob := job
	peerJob.Name, peerJob.Peer = "sb", true
	e := New(Options{
		Services: []ServiceSpec{{Name: "ldap", VIP: netip.MustParsePrefix("192.0.2.10/32"), Metric: 1, DegradedPenalty: 2,
			DownMetric: 16, LastResortMetric: 12, DrainMetric: 10, FailbackDelay: time.Hour, Checks: one,
			Assist: &AssistSpec{Metric: 2, Delay: time.Hour, Peers: peer}}},
		Jobs:    []Job{job, peerJob},
		Runner:  run,
		Publish: rec.publish,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()
	rec.waitMetric(t, 1)
	run.status.Store(int32(checkapi.StatusFailed)) // this replica and its peer
	rec.waitMetric(t, 12)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if last := rec.sets[len(rec.sets)-1][0]; last.Metric != 12 || last.Down {
		t.Errorf("down with no peer serving: %+v, want metric 12, not Down", last)
	}
}

func TestEngineCheckNow(t *testing.T) {
	run := &scriptRunner{}
	run.status.Store(int32(checkapi.StatusOK))
	e := New(Options{
		Services: []ServiceSpec{{Name: "s", VIP: netip.MustParsePrefix("192.0.2.1/32"), Metric: 1, DownMetric: 16,
			Checks: []CheckSpec{{Name: "a", Rise: 1, Fall: 1}, {Name: "b", Rise: 1, Fall: 1}}}},
		Jobs: []Job{
			{Service: "s", Name: "a", Interval: time.Hour, Timeout: time.Second},
			{Service: "s", Name: "b", Interval: time.Hour, Timeout: time.Second},
		},
		Runner: run,
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.Run(ctx)
	// The first runs come at start; with an hour interval only CheckNow can
	// make the checks run again within the bound below.
	deadline := time.Now().Add(5 * time.Second)
	for run.calls.Load() < 2 && time.Now().Before(deadline) {
		_ = e.CheckNow("s")
		time.Sleep(10 * time.Millisecond)
	}
	if n := run.calls.Load(); n < 2 {
		t.Fatalf("CheckNow ran %d checks, want both", n)
	}
	time.Sleep(50 * time.Millisecond)
	if n := run.calls.Load(); n > 4 {
		t.Fatalf("checks keep running after CheckNow: %d calls", n)
	}
	if err := e.CheckNow("nope"); err == nil {
		t.Fatal("CheckNow of an unknown service must fail")
	}
}

// byChecker fails every check of the named checker and passes the others.
type byChecker struct{ failing string }

func (r byChecker) Check(_ context.Context, checker string, _ *checkapi.Request) *checkapi.Result {
	if checker == r.failing {
		return checkapi.Failed(checkapi.ReasonRefused, "connection refused")
	}
	return checkapi.OK("fine")
}

// The assist metric takes effect when assist.delay has passed, a moment no
// check result marks: the engine must publish it from its timer. Both checks
// run first at start and next 2s later, so only the timer can publish the
// assist metric within 1.5s.
func TestEnginePublishesAssistAfterDelay(t *testing.T) {
	rec := &recorder{ch: make(chan struct{}, 1)}
	e := New(Options{
		Services: []ServiceSpec{{Name: "ldap", VIP: netip.MustParsePrefix("192.0.2.10/32"), Metric: 1, DownMetric: 16,
			Checks: []CheckSpec{{Name: "own", Rise: 1, Fall: 1}},
			Assist: &AssistSpec{Metric: 2, Delay: 300 * time.Millisecond, Peers: []CheckSpec{{Name: "peer", Rise: 1, Fall: 1}}}}},
		Jobs: []Job{
			{Service: "ldap", Name: "own", Checker: "own", Interval: 2 * time.Second, Timeout: 15 * time.Millisecond},
			{Service: "ldap", Name: "peer", Peer: true, Checker: "peer", Interval: 2 * time.Second, Timeout: 15 * time.Millisecond},
		},
		Runner:  byChecker{failing: "peer"},
		Publish: rec.publish,
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.Run(ctx)
	rec.waitMetricWithin(t, 2, 1500*time.Millisecond)
}

// A drain racing the engine's own publishing must never leave an older set
// published last: the advertisers would keep the old metric while status
// says drained. Each round races SetDrained against check results and then
// compares the last published set with the engine's own.
func TestEnginePublishesNewestSetLast(t *testing.T) {
	ok, degraded := checkapi.OK("fine"), checkapi.Degraded(checkapi.ReasonTimeout, "slow")
	for round := range 5000 {
		var mu sync.Mutex
		var last []advertisers.Announcement
		e := New(Options{
			Services: []ServiceSpec{{Name: "s", VIP: netip.MustParsePrefix("192.0.2.1/32"), Metric: 1,
				DegradedPenalty: 2, DownMetric: 16, DrainMetric: 15, Checks: []CheckSpec{{Name: "c", Rise: 1, Fall: 1}}}},
			Publish: func(a []advertisers.Announcement) { mu.Lock(); last = a; mu.Unlock() },
		})
		job := Job{Service: "s", Name: "c"}
		e.apply(jobResult{job: job, res: ok, at: time.Now()})
		var wg sync.WaitGroup
		start := make(chan struct{})
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			for i := range 3 {
				_ = e.SetDrained("s", i%2 == 0)
			}
		}()
		go func() {
			defer wg.Done()
			<-start
			for i := range 3 {
				res := ok
				if i%2 == 0 {
					res = degraded
				}
				e.apply(jobResult{job: job, res: res, at: time.Now()})
			}
		}()
		close(start)
		wg.Wait()
		mu.Lock()
		got := last
		mu.Unlock()
		if want := e.Desired(); !slices.Equal(got, want) {
			t.Fatalf("round %d: last published %v, engine wants %v", round, got, want)
		}
	}
}

// TestEngineHeartbeatStopsWhenTheLoopStalls: the heartbeat (the systemd
// watchdog) comes from the engine's own loop, so a loop stuck in Publish
// stops it.
func TestEngineHeartbeatStopsWhenTheLoopStalls(t *testing.T) {
	run := &scriptRunner{}
	run.status.Store(int32(checkapi.StatusOK))
	var beats atomic.Int32
	stall := make(chan struct{})
	var stalled atomic.Bool
	e := New(Options{
		Services: []ServiceSpec{{Name: "ldap", VIP: netip.MustParsePrefix("192.0.2.10/32"), Metric: 1, DownMetric: 16,
			Checks: []CheckSpec{{Name: "bind", Rise: 3, Fall: 1}}}}, // up after ~45ms: heartbeats before that
		Jobs: []Job{{Service: "ldap", Name: "bind", Checker: "x", Target: "t",
			Interval: 20 * time.Millisecond, Timeout: 15 * time.Millisecond}},
		Runner: run,
		Publish: func(a []advertisers.Announcement) {
			if a[0].Metric == 1 { // the first change after start: stall here
				stalled.Store(true)
				<-stall
			}
		},
		Heartbeat:      func() { beats.Add(1) },
		HeartbeatEvery: 5 * time.Millisecond,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()
	defer func() {
		cancel()
		close(stall)
		<-done
	}()
	for deadline := time.Now().Add(5 * time.Second); !stalled.Load(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the check never passed")
		}
	}
	before := beats.Load()
	if before == 0 {
		t.Fatal("no heartbeat before the loop stalled")
	}
	time.Sleep(100 * time.Millisecond)
	if after := beats.Load(); after != before {
		t.Fatalf("heartbeat went on while the loop was stalled: %d -> %d", before, after)
	}
}

func TestEngineHeartbeatWhileRunning(t *testing.T) {
	var beats atomic.Int32
	e := New(Options{Runner: &scriptRunner{}, Heartbeat: func() { beats.Add(1) }, HeartbeatEvery: 5 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	e.Run(ctx)
	// 100 ticks are due; a loaded machine delivers fewer, but never none.
	if n := beats.Load(); n < 3 {
		t.Fatalf("%d heartbeats in 500ms at 5ms, want at least 3", n)
	}
}

// A failed result makes the engine re-check at the fast interval, so fall
// failures take milliseconds, not fall intervals.
func TestEngineFastInterval(t *testing.T) {
	run := &scriptRunner{}
	run.status.Store(int32(checkapi.StatusOK))
	rec := &recorder{ch: make(chan struct{}, 1)}
	e := New(Options{
		Services: []ServiceSpec{{Name: "ldap", VIP: netip.MustParsePrefix("192.0.2.10/32"), Metric: 1, DownMetric: 16,
			FailbackDelay: time.Hour, Checks: []CheckSpec{{Name: "bind", Rise: 3, Fall: 3}}}},
		Jobs: []Job{{Service: "ldap", Name: "bind", Checker: "x", Target: "t",
			Interval: time.Hour, FastInterval: 5 * time.Millisecond, Timeout: time.Second}},
		Runner: run, Publish: rec.publish,
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.Run(ctx)
	// The first check is up to a tenth of the interval away: start it now.
	// Rising uses the fast interval too; once up, the next check is an
	// hour away, so CheckNow starts the fall.
	waitFor(t, "first check", func() bool { e.CheckNow("ldap"); return run.calls.Load() > 0 })
	rec.waitMetric(t, 1)
	run.status.Store(int32(checkapi.StatusFailed))
	if err := e.CheckNow("ldap"); err != nil {
		t.Fatal(err)
	}
	rec.waitMetric(t, 16)
	if n := run.calls.Load(); n != 6 {
		t.Fatalf("%d checks ran, want 3 to rise and 3 to fall", n)
	}
}

// switchRunner fails the checkers it is told to.
type switchRunner struct {
	mu      sync.Mutex
	failing map[string]bool
}

func (r *switchRunner) fail(checker string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failing[checker] = true
}

func (r *switchRunner) Check(_ context.Context, checker string, _ *checkapi.Request) *checkapi.Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failing[checker] {
		return checkapi.Failed(checkapi.ReasonRefused, "connection refused")
	}
	return checkapi.OK("fine")
}

type relayRecorder struct {
	mu   sync.Mutex
	sets [][]relay.Want
}

func (r *relayRecorder) set(w []relay.Want) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sets = append(r.sets, w)
}

func (r *relayRecorder) last() []relay.Want {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.sets) == 0 {
		return nil
	}
	return r.sets[len(r.sets)-1]
}

// The engine publishes the desired relays, and the kernel's stats move the
// sequence on: relay and a worse metric first, the poison once no new flow
// came for quiet, no relay once no packet came for quiet.
func TestEngineRelaySequence(t *testing.T) {
	run := &switchRunner{failing: map[string]bool{}}
	rec := &recorder{ch: make(chan struct{}, 1)}
	rr := &relayRecorder{}
	sp := relaySpec(func(sp *ServiceSpec) { sp.Relay.Quiet = 50 * time.Millisecond })
	e := New(Options{
		Services: []ServiceSpec{sp},
		Jobs: []Job{
			{Service: "ldap", Name: "a", Checker: "own", Target: "t", Interval: 10 * time.Millisecond, Timeout: time.Second},
			{Service: "ldap", Name: "sb", Peer: true, Checker: "peer", Target: "t", Interval: 10 * time.Millisecond, Timeout: time.Second},
		},
		Runner: run, Publish: rec.publish, Relay: rr.set,
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.Run(ctx)
	rec.waitMetric(t, 1)
	waitFor(t, "fallback to sb", func() bool { w := rr.last(); return len(w) == 1 && w[0].Mode == relay.Fallback && w[0].Peer == sbAddr })
	run.fail("own")
	rec.waitMetric(t, 10)
	if w := rr.last(); len(w) != 1 || w[0].Mode != relay.All {
		t.Fatalf("relays when the worse metric went out: %+v", w)
	}
	time.Sleep(100 * time.Millisecond)
	if st := e.Status()[0]; st.Metric != 10 {
		t.Fatalf("poisoned without the kernel reporting the relay: %+v", st)
	}
	now := time.Now()
	e.ObserveRelay([]relay.Stats{{Service: "ldap", Mode: relay.All, Peer: sbAddr, Since: now, LastFlow: now, LastPacket: now}})
	rec.waitMetric(t, 16)
	waitFor(t, "relay removed", func() bool { w := rr.last(); return len(w) == 1 && w[0].Mode == relay.Off })
	rr.mu.Lock()
	defer rr.mu.Unlock()
	for i, set := range rr.sets {
		for _, w := range set {
			if w.Service != "ldap" || w.VIP != sp.VIP.Addr() {
				t.Errorf("set %d of %d: want for another service (the kernel refuses nameless ones): %+v", i, len(rr.sets), w)
			}
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// OnLate hears of every scheduled run, with a delay no shorter than zero, and
// of no check-now run.
func TestEngineReportsLateness(t *testing.T) {
	for _, tc := range []struct {
		interval time.Duration
		checkNow bool
		min, max int32 // OnLate calls
	}{
		{interval: 10 * time.Millisecond, min: 1, max: 1000},
		// Only the first tick, at start, is scheduled; the rest are check-nows.
		{interval: time.Hour, checkNow: true, max: 1},
	} {
		run := &scriptRunner{}
		run.status.Store(int32(checkapi.StatusOK))
		var lates atomic.Int32
		var bad atomic.Int64
		e := New(Options{
			Services: []ServiceSpec{{Name: "s", VIP: netip.MustParsePrefix("192.0.2.1/32"), Metric: 1, DownMetric: 16,
				Checks: []CheckSpec{{Name: "a", Rise: 1, Fall: 1}}}},
			Jobs:   []Job{{Service: "s", Name: "a", Interval: tc.interval, Timeout: time.Second}},
			Runner: run,
			OnLate: func(late time.Duration) {
				lates.Add(1)
				if late < 0 || late > 10*time.Second {
					bad.Store(int64(late))
				}
			},
		})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { e.Run(ctx); close(done) }()
		for deadline := time.Now().Add(5 * time.Second); run.calls.Load() < 3 && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if tc.checkNow {
				_ = e.CheckNow("s")
			}
		}
		cancel()
		<-done
		if n := run.calls.Load(); n < 3 {
			t.Fatalf("interval %s: %d runs, want 3", tc.interval, n)
		}
		if got := lates.Load(); got < tc.min || got > tc.max {
			t.Errorf("interval %s, check-now %v: OnLate called %d times for %d runs, want %d to %d", tc.interval, tc.checkNow,
				got, run.calls.Load(), tc.min, tc.max)
		}
		if b := bad.Load(); b != 0 {
			t.Errorf("OnLate got %s", time.Duration(b))
		}
	}
}

// A dual-stack service announces both addresses, always with one metric:
// the two families share one state.
func TestEngineDualStackSharesTheState(t *testing.T) {
	v4, v6 := netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("2001:db8::1/128")
	e := New(Options{Services: []ServiceSpec{{Name: "s", VIP: v4, VIP6: v6, Metric: 1, DegradedPenalty: 2,
		DownMetric: 16, DrainMetric: 10, Checks: []CheckSpec{{Name: "c", Rise: 1, Fall: 1}}}}})
	for _, step := range []struct {
		res    *checkapi.Result
		drain  bool
		metric int
	}{
		{nil, false, 16}, // starting
		{checkapi.OK("fine"), false, 1},
		{checkapi.Degraded(checkapi.ReasonTimeout, "slow"), false, 3},
		{checkapi.OK("fine"), true, 10},
		{checkapi.Failed(checkapi.ReasonRefused, "refused"), false, 16},
	} {
		if step.res != nil {
			e.byName["s"].Observe(time.Now(), "c", step.res)
		}
		if step.drain {
			if err := e.SetDrained("s", true); err != nil {
				t.Fatal(err)
			}
		}
		got := e.Desired()
		if len(got) != 2 || got[0].Prefix != v4 || got[1].Prefix != v6 || got[0].Metric != step.metric || got[1].Metric != step.metric ||
			got[0].Draining != got[1].Draining || got[0].Down != got[1].Down {
			t.Fatalf("after %v: desired %+v, want both prefixes with metric %d", step.res, got, step.metric)
		}
	}
	if st := e.Status()[0]; st.VIP != "192.0.2.1/32" || st.VIP6 != "2001:db8::1/128" {
		t.Errorf("status vip %q vip6 %q", st.VIP, st.VIP6)
	}
}
