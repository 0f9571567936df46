package plugins

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ripcord/ripcord/plugins/checkapi"
)

// The cost of running a check out of process: the same trivial check called
// directly and through a plugin (this test binary re-executed), one at a time.
// Recorded in docs/benchmarks.md.

var benchReq = &checkapi.Request{Target: "ok", Settings: checkapi.Settings(`{"port": 389}`)}

func BenchmarkCheckDirect(b *testing.B) {
	c := testChecker{name: "direct"}
	benchChecks(b, func(ctx context.Context) *checkapi.Result {
		res, err := c.Check(ctx, benchReq)
		if err != nil {
			b.Fatal(err)
		}
		return res
	})
}

// BenchmarkCheckPlugin: a built-in checker, over checkpipe.
func BenchmarkCheckPlugin(b *testing.B) { benchPlugin(b, builtin) }

// BenchmarkCheckPluginGRPC: a third-party plugin, over go-plugin's gRPC.
func BenchmarkCheckPluginGRPC(b *testing.B) { benchPlugin(b, thirdParty) }

func benchPlugin(b *testing.B, tr transport) {
	h, _ := newTestHost(b, tr, Options{})
	if res := check(h, "test-bench", "ok", 10*time.Second); res.Status != checkapi.StatusOK {
		b.Fatalf("warm-up: %+v", res)
	}
	benchChecks(b, func(ctx context.Context) *checkapi.Result { return h.Check(ctx, "test-bench", benchReq) })
}

// benchChecks times each call of check, with a fresh 5s deadline as the
// daemon gives, and reports the median and 99th percentile.
func benchChecks(b *testing.B, check func(ctx context.Context) *checkapi.Result) {
	var durs []time.Duration
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		t0 := time.Now()
		res := check(ctx)
		durs = append(durs, time.Since(t0))
		cancel()
		if res.Status != checkapi.StatusOK {
			b.Fatalf("check: %+v", res)
		}
	}
	slices.Sort(durs)
	b.ReportMetric(float64(durs[len(durs)/2]), "p50-ns")
	b.ReportMetric(float64(durs[len(durs)*99/100]), "p99-ns")
}
