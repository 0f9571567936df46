package core

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/ripcord/ripcord/advertisers"
	"github.com/ripcord/ripcord/plugins/checkapi"
	"github.com/ripcord/ripcord/relay"
)

// Runner runs one check; the plugin host implements it. It never fails: a
// broken checker is a failed result with reason checker_error.
type Runner interface {
	Check(ctx context.Context, checker string, req *checkapi.Request) *checkapi.Result
}

// Job is one scheduled check of a service (or of a peer, for assistance).
type Job struct {
	Service  string
	Name     string
	Peer     bool
	Checker  string
	Target   string
	Settings checkapi.Settings
	Interval time.Duration
	// FastInterval replaces Interval while the check is rising or falling
	// (0: Interval).
	FastInterval time.Duration
	Timeout      time.Duration
}

// Options configure an Engine.
type Options struct {
	Services []ServiceSpec
	Jobs     []Job
	Runner   Runner
	// Publish receives the desired set whenever it changes (and once at
	// start). Calls are serialised and the last call carries the newest
	// set. It must not block for long (later publishes wait for it): the
	// daemon hands the set to advertisers asynchronously.
	Publish func([]advertisers.Announcement)
	// Relay receives the desired relay of every service that has one (Mode
	// Off included) whenever one changes, and once at start; optional.
	Relay func([]relay.Want)
	// OnResult is called after every check (for metrics); optional.
	OnResult func(j Job, r *checkapi.Result, took time.Duration)
	// OnLate is called as each scheduled check starts, with how much later
	// than planned it starts (scheduling delay; not for check-now runs). It
	// is called from many goroutines at once; optional.
	OnLate func(late time.Duration)
	// OnTransition is called when a service changes state; optional.
	OnTransition func(service string, from, to State, reason string)
	// Drained lists services that start drained (the persisted flag).
	Drained []string
	// Heartbeat, if set, is called every HeartbeatEvery from the engine's
	// own loop, so that a stalled engine stops calling it (the systemd
	// watchdog).
	Heartbeat      func()
	HeartbeatEvery time.Duration
	Logger         *slog.Logger
	Now            func() time.Time // for tests; default time.Now
}

// Engine runs the checks on their schedules and keeps the desired set.
type Engine struct {
	o        Options
	mu       sync.Mutex
	services []*Service
	byName   map[string]*Service
	results  chan jobResult
	kick     chan struct{}
	now      func() time.Time
	stats    chan []relay.Stats
	updates  chan update

	// The running jobs, guarded by mu. Each start of a job gets a new gen,
	// so that a result of a job stopped by Update is never applied.
	running map[jobKey]*runningJob
	gen     uint64
	ticks   map[tickKey]int // running jobs per tick, guarded by mu
	start   time.Time       // the origin of every job's ticks
	runCtx  context.Context // Run's; jobs started later derive from it
	jobs    sync.WaitGroup

	// pubMu serialises publish from computing the set to handing it on, so
	// a set computed earlier is never handed on after a newer one.
	pubMu  sync.Mutex
	last   []advertisers.Announcement // guarded by pubMu
	relays []relay.Want               // last passed to Options.Relay, nil before the first; guarded by pubMu
}

type jobKey struct {
	service, name string
	peer          bool
}

func keyOf(j Job) jobKey { return jobKey{j.Service, j.Name, j.Peer} }

type runningJob struct {
	job    Job
	gen    uint64
	tick   tickKey
	cancel context.CancelFunc
	trig   chan struct{} // check now
}

type jobResult struct {
	gen  uint64
	job  Job
	res  *checkapi.Result
	at   time.Time
	took time.Duration
	fast chan<- bool // told whether the check is now rising or falling
}

// New builds an engine; Run starts it.
func New(o Options) *Engine {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Engine{o: o, byName: map[string]*Service{}, results: make(chan jobResult, 64),
		kick: make(chan struct{}, 1), stats: make(chan []relay.Stats, 1), updates: make(chan update), now: o.Now,
		running: map[jobKey]*runningJob{}, ticks: map[tickKey]int{}}
	if e.now == nil {
		e.now = time.Now
	}
	now := e.now()
	for _, sp := range o.Services {
		s := NewService(sp, now)
		if slices.Contains(o.Drained, sp.Name) {
			s.drained = true
		}
		e.services = append(e.services, s)
		e.byName[sp.Name] = s
	}
	return e
}

// Run schedules every job until ctx is done.
func (e *Engine) Run(ctx context.Context) error {
	defer e.jobs.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	e.mu.Lock()
	e.runCtx = ctx
	e.start = time.Now()
	for _, j := range e.o.Jobs {
		e.startJobLocked(j, true)
	}
	e.mu.Unlock()
	e.publish()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var beat <-chan time.Time
	if e.o.Heartbeat != nil && e.o.HeartbeatEvery > 0 {
		t := time.NewTicker(e.o.HeartbeatEvery)
		defer t.Stop()
		beat = t.C
	}
	for {
		e.resetTimer(timer)
		select {
		case <-ctx.Done():
			return nil
		case r := <-e.results:
			e.apply(r)
		case <-timer.C:
			e.advanceAll()
		case <-e.kick:
			e.advanceAll()
		case <-beat:
			e.o.Heartbeat()
		case st := <-e.stats:
			e.observeRelay(st)
		case u := <-e.updates:
			u.done <- e.update(u)
		}
	}
}

// startJobLocked runs a job on its schedule until it is stopped (Update) or
// Run ends. Its first check comes on its own tick if it starts with Run;
// one that Update starts joins the next tick of its interval, whatever the
// slot, so that it waits at most interval/slotsPerInterval. Called with
// e.mu held.
func (e *Engine) startJobLocked(j Job, withRun bool) {
	e.gen++
	ctx, cancel := context.WithCancel(e.runCtx)
	rj := &runningJob{job: j, gen: e.gen, tick: e.takeTickLocked(j.Interval), cancel: cancel, trig: make(chan struct{}, 1)}
	e.running[keyOf(j)] = rj
	first := e.start.Add(rj.tick.phase())
	if !withRun {
		first = tickAtOrAfter(time.Now(), e.start, j.Interval/slotsPerInterval)
	}
	e.jobs.Add(1)
	go func() {
		defer e.jobs.Done()
		e.schedule(ctx, j, rj.gen, first, rj.tick.phase(), rj.trig)
	}()
}

// stopJobLocked stops a running job and gives up its place in its tick.
// Called with e.mu held; the caller updates e.running.
func (e *Engine) stopJobLocked(rj *runningJob) {
	rj.cancel()
	if e.ticks[rj.tick]--; e.ticks[rj.tick] <= 0 {
		delete(e.ticks, rj.tick)
	}
}

// Checks run on ticks: every check with the same interval and slot starts
// at the same moment, start + slot*interval/slotsPerInterval + k*interval.
// A checker process then gets a tick's checks in one write and answers
// those that end together in one (checkpipe), and the processes on both
// sides wake once per tick instead of once per check: on a small VM a
// wake-up of a Go process costs more CPU than the check itself
// (docs/benchmarks.md). Up to checksPerTick checks share a tick, so that a
// replica with many checks does not open them all to its servers at one
// instant; the slots spread the rest over the interval.
const (
	slotsPerInterval = 16
	checksPerTick    = 64
)

// tickKey names a tick: an interval and a slot of it.
type tickKey struct {
	interval time.Duration
	slot     int
}

func (k tickKey) phase() time.Duration {
	return k.interval * time.Duration(k.slot) / slotsPerInterval
}

// takeTickLocked places a new job with this interval: the first slot
// with room, else the least crowded. Called with e.mu held.
func (e *Engine) takeTickLocked(interval time.Duration) tickKey {
	best := tickKey{interval, 0}
	for slot := range slotsPerInterval {
		k := tickKey{interval, slot}
		if e.ticks[k] < checksPerTick {
			best = k
			break
		}
		if e.ticks[k] < e.ticks[best] {
			best = k
		}
	}
	e.ticks[best]++
	return best
}

// nextTick is the first tick of a job's grid (e.start + phase + k*every,
// phase taken modulo every) that is at least every/2 after last and not
// before now. A check that ran on its tick runs again one interval later;
// one that ran off the grid (the first fast check, a check-now, a check
// that overran) rejoins it.
func (e *Engine) nextTick(last, now time.Time, every, phase time.Duration) time.Time {
	after := last.Add(every / 2)
	if now.After(after) {
		after = now
	}
	return tickAtOrAfter(after, e.start.Add(phase%every), every)
}

// tickAtOrAfter is the first of origin + k*every (k >= 0) at or after t.
func tickAtOrAfter(t, origin time.Time, every time.Duration) time.Time {
	k := (t.Sub(origin) + every - 1) / every
	return origin.Add(max(k, 0) * every)
}

// schedule runs one job on its ticks (see slotsPerInterval) from first; a
// check-now runs it at once.
func (e *Engine) schedule(ctx context.Context, j Job, gen uint64, first time.Time, phase time.Duration, trig <-chan struct{}) {
	planned := first
	for {
		t := time.NewTimer(time.Until(planned))
		last := planned
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
			if e.o.OnLate != nil {
				e.o.OnLate(time.Since(planned))
			}
		case <-trig:
			t.Stop()
			last = time.Now()
		}
		cctx, cancel := context.WithTimeout(ctx, j.Timeout)
		start := time.Now()
		res := e.o.Runner.Check(cctx, j.Checker, &checkapi.Request{Target: j.Target, Settings: j.Settings})
		took := time.Since(start)
		cancel()
		if ctx.Err() != nil {
			return
		}
		fast := make(chan bool, 1)
		select {
		case e.results <- jobResult{gen: gen, job: j, res: res, at: e.now(), took: took, fast: fast}:
		case <-ctx.Done():
			return
		}
		every := j.Interval
		select {
		case changing := <-fast:
			if changing && j.FastInterval > 0 {
				every = j.FastInterval
			}
		case <-ctx.Done():
			return
		}
		planned = e.nextTick(last, time.Now(), every, phase)
	}
}

func (e *Engine) apply(r jobResult) {
	e.mu.Lock()
	s := e.byName[r.job.Service]
	if rj := e.running[keyOf(r.job)]; s == nil || rj == nil || rj.gen != r.gen {
		// The job was stopped or replaced by Update after this run began.
		e.mu.Unlock()
		if r.fast != nil {
			r.fast <- false
		}
		return
	}
	from := s.State()
	var changed bool
	if r.job.Peer {
		changed = s.ObservePeer(r.at, r.job.Name, r.res)
	} else {
		changed = s.Observe(r.at, r.job.Name, r.res)
	}
	to, reason := s.State(), s.reason
	if r.fast != nil {
		r.fast <- s.Changing(r.job.Name, r.job.Peer)
	}
	e.mu.Unlock()
	if e.o.OnResult != nil {
		e.o.OnResult(r.job, r.res, r.took)
	}
	e.transitioned(s, from, to, reason)
	if changed {
		e.publish()
	}
}

func (e *Engine) transitioned(s *Service, from, to State, reason string) {
	if from == to {
		return
	}
	e.o.Logger.Info("service state", "service", s.spec.Name, "from", from.String(), "to", to.String(), "reason", reason)
	if e.o.OnTransition != nil {
		e.o.OnTransition(s.spec.Name, from, to, reason)
	}
}

func (e *Engine) advanceAll() {
	now := e.now()
	changed := false
	for _, s := range e.services {
		// Advance also reports changes made by time alone (end of the
		// assist delay or of the hold-down).
		changed = e.step(s, func() bool { return s.Advance(now) }) || changed
	}
	if changed {
		e.publish()
	}
}

// step runs f on s under the lock, reports a transition, and returns f's
// result (whether the service changed).
func (e *Engine) step(s *Service, f func() bool) bool {
	e.mu.Lock()
	from := s.State()
	changed := f()
	to, reason := s.State(), s.reason
	e.mu.Unlock()
	e.transitioned(s, from, to, reason)
	return changed
}

func (e *Engine) resetTimer(t *time.Timer) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	var next time.Time
	for _, s := range e.services {
		if w := s.NextWake(now); !w.IsZero() && (next.IsZero() || w.Before(next)) {
			next = w
		}
	}
	d := time.Hour
	if !next.IsZero() {
		d = max(next.Sub(now), 0)
	}
	t.Reset(d)
}

// Desired is the current desired set, ordered by prefix.
func (e *Engine) Desired() []advertisers.Announcement {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	out := make([]advertisers.Announcement, 0, 2*len(e.services))
	for _, s := range e.services {
		// Both addresses of a dual-stack service share its state.
		// A last-resort route is announced, also by BGP.
		down := (s.state == Down || s.state == Starting) && !s.lastResort()
		a := advertisers.Announcement{Metric: s.Metric(now), Draining: s.drained, Down: down}
		for _, vip := range s.spec.VIPs() {
			a.Prefix = vip
			out = append(out, a)
		}
	}
	return advertisers.Sorted(out)
}

// publish hands the desired set on if it changed. Callers change state
// first and publish after, from several goroutines (Run, SetDrained): the
// set is computed under pubMu, so the last set handed on is the newest.
func (e *Engine) publish() {
	e.pubMu.Lock()
	defer e.pubMu.Unlock()
	d := e.Desired()
	relays := e.desiredRelays()
	// Relays first: make-before-break wants the relay in before the route
	// changes.
	if relays != nil && (e.relays == nil || !slices.EqualFunc(relays, e.relays, sameWant)) {
		e.relays = relays
		if e.o.Relay != nil {
			e.o.Relay(relays)
		}
	}
	if slices.Equal(d, e.last) {
		return
	}
	e.last = d
	if e.o.Publish != nil {
		e.o.Publish(d)
	}
}

// desiredRelays is the desired relay of every service that has one.
func (e *Engine) desiredRelays() []relay.Want {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []relay.Want
	for _, s := range e.services {
		if w, ok := s.RelayWant(); ok {
			out = append(out, w)
		}
	}
	return out
}

func sameWant(a, b relay.Want) bool {
	return a.Service == b.Service && a.VIP == b.VIP && a.VIP6 == b.VIP6 && a.Mode == b.Mode && a.Peer == b.Peer && slices.Equal(a.Ports, b.Ports)
}

// ObserveRelay feeds what the kernel's relays carried (relay.Manager's
// Stats) into the services: the evidence that routers moved and that the
// relayed flows ended. A relaying service missing from stats has no relay
// installed. Run applies only the newest stats; ObserveRelay never blocks.
func (e *Engine) ObserveRelay(stats []relay.Stats) {
	for {
		select {
		case e.stats <- stats:
			return
		default:
		}
		select {
		case <-e.stats:
		default:
		}
	}
}

func (e *Engine) observeRelay(stats []relay.Stats) {
	now := e.now()
	changed := false
	for _, s := range e.services {
		if _, ok := s.RelayWant(); !ok {
			continue
		}
		var st relay.Stats
		if i := slices.IndexFunc(stats, func(x relay.Stats) bool { return x.Service == s.spec.Name }); i >= 0 {
			st = stats[i]
		}
		changed = e.step(s, func() bool { return s.ObserveRelay(now, st) }) || changed
	}
	if changed {
		e.publish()
	}
}

// Status returns a snapshot of every service.
func (e *Engine) Status() []Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	out := make([]Status, 0, len(e.services))
	for _, s := range e.services {
		out = append(out, s.Status(now))
	}
	return out
}

// SetDrained drains or undrains a service by name.
func (e *Engine) SetDrained(name string, on bool) error {
	e.mu.Lock()
	s, ok := e.byName[name]
	e.mu.Unlock()
	if !ok {
		return fmt.Errorf("no service %q", name)
	}
	e.step(s, func() bool { return s.SetDrained(e.now(), on) })
	e.publish()
	return nil
}

// CheckNow runs every check of a service at once.
func (e *Engine) CheckNow(name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.byName[name]; !ok {
		return fmt.Errorf("no service %q", name)
	}
	for k, rj := range e.running {
		if k.service != name {
			continue
		}
		select {
		case rj.trig <- struct{}{}:
		default:
		}
	}
	return nil
}
