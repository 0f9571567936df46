package rip

import (
	"net"
	"slices"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/ripcord/ripcord/advertisers"
	"github.com/ripcord/ripcord/lab/routers"
)

// BenchmarkKernelConvergence measures, against each real router, the time
// from Set to the change in the router's kernel routing table: 20 changes,
// alternately metric 16 (the route must leave) and metric 1 (it must come
// back). The kernel table is read over netlink every 0.5 ms. Run with
//
//	go test -run '^$' -bench KernelConvergence -benchtime 1x ./advertisers/rip/
func BenchmarkKernelConvergence(b *testing.B) {
	for _, kind := range kinds {
		b.Run(kind, func(b *testing.B) {
			for b.Loop() {
				med, worst, withdraw, restore := convergence(b, kind, 20)
				b.ReportMetric(float64(med.Microseconds())/1000, "median-ms")
				b.ReportMetric(float64(worst.Microseconds())/1000, "max-ms")
				b.ReportMetric(float64(withdraw.Microseconds())/1000, "withdraw-median-ms")
				b.ReportMetric(float64(restore.Microseconds())/1000, "restore-median-ms")
			}
		})
	}
}

func convergence(b *testing.B, kind string, changes int) (median, worst, withdrawMedian, restoreMedian time.Duration) {
	lb := newLab(b)
	lb.startRouter(kind, routers.Auth{})
	s := lb.speaker(lb.srv, Config{Interfaces: []Interface{{Name: srvIf}}})

	nsh, err := vnetns.GetFromName(lb.rtr.Name)
	if err != nil {
		b.Fatal(err)
	}
	defer nsh.Close()
	h, err := netlink.NewHandleAt(nsh, unix.NETLINK_ROUTE)
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	filter := &netlink.Route{Dst: &net.IPNet{IP: labVIP.Addr().AsSlice(), Mask: net.CIDRMask(32, 32)}}
	present := func() bool {
		rs, err := h.RouteListFiltered(unix.AF_INET, filter, netlink.RT_FILTER_DST)
		if err != nil {
			b.Fatal(err)
		}
		return len(rs) > 0
	}
	wait := func(want bool, since time.Time) time.Duration {
		for deadline := since.Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Microsecond) {
			if present() == want {
				return time.Since(since)
			}
		}
		b.Fatalf("%s: kernel route present=%v not reached in 10s", kind, want)
		return 0
	}
	setMetric := func(m int) time.Time {
		start := time.Now()
		if err := s.Set(b.Context(), []advertisers.Announcement{{Prefix: labVIP, Metric: m}}); err != nil {
			b.Fatal(err)
		}
		return start
	}
	wait(true, setMetric(1)) // initial learning is not counted (router start-up)
	var all, withdraw, restore []time.Duration
	for i := range changes {
		time.Sleep(50 * time.Millisecond) // let the router settle between changes
		if i%2 == 0 {
			d := wait(false, setMetric(MetricInfinity))
			withdraw = append(withdraw, d)
			all = append(all, d)
		} else {
			d := wait(true, setMetric(1))
			restore = append(restore, d)
			all = append(all, d)
		}
	}
	return med(all), slices.Max(all), med(withdraw), med(restore)
}

func med(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
