package main

import (
	"context"
	"fmt"
	"maps"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ripcord/ripcord/lab"
)

// lossOptions is the -loss mode: a lossy path between ripcord and its own
// checked services on sa, held for a while, with the checks' settings.
type lossOptions struct {
	percent                int
	duration               time.Duration
	interval, timeout      time.Duration
	fall                   int
	replies                bool // the services' answers are dropped too
	routerKind, ripcordBin string
}

// checkRun counts one check's results as status shows them.
type checkRun struct {
	results, failed, run, longest int
	lastAt                        time.Time
	reasons                       map[string]int
}

// measureLoss drops o.percent % of the packets between ripcord and every
// service on sa (failover shape, so any route change moves clients to sb)
// for o.duration, and reports per service: check results and failures,
// the longest run of consecutive failures (fall or more moves traffic),
// state transitions, route changes at both routers, and answers from sb.
func measureLoss(o lossOptions) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	l, rec, closeLab, err := converged(ctx, lab.Options{Shape: lab.ShapeFailover, Routers: o.routerKind, Ripcord: o.ripcordBin,
		CheckInterval: o.interval, CheckTimeout: o.timeout, Fall: o.fall})
	if err != nil {
		return err
	}
	defer closeLab()
	before, err := transitions(l.SA)
	if err != nil {
		return err
	}
	if err := l.SA.DropChecks(ctx, o.percent, o.replies, lab.Services...); err != nil {
		return err
	}
	start := time.Now()
	runs := map[string]*checkRun{}
	routes := map[string]int{}
	last := map[string]string{}
	assisting, assists := map[string]bool{}, map[string]int{}
	for tick := 0; time.Since(start) < o.duration && ctx.Err() == nil; tick++ {
		rep, err := l.SA.Status()
		if err != nil {
			return fmt.Errorf("ripcord on sa: %w", err)
		}
		for _, s := range rep.Services {
			for _, c := range s.Checks {
				r := runs[s.Name]
				if r == nil {
					r = &checkRun{reasons: map[string]int{}}
					runs[s.Name] = r
				}
				if c.Peer || !c.At.After(r.lastAt) {
					continue
				}
				r.lastAt = c.At
				r.results++
				if c.Status == "failed" {
					r.failed++
					r.reasons[c.Reason]++
					r.run++
					r.longest = max(r.longest, r.run)
				} else {
					r.run = 0
				}
			}
		}
		// Peer checks (over eth0, not lossy) that time out on a busy
		// machine switch assistance on, which changes metrics too.
		for _, rp := range l.Replicas() {
			rep, err := rp.Status()
			if err != nil {
				continue
			}
			for _, s := range rep.Services {
				k := rp.Name + "/" + s.Name
				if prev, ok := assisting[k]; ok && prev != s.Assisting {
					assists[k]++
				}
				assisting[k] = s.Assisting
			}
		}
		if tick%5 == 0 {
			for _, rt := range []*lab.Router{l.RA, l.RB} {
				for _, svc := range lab.Services {
					got, err := l.RouterRoute(ctx, rt, svc)
					if err != nil {
						continue
					}
					k := rt.Name + "/" + svc
					now := fmt.Sprintf("%v %d %s", got.Present, got.Metric, got.NextHop)
					if prev, ok := last[k]; ok && prev != now {
						routes[k]++
					}
					last[k] = now
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	dropped := 0
	if o.percent > 0 {
		if dropped, err = l.SA.DroppedPackets(ctx); err != nil {
			return err
		}
	}
	after, err := transitions(l.SA)
	if err != nil {
		return err
	}
	took := time.Since(start)
	way := "towards the services"
	if o.replies {
		way = "both ways"
	}
	fmt.Printf("%d %% loss %s on sa's checks for %s (interval %s, timeout %s, fall %d, %s routers): %d packets dropped\n\n",
		o.percent, way, took.Round(time.Second), o.interval, o.timeout, o.fall, o.routerKind, dropped)
	fmt.Println("| service | checks | failed | longest failure run | transitions | route changes ra / rb | assist changes sa / sb | answers from sb (ca / cb) | failures by reason |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	samples := rec.Samples()
	for _, svc := range lab.Services {
		r := runs[svc]
		if r == nil {
			r = &checkRun{reasons: map[string]int{}}
		}
		fromSB := map[string]int{}
		for _, s := range samples {
			if s.Service == svc && s.Replica == "sb" && !s.At.Before(start) {
				fromSB[s.Client]++
			}
		}
		var reasons []string
		for _, k := range slices.Sorted(maps.Keys(r.reasons)) {
			reasons = append(reasons, fmt.Sprintf("%s %d", k, r.reasons[k]))
		}
		fmt.Printf("| %s | %d | %d (%.1f %%) | %d | %d | %d / %d | %d / %d | %d / %d | %s |\n", svc, r.results, r.failed,
			100*float64(r.failed)/float64(max(r.results, 1)), r.longest, after[svc]-before[svc],
			routes["ra/"+svc], routes["rb/"+svc], assists["sa/"+svc], assists["sb/"+svc], fromSB["ca"], fromSB["cb"], strings.Join(reasons, ", "))
	}
	if !l.SA.RipcordRunning() {
		return fmt.Errorf("ripcord on sa is not running any more:\n%s", l.LogTail(20))
	}
	return l.SA.DropChecks(ctx, 0, false)
}

func transitions(r *lab.Replica) (map[string]int, error) {
	rep, err := r.Status()
	if err != nil {
		return nil, fmt.Errorf("ripcord on %s: %w", r.Name, err)
	}
	out := map[string]int{}
	for _, s := range rep.Services {
		out[s.Name] = s.Transitions
	}
	return out, nil
}
