package core

import (
	"net/netip"
	"testing"
	"time"

	"github.com/ripcord/ripcord/plugins/checkapi"
	"github.com/ripcord/ripcord/relay"
)

var sbAddr = netip.MustParseAddr("10.0.0.2")

// rstep is one event of a relay sequence and what must hold after it.
type rstep struct {
	at    time.Duration
	event string // ok, fail, timeout (own check), peer-ok, peer-fail, stats, drain, undrain, tick
	stats relay.Stats

	state  State
	metric int
	mode   relay.Mode
}

func relaySpec(mod func(*ServiceSpec)) ServiceSpec {
	return spec(func(sp *ServiceSpec) {
		sp.Checks[0].Rise, sp.Checks[0].Fall = 1, 1
		sp.DrainMetric = 12
		sp.Assist = &AssistSpec{Metric: 2, Delay: 200 * time.Millisecond, Peers: []CheckSpec{{Name: "sb", Rise: 1, Fall: 1}}}
		sp.Relay = &RelaySpec{Ports: []relay.Port{{Proto: "tcp", Num: 389}}, Peers: []RelayPeer{{Addr: sbAddr, Check: "sb"}},
			Metric: 10, Quiet: time.Second, Max: 10 * time.Second, Fallback: true}
		if mod != nil {
			mod(sp)
		}
	})
}

// kernel is what the kernel reports for a relay of everything to sb.
func kernel(since, lastFlow, lastPacket time.Duration) relay.Stats {
	return relay.Stats{Service: "ldap", Mode: relay.All, Peer: sbAddr, Since: t0.Add(since),
		LastFlow: t0.Add(lastFlow), LastPacket: t0.Add(lastPacket), Flows: 3, Packets: 30}
}

func TestRelaySequence(t *testing.T) {
	s, ms := time.Second, time.Millisecond
	up := []rstep{
		{at: 0, event: "ok", state: Up, metric: 1, mode: relay.Off}, // no peer known up yet
		{at: 0, event: "peer-ok", state: Up, metric: 1, mode: relay.Fallback},
	}
	tests := []struct {
		name  string
		spec  ServiceSpec
		steps []rstep
	}{
		{"make before break: relay, worse metric, poison once routers moved, remove once flows ended", relaySpec(nil), append(up,
			rstep{at: 1 * s, event: "fail", state: Down, metric: 10, mode: relay.All},
			rstep{at: 1600 * ms, event: "stats", stats: kernel(1100*ms, 1500*ms, 1600*ms), state: Down, metric: 10, mode: relay.All},
			rstep{at: 2499 * ms, event: "tick", state: Down, metric: 10, mode: relay.All},
			rstep{at: 2500 * ms, event: "tick", state: Down, metric: 16, mode: relay.All}, // no new flow for quiet
			rstep{at: 3 * s, event: "stats", stats: kernel(1100*ms, 1500*ms, 3*s), state: Down, metric: 16, mode: relay.All},
			rstep{at: 3999 * ms, event: "tick", state: Down, metric: 16, mode: relay.All},
			rstep{at: 4 * s, event: "tick", state: Down, metric: 16, mode: relay.Off}, // no packet for quiet
			rstep{at: 5 * s, event: "ok", state: Down, metric: 16, mode: relay.Off},   // failback hold-down stays
			rstep{at: 15 * s, event: "tick", state: Up, metric: 1, mode: relay.Fallback},
		)},
		{"never relay while no peer is up", relaySpec(nil), []rstep{
			{at: 0, event: "ok", state: Up, metric: 1, mode: relay.Off},
			{at: 0, event: "peer-fail", state: Up, metric: 1, mode: relay.Off},
			{at: 1 * s, event: "fail", state: Down, metric: 16, mode: relay.Off},
		}},
		{"the peer failing ends the relay at once", relaySpec(nil), append(up,
			rstep{at: 1 * s, event: "fail", state: Down, metric: 10, mode: relay.All},
			rstep{at: 1200 * ms, event: "peer-fail", state: Down, metric: 16, mode: relay.Off},
		)},
		{"silence proves nothing until the kernel reports the relay; max bounds each phase", relaySpec(nil), append(up,
			rstep{at: 1 * s, event: "fail", state: Down, metric: 10, mode: relay.All},
			rstep{at: 5 * s, event: "tick", state: Down, metric: 10, mode: relay.All},
			rstep{at: 10999 * ms, event: "tick", state: Down, metric: 10, mode: relay.All},
			rstep{at: 11 * s, event: "tick", state: Down, metric: 16, mode: relay.All},
			rstep{at: 15 * s, event: "stats", stats: kernel(1100*ms, 15*s, 15*s), state: Down, metric: 16, mode: relay.All},
			rstep{at: 21 * s, event: "tick", state: Down, metric: 16, mode: relay.Off},
		)},
		{"failback waits for the relay to end", relaySpec(func(sp *ServiceSpec) { sp.FailbackDelay = s }), append(up,
			rstep{at: 1 * s, event: "fail", state: Down, metric: 10, mode: relay.All},
			rstep{at: 1500 * ms, event: "ok", state: Down, metric: 10, mode: relay.All},
			rstep{at: 2600 * ms, event: "stats", stats: kernel(1100*ms, 3*s, 3*s), state: Down, metric: 10, mode: relay.All}, // hold-down over, relay busy
			rstep{at: 4 * s, event: "tick", state: Down, metric: 16, mode: relay.All},
			rstep{at: 5 * s, event: "tick", state: Up, metric: 1, mode: relay.Fallback},
		)},
		{"a drain does not relay unless configured", relaySpec(nil), append(up,
			rstep{at: 1 * s, event: "drain", state: Drained, metric: 12, mode: relay.Fallback},
			rstep{at: 2 * s, event: "fail", state: Down, metric: 10, mode: relay.All}, // broken while drained: still routed here
		)},
		{"on_drain: relay while drained, keep the drain metric, then stop relaying", relaySpec(func(sp *ServiceSpec) { sp.Relay.OnDrain = true }), append(up,
			rstep{at: 1 * s, event: "drain", state: Drained, metric: 12, mode: relay.All},
			rstep{at: 2 * s, event: "stats", stats: kernel(1100*ms, 1500*ms, 2*s), state: Drained, metric: 12, mode: relay.All},
			rstep{at: 2500 * ms, event: "tick", state: Drained, metric: 12, mode: relay.All},
			rstep{at: 3499 * ms, event: "tick", state: Drained, metric: 12, mode: relay.All}, // quiet counts from the phase's start
			rstep{at: 3500 * ms, event: "tick", state: Drained, metric: 12, mode: relay.Fallback},
		)},
		{"undrain ends a drain's relay", relaySpec(func(sp *ServiceSpec) { sp.Relay.OnDrain = true }), append(up,
			rstep{at: 1 * s, event: "drain", state: Drained, metric: 12, mode: relay.All},
			rstep{at: 2 * s, event: "undrain", state: Up, metric: 1, mode: relay.Fallback},
		)},
		{"no relay from starting: nothing is routed here", relaySpec(nil), []rstep{
			{at: 0, event: "peer-ok", state: Starting, metric: 16, mode: relay.Off},
			{at: 1 * s, event: "fail", state: Down, metric: 16, mode: relay.Off},
		}},
		{"on_hang: a timeout relays everything before fall, a pass ends it, the fall moves on as usual", relaySpec(func(sp *ServiceSpec) {
			sp.Checks[0].Fall, sp.Relay.OnHang = 2, true
		}), append(up,
			rstep{at: 1 * s, event: "timeout", state: Up, metric: 1, mode: relay.All},
			rstep{at: 1500 * ms, event: "ok", state: Up, metric: 1, mode: relay.Fallback},
			rstep{at: 2 * s, event: "timeout", state: Up, metric: 1, mode: relay.All},
			rstep{at: 2500 * ms, event: "timeout", state: Down, metric: 10, mode: relay.All},
		)},
		{"on_hang: a listener whose queue stands still relays everything until it moves", relaySpec(func(sp *ServiceSpec) {
			sp.Checks[0].Fall, sp.Relay.OnHang = 2, true
		}), append(up,
			rstep{at: 1 * s, event: "stats", stats: relay.Stats{Service: "ldap", Mode: relay.Fallback, Peer: sbAddr, Queue: 3, Stalled: true}, state: Up, metric: 1, mode: relay.All},
			rstep{at: 1200 * ms, event: "stats", stats: relay.Stats{Service: "ldap", Mode: relay.All, Peer: sbAddr, Queue: 0}, state: Up, metric: 1, mode: relay.Fallback},
		)},
		{"without on_hang a stalled listener waits for the checks", relaySpec(nil), append(up,
			rstep{at: 1 * s, event: "stats", stats: relay.Stats{Service: "ldap", Mode: relay.Fallback, Peer: sbAddr, Queue: 3, Stalled: true}, state: Up, metric: 1, mode: relay.Fallback},
		)},
		{"on_hang: other failures wait for fall (fallback covers a crashed listener)", relaySpec(func(sp *ServiceSpec) {
			sp.Checks[0].Fall, sp.Relay.OnHang = 2, true
		}), append(up,
			rstep{at: 1 * s, event: "fail", state: Up, metric: 1, mode: relay.Fallback},
		)},
		{"without on_hang a timeout waits for fall", relaySpec(func(sp *ServiceSpec) { sp.Checks[0].Fall = 2 }), append(up,
			rstep{at: 1 * s, event: "timeout", state: Up, metric: 1, mode: relay.Fallback},
			rstep{at: 2 * s, event: "timeout", state: Down, metric: 10, mode: relay.All},
		)},
		{"on_hang does not hand clients to a peer in its failback hold-down", relaySpec(func(sp *ServiceSpec) {
			sp.Checks[0].Fall, sp.Relay.OnHang = 2, true
		}), []rstep{
			{at: 0, event: "ok", state: Up, metric: 1, mode: relay.Off},
			{at: 0, event: "peer-recovering", state: Up, metric: 1, mode: relay.Fallback}, // no local socket: better than a reset
			{at: 1 * s, event: "timeout", state: Up, metric: 1, mode: relay.Fallback},
			{at: 1500 * ms, event: "peer-ok", state: Up, metric: 1, mode: relay.All},
		}},
		{"a peer's failure short of fall keeps what its last pass said", relaySpec(func(sp *ServiceSpec) {
			sp.Checks[0].Fall, sp.Relay.OnHang, sp.Assist.Peers[0].Fall = 2, true, 2
		}), []rstep{
			{at: 0, event: "ok", state: Up, metric: 1, mode: relay.Off},
			{at: 0, event: "peer-recovering", state: Up, metric: 1, mode: relay.Fallback},
			{at: 1 * s, event: "peer-fail", state: Up, metric: 1, mode: relay.Fallback}, // still passing, still recovering
			{at: 1200 * ms, event: "timeout", state: Up, metric: 1, mode: relay.Fallback},
		}},
		{"on_drain does not hand clients to a recovering peer", relaySpec(func(sp *ServiceSpec) { sp.Relay.OnDrain = true }), []rstep{
			{at: 0, event: "ok", state: Up, metric: 1, mode: relay.Off},
			{at: 0, event: "peer-recovering", state: Up, metric: 1, mode: relay.Fallback},
			{at: 1 * s, event: "drain", state: Drained, metric: 12, mode: relay.Fallback},
		}},
		{"a broken service relays to a recovering peer if none serves", relaySpec(nil), []rstep{
			{at: 0, event: "ok", state: Up, metric: 1, mode: relay.Off},
			{at: 0, event: "peer-recovering", state: Up, metric: 1, mode: relay.Fallback},
			{at: 1 * s, event: "fail", state: Down, metric: 10, mode: relay.All},
		}},
		{"without fallback nothing stands while healthy", relaySpec(func(sp *ServiceSpec) { sp.Relay.Fallback = false }), []rstep{
			{at: 0, event: "ok", state: Up, metric: 1, mode: relay.Off},
			{at: 0, event: "peer-ok", state: Up, metric: 1, mode: relay.Off},
			{at: 1 * s, event: "fail", state: Down, metric: 10, mode: relay.All},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			svc := NewService(tc.spec, t0)
			for i, st := range tc.steps {
				now := t0.Add(st.at)
				switch st.event {
				case "ok", "fail":
					svc.Observe(now, "a", &checkapi.Result{Status: map[bool]checkapi.Status{true: checkapi.StatusOK, false: checkapi.StatusFailed}[st.event == "ok"], Reason: "x"})
				case "timeout":
					svc.Observe(now, "a", &checkapi.Result{Status: checkapi.StatusFailed, Reason: checkapi.ReasonTimeout})
				case "peer-ok", "peer-fail":
					svc.ObservePeer(now, "sb", &checkapi.Result{Status: map[bool]checkapi.Status{true: checkapi.StatusOK, false: checkapi.StatusFailed}[st.event == "peer-ok"], Reason: "x"})
				case "peer-recovering":
					svc.ObservePeer(now, "sb", (&checkapi.Result{Status: checkapi.StatusOK, Reason: "x"}).Observe(PeerRecovering, 1))
				case "stats":
					svc.ObserveRelay(now, st.stats)
				case "drain", "undrain":
					svc.SetDrained(now, st.event == "drain")
				case "tick":
					svc.Advance(now)
				default:
					t.Fatalf("unknown event %q", st.event)
				}
				want, _ := svc.RelayWant()
				if svc.State() != st.state || svc.Metric(now) != st.metric || want.Mode != st.mode {
					t.Fatalf("step %d (%s at %s): state %s metric %d relay %s, want %s %d %s (reason %q)", i, st.event, st.at,
						svc.State(), svc.Metric(now), want.Mode, st.state, st.metric, st.mode, svc.reason)
				}
				if want.Mode != relay.Off && want.Peer != sbAddr {
					t.Fatalf("step %d: relay to %s, want %s", i, want.Peer, sbAddr)
				}
			}
		})
	}
}

// A service's relay carries its VIP and its VIP6, or the VIP6 alone.
func TestRelayWantAddresses(t *testing.T) {
	v4, v6 := netip.MustParsePrefix("192.0.2.10/32"), netip.MustParsePrefix("2001:db8::10/128")
	for _, vips := range [][2]netip.Prefix{{v4, v6}, {{}, v6}} {
		svc := NewService(relaySpec(func(sp *ServiceSpec) { sp.VIP, sp.VIP6 = vips[0], vips[1] }), t0)
		svc.Observe(t0, "a", &checkapi.Result{Status: checkapi.StatusOK, Reason: "x"})
		svc.ObservePeer(t0, "sb", &checkapi.Result{Status: checkapi.StatusOK, Reason: "x"})
		want, _ := svc.RelayWant()
		if want.Mode != relay.Fallback || want.VIP != vips[0].Addr() || want.VIP6 != v6.Addr() {
			t.Errorf("vip %v vip6 %v: relay %+v", vips[0], vips[1], want)
		}
	}
}

func TestRelayWakeAndStatus(t *testing.T) {
	ms := time.Millisecond
	svc := NewService(relaySpec(func(sp *ServiceSpec) { sp.FailbackDelay = time.Second }), t0)
	svc.Observe(t0, "a", checkapi.OK(""))
	svc.ObservePeer(t0, "sb", checkapi.OK(""))
	svc.Observe(t0.Add(time.Second), "a", checkapi.Failed("refused", ""))
	if w, want := svc.NextWake(t0.Add(time.Second)), t0.Add(11*time.Second); !w.Equal(want) {
		t.Fatalf("NextWake before the kernel reports = %v, want %v (max)", w, want)
	}
	svc.ObserveRelay(t0.Add(1600*ms), kernel(1100*ms, 1500*ms, 1600*ms))
	if w, want := svc.NextWake(t0.Add(1600*ms)), t0.Add(2500*ms); !w.Equal(want) {
		t.Fatalf("NextWake = %v, want %v (quiet after the last flow)", w, want)
	}
	svc.Observe(t0.Add(1700*ms), "a", checkapi.OK(""))
	now := t0.Add(2200 * ms) // hold-down over, relay still moving
	svc.Advance(now)
	st := svc.Status(now)
	r := st.Relay
	if st.State != "down" || !st.Recovering || st.Metric != 10 || r == nil || r.Mode != "all" || r.Phase != "moving" ||
		r.Peer != "10.0.0.2" || !r.Since.Equal(t0.Add(time.Second)) || r.Flows != 3 || r.Packets != 30 {
		t.Fatalf("status = %+v relay %+v", st, r)
	}
	if st := NewService(spec(nil), t0).Status(t0); st.Relay != nil {
		t.Fatalf("a service without relay reports %+v", st.Relay)
	}
}

func TestChanging(t *testing.T) {
	svc := NewService(spec(nil), t0) // rise 2, fall 2
	if svc.Changing("a", false) {
		t.Fatal("changing before any result")
	}
	for i, c := range []struct {
		ok       bool
		changing bool
	}{{true, true}, {true, false}, {false, true}, {false, false}, {true, true}, {false, false}} {
		r := checkapi.OK("")
		if !c.ok {
			r = checkapi.Failed("refused", "")
		}
		svc.Observe(t0.Add(time.Duration(i)*time.Second), "a", r)
		if got := svc.Changing("a", false); got != c.changing {
			t.Fatalf("result %d (ok=%v): changing %v, want %v", i, c.ok, got, c.changing)
		}
	}
}

// Degraded has rise/fall too: a passing check whose last result disagrees
// with its degraded verdict is changing.
func TestChangingDegraded(t *testing.T) {
	svc := NewService(spec(nil), t0) // rise 2, fall 2
	for i, c := range []struct {
		status   checkapi.Status
		changing bool
	}{
		{checkapi.StatusOK, true}, {checkapi.StatusOK, false}, // up
		{checkapi.StatusDegraded, true}, {checkapi.StatusDegraded, false}, // degraded
		{checkapi.StatusOK, true}, {checkapi.StatusOK, false}, // clean again (hold-down follows)
	} {
		svc.Observe(t0.Add(time.Duration(i)*time.Second), "a", &checkapi.Result{Status: c.status, Reason: "r"})
		if got := svc.Changing("a", false); got != c.changing {
			t.Fatalf("result %d (%s): changing %v, want %v", i, c.status, got, c.changing)
		}
	}
}

// A peer that serves is preferred to one in its failback hold-down, and the
// current peer to others of its kind.
func TestUpPeerPrefersServing(t *testing.T) {
	scAddr := netip.MustParseAddr("10.0.0.3")
	sp := relaySpec(func(sp *ServiceSpec) {
		sp.Assist.Peers = append(sp.Assist.Peers, CheckSpec{Name: "sc", Rise: 1, Fall: 1})
		sp.Relay.Peers = append(sp.Relay.Peers, RelayPeer{Addr: scAddr, Check: "sc"})
	})
	ok := &checkapi.Result{Status: checkapi.StatusOK, Reason: "x"}
	recovering := (&checkapi.Result{Status: checkapi.StatusOK, Reason: "x"}).Observe(PeerRecovering, 1)
	failed := &checkapi.Result{Status: checkapi.StatusFailed, Reason: "x"}
	for _, tc := range []struct {
		sb, sc        *checkapi.Result
		current       netip.Addr
		anyRecovering bool
		want          netip.Addr // invalid: none
	}{
		{ok, ok, netip.Addr{}, false, sbAddr},
		{ok, ok, scAddr, false, scAddr},
		{recovering, ok, netip.Addr{}, false, scAddr},
		{recovering, ok, sbAddr, true, scAddr},
		{recovering, failed, netip.Addr{}, false, netip.Addr{}},
		{recovering, failed, netip.Addr{}, true, sbAddr},
		{recovering, recovering, scAddr, true, scAddr},
		{failed, failed, sbAddr, true, netip.Addr{}},
	} {
		svc := NewService(sp, t0)
		svc.ObservePeer(t0, "sb", tc.sb)
		svc.ObservePeer(t0, "sc", tc.sc)
		got, found := svc.upPeer(tc.current, tc.anyRecovering)
		if found != tc.want.IsValid() || found && got != tc.want {
			t.Errorf("sb %s (%v), sc %s (%v), current %v, recovering allowed %v: %v %v, want %v",
				tc.sb.Status, tc.sb.Observations, tc.sc.Status, tc.sc.Observations, tc.current, tc.anyRecovering, got, found, tc.want)
		}
	}
}
