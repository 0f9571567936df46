package core

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/ripcord/ripcord/advertisers"
	"github.com/ripcord/ripcord/plugins/sdk"
)

// Runner runs one check; the plugin host implements it. It never fails: a
// broken checker is a failed result with reason checker_error.
type Runner interface {
	Check(ctx context.Context, checker string, req *sdk.Request) *sdk.Result
}

// Job is one scheduled check of a service (or of a peer, for assistance).
type Job struct {
	Service  string
	Name     string
	Peer     bool
	Checker  string
	Target   string
	Settings sdk.Settings
	Interval time.Duration
	Timeout  time.Duration
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
	// OnResult is called after every check (for metrics); optional.
	OnResult func(j Job, r *sdk.Result, took time.Duration)
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
	trigger  map[string][]chan struct{} // service name -> one check-now channel per job

	// pubMu serialises publish from computing the set to handing it on, so
	// a set computed earlier is never handed on after a newer one.
	pubMu sync.Mutex
	last  []advertisers.Announcement // guarded by pubMu
}

type jobResult struct {
	job  Job
	res  *sdk.Result
	at   time.Time
	took time.Duration
}

// New builds an engine; Run starts it.
func New(o Options) *Engine {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Engine{o: o, byName: map[string]*Service{}, results: make(chan jobResult, 64),
		kick: make(chan struct{}, 1), now: o.Now, trigger: map[string][]chan struct{}{}}
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
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, j := range e.o.Jobs {
		trig := make(chan struct{}, 1)
		e.mu.Lock()
		e.trigger[j.Service] = append(e.trigger[j.Service], trig)
		e.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.schedule(ctx, j, trig)
		}()
	}
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
		}
	}
}

// schedule runs one job at its interval with ±10 % jitter; the first run
// comes soon after start, spread so that checks do not fire together.
func (e *Engine) schedule(ctx context.Context, j Job, trig <-chan struct{}) {
	wait := time.Duration(rand.Int64N(int64(j.Interval)/10 + 1))
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-trig:
			t.Stop()
		}
		cctx, cancel := context.WithTimeout(ctx, j.Timeout)
		start := time.Now()
		res := e.o.Runner.Check(cctx, j.Checker, &sdk.Request{Target: j.Target, Settings: j.Settings})
		took := time.Since(start)
		cancel()
		if ctx.Err() != nil {
			return
		}
		select {
		case e.results <- jobResult{job: j, res: res, at: e.now(), took: took}:
		case <-ctx.Done():
			return
		}
		jitter := 0.9 + 0.2*rand.Float64()
		wait = time.Duration(float64(j.Interval) * jitter)
	}
}

func (e *Engine) apply(r jobResult) {
	e.mu.Lock()
	s := e.byName[r.job.Service]
	from := s.State()
	var changed bool
	if r.job.Peer {
		changed = s.ObservePeer(r.at, r.job.Name, r.res)
	} else {
		changed = s.Observe(r.at, r.job.Name, r.res)
	}
	to, reason := s.State(), s.reason
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
		e.mu.Lock()
		from := s.State()
		// Advance also reports changes made by time alone (end of the
		// assist delay or of the hold-down).
		c := s.Advance(now)
		to, reason := s.State(), s.reason
		e.mu.Unlock()
		e.transitioned(s, from, to, reason)
		changed = changed || c
	}
	if changed {
		e.publish()
	}
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
	out := make([]advertisers.Announcement, 0, len(e.services))
	for _, s := range e.services {
		out = append(out, advertisers.Announcement{Prefix: s.spec.VIP, Metric: s.Metric(now), Draining: s.drained,
			Down: s.state == Down || s.state == Starting})
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
	if slices.Equal(d, e.last) {
		return
	}
	e.last = d
	if e.o.Publish != nil {
		e.o.Publish(d)
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
	if !ok {
		e.mu.Unlock()
		return fmt.Errorf("no service %q", name)
	}
	from := s.State()
	s.SetDrained(e.now(), on)
	to, reason := s.State(), s.reason
	e.mu.Unlock()
	e.transitioned(s, from, to, reason)
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
	for _, ch := range e.trigger[name] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	return nil
}
