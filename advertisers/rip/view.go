package rip

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// How the speaker learns what the routers hold (Views).
const (
	queryTimeout = 300 * time.Millisecond
	// A router that left a specific Request unanswered (BIRD answers none)
	// is read from its updates for this long before it is asked again.
	noQueryFor = 5 * time.Minute
	// Routers not heard from for this long are no longer shown (RIP's own
	// route timeout).
	routerTimeout = 180 * time.Second
)

// ViewSource says how a RouterView was learned.
const (
	// ViewQuery: the router answered a specific Request for the prefix
	// (FRR). Such answers skip split horizon: the metric is the router's own.
	ViewQuery = "query"
	// ViewUpdate: read from the router's updates on our link (BIRD, which
	// answers no specific Request, and FRR on an authenticated link, which
	// does not either). Split horizon applies: a route the router holds
	// through us comes back with metric 16 (poisoned reverse, BIRD) or is
	// left out (FRR).
	ViewUpdate = "update"
)

// RouterView is what one router on one of our links holds for one of our
// prefixes.
type RouterView struct {
	Interface string       `json:"interface"`
	Router    netip.Addr   `json:"router"`
	Prefix    netip.Prefix `json:"prefix"`
	Known     bool         `json:"known"`  // false: the router has said nothing about the prefix
	Metric    int          `json:"metric"` // the router's metric; 16: no route
	ViaUs     bool         `json:"via_us"` // the router's route goes through this replica
	Source    string       `json:"source"` // ViewQuery or ViewUpdate
	At        time.Time    `json:"at"`
	Announced int          `json:"announced"` // our metric for the prefix when the view was taken (16: poisoned)
	// Inferred: the router does not name the prefix to us at all, which
	// split horizon does for a route through us (FRR with authentication,
	// which answers no specific Request then).
	Inferred bool `json:"inferred,omitempty"`
}

// Disagreement says how the router's choice contradicts what this replica
// announces, in an operator's words ("" if it does not). A router that
// prefers another replica whose path is at least as good does not
// disagree: that is the failover shape's standby.
func (v RouterView) Disagreement() string {
	holds := func() string {
		switch {
		case !v.Known:
			return "has said nothing about it"
		case v.Metric >= MetricInfinity:
			return "has no route"
		case v.ViaUs:
			return fmt.Sprintf("holds %d via this replica", v.Metric)
		}
		return fmt.Sprintf("holds %d via another path", v.Metric)
	}
	if v.Announced >= MetricInfinity {
		if v.Known && v.ViaUs && v.Metric < MetricInfinity {
			return fmt.Sprintf("we poisoned %v but %v still %s", v.Prefix, v.Router, holds())
		}
		return ""
	}
	want := v.Announced + 1
	switch {
	case !v.Known, v.Metric >= MetricInfinity,
		v.ViaUs && v.Metric != want,
		!v.ViaUs && v.Metric > want:
		return fmt.Sprintf("we announce %d but %v %s", v.Announced, v.Router, holds())
	}
	return ""
}

// said is what a router last advertised on our link for one of our prefixes.
type said struct {
	metric int
	at     time.Time
}

// noteResponse records, from a router's Response, the router and what it
// says about our prefixes. Called with s.mu held.
func (s *Speaker) noteResponseLocked(l *link, from netip.Addr, pkt *Packet, now time.Time) {
	s.noteRouterLocked(l, from, now)
	for _, e := range pkt.Entries {
		if s.routes[e.Prefix] == nil {
			continue
		}
		k := heardKey{from, e.Prefix}
		if _, ok := l.said[k]; !ok && len(l.said) >= maxHeard {
			clear(l.said)
		}
		l.said[k] = said{e.Metric, now}
	}
}

func (s *Speaker) noteRouterLocked(l *link, router netip.Addr, now time.Time) {
	if _, ok := l.routers[router]; !ok && len(l.routers) >= maxHeard {
		clear(l.routers)
	}
	l.routers[router] = now
}

// Views reports what every router heard on our links holds for each of the
// given prefixes that the speaker announces. Each router is asked with a
// specific Request (answered without split horizon, as FRR does); a router
// that does not answer (BIRD) is asked for its whole table instead and read
// from its updates. It takes up to a few hundred milliseconds per router
// and prefix, bounded by ctx.
func (s *Speaker) Views(ctx context.Context, prefixes []netip.Prefix) []RouterView {
	type target struct {
		l      *link
		router netip.Addr
	}
	// A link whose routers have not spoken yet (they send nothing while
	// every route they have is split-horizoned towards us) is asked for
	// the whole table: their answers make them known.
	s.mu.Lock()
	asked := false
	for _, l := range s.links {
		if len(l.routers) == 0 && !s.closed {
			for _, dst := range l.dests {
				if err := s.sendLocked(l, dst, CommandRequest, []Entry{s.proto.WholeTable}); err != nil {
					s.log.Debug("asking routers for their tables", "interface", l.name, "err", err)
				}
			}
			asked = true
		}
	}
	s.mu.Unlock()
	if asked {
		sleepCtx(ctx, queryTimeout)
	}
	s.mu.Lock()
	now := time.Now()
	var targets []target
	for _, l := range s.links {
		for r, at := range l.routers {
			if now.Sub(at) < routerTimeout {
				targets = append(targets, target{l, r})
			}
		}
	}
	s.mu.Unlock()
	slices.SortFunc(targets, func(a, b target) int {
		if a.l.name != b.l.name {
			return cmp.Compare(a.l.name, b.l.name)
		}
		return a.router.Compare(b.router)
	})

	// Routers that answer no specific Request are asked for their whole
	// table, which they answer at once (BIRD paces its triggered updates
	// 5 s apart), so that what they said is fresh.
	refreshed := false
	for _, t := range targets {
		if !s.answersQueries(t.router) {
			s.requestTable(t.l, t.router)
			refreshed = true
		}
	}
	if refreshed {
		sleepCtx(ctx, queryTimeout)
	}
	var out []RouterView
	for _, t := range targets {
		for _, p := range prefixes {
			announced, ok := s.announced(p)
			if !ok {
				continue
			}
			v := RouterView{Interface: t.l.name, Router: t.router, Prefix: p, Announced: announced}
			if s.answersQueries(t.router) {
				qctx, cancel := context.WithTimeout(ctx, queryTimeout)
				m, err := s.Query(qctx, t.l.name, t.router, p)
				cancel()
				if err == nil {
					v.Known, v.Metric, v.Source, v.At = true, m, ViewQuery, time.Now()
					// The answer carries no next hop (FRR sends 0.0.0.0):
					// a metric one above ours is our route.
					v.ViaUs = m < MetricInfinity && m == announced+1
					out = append(out, v)
					continue
				}
				if ctx.Err() != nil {
					return out
				}
				s.noteNoQueries(t.router)
				s.requestTable(t.l, t.router)
				sleepCtx(ctx, queryTimeout) // the answer comes as an update
			}
			s.mu.Lock()
			sd, known := t.l.said[heardKey{t.router, p}]
			s.mu.Unlock()
			v.Known, v.Metric, v.Source, v.At = known, sd.metric, ViewUpdate, sd.at
			switch {
			case announced >= MetricInfinity:
				if !known {
					v.Known, v.Metric = true, MetricInfinity // silent about a prefix we poisoned: no route
				}
			case !known:
				// Split horizon: a router leaves out of its updates to us
				// the routes it has through us (FRR). It has spoken on the
				// link, so it would name a route it had from elsewhere.
				v.Known, v.ViaUs, v.Metric, v.Inferred = true, true, announced+1, true
			case sd.metric >= MetricInfinity:
				// Poisoned reverse: our own route comes back with 16 (BIRD).
				v.ViaUs, v.Metric = true, announced+1
			}
			out = append(out, v)
		}
	}
	return out
}

// announced is the metric the speaker sends for p (16 while withdrawing);
// false if p is not in its table.
func (s *Speaker) announced(p netip.Prefix) (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.routes[p]
	if r == nil {
		return 0, false
	}
	if r.withdrawn {
		return MetricInfinity, true
	}
	return r.metric, true
}

func (s *Speaker) answersQueries(router netip.Addr) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Now().After(s.noQuery[router])
}

func (s *Speaker) noteNoQueries(router netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.noQuery) >= maxHeard {
		clear(s.noQuery)
	}
	s.noQuery[router] = time.Now().Add(noQueryFor)
}

// requestTable asks one router for its whole table, by unicast.
func (s *Speaker) requestTable(l *link, router netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.silentLocked(l) {
		return
	}
	if err := s.sendLocked(l, s.proto.addr(router, l.name), CommandRequest, []Entry{s.proto.WholeTable}); err != nil {
		s.log.Debug("asking a router for its table", "interface", l.name, "router", router, "err", err)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
