package daemon

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/ripcord/ripcord/advertisers/bgp"
	"github.com/ripcord/ripcord/advertisers/rip"
	"github.com/ripcord/ripcord/control"
)

// Views of the routers: what RIP routers hold for our VIPs, and the BGP
// sessions.

// routerViewEvery is how often the routers on RIP links are asked what they
// hold for our VIPs: often enough for an incident, rare enough to cost the
// routers nothing (one small Request per router and VIP).
const routerViewEvery = 5 * time.Second

// routerViews keeps the last look at what the routers hold, by VIP.
type routerViews struct {
	mu    sync.Mutex
	byVIP map[netip.Prefix][]control.RouterView
}

func (rv *routerViews) get(vip netip.Prefix) []control.RouterView {
	if rv == nil {
		return nil
	}
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return rv.byVIP[vip]
}

// watchRouters asks the routers of every RIP speaker (RIPv2, RIPng) every
// routerViewEvery until ctx is done, each about the VIPs it carries.
func (d *Daemon) watchRouters(ctx context.Context, speakers []*rip.Speaker) {
	t := time.NewTicker(routerViewEvery)
	defer t.Stop()
	for {
		names := map[netip.Prefix]string{}
		for _, s := range d.config().Services { // reload may change them
			for _, v := range s.VIPs() {
				names[v] = s.Name
			}
		}
		vctx, cancel := context.WithTimeout(ctx, routerViewEvery-time.Second)
		var views []rip.RouterView
		for _, sp := range speakers {
			var vips []netip.Prefix
			for v := range names {
				if sp.Carries(v) {
					vips = append(vips, v)
				}
			}
			slices.SortFunc(vips, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
			views = append(views, sp.Views(vctx, vips)...)
		}
		cancel()
		byVIP := map[netip.Prefix][]control.RouterView{}
		d.metrics.RouterDisagrees.Reset()
		for _, v := range views {
			cv := control.RouterView{Interface: v.Interface, Router: v.Router.String(), Known: v.Known, Metric: v.Metric,
				ViaUs: v.ViaUs, Source: v.Source, Inferred: v.Inferred, At: v.At, Disagreement: v.Disagreement()}
			byVIP[v.Prefix] = append(byVIP[v.Prefix], cv)
			disagrees := 0.0
			if cv.Disagreement != "" {
				disagrees = 1
			}
			d.metrics.RouterDisagrees.WithLabelValues(names[v.Prefix], v.Interface, cv.Router).Set(disagrees)
		}
		d.routers.mu.Lock()
		d.routers.byVIP = byVIP
		d.routers.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// bgpSessions reports the BGP speaker's sessions for status.
func bgpSessions(ctx context.Context, sp *bgp.Speaker) []control.BGPSession {
	var out []control.BGPSession
	for _, s := range sp.Sessions(ctx) {
		out = append(out, control.BGPSession{Peer: s.Peer.String(), PeerASN: s.PeerASN, State: s.State, Since: s.Since,
			Advertised: s.Advertised, Received: s.Received})
	}
	return out
}

var bgpUpDesc = prometheus.NewDesc("ripcord_bgp_session_up", "1 if the BGP session with the peer is established.",
	[]string{"peer"}, nil)

// bgpCollector reads the sessions at scrape time.
type bgpCollector struct{ sp *bgp.Speaker }

func (c bgpCollector) Describe(ch chan<- *prometheus.Desc) { ch <- bgpUpDesc }

func (c bgpCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for _, s := range c.sp.Sessions(ctx) {
		up := 0.0
		if s.State == "established" {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(bgpUpDesc, prometheus.GaugeValue, up, s.Peer.String())
	}
}
