package peer

import (
	"context"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ripcord/ripcord/control"
	"github.com/ripcord/ripcord/core"
	"github.com/ripcord/ripcord/plugins/checkapi"
	"github.com/ripcord/ripcord/plugins/sdk/sdktest"
	"github.com/ripcord/ripcord/relay"
)

// peerStatus serves a real status endpoint (the daemon's metrics listener)
// whose report the test changes.
type peerStatus struct {
	mu  sync.Mutex
	rep control.Report
}

// set publishes the peer's state ("recovering" is down in its failback
// hold-down), the metric it wants (its down_metric while down) and what
// each advertiser last announced.
func (p *peerStatus) set(state string, metric int, announced map[string]int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := core.Status{Name: "ldap", State: state, Metric: metric, Reason: "search: refused"}
	switch state {
	case "recovering":
		st.State, st.Recovering = "down", true
	case "relaying", "relaying-fallback":
		st.State, st.Relay = "down", &core.RelayStatus{Mode: "all", Phase: "moving", Peer: "10.0.2.10"}
		if state == "relaying-fallback" {
			st.State, st.Relay = "up", &core.RelayStatus{Mode: "fallback", Peer: "10.0.2.10"}
		}
	}
	p.rep = control.Report{Node: "sa", Services: []control.ServiceReport{{Status: st, Announced: announced}}}
}

func (p *peerStatus) report() control.Report {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rep
}

func startPeer(t *testing.T) (*peerStatus, string) {
	return startPeerOn(t, "127.0.0.1:0")
}

// startPeerOn serves the peer's status on listen (port 0: a free one).
func startPeerOn(t *testing.T, listen string) (*peerStatus, string) {
	t.Helper()
	l, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	p := &peerStatus{}
	srv, err := control.NewMetrics("test").ServeMetrics(addr, nil, p.report, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return p, "http://" + addr
}

func TestPeerFollowsTheAnnouncement(t *testing.T) {
	p, target := startPeer(t)
	s := sdktest.Settings(t, map[string]any{"service": "ldap"})
	cases := []struct {
		state     string
		metric    int
		announced map[string]int
		settings  checkapi.Settings
		status    checkapi.Status
		reason    string
	}{
		{"up", 1, map[string]int{"rip": 1}, s, checkapi.StatusOK, checkapi.ReasonOK},
		{"drained", 14, map[string]int{"rip": 14}, s, checkapi.StatusOK, checkapi.ReasonOK},
		{"down", 16, map[string]int{"rip": 16}, s, checkapi.StatusFailed, ReasonWithdrawn},
		{"recovering", 16, map[string]int{"rip": 16}, s, checkapi.StatusOK, checkapi.ReasonOK}, // in failback hold-down
		{"starting", 16, map[string]int{}, s, checkapi.StatusFailed, ReasonNotAnnounced},
		// down_metric 14 (routers with holddown timers): withdrawn once sent.
		{"down", 14, map[string]int{"rip": 1}, s, checkapi.StatusOK, checkapi.ReasonOK}, // not sent yet: assistance must wait
		{"down", 14, map[string]int{"rip": 14}, s, checkapi.StatusFailed, ReasonWithdrawn},
		{"starting", 14, map[string]int{"rip": 14}, s, checkapi.StatusFailed, ReasonWithdrawn},
		{"recovering", 14, map[string]int{"rip": 14}, s, checkapi.StatusOK, checkapi.ReasonOK},
		{"up", 1, map[string]int{"rip": 1}, sdktest.Settings(t, map[string]any{"service": "radius"}), checkapi.StatusFailed, ReasonNoService},
		{"up", 1, map[string]int{"rip": 1, "bgp": 16}, sdktest.Settings(t, map[string]any{"service": "ldap", "advertiser": "bgp"}), checkapi.StatusFailed, ReasonWithdrawn},
		{"relaying", 10, map[string]int{"rip": 10}, s, checkapi.StatusFailed, ReasonRelaying},       // broken, moving its clients
		{"relaying-fallback", 1, map[string]int{"rip": 1}, s, checkapi.StatusOK, checkapi.ReasonOK}, // healthy; a crash would relay
	}
	for _, c := range cases {
		p.set(c.state, c.metric, c.announced)
		res, _ := sdktest.Check(t, New(), time.Second, target, c.settings)
		sdktest.Want(t, res, c.status, c.reason)
		// A passing check says whether it passes because the peer recovers.
		if rec, ok := res.Observations[obsRecovering]; res.Status == checkapi.StatusOK && (!ok || (rec == 1) != (c.state == "recovering")) {
			t.Errorf("%s, announced %v: %s = %v (reported: %v)", c.state, c.announced, obsRecovering, rec, ok)
		}
	}
}

// A peer whose metrics_listen is an IPv6 address ([::1]:port) is read over
// IPv6; an IPv6-only service is judged by its ripng announcement.
func TestPeerOverIPv6(t *testing.T) {
	p, target := startPeerOn(t, "[::1]:0")
	if !strings.HasPrefix(target, "http://[::1]:") {
		t.Fatalf("target %s", target)
	}
	s := sdktest.Settings(t, map[string]any{"service": "ldap", "advertiser": "ripng"})
	p.set("up", 1, map[string]int{"ripng": 1})
	res, _ := sdktest.Check(t, New(), time.Second, target, s)
	sdktest.Want(t, res, checkapi.StatusOK, checkapi.ReasonOK)
	p.set("down", 16, map[string]int{"ripng": 16})
	res, _ = sdktest.Check(t, New(), time.Second, target, s)
	sdktest.Want(t, res, checkapi.StatusFailed, ReasonWithdrawn)
}

func TestPeerUnreachable(t *testing.T) {
	s := sdktest.Settings(t, map[string]any{"service": "ldap"})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	res, _ := sdktest.Check(t, New(), time.Second, closed, s)
	sdktest.Want(t, res, checkapi.StatusFailed, checkapi.ReasonRefused)

	// Accepts, never answers: the deadline is the only bound.
	hung, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hung.Close()
	res, took := sdktest.Check(t, New(), 300*time.Millisecond, "http://"+hung.Addr().String(), s)
	sdktest.Want(t, res, checkapi.StatusFailed, checkapi.ReasonTimeout)
	if took > time.Second {
		t.Fatalf("took %s with a 300ms deadline", took)
	}
	if _, err := New().Check(context.Background(), &checkapi.Request{Target: "10.0.0.1:9473", Settings: s}); err == nil {
		t.Fatal("a target that is not a URL must be a checker error")
	}
}

func TestConfigure(t *testing.T) {
	for settings, want := range map[string][]string{
		`{"advertiser":"ospf"}`:              {"advertiser", "service"}, // service is required by the schema
		`{"service":"ldap","srvice":"x"}`:    {"srvice"},
		`{"service":"ldap"}`:                 nil,
		`{"service":7,"advertiser":"bgp"}`:   {"service"},
		`{"service":"ldap","advertiser":""}`: {"advertiser"},
	} {
		if got, fes := sdktest.ConfigureFields(t, New(), settings); !slices.Equal(got, want) {
			t.Errorf("%s: field errors %v, want errors of %v", settings, fes, want)
		}
	}
}

func TestDescribe(t *testing.T) { sdktest.DescribeMatches(t, New(), "peer", Config{}) }

// The names the checker declares are the daemon's.
func TestNamesMatchTheDaemon(t *testing.T) {
	for _, tc := range []struct{ ours, theirs string }{
		{stateDown, core.Down.String()},
		{stateStarting, core.Starting.String()},
		{relayAll, relay.All.String()},
		{obsRecovering, core.PeerRecovering},
	} {
		if tc.ours != tc.theirs {
			t.Errorf("checker says %q, the daemon %q", tc.ours, tc.theirs)
		}
	}
}
