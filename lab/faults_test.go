package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ripcord/ripcord/lab/routers"
)

// TestFaults builds one failover-shape lab whose checks are set as for a
// lossy network (fall 3, a timeout that lets TCP resend a lost SYN) and
// survives, one after the other, faults other than a broken service: a
// lossy path to the checked services, a full or read-only state_dir, a
// router restart, and both replicas broken at once. After each, ripcord
// must still run on both replicas.
func TestFaults(t *testing.T) {
	needRoot(t)
	t.Parallel()
	if _, err := exec.LookPath("nft"); err != nil {
		t.Fatal("nft not found: install the Debian package nftables (scripts/setup)")
	}
	ctx := labContext(t, 6*time.Minute) // 1.5 to 2 min measured
	l := buildLab(t, ctx, Options{Shape: ShapeFailover, Fall: 3, CheckInterval: faultsInterval, CheckTimeout: faultsInterval})
	stillRunning := func(t *testing.T) {
		t.Helper()
		for _, r := range l.Replicas() {
			if !r.RipcordRunning() {
				t.Fatalf("ripcord on %s is not running", r.Name)
			}
		}
	}

	t.Run("20% loss on the checks moves nothing", func(t *testing.T) {
		doing(t, "20 %% loss on sa's checks for %s", lossHold)
		before := transitionCounts(t, l.SA)
		watch := watchRoutes(ctx, l.Lab, ServiceLDAP)
		if err := l.SA.DropChecks(ctx, 20, false, Services...); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		// What sa announces must not move: read it throughout. Only
		// assistance may change it: sa's peer checks of sb go over eth0,
		// untouched by the loss, but with their 150 ms timeout they fail
		// now and then on a busy machine.
		assisted := 0
		for time.Since(start) < lossHold && ctx.Err() == nil {
			rep, err := l.SA.Status()
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range rep.Services {
				switch m := s.Announced["rip"]; {
				case s.Assisting && m == 2:
					assisted++
				case m != 1:
					t.Errorf("%.1f s into the loss sa announces %s with metric %d (%s: %s)", time.Since(start).Seconds(), s.Name, m, s.State, s.Reason)
				}
			}
			sleep(ctx, 200*time.Millisecond)
		}
		if assisted > 0 {
			t.Logf("sa assisted sb (metric 2) in %d status readings", assisted)
		}
		dropped, err := l.SA.DroppedPackets(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.SA.DropChecks(ctx, 0, false); err != nil {
			t.Fatal(err)
		}
		// The routers follow sa's assistance too, so their tables are
		// shown, not judged.
		t.Logf("%d packets dropped in %v; LDAP route changes %v", dropped, lossHold, watch.stop())
		if dropped == 0 {
			t.Fatal("the loss rule dropped nothing: the test would prove nothing")
		}
		for svc, n := range transitionCounts(t, l.SA) {
			if n != before[svc] {
				t.Errorf("%s on sa changed state %d times under 20%% loss", svc, n-before[svc])
			}
		}
		for _, svc := range Services {
			if n := answeredBy(l.rec.Samples(), "ca", svc, "sb", start); n > 0 {
				t.Errorf("ca/%s answered %d times by sb under 20%% loss", svc, n)
			}
		}
		stillRunning(t)
	})

	t.Run("100% loss on the checks fails over as usual", func(t *testing.T) {
		doing(t, "100 %% loss on sa's LDAP check")
		if err := l.SA.DropChecks(ctx, 100, true, ServiceLDAP); err != nil {
			t.Fatal(err)
		}
		l.expect(t, ctx, merge(everyone("sa", ServiceRADIUS, ServiceWebAuth), everyone("sb", ServiceLDAP)), failoverBound)
		if err := l.SA.DropChecks(ctx, 0, false); err != nil {
			t.Fatal(err)
		}
		l.expect(t, ctx, everyone("sa", Services...), failbackBound)
		stillRunning(t)
	})

	for _, tc := range []struct {
		name, want string
		break_     string // shell, run in ripcord's own mount namespace; D is state_dir
	}{
		{"read-only state_dir", "read-only file system",
			`mount --bind "$D" "$D" && mount -o remount,ro,bind "$D"`},
		// A small tmpfs holding a copy of state_dir, filled up, mounted over it.
		{"full state_dir", "no space left on device",
			`F=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs "$F" && cp -a "$D/." "$F/" &&
			 { dd if=/dev/zero of="$F/filler" bs=4k 2>/dev/null || true; } && mount --bind "$F" "$D" && umount -l "$F" && rmdir "$F"`},
	} {
		t.Run(tc.name+": drain fails, announcements stay", func(t *testing.T) {
			doing(t, "drain on a %s", tc.name)
			stateDir := filepath.Join(l.SA.Dir, "state")
			inRipcordMounts(t, ctx, l.SA, stateDir, tc.break_)
			restored := false
			restore := func() {
				if !restored {
					restored = true
					inRipcordMounts(t, ctx, l.SA, stateDir, `umount "$D"`)
				}
			}
			defer restore()
			out, err := l.SA.Ctl(ctx, "drain", ServiceLDAP)
			t.Logf("ripcord drain: %v", err)
			if err == nil {
				t.Fatalf("drain succeeded on a %s:\n%s", tc.name, out)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "drain") {
				t.Errorf("drain error %q does not say %q", err, tc.want)
			}
			since := time.Now()
			sleep(ctx, 2*time.Second)
			rep, err := l.SA.Status()
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range rep.Services {
				if s.Drained || s.State != "up" || s.Announced["rip"] != 1 {
					t.Errorf("%s: %s drained=%v announced %v; want up, not drained, metric 1", s.Name, s.State, s.Drained, s.Announced)
				}
			}
			for _, c := range []string{"ca", "cb"} {
				if n := answeredBy(l.rec.Samples(), c, ServiceLDAP, "sb", since); n > 0 {
					t.Errorf("%s: LDAP answered %d times by sb after a failed drain", c, n)
				}
			}
			// Nothing half-written is left (as ripcord sees state_dir) to
			// drain the service at the next start.
			if left := inRipcordMounts(t, ctx, l.SA, stateDir, `ls -A "$D/drained"`); strings.Contains(left, ServiceLDAP) {
				t.Errorf("the failed drain left a file in state_dir/drained: %s", left)
			}
			restore()
			stillRunning(t)
		})
	}

	t.Run("router restart: the route is back at once", func(t *testing.T) {
		doing(t, "restarting ripd on ra")
		frr, ok := l.RA.Router.(*routers.FRR)
		if !ok {
			t.Fatalf("router %T, want FRR", l.RA.Router)
		}
		if err := frr.RestartRIP(); err != nil {
			t.Fatal(err)
		}
		restarted := time.Now()
		wantHop := l.SA.Addr
		wctx, cancel := context.WithTimeout(ctx, routeBackBound)
		defer cancel()
		var back time.Duration
		for back == 0 {
			rt, err := l.RouterRoute(wctx, l.RA, ServiceLDAP)
			if err == nil && rt.Present && rt.NextHop == wantHop {
				back = time.Since(restarted)
				break
			}
			if wctx.Err() != nil {
				t.Fatalf("ra has no route via sa %v after ripd restarted (last: %+v, %v); the periodic update would bring it within 30 s", routeBackBound, rt, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Logf("ra's route via sa back %.2f s after ripd was started again", back.Seconds())
		l.expect(t, ctx, everyoneAt("ca", "sa"), 10*time.Second)
		// cb's answers also need ra to learn cb's network from rb again:
		// router to router, not ripcord's part. With keyed MD5 on the
		// links that waited for rb's next periodic update (up to 30 s).
		l.expect(t, ctx, everyone("sa", Services...), failoverBound)
		t.Logf("cb served again %.1f s after ripd was started again", time.Since(restarted).Seconds())
		stillRunning(t)
	})

	t.Run("both replicas broken, recovery in either order", func(t *testing.T) {
		// RADIUS and the web login hang on both replicas at once; RADIUS
		// then recovers on sa first, the web login on sb first.
		doing(t, "RADIUS and the web login hung on both replicas")
		broken := []string{ServiceRADIUS, ServiceWebAuth}
		firstBack := map[string]*Replica{ServiceRADIUS: l.SA, ServiceWebAuth: l.SB}
		hung := map[*Replica][]string{}
		defer func() {
			for r, svcs := range hung {
				for _, svc := range svcs {
					_ = r.ResumeService(svc)
				}
			}
		}()
		for _, r := range l.Replicas() {
			for _, svc := range broken {
				if err := r.SuspendService(svc); err != nil {
					t.Fatal(err)
				}
				hung[r] = append(hung[r], svc)
			}
		}
		for _, svc := range broken {
			waitNoRoute(t, ctx, l, svc, failoverBound)
		}
		// Nothing loops: no router takes the other's stale route back (a
		// loop would send packets back and forth until their TTL ran out),
		// and the first router rejects the clients' packets. It says so
		// with ICMP unreachable, but Linux sends about one per second per
		// client (ip_error's rate limit): most requests still wait for
		// their timeout.
		since := time.Now()
		watches := map[string]*routeWatch{}
		for _, svc := range broken {
			watches[svc] = watchRoutes(ctx, l.Lab, svc)
		}
		expired := map[string]int{}
		for _, r := range []*Router{l.RA, l.RB} {
			expired[r.Name] = icmpOut(t, ctx, r, "OutTimeExcds")
		}
		sleep(ctx, 3*time.Second)
		for _, r := range []*Router{l.RA, l.RB} {
			if n := icmpOut(t, ctx, r, "OutTimeExcds") - expired[r.Name]; n > 0 {
				t.Errorf("%s sent %d ICMP time exceeded while both replicas poison: packets loop", r.Name, n)
			}
		}
		for _, svc := range broken {
			changes := watches[svc].stop()
			for _, r := range []*Router{l.RA, l.RB} {
				rt, err := l.RouterRoute(ctx, r, svc)
				if err != nil {
					t.Fatal(err)
				}
				kr, err := r.Router.Kernel(ctx, VIP(svc))
				if err != nil {
					t.Fatal(err)
				}
				if rt.Present || kr.Present || changes[r.Name].metrics > 0 {
					t.Errorf("%s/%s: route %+v, kernel route %+v, %d changes while both replicas poison; want none", r.Name, svc, rt, kr, changes[r.Name].metrics)
				}
			}
			for _, c := range []string{"ca", "cb"} {
				answered, unreachable, slow := 0, 0, 0
				for _, s := range l.rec.Samples() {
					switch {
					case s.Client != c || s.Service != svc || s.At.Before(since):
					case s.Replica != "":
						answered++
					case s.Err == "timeout":
						slow++
					default:
						unreachable++
					}
				}
				t.Logf("%s/%s: %d requests unreachable, %d timed out, %d answered", c, svc, unreachable, slow, answered)
				if answered > 0 {
					t.Errorf("%s/%s: %d requests answered while both replicas are broken", c, svc, answered)
				}
			}
		}
		resume := func(first bool) {
			for _, svc := range broken {
				r := firstBack[svc]
				if !first {
					r = r.peer
				}
				if err := r.ResumeService(svc); err != nil {
					t.Fatal(err)
				}
				hung[r] = slices.DeleteFunc(hung[r], func(s string) bool { return s == svc })
			}
		}
		resume(true)
		l.expect(t, ctx, merge(everyone("sa", ServiceLDAP, ServiceRADIUS), everyone("sb", ServiceWebAuth)), failbackBound)
		resume(false)
		l.expect(t, ctx, everyone("sa", Services...), failbackBound)
		stillRunning(t)
	})
}

const (
	// faultsInterval is the checks' interval and timeout in TestFaults (the
	// default timeout): above TCP's 1 s initial retransmission timeout, so
	// that one lost SYN costs a retry rather than the check.
	faultsInterval = 2 * time.Second
	// lossHold is how long the 20 % loss lasts in the test (bench/failover
	// -loss runs it for minutes).
	lossHold = 20 * time.Second
	// routeBackBound is generous for a shared machine; without the answer
	// to ripd's Request the route would wait for a periodic update (up to
	// about 30 s).
	routeBackBound = 5 * time.Second
)

func transitionCounts(t *testing.T, r *Replica) map[string]int {
	t.Helper()
	rep, err := r.Status()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, s := range rep.Services {
		out[s.Name] = s.Transitions
	}
	return out
}

// inRipcordMounts runs a shell script in the mount namespace of the
// replica's ripcord (ip netns exec gave it a private one, a slave of the
// host's), so mounts made there are seen by that ripcord alone and go away
// with it. $D is dir. It returns the script's output.
func inRipcordMounts(t *testing.T, ctx context.Context, r *Replica, dir, script string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", "-t", fmt.Sprint(r.ripcord.Pid()), "-m", "--", "sh", "-ec", script)
	cmd.Env = append(os.Environ(), "D="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("in ripcord's mount namespace on %s: %v: %s", r.Name, err, out)
	}
	return string(out)
}

// icmpOut reads one of a router's ICMP output counters (/proc/net/snmp of
// its namespace).
func icmpOut(t *testing.T, ctx context.Context, r *Router, field string) int {
	t.Helper()
	out, err := r.NS.Exec(ctx, "cat", "/proc/net/snmp")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "Icmp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, name := range names {
			if name == field && i < len(f) {
				n, err := strconv.Atoi(f[i])
				if err != nil {
					t.Fatalf("%s: /proc/net/snmp Icmp %s: %v", r.Name, field, err)
				}
				return n
			}
		}
	}
	t.Fatalf("%s: no Icmp %s in /proc/net/snmp", r.Name, field)
	return 0
}

// waitNoRoute waits until neither router has a usable route for a service.
func waitNoRoute(t *testing.T, ctx context.Context, l *testLab, service string, bound time.Duration) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	for {
		var left []string
		for _, r := range []*Router{l.RA, l.RB} {
			if rt, err := l.RouterRoute(wctx, r, service); err != nil || rt.Present {
				left = append(left, fmt.Sprintf("%s: %+v %v", r.Name, rt, err))
			}
		}
		if len(left) == 0 {
			return
		}
		if wctx.Err() != nil {
			t.Fatalf("routes for %s still there %v after both replicas broke: %s", service, bound, strings.Join(left, "; "))
		}
		time.Sleep(200 * time.Millisecond)
	}
}
