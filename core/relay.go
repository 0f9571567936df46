package core

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/ripcord/ripcord/plugins/checkapi"
	"github.com/ripcord/ripcord/relay"
)

// RelaySpec is make-before-break for one service: while the service is
// broken here (or drained, with OnDrain), its new flows go to a healthy peer
// in the kernel, the route moves to a worse but reachable Metric, and only
// when no new flow has arrived for Quiet (the routers moved) does the
// service announce its down metric. The relay ends when no packet was
// relayed for Quiet. Max bounds each of the two phases.
type RelaySpec struct {
	Ports    []relay.Port
	Peers    []RelayPeer
	Metric   int
	Quiet    time.Duration
	Max      time.Duration
	Fallback bool // while serving, relay the flows no local socket takes
	OnDrain  bool // a manual drain relays too
	OnHang   bool // while serving, relay everything while a check times out or the listener's queue stands still
}

// RelayPeer is a peer to relay to and the peer check that says it is up.
type RelayPeer struct {
	Addr  netip.Addr
	Check string // name of a check in AssistSpec.Peers
}

// relayPhase is where a service is in the make-before-break sequence.
type relayPhase int

const (
	relayIdle   relayPhase = iota // no relay of everything (Fallback may stand)
	relayMoving                   // relaying everything; routers still send here and are moving to the peer
	relayEnding                   // routers moved (down metric announced); waiting for relayed flows to end
)

var relayPhaseNames = [...]string{"", "moving", "ending"}

// relayState is a service's side of the sequence.
type relayState struct {
	phase relayPhase
	peer  netip.Addr
	since time.Time // start of the phase
	held  bool      // the checks pass again; failback waits for the relay to end

	want      relay.Want  // as of the last Advance
	wantSince time.Time   // when want's mode or peer last changed
	stats     relay.Stats // last seen from the kernel
}

// ObserveRelay records what the kernel's relay of this service carried and
// re-evaluates (the evidence that routers moved and that flows ended).
func (s *Service) ObserveRelay(now time.Time, st relay.Stats) bool {
	s.relay.stats = st
	return s.Advance(now)
}

// PeerRecovering is the observation of a peer check that passes because
// the peer's own checks pass again while it waits out its failback_delay
// (checker peer reports it): the peer is no relay target then, unless
// nothing better is up and this replica cannot serve.
const PeerRecovering = "peer_recovering"

// peerStatus is what the peer check watching addr says of the peer: up
// (serving), or recovering (up, but in its failback hold-down).
func (s *Service) peerStatus(addr netip.Addr) (up, recovering bool) {
	for _, p := range s.spec.Relay.Peers {
		if p.Addr != addr {
			continue
		}
		for _, c := range s.peers {
			if c.spec.Name == p.Check {
				up = c.decided && c.passing
				return up, up && c.recovering
			}
		}
	}
	return false, false
}

// upPeer returns a relay peer that is up, preferring current, then a peer
// that serves over one that recovers. A recovering peer is taken only if
// anyRecovering: for the flows of a service that is broken here, a peer
// whose checks pass beats none, but a suspicion (on_hang) or a drain must
// not hand clients to a replica that has not proven itself for
// failback_delay.
func (s *Service) upPeer(current netip.Addr, anyRecovering bool) (netip.Addr, bool) {
	var recovering netip.Addr
	serves := func(addr netip.Addr) bool {
		up, rec := s.peerStatus(addr)
		if rec && !recovering.IsValid() {
			recovering = addr
		}
		return up && !rec
	}
	if current.IsValid() && serves(current) {
		return current, true
	}
	for _, p := range s.spec.Relay.Peers {
		if serves(p.Addr) {
			return p.Addr, true
		}
	}
	if !anyRecovering || !recovering.IsValid() {
		return netip.Addr{}, false
	}
	return recovering, true
}

// stepRelay moves the make-before-break sequence on, given the state the
// checks and the drain flag ask for (to) and the previous state (from). It
// returns the state to take: a recovered service stays down until its
// relay has ended, so that the route comes back only after the relay.
func (s *Service) stepRelay(now time.Time, from, to State, reason string) (State, string) {
	sp, r := s.spec.Relay, &s.relay
	if sp == nil {
		return to, reason
	}
	r.held = false
	if r.phase != relayIdle && from == Down && to != Down && (to != Drained || !sp.OnDrain) {
		r.held = true
		to, reason = Down, fmt.Sprintf("checks pass; failback waits for the relay to %s to end", r.peer)
	}
	away := to == Down || (to == Drained && sp.OnDrain)
	if r.phase == relayIdle {
		// Relay only what routers still send here: the service was
		// announced as reachable until now.
		serving := from == Up || from == Degraded || from == Drained
		peer, ok := s.upPeer(netip.Addr{}, to == Down)
		if !away || !serving || !ok {
			return to, reason
		}
		r.phase, r.peer, r.since = relayMoving, peer, now
	}
	peer, ok := s.upPeer(r.peer, to == Down)
	if !away || !ok {
		// Undrained, or no peer is up any more: never relay to a peer
		// that is not known to serve.
		r.phase, r.held = relayIdle, false
		return s.unhold(to, reason)
	}
	r.peer = peer
	switch r.phase {
	case relayMoving:
		if s.relayDone(now, s.relay.stats.LastFlow) {
			r.phase, r.since = relayEnding, now
		}
	case relayEnding:
		if s.relayDone(now, s.relay.stats.LastPacket) {
			r.phase, r.held = relayIdle, false
			return s.unhold(to, reason)
		}
	}
	return to, reason
}

// unhold re-derives the state when a hold for the relay ends.
func (s *Service) unhold(to State, reason string) (State, string) {
	if to == Down && !s.holdDown && !s.healthySince.IsZero() {
		to, reason = Up, "all checks pass"
		if _, _, warn, why := s.health(); warn {
			to, reason = Degraded, why
		}
		if s.drained {
			to, reason = Drained, "drained by operator"
		}
	}
	return to, reason
}

// relayDone reports whether the current phase has ended: nothing (last is
// the newest flow or packet) arrived through the kernel's relay for Quiet,
// or the phase reached Max. Quiet counts only once the kernel reports the
// relay installed: silence from a relay that is not there proves nothing.
func (s *Service) relayDone(now, last time.Time) bool {
	sp, r := s.spec.Relay, &s.relay
	if now.Sub(r.since) >= sp.Max {
		return true
	}
	st := r.stats
	if st.Mode != relay.All || st.Peer != r.peer {
		return false
	}
	from := r.since
	for _, t := range []time.Time{st.Since, last} {
		if t.After(from) {
			from = t
		}
	}
	return now.Sub(from) >= sp.Quiet
}

// relayWake is when the relay phase may next end by time alone.
func (s *Service) relayWake() time.Time {
	sp, r := s.spec.Relay, &s.relay
	if sp == nil || r.phase == relayIdle {
		return time.Time{}
	}
	t := r.since.Add(sp.Max)
	last := r.stats.LastFlow
	if r.phase == relayEnding {
		last = r.stats.LastPacket
	}
	if st := r.stats; st.Mode == relay.All && st.Peer == r.peer {
		from := r.since
		for _, x := range []time.Time{st.Since, last} {
			if x.After(from) {
				from = x
			}
		}
		if q := from.Add(sp.Quiet); q.Before(t) {
			t = q
		}
	}
	return t
}

// wantRelay is the kernel relay the service needs now.
func (s *Service) wantRelay() relay.Want {
	sp, r := s.spec.Relay, &s.relay
	if sp == nil {
		return relay.Want{}
	}
	w := relay.Want{Service: s.spec.Name, VIP: s.spec.VIP.Addr(), VIP6: s.spec.VIP6.Addr(), Ports: sp.Ports}
	serving := s.state == Up || s.state == Degraded
	if r.phase != relayIdle {
		w.Mode, w.Peer = relay.All, r.peer
		return w
	}
	if sp.OnHang && serving && (s.timingOut() || r.stats.Stalled) {
		// A hung service still holds its listener, so fallback misses
		// it; its queue standing still shows it at once, a timeout at
		// the next check, either long before fall. Relayed flows stay
		// with the peer when it recovers. Only to a peer that serves: a
		// hang is a suspicion.
		if p, ok := s.upPeer(r.want.Peer, false); ok {
			w.Mode, w.Peer = relay.All, p
			return w
		}
	}
	if sp.Fallback && (serving || s.state == Drained) {
		// Fallback takes only flows that no local socket would take, so
		// it may stand while serving, drained included.
		if p, ok := s.upPeer(r.want.Peer, true); ok {
			w.Mode, w.Peer = relay.Fallback, p
		}
	}
	return w
}

// timingOut reports whether a check that still counts as passing timed out
// in its latest result.
func (s *Service) timingOut() bool {
	for _, c := range s.checks {
		if c.decided && c.passing && c.failRun > 0 && c.last != nil && c.last.Reason == checkapi.ReasonTimeout {
			return true
		}
	}
	return false
}

// RelayWant is the desired relay of the service (Mode Off if none) and
// whether the service relays at all.
func (s *Service) RelayWant() (relay.Want, bool) {
	return s.relay.want, s.spec.Relay != nil
}

// RelayStatus is a service's relay for status output.
type RelayStatus struct {
	Mode string `json:"mode"` // off, fallback, all
	// Phase of a relay of everything: moving (routers still send here;
	// a worse metric is announced) or ending (routers moved; relayed flows
	// are ending).
	Phase      string    `json:"phase,omitempty"`
	Peer       string    `json:"peer,omitempty"`
	Since      time.Time `json:"since,omitzero"`
	Flows      uint64    `json:"flows"`
	Packets    uint64    `json:"packets"`
	LastFlow   time.Time `json:"last_flow,omitzero"`
	LastPacket time.Time `json:"last_packet,omitzero"`
}

func (s *Service) relayStatus() *RelayStatus {
	if s.spec.Relay == nil {
		return nil
	}
	r := &s.relay
	st := &RelayStatus{Mode: r.want.Mode.String(), Phase: relayPhaseNames[r.phase],
		Flows: r.stats.Flows, Packets: r.stats.Packets, LastFlow: r.stats.LastFlow, LastPacket: r.stats.LastPacket}
	if r.want.Mode != relay.Off {
		st.Peer, st.Since = r.want.Peer.String(), r.wantSince
	}
	return st
}
