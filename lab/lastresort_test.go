package lab

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ripcord/ripcord/lab/services"
)

// TestLastResort: a failure both replicas share (the LDAP health account's
// password is wrong on both; the clients' own requests still work) leaves
// LDAP reachable through each replica's last_resort_metric instead of
// withdrawing it everywhere, and the repair withdraws nothing while both
// replicas wait out their failback_delay.
func TestLastResort(t *testing.T) {
	needRoot(t)
	t.Parallel()
	ctx := labContext(t, 4*time.Minute)
	const lastResort = 12
	l := buildLab(t, ctx, Options{Shape: ShapeFailover, LastResortMetric: lastResort})
	setPassword := func(pw string) {
		t.Helper()
		for _, r := range l.Replicas() {
			if err := os.WriteFile(filepath.Join(r.Dir, "ldap.pw"), []byte(pw+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	// waitLDAP waits until both replicas' ldap service satisfies ok.
	waitLDAP := func(what string, ok func(state, reason string, metric int) bool) {
		t.Helper()
		doing(t, "waiting for %s", what)
		deadline := time.Now().Add(30 * time.Second)
		for {
			var seen []string
			all := true
			for _, r := range l.Replicas() {
				rep, err := r.Status()
				if err != nil {
					t.Fatal(err)
				}
				for _, s := range rep.Services {
					if s.Name == ServiceLDAP {
						all = all && ok(s.State, s.Reason, s.Announced["rip"])
						seen = append(seen, r.Name+": "+s.State+" ("+s.Reason+") announced "+strconv.Itoa(s.Announced["rip"]))
					}
				}
			}
			if all {
				return
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				t.Fatalf("no %s after 30s: %s", what, strings.Join(seen, "; "))
			}
			sleep(ctx, 100*time.Millisecond)
		}
	}
	// Each client reaches its nearest replica: a router adds 1 per hop, so
	// sa's 12 arrives at ra as 13 and at rb as 14, sb's the other way round.
	nearest := map[Key]string{{"ca", ServiceLDAP}: "sa", {"cb", ServiceLDAP}: "sb"}

	setPassword("not-the-password")
	waitLDAP("both replicas down on the last-resort route", func(state, reason string, m int) bool {
		return state == "down" && strings.Contains(reason, "last resort") && m == lastResort
	})
	l.expect(t, ctx, nearest, 30*time.Second)
	settled := time.Now()
	sleep(ctx, 3*time.Second)
	// One slow answer on a busy machine is no withdrawn route; a
	// withdrawn route fails every request (10 a second).
	if n := ldapFailures(l.rec.Samples(), settled); n > 1 {
		t.Errorf("%d LDAP requests failed on the last-resort routes", n)
	}

	setPassword(services.SlapdServicePassword)
	repaired := time.Now()
	waitLDAP("both replicas in their failback hold-down, still on the last-resort route", func(state, reason string, m int) bool {
		return state == "down" && strings.Contains(reason, "hold-down") && m == lastResort
	})
	l.expect(t, ctx, l.HomeState(), testFailbackDelay+30*time.Second)
	// Each hold-down ends on its own, so the routes move (sb returns a
	// little before or after sa), but LDAP was never withdrawn everywhere.
	if n := ldapFailures(l.rec.Samples(), repaired); n > 2 {
		t.Errorf("%d LDAP requests failed between the repair and the failback (want at most 2, route moves)", n)
	}
}

func ldapFailures(samples []Sample, since time.Time) int {
	n := 0
	for _, s := range samples {
		if s.Service == ServiceLDAP && s.Replica == "" && !s.At.Before(since) {
			n++
		}
	}
	return n
}
