package bgp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	api "github.com/osrg/gobgp/v3/api"

	"github.com/ripcord/ripcord/advertisers"
)

// Reconfigure applies cfg to the running speaker and re-establishes only
// what cfg changes:
//   - An added peer is added, a removed one deleted (a CEASE to that router
//     alone), a changed one (address, ASN, port, password, multihop) deleted
//     and added again. The other sessions do not notice.
//   - HoldTime and ConnectRetry are per session: a change re-adds every peer.
//   - NextHop, Priority and MEDScale change what the routes say: every
//     announced route is sent again with the new attributes (one UPDATE per
//     prefix, no withdrawal), on the sessions as they are.
//   - ASN and RouterID are the speaker's identity, which no session can
//     change: the embedded BGP server restarts (every session ends with a
//     CEASE and comes back), then the current routes are added again. The
//     Speaker stays the same object.
//   - CloseTimeout is taken as it is.
//
// Logger stays as New set it. It returns a description of what changed
// (empty if nothing). An invalid cfg changes nothing; an error from GoBGP
// part-way leaves what was done in force.
func (sp *Speaker) Reconfigure(ctx context.Context, cfg Config) ([]string, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.closed {
		return nil, errors.New("bgp: speaker closed")
	}
	old := sp.cfg
	cfg.Logger = old.Logger
	if old.ASN != cfg.ASN || old.RouterID != cfg.RouterID {
		return sp.restartLocked(ctx, cfg)
	}
	var changes []string
	timers := old.HoldTime != cfg.HoldTime || old.ConnectRetry != cfg.ConnectRetry
	have := map[netip.Addr]Peer{}
	for _, p := range old.Peers {
		have[p.Address] = p
	}
	var drop, add []Peer
	for _, p := range old.Peers {
		if !slices.ContainsFunc(cfg.Peers, func(q Peer) bool { return q.Address == p.Address }) {
			drop = append(drop, p)
			changes = append(changes, "removed peer "+p.Address.String())
		}
	}
	for _, p := range cfg.Peers {
		was, ok := have[p.Address]
		switch {
		case !ok:
			changes = append(changes, "added peer "+p.Address.String())
		case was != p || timers || old.families(p.Address) != cfg.families(p.Address):
			// The families are negotiated when the session opens.
			drop = append(drop, was)
			changes = append(changes, "changed peer "+p.Address.String())
		default:
			continue
		}
		add = append(add, p)
	}
	sp.cfg = cfg
	for _, p := range drop {
		if err := sp.server.DeletePeer(ctx, &api.DeletePeerRequest{Address: p.Address.String()}); err != nil {
			return changes, fmt.Errorf("bgp: delete peer %s: %w", p.Address, err)
		}
	}
	for _, p := range add {
		if err := sp.server.AddPeer(ctx, &api.AddPeerRequest{Peer: sp.apiPeer(p)}); err != nil {
			return changes, fmt.Errorf("bgp: add peer %s: %w", p.Address, err)
		}
	}
	if old.NextHop != cfg.NextHop || old.NextHop6 != cfg.NextHop6 || old.Priority != cfg.Priority || old.MEDScale != cfg.MEDScale {
		changes = append(changes, "route attributes")
		if err := sp.reannounceLocked(ctx); err != nil {
			return changes, err
		}
	}
	if len(changes) > 0 {
		sp.log.Info("bgp: reconfigured", "changes", changes)
	}
	return changes, nil
}

// restartLocked restarts the embedded server with cfg's identity and
// announces the current routes again.
func (sp *Speaker) restartLocked(ctx context.Context, cfg Config) ([]string, error) {
	changes := []string{fmt.Sprintf("restarted as AS %d, router id %s", cfg.ASN, cfg.RouterID)}
	if err := sp.server.StopBgp(ctx, &api.StopBgpRequest{}); err != nil {
		return nil, fmt.Errorf("bgp: stop: %w", err)
	}
	sp.stopWatch()
	sp.sessionsMu.Lock()
	clear(sp.sessions)
	sp.sessionsMu.Unlock()
	sp.cfg = cfg
	if err := sp.start(ctx); err != nil {
		return changes, err
	}
	sp.log.Info("bgp: restarted with a new identity", "asn", cfg.ASN, "router_id", cfg.RouterID.String())
	return changes, sp.reannounceLocked(ctx)
}

// reannounceLocked adds every announced route again, built from the
// current config.
func (sp *Speaker) reannounceLocked(ctx context.Context) error {
	var errs []error
	for _, p := range sortedPrefixes(sp.announced) {
		r := sp.announced[p]
		if err := sp.announceLocked(ctx, advertisers.Announcement{Prefix: p, Metric: r.metric, Draining: r.draining}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
