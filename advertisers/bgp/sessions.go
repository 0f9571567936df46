package bgp

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"time"

	api "github.com/osrg/gobgp/v3/api"
)

// Session is one BGP session as the speaker sees it.
type Session struct {
	Peer    netip.Addr `json:"peer"`
	PeerASN uint32     `json:"peer_asn"`
	State   string     `json:"state"` // established, active, connect, idle, opensent, openconfirm
	// Since is when the session last came up (while established) or went
	// down (otherwise); zero if it never did.
	Since time.Time `json:"since,omitzero"`
	// Advertised counts the prefixes we send the peer (our VIPs); Received
	// the prefixes it sends us (ripcord imports none of them).
	Advertised uint64 `json:"advertised"`
	Received   uint64 `json:"received"`
}

// Sessions reports every configured peer's session, ordered by address.
func (sp *Speaker) Sessions(ctx context.Context) []Session {
	var out []Session
	_ = sp.server.ListPeer(ctx, &api.ListPeerRequest{EnableAdvertised: true}, func(p *api.Peer) {
		st := p.GetState()
		addr, err := netip.ParseAddr(p.GetConf().GetNeighborAddress())
		if err != nil {
			return
		}
		s := Session{Peer: addr, PeerASN: st.GetPeerAsn(),
			State: strings.ToLower(st.GetSessionState().String())}
		t := p.GetTimers().GetState()
		since := t.GetDowntime()
		if st.GetSessionState() == api.PeerState_ESTABLISHED {
			since = t.GetUptime()
		}
		if since != nil && since.GetSeconds() > 0 {
			s.Since = since.AsTime()
		}
		for _, af := range p.GetAfiSafis() {
			s.Advertised += af.GetState().GetAdvertised()
			s.Received += af.GetState().GetReceived()
		}
		out = append(out, s)
	})
	slices.SortFunc(out, func(a, b Session) int { return a.Peer.Compare(b.Peer) })
	return out
}
