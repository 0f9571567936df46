package core

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
)

// Changes is what an Update did, by service and check name.
type Changes struct {
	Added, Removed, Changed, Unchanged []string // services
	// Restarted lists "service/check" for checks whose job was started
	// anew (changed, or new in a service that was kept); Stopped those
	// that were removed from a service that was kept.
	Restarted, Stopped []string
}

// String is a one-line summary, e.g. "added web; removed old; changed
// ldap (restarted ldap/bind); unchanged radius".
func (c Changes) String() string {
	var parts []string
	add := func(what string, names []string) {
		if len(names) > 0 {
			parts = append(parts, what+" "+strings.Join(names, ", "))
		}
	}
	add("added", c.Added)
	add("removed", c.Removed)
	add("changed", c.Changed)
	add("restarted checks", c.Restarted)
	add("stopped checks", c.Stopped)
	add("unchanged", c.Unchanged)
	if len(parts) == 0 {
		return "no services"
	}
	return strings.Join(parts, "; ")
}

type update struct {
	specs   []ServiceSpec
	jobs    []Job
	drained []string
	done    chan Changes
}

// Update applies a reloaded configuration while Run runs. A service whose
// spec is unchanged keeps its state, timers and announcement, and a check
// whose job is unchanged keeps running (its checker process too). A changed
// check restarts alone and keeps its rise/fall counts if its own spec is
// unchanged; a changed service keeps its state and is re-evaluated under
// the new spec. New services start in Starting (drained if listed); removed
// ones leave the desired set, so the advertisers withdraw them.
func (e *Engine) Update(ctx context.Context, specs []ServiceSpec, jobs []Job, drained []string) (Changes, error) {
	u := update{specs: specs, jobs: jobs, drained: drained, done: make(chan Changes, 1)}
	// Run's loop applies it, so that nothing it reads without the lock
	// changes under it.
	select {
	case e.updates <- u:
	case <-ctx.Done():
		return Changes{}, ctx.Err()
	}
	select {
	case c := <-u.done:
		return c, nil
	case <-ctx.Done():
		return Changes{}, errors.Join(ctx.Err(), errors.New("the update may still be applied"))
	}
}

func (e *Engine) update(u update) Changes {
	var c Changes
	now := e.now()
	e.mu.Lock()
	old := e.byName
	e.services, e.byName = nil, map[string]*Service{}
	for _, sp := range u.specs {
		s := old[sp.Name]
		switch {
		case s == nil:
			s = NewService(sp, now)
			s.drained = slices.Contains(u.drained, sp.Name)
			c.Added = append(c.Added, sp.Name)
		case reflect.DeepEqual(s.spec, sp):
			c.Unchanged = append(c.Unchanged, sp.Name)
		default:
			s.reconfigure(sp)
			c.Changed = append(c.Changed, sp.Name)
		}
		e.services = append(e.services, s)
		e.byName[sp.Name] = s
	}
	for name := range old {
		if e.byName[name] == nil {
			c.Removed = append(c.Removed, name)
		}
	}
	slices.Sort(c.Removed)

	want := map[jobKey]bool{}
	for _, j := range u.jobs {
		k := keyOf(j)
		want[k] = true
		rj := e.running[k]
		if rj != nil && reflect.DeepEqual(rj.job, j) {
			continue
		}
		if rj != nil {
			e.stopJobLocked(rj)
		}
		if old[j.Service] != nil {
			c.Restarted = append(c.Restarted, checkLabel(k))
		}
		if e.runCtx != nil {
			e.startJobLocked(j, false)
		}
	}
	for k, rj := range e.running {
		if !want[k] {
			e.stopJobLocked(rj)
			delete(e.running, k)
			if e.byName[k.service] != nil {
				c.Stopped = append(c.Stopped, checkLabel(k))
			}
		}
	}
	slices.Sort(c.Stopped)
	e.o.Services, e.o.Jobs = u.specs, u.jobs
	e.mu.Unlock()

	// Changed specs may change states and metrics; removed services leave
	// the set.
	for _, s := range e.services {
		e.step(s, func() bool { return s.Advance(now) })
	}
	e.publish()
	return c
}

func checkLabel(k jobKey) string {
	if k.peer {
		return k.service + "/peer:" + k.name
	}
	return k.service + "/" + k.name
}

// reconfigure puts a new spec under a running service: checks whose own
// spec is unchanged keep their counts and last results; new or changed ones
// start undecided.
func (s *Service) reconfigure(spec ServiceSpec) {
	keep := func(old []*checkState, specs []CheckSpec) []*checkState {
		var out []*checkState
		for _, cs := range specs {
			i := slices.IndexFunc(old, func(c *checkState) bool { return c.spec == cs })
			if i >= 0 {
				out = append(out, old[i])
			} else {
				out = append(out, &checkState{spec: cs})
			}
		}
		return out
	}
	s.checks = keep(s.checks, spec.Checks)
	var peers []CheckSpec
	if spec.Assist != nil {
		peers = spec.Assist.Peers
	}
	s.peers = keep(s.peers, peers)
	s.spec = spec
}
