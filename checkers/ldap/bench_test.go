package ldap

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/ripcord/ripcord/lab/services"
	"github.com/ripcord/ripcord/plugins/checkapi"
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
	fresh := with(svc, "reference", provider.URL(), "max_lag", "30s")
	for _, bc := range []struct {
		name     string
		target   string
		settings map[string]any
		stateDir bool // keep the reference's reading in a file, as under the daemon
	}{
		{"bind+search", provider.URL(), svc, false},
		{"anonymous", provider.URL(), map[string]any{"base": services.SlapdTestEntryDN, "scope": "base"}, false},
		{"bind+search+freshness", consumer.URL(), fresh, false},
		{"bind+search+freshness+state_dir", consumer.URL(), fresh, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			raw, err := json.Marshal(bc.settings)
			if err != nil {
				b.Fatal(err)
			}
			req := &checkapi.Request{Target: bc.target, Settings: raw}
			dir := ""
			if bc.stateDir {
				dir = b.TempDir()
			}
			c := newChecker(dir)
			var durations []time.Duration
			for b.Loop() {
				ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
				start := time.Now()
				res, err := c.Check(ctx, req)
				durations = append(durations, time.Since(start))
				cancel()
				if err != nil || res.Status != checkapi.StatusOK {
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
