package checkers

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ripcord/ripcord/internal/checkpipe"
	"github.com/ripcord/ripcord/lab/services"
	"github.com/ripcord/ripcord/plugins"
	"github.com/ripcord/ripcord/plugins/checkapi"
)

// TestMain lets the test binary serve a built-in checker when the plugin
// host re-executes it, exactly as `ripcord checker NAME` does.
func TestMain(m *testing.M) {
	if os.Getenv("RIPCORD_CHECKERS_TEST_PLUGIN") == "1" {
		c, ok := Get(os.Args[len(os.Args)-1])
		if !ok {
			os.Exit(2)
		}
		checkpipe.Serve(c)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestRegistry(t *testing.T) {
	if got := Names(); !slices.Equal(got, []string{"http", "ldap", "peer", "radius"}) {
		t.Fatalf("Names() = %v", got)
	}
	for _, n := range Names() {
		c, ok := Get(n)
		if !ok || c.Describe().Name != n {
			t.Fatalf("Get(%q) = %v, %v; its Describe().Name must be %q", n, c, ok, n)
		}
	}
	if IsBuiltin("nope") {
		t.Fatal("IsBuiltin(nope)")
	}
}

type benchCase struct {
	checker string
	req     *checkapi.Request
}

// realServers starts slapd, FreeRADIUS and nginx on loopback and returns one
// healthy check request per checker.
func realServers(b *testing.B) []benchCase {
	ctx := context.Background()
	dir := b.TempDir()
	slapd, err := services.StartSlapd(ctx, services.SlapdOptions{Dir: filepath.Join(dir, "slapd")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { slapd.Stop() })
	rad, err := services.StartFreeRADIUS(ctx, services.RadiusOptions{Dir: filepath.Join(dir, "radius"), Secret: "testing123", RequireMA: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rad.Stop() })
	ngx, err := services.StartNginx(ctx, services.NginxOptions{Dir: filepath.Join(dir, "nginx")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ngx.Stop() })

	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			b.Fatal(err)
		}
		return p
	}
	js := func(v map[string]any) checkapi.Settings {
		out, _ := json.Marshal(v)
		return out
	}
	return []benchCase{
		{"ldap", &checkapi.Request{Target: slapd.URL(), Settings: js(map[string]any{
			"bind_dn": services.SlapdServiceDN, "password_file": file("ldap.pw", services.SlapdServicePassword),
			"base": services.SlapdSuffix, "filter": "(uid=alice)"})}},
		{"radius", &checkapi.Request{Target: rad.Addr.String(), Settings: js(map[string]any{
			"secret_file": file("secret", "testing123"), "user": "alice", "password_file": file("alice.pw", "alice-pw")})}},
		{"http", &checkapi.Request{Target: "http://" + ngx.Addr.String() + "/login", Settings: js(map[string]any{
			"body_contains": `name="password"`})}},
	}
}

// BenchmarkPluginOverhead runs each checker against its real server in
// process and through the plugin host, alternating, so both see the same
// machine load. It reports p50/p99 of each and the p50 difference.
func BenchmarkPluginOverhead(b *testing.B) {
	b.Setenv("RIPCORD_CHECKERS_TEST_PLUGIN", "1")
	self, _ := filepath.Abs(os.Args[0])
	host := plugins.NewHost(plugins.Options{Builtin: IsBuiltin, Self: []string{self}, Logger: slog.New(slog.DiscardHandler)})
	defer host.Close()
	for _, bc := range realServers(b) {
		b.Run(bc.checker, func(b *testing.B) {
			direct, _ := Get(bc.checker)
			run := func(f func(ctx context.Context) *checkapi.Result) time.Duration {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				start := time.Now()
				r := f(ctx)
				d := time.Since(start)
				if r.Status != checkapi.StatusOK {
					b.Fatalf("%s: %s %s: %s", bc.checker, r.Status, r.Reason, r.Message)
				}
				return d
			}
			viaDirect := func(ctx context.Context) *checkapi.Result {
				r, err := direct.Check(ctx, bc.req)
				if err != nil {
					b.Fatal(err)
				}
				return r
			}
			viaPlugin := func(ctx context.Context) *checkapi.Result { return host.Check(ctx, bc.checker, bc.req) }
			run(viaPlugin) // start the plugin outside the measurement
			var d, p []time.Duration
			b.ResetTimer()
			for b.Loop() {
				d = append(d, run(viaDirect))
				p = append(p, run(viaPlugin))
			}
			b.StopTimer()
			report(b, "direct", d)
			report(b, "plugin", p)
			b.ReportMetric(float64(pct(p, 50)-pct(d, 50))/1e3, "added-p50-µs")
		})
	}
}

func pct(ds []time.Duration, q int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*q/100)]
}

func report(b *testing.B, name string, ds []time.Duration) {
	b.ReportMetric(float64(pct(ds, 50))/1e3, fmt.Sprintf("%s-p50-µs", name))
	b.ReportMetric(float64(pct(ds, 99))/1e3, fmt.Sprintf("%s-p99-µs", name))
}
