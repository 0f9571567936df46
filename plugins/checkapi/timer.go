package checkapi

import (
	"sync"
	"time"
)

// Timer times the phases of one check. The zero value is ready to use, and
// it is safe for concurrent use. Phases are listed in the order they start:
//
//	func (c checker) Check(ctx context.Context, req *checkapi.Request) (*checkapi.Result, error) {
//		var t checkapi.Timer
//		return t.Done(c.probe(ctx, req, &t)) // every return of probe gets the phases
//	}
//
//	func (c checker) probe(ctx context.Context, req *checkapi.Request, t *checkapi.Timer) (*checkapi.Result, error) {
//		connect := t.Start("connect")
//		conn, err := checkapi.Dial(ctx, "tcp", req.Target)
//		connect.End()
//		...
//		defer t.Start("expect").End() // ends however the function returns
type Timer struct {
	mu     sync.Mutex
	phases []Phase
	starts []time.Time // of each phase; zero once it ended
}

// Span is one phase in progress.
type Span struct {
	t *Timer
	i int
}

// Start begins the phase name.
func (t *Timer) Start(name string) Span {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.phases = append(t.phases, Phase{Name: name})
	t.starts = append(t.starts, time.Now())
	return Span{t, len(t.phases) - 1}
}

// End ends the phase and returns how long it took. Only the first End of a
// span counts.
func (s Span) End() time.Duration {
	s.t.mu.Lock()
	defer s.t.mu.Unlock()
	if !s.t.starts[s.i].IsZero() {
		s.t.phases[s.i].Duration = time.Since(s.t.starts[s.i])
		s.t.starts[s.i] = time.Time{}
	}
	return s.t.phases[s.i].Duration
}

// Phases returns the phases so far; a phase still running counts until now.
func (t *Timer) Phases() []Phase {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Phase, len(t.phases))
	for i, p := range t.phases {
		if !t.starts[i].IsZero() {
			p.Duration = time.Since(t.starts[i])
		}
		out[i] = p
	}
	return out
}

// Done appends the phases so far to res and returns res and err as they
// are, so that Check can end with `return t.Done(probe(...))`.
func (t *Timer) Done(res *Result, err error) (*Result, error) {
	if res != nil {
		res.Phases = append(res.Phases, t.Phases()...)
	}
	return res, err
}
