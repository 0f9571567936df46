package core

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/ripcord/ripcord/plugins/checkapi"
)

func TestTakeTickFillsSlotsInOrder(t *testing.T) {
	e := New(Options{})
	var got []tickKey
	for range slotsPerInterval*checksPerTick + 1 {
		got = append(got, e.takeTickLocked(time.Second))
	}
	for i, k := range got[:slotsPerInterval*checksPerTick] {
		if want := (tickKey{time.Second, i / checksPerTick}); k != want {
			t.Fatalf("job %d placed in %+v, want %+v", i, k, want)
		}
	}
	// Every slot full: the least crowded, the first of equals.
	if k := got[len(got)-1]; k != (tickKey{time.Second, 0}) {
		t.Fatalf("job past the last slot placed in %+v, want slot 0", k)
	}
	// A job that stops makes room in its slot; other intervals have their own.
	e.stopJobLocked(&runningJob{tick: tickKey{time.Second, 5}, cancel: func() {}})
	if k := e.takeTickLocked(time.Second); k != (tickKey{time.Second, 5}) {
		t.Fatalf("after a stop in slot 5: placed in %+v", k)
	}
	if k := e.takeTickLocked(2 * time.Second); k != (tickKey{2 * time.Second, 0}) {
		t.Fatalf("another interval: placed in %+v", k)
	}
	if p := (tickKey{time.Second, 4}).phase(); p != time.Second*4/slotsPerInterval {
		t.Fatalf("phase of slot 4: %s", p)
	}
}

func TestNextTick(t *testing.T) {
	e := New(Options{})
	e.start = time.Unix(1000, 0)
	at := func(ms int) time.Time { return e.start.Add(time.Duration(ms) * time.Millisecond) }
	for _, tc := range []struct {
		name         string
		last, now    int // ms after start
		every, phase time.Duration
		want         int
	}{
		{"on its tick: one interval later", 1000, 1010, time.Second, 0, 2000},
		{"with a phase", 1250, 1300, time.Second, 250 * time.Millisecond, 2250},
		{"off the grid: the first tick half an interval on", 1400, 1410, time.Second, 0, 2000},
		{"off the grid, just after a tick", 1100, 1110, time.Second, 0, 2000},
		{"off the grid, just before a tick", 1900, 1910, time.Second, 0, 3000},
		{"overran: the first tick not in the past", 1000, 3500, time.Second, 0, 4000},
		{"fast interval: phase taken modulo", 1250, 1260, 200 * time.Millisecond, 250 * time.Millisecond, 1450},
		{"back from fast to the slow grid", 1450, 1460, time.Second, 250 * time.Millisecond, 2250},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := e.nextTick(at(tc.last), at(tc.now), tc.every, tc.phase)
			if want := at(tc.want); !got.Equal(want) {
				t.Fatalf("nextTick = start+%s, want start+%s", got.Sub(e.start), want.Sub(e.start))
			}
		})
	}
}

// startRecorder records when each check starts.
type startRecorder struct {
	mu     sync.Mutex
	starts map[string][]time.Time
}

func (r *startRecorder) Check(_ context.Context, _ string, req *checkapi.Request) *checkapi.Result {
	r.mu.Lock()
	r.starts[req.Target] = append(r.starts[req.Target], time.Now())
	r.mu.Unlock()
	return checkapi.OK("fine")
}

// Checks with one interval run on the same ticks, one interval apart, from
// the engine's start: no drift, no jitter. (Spread by jitter, as they used
// to be, each check would drift from the grid by several milliseconds per
// run.)
func TestChecksShareTicks(t *testing.T) {
	const n, interval, runs = 20, 100 * time.Millisecond, 8
	run := &startRecorder{starts: map[string][]time.Time{}}
	var specs []ServiceSpec
	var jobs []Job
	for i := range n {
		name := fmt.Sprintf("s%d", i)
		specs = append(specs, ServiceSpec{Name: name, VIP: netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}), 32), Metric: 1,
			DownMetric: 16, Checks: []CheckSpec{{Name: "c", Rise: 1, Fall: 1}}})
		jobs = append(jobs, Job{Service: name, Name: "c", Target: name, Interval: interval, Timeout: interval})
	}
	e := New(Options{Services: specs, Jobs: jobs, Runner: run})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	time.Sleep(runs*interval + interval/2)
	cancel()
	<-done
	e.mu.Lock()
	start := e.start
	e.mu.Unlock()
	run.mu.Lock()
	defer run.mu.Unlock()
	for target, starts := range run.starts {
		if len(starts) < runs-2 {
			t.Errorf("%s ran %d times in %s, want about %d", target, len(starts), runs*interval, runs)
		}
		for k, at := range starts {
			// Late by scheduling, never early; the bound leaves a loaded
			// machine room.
			if off := at.Sub(start.Add(time.Duration(k) * interval)); off < 0 || off > interval/4 {
				t.Errorf("%s: run %d started %s after its tick", target, k, off)
			}
		}
	}
}
