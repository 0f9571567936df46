package lab

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ripcord/ripcord/control"
	"gopkg.in/yaml.v3"
)

// TestReloadInTheLab reloads sa's ripcord with a file that adds a service,
// removes one (webauth) and changes one check's interval (ldap), while the
// clients keep asking. Clients of the unchanged services see no change of
// replica and no failed request; ra hears no update for their VIPs beyond
// the periodic ones (the route's timeout timer in `show ip rip` is not
// reset); the new VIP reaches ra and webauth's clients move to sb.
func TestReloadInTheLab(t *testing.T) {
	needRoot(t)
	t.Parallel()
	ctx := labContext(t, 3*time.Minute)
	tl := buildLab(t, ctx, Options{Shape: ShapeFailover})
	home := time.Now() // every client served by its home replica from here
	sa := tl.SA

	// The new config: webauth gone, ldap checked every 700ms, a new
	// service "directory" on the spare VIP with radius's check.
	b, err := os.ReadFile(sa.Config)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var kept []any
	var added map[string]any
	for _, s := range doc["services"].([]any) {
		svc := s.(map[string]any)
		switch svc["name"] {
		case ServiceWebAuth:
			continue
		case ServiceLDAP:
			svc["checks"].([]any)[0].(map[string]any)["interval"] = "700ms"
		case ServiceRADIUS:
			added = map[string]any{}
			for k, v := range svc {
				added[k] = v
			}
			added["name"], added["vip"] = "directory", SpareVIP.Addr().String()
			delete(added, "relay") // its peer would not know the service
			delete(added, "assist")
		}
		kept = append(kept, svc)
	}
	doc["services"] = append(kept, added)
	newVIP := SpareVIP

	// Reload right after a periodic update reached ra, so that the next
	// one is at least 25 s away and any update for ldap or radius within
	// the next seconds would be a triggered one.
	timer := func(svc string) time.Duration {
		t.Helper()
		d, err := frrRouteTimer(ctx, tl.RA, VIP(svc))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	for deadline := time.Now().Add(45 * time.Second); timer(ServiceLDAP) < 178*time.Second; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("ra never refreshed the ldap route")
		}
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sa.Config, out, 0o644); err != nil {
		t.Fatal(err)
	}
	before := map[string]time.Duration{ServiceLDAP: timer(ServiceLDAP), ServiceRADIUS: timer(ServiceRADIUS)}
	reloadAt := time.Now()
	res, err := control.NewClient(sa.Socket).Reload()
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	t.Logf("reloaded in %v: %s", time.Since(reloadAt).Round(time.Millisecond), res.Summary)
	if !strings.Contains(res.Summary, "removed webauth") || !strings.Contains(res.Summary, "restarted checks ldap/ldap") {
		t.Errorf("summary %q", res.Summary)
	}

	// Within the next seconds (the next periodic update is at least 25 s
	// after the last one) ra must hear nothing about ldap and radius.
	time.Sleep(3 * time.Second)
	for svc, d := range before {
		elapsed := time.Since(reloadAt)
		if now := timer(svc); now > d-elapsed+time.Second {
			t.Errorf("ra refreshed the %s route after the reload (timer %v, was %v %v before): an update named it", svc, now, d, elapsed.Round(time.Millisecond))
		}
	}

	// The new VIP reaches ra; webauth's clients move to sb.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		r, err := tl.RA.Router.Route(ctx, newVIP)
		if err != nil {
			t.Fatal(err)
		}
		if r.Present && r.NextHop == sa.Addr {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ra never learned the new service's VIP: %+v", r)
		}
	}
	tl.expect(t, ctx, everyone("sb", ServiceWebAuth), failoverBound)
	if out, err := sa.NS.IP("-4", "addr", "show", "dev", "lo"); err != nil {
		t.Fatal(err)
	} else if strings.Contains(out, VIP(ServiceWebAuth).Addr().String()+"/") || !strings.Contains(out, newVIP.Addr().String()+"/") {
		t.Errorf("sa's lo after the reload: want the new VIP and not webauth's:\n%s", out)
	}

	for _, s := range tl.rec.Samples() {
		if s.At.Before(reloadAt.Add(-time.Second)) || s.At.Before(home) || (s.Service != ServiceLDAP && s.Service != ServiceRADIUS) {
			continue
		}
		if s.Err != "" || s.Replica != "sa" {
			t.Errorf("%s %s at +%v: answered by %q, error %q", s.Client, s.Service, s.At.Sub(reloadAt).Round(time.Millisecond), s.Replica, s.Err)
		}
	}
}

// frrRouteTimer reads the time left before an FRR router times out its RIP
// route for prefix (`show ip rip`, last column): a packet naming the prefix
// resets it to 3 minutes.
func frrRouteTimer(ctx context.Context, r *Router, prefix netip.Prefix) (time.Duration, error) {
	out, err := r.NS.Exec(ctx, "vtysh", "--vty_socket", r.Router.Dir(), "-c", "show ip rip")
	if err != nil {
		return 0, err
	}
	re := regexp.MustCompile(`(?m)^R\(n\)\s+` + regexp.QuoteMeta(prefix.String()) + `\s.*\s(\d\d):(\d\d)\s*$`)
	m := re.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no RIP route for %v at %s:\n%s", prefix, r.Name, out)
	}
	var min, sec int
	fmt.Sscan(m[1], &min)
	fmt.Sscan(m[2], &sec)
	return time.Duration(min)*time.Minute + time.Duration(sec)*time.Second, nil
}
