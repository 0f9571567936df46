// Package bgp announces service addresses over BGP with an embedded GoBGP v3
// speaker. It implements advertisers.Advertiser: metric < 16 announces the
// prefix with the metric as MED or as AS-path prepends, metric 16 (or absence
// from the set) withdraws it, and draining adds the RFC 8326
// GRACEFUL_SHUTDOWN community.
//
// The speaker never listens (no port 179, no root); it dials its routers. It
// announces only prefixes given to Set: routes learned from the routers are
// neither used nor passed on.
package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/server"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/ripcord/ripcord/advertisers"
)

// CommunityGracefulShutdown is GRACEFUL_SHUTDOWN (65535:0, RFC 8326). Routers
// that honour it lower the route's LOCAL_PREF, moving traffic away before the
// route is withdrawn.
const CommunityGracefulShutdown uint32 = 0xFFFF0000

// localOnlyPolicy is the policy that keeps learned routes out of the RIB and
// out of every advertisement.
const localOnlyPolicy = "ripcord-local-only"

var (
	ipv4Unicast = &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	ipv6Unicast = &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
)

func familyOf(p netip.Prefix) *api.Family {
	if p.Addr().Is6() {
		return ipv6Unicast
	}
	return ipv4Unicast
}

// families says whether the session with peer carries IPv4 and IPv6.
func (cfg *Config) families(peer netip.Addr) [2]bool {
	return [2]bool{cfg.carries(peer, netip.PrefixFrom(netip.IPv4Unspecified(), 0)),
		cfg.carries(peer, netip.PrefixFrom(netip.IPv6Unspecified(), 0))}
}

// carries reports whether the session with peer carries prefixes of p's
// family: its own family always (the next hop defaults to the session's
// local address), the other one only with that family's next hop
// configured (an IPv4 session has no IPv6 address to put there).
func (cfg *Config) carries(peer netip.Addr, p netip.Prefix) bool {
	switch {
	case p.Addr().Is6() == peer.Is6():
		return true
	case p.Addr().Is6():
		return cfg.NextHop6.IsValid()
	default:
		return cfg.NextHop.IsValid()
	}
}

// startMu serialises StartBgp: GoBGP v3 stores route-selection options in
// package variables on every start, so two speakers starting at once in one
// process (the lab runs several replicas) would race.
var startMu sync.Mutex

// route is what the speaker currently announces for one prefix.
type route struct {
	metric   int
	draining bool
	path     *api.Path // as given to AddPath, reused for the withdrawal
}

// Speaker is an embedded BGP speaker. It is safe for concurrent use.
type Speaker struct {
	cfg    Config
	log    *slog.Logger
	server *server.BgpServer

	stopWatch  context.CancelFunc
	sessionsMu sync.Mutex
	sessions   map[string]bool // peer address -> established

	mu        sync.Mutex
	announced map[netip.Prefix]route
	closed    bool
}

var _ advertisers.Advertiser = (*Speaker)(nil)

// New starts a speaker and adds its peers. Sessions come up in the
// background; Set may be called at once (routes go out when a session is
// established).
func New(ctx context.Context, cfg Config) (*Speaker, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := server.NewBgpServer(server.LoggerOption(newGoBGPLogger(cfg.Logger)))
	// Serve runs GoBGP's event loop; it never returns (a GoBGP limitation:
	// after Close one idle goroutine remains).
	go s.Serve()
	sp := &Speaker{cfg: cfg, log: cfg.Logger, server: s, announced: make(map[netip.Prefix]route), sessions: make(map[string]bool)}
	if err := sp.start(ctx); err != nil {
		// StopBgp is safe after a partial start and closes any session.
		_ = s.StopBgp(context.Background(), &api.StopBgpRequest{})
		return nil, err
	}
	return sp, nil
}

func (sp *Speaker) start(ctx context.Context) error {
	cfg := sp.cfg
	startMu.Lock()
	err := sp.server.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn:      cfg.ASN,
		RouterId: cfg.RouterID.String(),
		// -1: never open a listening socket.
		ListenPort: -1,
	}})
	startMu.Unlock()
	if err != nil {
		return fmt.Errorf("bgp: start: %w", err)
	}
	if err := sp.installLocalOnlyPolicy(ctx); err != nil {
		return err
	}
	watchCtx, cancel := context.WithCancel(context.Background())
	sp.stopWatch = cancel
	err = sp.server.WatchEvent(watchCtx, &api.WatchEventRequest{Peer: &api.WatchEventRequest_Peer{}}, sp.onEvent)
	if err != nil {
		cancel()
		return fmt.Errorf("bgp: watch peers: %w", err)
	}
	for _, p := range cfg.Peers {
		if err := sp.server.AddPeer(ctx, &api.AddPeerRequest{Peer: sp.apiPeer(p)}); err != nil {
			cancel()
			return fmt.Errorf("bgp: add peer %s: %w", p.Address, err)
		}
	}
	return nil
}

// installLocalOnlyPolicy accepts only locally originated paths, on import
// (learned routes never enter the RIB) and on export (nothing but our own
// announcements can ever leave, whatever a router sends us).
func (sp *Speaker) installLocalOnlyPolicy(ctx context.Context) error {
	pol := &api.Policy{Name: localOnlyPolicy, Statements: []*api.Statement{{
		Name:       localOnlyPolicy + "-accept-local",
		Conditions: &api.Conditions{RouteType: api.Conditions_ROUTE_TYPE_LOCAL},
		Actions:    &api.Actions{RouteAction: api.RouteAction_ACCEPT},
	}}}
	if err := sp.server.AddPolicy(ctx, &api.AddPolicyRequest{Policy: pol}); err != nil {
		return fmt.Errorf("bgp: add policy: %w", err)
	}
	for _, dir := range []api.PolicyDirection{api.PolicyDirection_IMPORT, api.PolicyDirection_EXPORT} {
		err := sp.server.AddPolicyAssignment(ctx, &api.AddPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
			Name:          "global",
			Direction:     dir,
			Policies:      []*api.Policy{{Name: localOnlyPolicy}},
			DefaultAction: api.RouteAction_REJECT,
		}})
		if err != nil {
			return fmt.Errorf("bgp: assign policy: %w", err)
		}
	}
	return nil
}

func (sp *Speaker) apiPeer(p Peer) *api.Peer {
	hold := uint64(sp.cfg.HoldTime / time.Second)
	ap := &api.Peer{
		Conf: &api.PeerConf{
			NeighborAddress: p.Address.String(),
			PeerAsn:         p.ASN,
			AuthPassword:    p.Password,
		},
		Transport: &api.Transport{RemotePort: uint32(p.Port), PassiveMode: false},
		Timers: &api.Timers{Config: &api.TimersConfig{
			ConnectRetry:      uint64(sp.cfg.ConnectRetry / time.Second),
			HoldTime:          hold,
			KeepaliveInterval: max(hold/3, 1),
		}},
	}
	fams := sp.cfg.families(p.Address)
	for i, f := range []*api.Family{ipv4Unicast, ipv6Unicast} {
		if fams[i] {
			ap.AfiSafis = append(ap.AfiSafis, &api.AfiSafi{Config: &api.AfiSafiConfig{Family: f, Enabled: true}})
		}
	}
	if p.MultihopTTL > 0 {
		ap.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: uint32(p.MultihopTTL)}
	}
	return ap
}

// onEvent logs sessions coming up (Info) and going down (Warn); the
// intermediate FSM states go to Debug.
func (sp *Speaker) onEvent(ev *api.WatchEventResponse) {
	pe := ev.GetPeer()
	if pe == nil || pe.Type != api.WatchEventResponse_PeerEvent_STATE {
		return
	}
	st := pe.GetPeer().GetState()
	addr, up := st.GetNeighborAddress(), st.GetSessionState() == api.PeerState_ESTABLISHED
	sp.sessionsMu.Lock()
	was := sp.sessions[addr]
	sp.sessions[addr] = up
	sp.sessionsMu.Unlock()
	switch {
	case up && !was:
		sp.log.Info("bgp: session established", "peer", addr, "peer_asn", st.GetPeerAsn())
	case !up && was:
		sp.log.Warn("bgp: session lost", "peer", addr, "state", st.GetSessionState().String())
	default:
		sp.log.Debug("bgp: session state", "peer", addr, "state", st.GetSessionState().String())
	}
}

// WithdrawsDown implements advertisers.DownWithdrawer: a down service is
// withdrawn whatever its down_metric.
func (*Speaker) WithdrawsDown() {}

// Set converges the announced routes to want. Invalid input changes nothing;
// otherwise every prefix is handled and the errors are joined.
func (sp *Speaker) Set(ctx context.Context, want []advertisers.Announcement) error {
	next := make(map[netip.Prefix]advertisers.Announcement, len(want))
	for _, a := range want {
		p, err := checkPrefix(a.Prefix)
		if err != nil {
			return err
		}
		if a.Metric < 1 || a.Metric > advertisers.MetricPoison {
			return fmt.Errorf("bgp: %s: metric %d outside 1..%d", p, a.Metric, advertisers.MetricPoison)
		}
		if _, dup := next[p]; dup {
			return fmt.Errorf("bgp: %s given twice", p)
		}
		a.Prefix = p
		next[p] = a
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.closed {
		return errors.New("bgp: speaker closed")
	}
	var errs []error
	for _, p := range sortedPrefixes(sp.announced) {
		if a, ok := next[p]; ok && !a.Withdrawn() {
			continue
		}
		if err := sp.withdrawLocked(ctx, p); err != nil {
			errs = append(errs, err)
		}
	}
	for _, p := range sortedPrefixes(next) {
		a := next[p]
		if a.Withdrawn() {
			continue
		}
		if cur, ok := sp.announced[p]; ok && cur.metric == a.Metric && cur.draining == a.Draining {
			continue
		}
		if err := sp.announceLocked(ctx, a); err != nil {
			errs = append(errs, err)
			continue
		}
		sp.log.Info("bgp: announced", "prefix", p.String(), "metric", a.Metric, "draining", a.Draining)
	}
	return errors.Join(errs...)
}

// announceLocked announces a and records it. Adding a path for a prefix
// already announced replaces it, so a priority change is one UPDATE and
// never a withdraw/announce gap. Caller holds mu.
func (sp *Speaker) announceLocked(ctx context.Context, a advertisers.Announcement) error {
	path, err := sp.path(a)
	if err != nil {
		return err
	}
	if _, err := sp.server.AddPath(ctx, &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: path}); err != nil {
		return fmt.Errorf("bgp: announce %s: %w", a.Prefix, err)
	}
	sp.announced[a.Prefix] = route{metric: a.Metric, draining: a.Draining, path: path}
	return nil
}

// withdrawLocked withdraws one announced prefix. Caller holds mu.
func (sp *Speaker) withdrawLocked(ctx context.Context, p netip.Prefix) error {
	r, ok := sp.announced[p]
	if !ok {
		return nil
	}
	if r.path == nil {
		// A DeletePath without a path or uuid withdraws every local route;
		// refuse rather than risk it.
		return fmt.Errorf("bgp: withdraw %s: no path recorded", p)
	}
	err := sp.server.DeletePath(ctx, &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Family: r.path.Family, Path: r.path})
	if err != nil {
		return fmt.Errorf("bgp: withdraw %s: %w", p, err)
	}
	delete(sp.announced, p)
	sp.log.Info("bgp: withdrawn", "prefix", p.String())
	return nil
}

// path builds the GoBGP path for one announcement.
func (sp *Speaker) path(a advertisers.Announcement) (*api.Path, error) {
	// The unspecified address: GoBGP puts the session's local address there.
	nextHop, configured := "0.0.0.0", sp.cfg.NextHop
	if a.Prefix.Addr().Is6() {
		nextHop, configured = "::", sp.cfg.NextHop6
	}
	if configured.IsValid() {
		nextHop = configured.String()
	}
	attrs := []proto.Message{
		&api.OriginAttribute{Origin: 0}, // IGP
		&api.NextHopAttribute{NextHop: nextHop},
	}
	switch sp.cfg.Priority {
	case PriorityMED:
		attrs = append(attrs, &api.MultiExitDiscAttribute{Med: uint32(a.Metric) * sp.cfg.MEDScale})
	case PriorityPrepend:
		// GoBGP adds our ASN once on every eBGP session, so metric-1 copies
		// here make the AS_PATH exactly metric long.
		if n := a.Metric - 1; n > 0 {
			attrs = append(attrs, &api.AsPathAttribute{Segments: []*api.AsSegment{{
				Type:    api.AsSegment_AS_SEQUENCE,
				Numbers: slices.Repeat([]uint32{sp.cfg.ASN}, n),
			}}})
		}
	}
	if a.Draining {
		attrs = append(attrs, &api.CommunitiesAttribute{Communities: []uint32{CommunityGracefulShutdown}})
	}
	pattrs := make([]*anypb.Any, 0, len(attrs))
	for _, attr := range attrs {
		m, err := anypb.New(attr)
		if err != nil {
			return nil, fmt.Errorf("bgp: %s: encode attribute: %w", a.Prefix, err)
		}
		pattrs = append(pattrs, m)
	}
	nlri, err := anypb.New(&api.IPAddressPrefix{Prefix: a.Prefix.Addr().String(), PrefixLen: uint32(a.Prefix.Bits())})
	if err != nil {
		return nil, fmt.Errorf("bgp: %s: encode prefix: %w", a.Prefix, err)
	}
	return &api.Path{Family: familyOf(a.Prefix), Nlri: nlri, Pattrs: pattrs}, nil
}

// Announced returns what the speaker currently announces, sorted by prefix.
func (sp *Speaker) Announced() []advertisers.Announcement {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	out := make([]advertisers.Announcement, 0, len(sp.announced))
	for _, p := range sortedPrefixes(sp.announced) {
		r := sp.announced[p]
		out = append(out, advertisers.Announcement{Prefix: p, Metric: r.metric, Draining: r.draining})
	}
	return out
}

// Close withdraws every announced prefix, waits (at most CloseTimeout) until
// the withdrawals are on the wire to every established peer, then ends the
// sessions with a CEASE. Close is idempotent.
func (sp *Speaker) Close() error {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.closed {
		return nil
	}
	sp.closed = true
	ctx := context.Background()
	before := sp.sentUpdates(ctx)
	var withdrawn []netip.Prefix
	var errs []error
	for _, p := range sortedPrefixes(sp.announced) {
		if err := sp.withdrawLocked(ctx, p); err != nil {
			errs = append(errs, err)
			continue
		}
		withdrawn = append(withdrawn, p)
	}
	if len(withdrawn) > 0 {
		sp.awaitSent(ctx, before, withdrawn)
	}
	if err := sp.server.StopBgp(ctx, &api.StopBgpRequest{}); err != nil {
		errs = append(errs, fmt.Errorf("bgp: stop: %w", err))
	}
	sp.stopWatch()
	return errors.Join(errs...)
}

// sentUpdates returns the UPDATE counters of the established sessions.
func (sp *Speaker) sentUpdates(ctx context.Context) map[string]uint64 {
	out := make(map[string]uint64)
	_ = sp.server.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
		if p.GetState().GetSessionState() == api.PeerState_ESTABLISHED {
			out[p.GetConf().GetNeighborAddress()] = p.GetState().GetMessages().GetSent().GetUpdate()
		}
	})
	return out
}

// awaitSent waits until every session in before has sent one more UPDATE
// per withdrawn prefix it carries, or is down, bounded by CloseTimeout.
// StopBgp drops queued UPDATEs, so without this wait a router would learn
// of the withdrawal only from the session ending.
func (sp *Speaker) awaitSent(ctx context.Context, before map[string]uint64, withdrawn []netip.Prefix) {
	// The UPDATE count each session must reach: one more per withdrawn
	// prefix it carries.
	want := make(map[string]uint64, len(before))
	for addr, count := range before {
		want[addr] = count
		if peer, err := netip.ParseAddr(addr); err == nil {
			for _, p := range withdrawn {
				if sp.cfg.carries(peer, p) {
					want[addr]++
				}
			}
		}
	}
	deadline := time.Now().Add(sp.cfg.CloseTimeout)
	for {
		now := sp.sentUpdates(ctx)
		pending := 0
		for addr, w := range want {
			if c, up := now[addr]; up && c < w {
				pending++
			}
		}
		if pending == 0 {
			return
		}
		if time.Now().After(deadline) {
			sp.log.Warn("bgp: withdrawals not confirmed before shutdown", "sessions", pending, "timeout", sp.cfg.CloseTimeout)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkPrefix accepts IPv4 and IPv6 prefixes and returns them masked (an
// IPv4-mapped one as IPv4).
func checkPrefix(p netip.Prefix) (netip.Prefix, error) {
	if !p.IsValid() || p.Addr().Zone() != "" {
		return p, fmt.Errorf("bgp: invalid prefix %s", p)
	}
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

func sortedPrefixes[V any](m map[netip.Prefix]V) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(m))
	for p := range m {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return out
}
