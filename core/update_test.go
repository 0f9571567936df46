package core

import (
	"context"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/ripcord/ripcord/advertisers"
	"github.com/ripcord/ripcord/plugins/checkapi"
)

func TestEngineUpdate(t *testing.T) {
	spec := func(name, vip string) ServiceSpec {
		return ServiceSpec{Name: name, VIP: netip.MustParsePrefix(vip), Metric: 1, DownMetric: 16, DrainMetric: 10,
			FailbackDelay: time.Hour, Checks: []CheckSpec{{Name: "bind", Rise: 1, Fall: 1}}}
	}
	job := func(svc string, interval time.Duration) Job {
		return Job{Service: svc, Name: "bind", Checker: "x", Target: "t", Interval: interval, Timeout: 5 * time.Millisecond}
	}
	run := &scriptRunner{}
	run.status.Store(int32(checkapi.StatusOK))
	rec := &recorder{ch: make(chan struct{}, 1)}
	specs := []ServiceSpec{spec("a", "192.0.2.1/32"), spec("b", "192.0.2.2/32")}
	jobs := []Job{job("a", 10*time.Millisecond), job("b", 10*time.Millisecond)}
	e := New(Options{Services: specs, Jobs: jobs, Runner: run, Publish: rec.publish})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()
	defer func() { cancel(); <-done }()

	waitSet := func(want map[string]int) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			rec.mu.Lock()
			var last []advertisers.Announcement
			if n := len(rec.sets); n > 0 {
				last = rec.sets[n-1]
			}
			rec.mu.Unlock()
			got := map[string]int{}
			for _, a := range last {
				got[a.Prefix.String()] = a.Metric
			}
			if reflect.DeepEqual(got, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("published %v, want %v", got, want)
			}
		}
	}
	waitSet(map[string]int{"192.0.2.1/32": 1, "192.0.2.2/32": 1})
	gens := func() map[jobKey]uint64 {
		e.mu.Lock()
		defer e.mu.Unlock()
		out := map[jobKey]uint64{}
		for k, rj := range e.running {
			out[k] = rj.gen
		}
		return out
	}
	before := gens()
	rec.mu.Lock()
	published := len(rec.sets)
	rec.mu.Unlock()

	// The same config again: nothing restarts, nothing is published.
	c, err := e.Update(ctx, specs, jobs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Changes{Unchanged: []string{"a", "b"}}); !reflect.DeepEqual(c, want) {
		t.Errorf("unchanged reload: %+v, want %+v", c, want)
	}
	time.Sleep(50 * time.Millisecond) // a few check intervals
	if after := gens(); !reflect.DeepEqual(after, before) {
		t.Errorf("jobs restarted by an unchanged reload: %v -> %v", before, after)
	}
	rec.mu.Lock()
	if len(rec.sets) != published {
		t.Errorf("an unchanged reload published %d sets", len(rec.sets)-published)
	}
	rec.mu.Unlock()

	// b removed, c added, a's check runs at a new interval: a keeps its
	// state and announcement; b leaves the set; c starts.
	upAt := e.Status()[0].Since
	run.status.Store(int32(checkapi.StatusFailed)) // c must not come up, a must not be re-evaluated into down
	c, err = e.Update(ctx, []ServiceSpec{spec("a", "192.0.2.1/32"), spec("c", "192.0.2.3/32")},
		[]Job{job("a", time.Hour), job("c", time.Hour)}, []string{"c"})
	if err != nil {
		t.Fatal(err)
	}
	want := Changes{Added: []string{"c"}, Removed: []string{"b"}, Unchanged: []string{"a"}, Restarted: []string{"a/bind"}}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("reload: %+v, want %+v", c, want)
	}
	waitSet(map[string]int{"192.0.2.1/32": 1, "192.0.2.3/32": 16})
	st := e.Status()
	if len(st) != 2 || st[0].Name != "a" || st[0].State != "up" || !st[0].Since.Equal(upAt) || st[1].Name != "c" || !st[1].Drained {
		t.Errorf("status after reload: %+v", st)
	}
	if err := e.SetDrained("b", true); err == nil {
		t.Error("the removed service can still be drained")
	}
	if err := e.CheckNow("c"); err != nil {
		t.Error(err)
	}

	// A changed service spec keeps the state of its unchanged checks.
	changed := spec("a", "192.0.2.1/32")
	changed.Metric = 3
	c, err = e.Update(ctx, []ServiceSpec{changed, spec("c", "192.0.2.3/32")},
		[]Job{job("a", time.Hour), job("c", time.Hour)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Changes{Changed: []string{"a"}, Unchanged: []string{"c"}}); !reflect.DeepEqual(c, want) {
		t.Errorf("metric change: %+v, want %+v", c, want)
	}
	waitSet(map[string]int{"192.0.2.1/32": 3, "192.0.2.3/32": 16}) // c: drained, but never up yet
}
