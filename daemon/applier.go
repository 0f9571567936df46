package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/ripcord/ripcord/advertisers"
	"github.com/ripcord/ripcord/control"
)

// applier hands the latest desired set to one advertiser, retrying on error.
// Only the newest set matters, so a slow advertiser never blocks the engine.
type applier struct {
	name    string
	adv     advertisers.Advertiser
	metrics *control.Metrics
	log     *slog.Logger
	next    chan []advertisers.Announcement

	mu        sync.Mutex
	allowed   map[string]bool // prefixes in the config: nothing else is ever passed on
	announced map[string]int  // prefix -> metric last applied
	lastErr   string
}

func newApplier(name string, a advertisers.Advertiser, m *control.Metrics, log *slog.Logger) *applier {
	return &applier{name: name, adv: a, metrics: m, log: log,
		next: make(chan []advertisers.Announcement, 1), announced: map[string]int{}}
}

// want replaces any pending set with set.
func (a *applier) want(set []advertisers.Announcement) {
	for {
		select {
		case a.next <- set:
			return
		default:
		}
		select {
		case <-a.next:
		default:
		}
	}
}

const retryEvery = time.Second

func (a *applier) run(ctx context.Context) {
	var pending []advertisers.Announcement
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case pending = <-a.next:
		case <-retry.C:
		}
		if pending == nil {
			continue
		}
		if err := a.apply(ctx, pending); err != nil {
			a.metrics.AdvertiseErrors.WithLabelValues(a.name).Inc()
			a.log.Warn("advertiser failed, will retry", "advertiser", a.name, "err", err)
			retry.Reset(retryEvery)
			continue
		}
		pending = nil
	}
}

// setAllowed replaces the prefixes the config has (reload).
func (a *applier) setAllowed(allowed map[string]bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.allowed = allowed
}

func (a *applier) apply(ctx context.Context, set []advertisers.Announcement) error {
	set = advertisers.Carried(a.adv, set)
	a.mu.Lock()
	for _, ann := range set {
		if !a.allowed[ann.Prefix.String()] {
			// The engine only knows configured prefixes; this guards the promise.
			a.mu.Unlock()
			return fmt.Errorf("refusing to announce %s: not in the config", ann.Prefix)
		}
	}
	a.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := a.adv.Set(cctx, set)
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.lastErr = err.Error()
		return err
	}
	a.lastErr = ""
	for p := range a.announced { // a service removed by a reload
		if !slices.ContainsFunc(set, func(ann advertisers.Announcement) bool { return ann.Prefix.String() == p }) {
			a.metrics.AnnouncedMetric.DeleteLabelValues(p, a.name)
		}
	}
	clear(a.announced)
	_, withdrawsDown := a.adv.(advertisers.DownWithdrawer)
	for _, ann := range set {
		m := ann.Metric
		if withdrawsDown && ann.Withdrawn() {
			m = advertisers.MetricPoison // what peers and status must see: no route
		}
		a.announced[ann.Prefix.String()] = m
		a.metrics.AnnouncedMetric.WithLabelValues(ann.Prefix.String(), a.name).Set(float64(m))
		if m < advertisers.MetricPoison {
			a.log.Debug("announced", "advertiser", a.name, "prefix", ann.Prefix, "metric", m)
		}
	}
	return nil
}

// state returns what was last applied for prefix and the last error.
func (a *applier) state(prefix string) (int, string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.announced[prefix], a.lastErr
}
