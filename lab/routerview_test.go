package lab

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ripcord/ripcord/control"
)

// TestStatusShowsTheRoutersView: `ripcord status` on each replica shows what
// its site router holds for every VIP, and that agrees with the router's own
// table (vtysh / birdc), in both shapes, with FRR (answers specific
// Requests) and BIRD (read from its updates).
func TestStatusShowsTheRoutersView(t *testing.T) {
	needRoot(t)
	t.Parallel()
	for _, tc := range []struct {
		routers string
		shape   Shape
	}{{"frr", ShapeFailover}, {"bird", ShapeLoadBalance}} {
		t.Run(tc.routers+"/"+string(tc.shape), func(t *testing.T) {
			ctx := labContext(t, 3*time.Minute)
			tl := buildLab(t, ctx, Options{Shape: tc.shape, Routers: tc.routers})
			site := map[string]*Router{"sa": tl.RA, "sb": tl.RB}
			// On an authenticated link FRR answers no Request of ours; it is
			// known from its first periodic update (30 s, jittered).
			var last string
			for deadline := time.Now().Add(45 * time.Second); ; time.Sleep(500 * time.Millisecond) {
				if last = tl.compareRouterViews(ctx, site); last == "" {
					return
				}
				if time.Now().After(deadline) {
					t.Fatal(last)
				}
			}
		})
	}
}

// compareRouterViews returns "" when every replica's status shows, for
// every service, exactly what its site router holds; else the first
// difference.
func (tl *testLab) compareRouterViews(ctx context.Context, site map[string]*Router) string {
	for _, rep := range tl.Replicas() {
		st, err := rep.Status()
		if err != nil {
			return err.Error()
		}
		router := site[rep.Name]
		for _, svc := range st.Services {
			route, err := tl.RouterRoute(ctx, router, svc.Name)
			if err != nil {
				return err.Error()
			}
			var v *control.RouterView
			for i := range svc.Routers {
				if svc.Routers[i].Router == rep.Gateway.String() {
					v = &svc.Routers[i]
				}
			}
			switch {
			case v == nil:
				return fmt.Sprintf("%s/%s: status shows no view of %s (%s): %+v", rep.Name, svc.Name, router.Name, rep.Gateway, svc.Routers)
			case v.Disagreement != "":
				return fmt.Sprintf("%s/%s: %s", rep.Name, svc.Name, v.Disagreement)
			case v.Metric != route.Metric || v.ViaUs != (route.NextHop == rep.Addr):
				return fmt.Sprintf("%s/%s: status says %s holds %s (%s), the router says metric %d via %v",
					rep.Name, svc.Name, router.Name, v.Holds(), v.Source, route.Metric, route.NextHop)
			}
		}
	}
	return ""
}
