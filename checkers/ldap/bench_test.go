package ldap

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/ripcord/ripcord/lab/services"
	"github.com/ripcord/ripcord/plugins/sdk"
)

// BenchmarkLDAPCheck measures whole checks in process against real slapd
// (a fresh connection, bind and search per check, as in production) and
// reports the latency distribution.
func BenchmarkLDAPCheck(b *testing.B) {
	provider := startSlapd(b, services.SlapdOptions{ServerID: 1})
	consumer := startSlapd(b, services.SlapdOptions{ServerID: 2, Provider: provider.URL()})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := consumer.WaitSynced(ctx, provider); err != nil {
		b.Fatal(err)
	}
	svc := serviceSettings(b)
	for _, bc := range []struct {
		name     string
		target   string
		settings map[string]any
	}{
		{"bind+search", provider.URL(), svc},
		{"anonymous", provider.URL(), map[string]any{"base": services.SlapdTestEntryDN, "scope": "base"}},
		{"bind+search+freshness", consumer.URL(), with(svc, "reference", provider.URL(), "max_lag", "30s")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			raw, err := json.Marshal(bc.settings)
			if err != nil {
				b.Fatal(err)
			}
			req := &sdk.Request{Target: bc.target, Settings: raw}
			c := New()
			var durations []time.Duration
			for b.Loop() {
				ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
				start := time.Now()
				res, err := c.Check(ctx, req)
				durations = append(durations, time.Since(start))
				cancel()
				if err != nil || res.Status != sdk.StatusOK {
					b.Fatalf("check: %v %+v", err, res)
				}
			}
			slices.Sort(durations)
			at := func(q float64) float64 {
				return float64(durations[int(q*float64(len(durations)-1))].Microseconds()) / 1000
			}
			b.ReportMetric(at(0.50), "p50-ms")
			b.ReportMetric(at(0.99), "p99-ms")
		})
	}
}
