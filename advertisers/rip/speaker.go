// Package rip is an announce-only RIPv2 speaker (RFC 2453): it tells the
// routers on a host's links about the host's service addresses and learns
// nothing. It implements advertisers.Advertiser.
//
// Per interface it multicasts periodic full updates to 224.0.0.9:520,
// sends a triggered update with just the changed entries on every change,
// answers Requests at once (routers ask for the whole table when they
// start), re-advertises when a neighbour poisons one of its prefixes, and
// poisons everything on Close. No packet names a prefix not given to Set,
// and on an authenticated link no unauthenticated packet is answered. Authentication: none, simple password,
// keyed MD5 (FRR and BIRD) and HMAC-SHA-256 (BIRD).
package rip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ripcord/ripcord/advertisers"
)

// Defaults and bounds.
const (
	DefaultUpdateInterval = 30 * time.Second
	MinUpdateInterval     = time.Second
	// DefaultWithdrawCycles is how many periodic updates still carry a
	// withdrawn prefix (metric 16) before it is forgotten.
	DefaultWithdrawCycles = 3
	// updateJitter spreads periodic updates by ±15% so speakers on one link
	// do not synchronise (RFC 2453 §3.8).
	updateJitter = 0.15
	// readvertiseGap limits re-advertisements caused by heard poison to one
	// per interface per gap, so two speakers cannot start a storm.
	readvertiseGap = 200 * time.Millisecond
	// closeRepeatGap separates the two poison updates Close sends, in case
	// the first is lost.
	closeRepeatGap = 75 * time.Millisecond
	maxPacket      = 1500
	// maxHeard bounds the per-link memory of what neighbours said about
	// our prefixes.
	maxHeard = 4096
)

// minUpdateInterval is MinUpdateInterval; unit tests lower it to see many
// periodic updates quickly.
var minUpdateInterval = MinUpdateInterval

// Interface is one link the speaker talks on.
type Interface struct {
	Name string
	// Neighbors get every update by unicast too, for links where
	// multicast does not reach the router.
	Neighbors []netip.Addr
}

// Config configures a Speaker.
type Config struct {
	Interfaces []Interface
	// UpdateInterval is the period of full updates (default 30 s, minimum
	// 1 s), jittered by ±15%.
	UpdateInterval time.Duration
	// TriggeredDelay is the least time between two triggered updates.
	// RFC 2453 §3.10.1 asks routers for 1-5 s to damp cascades through a
	// network; a host announcing a handful of its own prefixes starts no
	// cascade, and every second of delay here is a second of failover, so
	// the default 0 sends every change at once. Changes that arrive inside
	// the delay are merged into one update at its end.
	TriggeredDelay time.Duration
	// WithdrawCycles: periodic updates that still carry a withdrawn prefix
	// with metric 16 (default 3).
	WithdrawCycles int
	Auth           Auth
	Logger         *slog.Logger
	// OnPoisonHeard, when set, is called when a router on one of the links
	// starts advertising one of our prefixes with metric 16 (the speaker
	// has already re-advertised its own metric). It must not block.
	OnPoisonHeard func(netip.Prefix)
	// NoReadvertise turns off the re-advertisement on heard poison. It
	// exists to measure what that re-advertisement is worth; leave it off.
	NoReadvertise bool
	// Protocol is RIPv2 when nil; package ripng sets RIPng.
	Protocol *Protocol
}

// Stats counts packets. Malformed and AuthFailed packets are dropped.
type Stats struct {
	Sent             uint64
	Received         uint64
	Malformed        uint64
	AuthFailed       uint64
	RequestsAnswered uint64
	PoisonsHeard     uint64
	WorsePathsHeard  uint64 // a router announced one of our prefixes with a worse metric than ours gives it
}

type counters struct {
	sent, received, malformed, authFailed, requestsAnswered, poisonsHeard, worsePathsHeard atomic.Uint64
}

// route is one prefix the speaker announces or is still withdrawing.
type route struct {
	metric     int
	withdrawn  bool
	cyclesLeft int // periodic updates left for a withdrawn route
}

type heardKey struct {
	from   netip.Addr
	prefix netip.Prefix
}

type link struct {
	name      string
	conn      net.PacketConn
	neighbors []netip.Addr
	dests     []net.Addr // the group, then the neighbours
	heard     map[heardKey]int
	routers   map[netip.Addr]time.Time // who sent Responses on the link, and when last
	said      map[heardKey]said        // what they last said about our prefixes
	lastReadv time.Time
	readvTmr  *time.Timer
	gone      bool // removed by Reconfigure: the link says nothing more
}

func (s *Speaker) newLink(ifc Interface, c net.PacketConn) *link {
	return &link{name: ifc.Name, conn: c, neighbors: ifc.Neighbors, dests: s.linkDests(ifc), heard: map[heardKey]int{},
		routers: map[netip.Addr]time.Time{}, said: map[heardKey]said{}}
}

// linkDests is the group, then the unicast neighbours.
func (s *Speaker) linkDests(ifc Interface) []net.Addr {
	dests := []net.Addr{s.proto.addr(s.proto.Group, ifc.Name)}
	for _, n := range ifc.Neighbors {
		dests = append(dests, s.proto.addr(n, ifc.Name))
	}
	return dests
}

type queryKey struct {
	iface  string
	router netip.Addr
	prefix netip.Prefix
}

// Speaker is an announce-only RIPv2 speaker. Its methods are safe for
// concurrent use.
type Speaker struct {
	cfg   Config
	proto *Protocol
	log   *slog.Logger
	links []*link
	stats counters

	mu           sync.Mutex // guards everything below and serialises sends
	routes       map[netip.Prefix]*route
	seq          Sequence
	closed       bool
	lastTrig     time.Time
	pendingTrig  map[netip.Prefix]bool
	trigTimer    *time.Timer
	queries      map[queryKey]chan int
	noQuery      map[netip.Addr]time.Time // routers that answer no specific Request, until when
	periodicStop chan struct{}
	intervalSet  chan struct{} // wakes the periodic loop when Reconfigure changes the interval

	reconfMu sync.Mutex // serialises Reconfigure
	wg       sync.WaitGroup
}

var _ advertisers.Advertiser = (*Speaker)(nil)

// NewWithConns starts a speaker on already-open sockets, one per
// interface name in cfg (tests pass in-memory connections; New opens real
// ones). The speaker owns the connections and closes them on Close.
func NewWithConns(cfg Config, conns map[string]net.PacketConn) (*Speaker, error) {
	if cfg.Protocol == nil {
		cfg.Protocol = RIPv2
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Speaker{
		cfg:          cfg,
		proto:        cfg.Protocol,
		log:          cfg.Logger.With("component", cfg.Protocol.Name),
		routes:       map[netip.Prefix]*route{},
		pendingTrig:  map[netip.Prefix]bool{},
		queries:      map[queryKey]chan int{},
		noQuery:      map[netip.Addr]time.Time{},
		periodicStop: make(chan struct{}),
		intervalSet:  make(chan struct{}, 1),
	}
	for _, ifc := range cfg.Interfaces {
		c, ok := conns[ifc.Name]
		if !ok {
			return nil, fmt.Errorf("%s: no socket for interface %q", s.proto.Name, ifc.Name)
		}
		s.links = append(s.links, s.newLink(ifc, c))
	}
	for _, l := range s.links {
		s.wg.Add(1)
		go s.readLoop(l)
	}
	s.wg.Add(1)
	go s.periodicLoop()
	s.log.Info("speaker started", "interfaces", len(s.links), "auth", cfg.Auth.String(),
		"update_interval", cfg.UpdateInterval)
	return s, nil
}

func (c Config) withDefaults() Config {
	if c.UpdateInterval == 0 {
		c.UpdateInterval = DefaultUpdateInterval
	}
	if c.WithdrawCycles == 0 {
		c.WithdrawCycles = DefaultWithdrawCycles
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func (c *Config) validate() error {
	name := c.Protocol.Name
	if len(c.Interfaces) == 0 {
		return fmt.Errorf("%s: no interfaces", name)
	}
	seen := map[string]bool{}
	for _, ifc := range c.Interfaces {
		if ifc.Name == "" || seen[ifc.Name] {
			return fmt.Errorf("%s: interface name %q empty or repeated", name, ifc.Name)
		}
		seen[ifc.Name] = true
		for _, n := range ifc.Neighbors {
			if n.Is6() != c.Protocol.Is6 || n.Is4In6() {
				return fmt.Errorf("%s: neighbour %v on %s is not %s", name, n, ifc.Name, c.Protocol.family())
			}
		}
	}
	if c.UpdateInterval != 0 && c.UpdateInterval < minUpdateInterval {
		return fmt.Errorf("%s: update interval %v below %v", name, c.UpdateInterval, minUpdateInterval)
	}
	if c.TriggeredDelay < 0 || c.WithdrawCycles < 0 {
		return fmt.Errorf("%s: negative triggered delay or withdraw cycles", name)
	}
	if c.Auth.Type != AuthNone && !c.Protocol.Authenticated {
		return fmt.Errorf("%s: the protocol has no authentication of its own", name)
	}
	if err := c.Auth.Validate(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// Stats returns the packet counters.
func (s *Speaker) Stats() Stats {
	return Stats{
		Sent:             s.stats.sent.Load(),
		Received:         s.stats.received.Load(),
		Malformed:        s.stats.malformed.Load(),
		AuthFailed:       s.stats.authFailed.Load(),
		RequestsAnswered: s.stats.requestsAnswered.Load(),
		PoisonsHeard:     s.stats.poisonsHeard.Load(),
		WorsePathsHeard:  s.stats.worsePathsHeard.Load(),
	}
}

// Set implements advertisers.Advertiser. Changes (new prefix, new metric,
// removed prefix as metric 16) go out at once as a triggered update, unless
// Config.TriggeredDelay holds them back.
func (s *Speaker) Set(ctx context.Context, want []advertisers.Announcement) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	desired := make(map[netip.Prefix]int, len(want))
	for _, a := range want {
		if !s.proto.carries(a.Prefix) || a.Prefix.Addr().Is4In6() || a.Prefix.Masked() != a.Prefix {
			return fmt.Errorf("%s: %v is not a canonical %s prefix", s.proto.Name, a.Prefix, s.proto.family())
		}
		if a.Metric < 1 || a.Metric > MetricInfinity {
			return fmt.Errorf("%s: %v: metric %d outside 1..16", s.proto.Name, a.Prefix, a.Metric)
		}
		if _, dup := desired[a.Prefix]; dup {
			return fmt.Errorf("%s: %v given twice", s.proto.Name, a.Prefix)
		}
		desired[a.Prefix] = a.Metric
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("%s: speaker closed", s.proto.Name)
	}
	var changed []netip.Prefix
	for p, m := range desired {
		r := s.routes[p]
		if r == nil || r.withdrawn || r.metric != m {
			s.routes[p] = &route{metric: m}
			changed = append(changed, p)
		}
	}
	for p, r := range s.routes {
		if _, ok := desired[p]; !ok && !r.withdrawn {
			*r = route{metric: MetricInfinity, withdrawn: true, cyclesLeft: s.cfg.WithdrawCycles}
			changed = append(changed, p)
			s.forgetHeardLocked(p)
		}
	}
	if len(changed) == 0 {
		return nil
	}
	for _, p := range changed {
		s.pendingTrig[p] = true
	}
	if wait := s.cfg.TriggeredDelay - time.Since(s.lastTrig); s.cfg.TriggeredDelay > 0 && wait > 0 {
		if s.trigTimer == nil {
			s.trigTimer = time.AfterFunc(wait, s.flushTriggered)
		}
		return nil
	}
	return s.sendTriggeredLocked()
}

// Carries implements advertisers.Carrier: RIPv2 carries IPv4 prefixes,
// RIPng IPv6 ones.
func (s *Speaker) Carries(p netip.Prefix) bool { return s.proto.carries(p) }

func (s *Speaker) flushTriggered() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.trigTimer = nil
	if s.closed {
		return
	}
	if err := s.sendTriggeredLocked(); err != nil {
		s.log.Warn("triggered update failed", "err", err)
	}
}

func (s *Speaker) sendTriggeredLocked() error {
	var entries []Entry
	for p := range s.pendingTrig {
		if r := s.routes[p]; r != nil {
			entries = append(entries, routeEntry(p, r.metric))
		}
	}
	clear(s.pendingTrig)
	s.lastTrig = time.Now()
	var errs []error
	for _, l := range s.links {
		errs = append(errs, s.sendUpdateLocked(l, entries))
	}
	return errors.Join(errs...)
}

// routeEntry is an entry for p via the sender (RIPng ignores AFI and an
// unset next hop).
func routeEntry(p netip.Prefix, metric int) Entry {
	e := Entry{AFI: AFIInet, Prefix: p, Metric: metric}
	if p.Addr().Is4() {
		e.NextHop = netip.IPv4Unspecified()
	}
	return e
}

// poisonLocked is every route the speaker sends, each with metric 16: what
// a link hears when the speaker leaves it.
func (s *Speaker) poisonLocked() []Entry {
	p := s.tableLocked()
	for i := range p {
		p[i].Metric = MetricInfinity
	}
	return p
}

// tableLocked is every route the speaker currently sends in full updates:
// desired ones with their metric, withdrawn ones with 16.
func (s *Speaker) tableLocked() []Entry {
	entries := make([]Entry, 0, len(s.routes))
	for p, r := range s.routes {
		entries = append(entries, routeEntry(p, r.metric))
	}
	slices.SortFunc(entries, func(a, b Entry) int { return a.Prefix.Addr().Compare(b.Prefix.Addr()) })
	return entries
}

// sendUpdateLocked sends entries to the group and every unicast neighbour
// of one link.
func (s *Speaker) sendUpdateLocked(l *link, entries []Entry) error {
	return s.sendUpdateAuthLocked(s.cfg.Auth, l, entries)
}

func (s *Speaker) sendUpdateAuthLocked(auth Auth, l *link, entries []Entry) error {
	var errs []error
	for _, dst := range l.dests {
		errs = append(errs, s.sendAuthLocked(auth, l, dst, CommandResponse, entries))
	}
	return errors.Join(errs...)
}

// sendLocked splits entries into packets that fit, signs and sends them.
// All packets of one update share a sequence number, as BIRD's do.
func (s *Speaker) sendLocked(l *link, dst net.Addr, cmd uint8, entries []Entry) error {
	return s.sendAuthLocked(s.cfg.Auth, l, dst, cmd, entries)
}

// sendAuthLocked is sendLocked with the given authentication: Reconfigure
// poisons a removed link with the key its routers know.
func (s *Speaker) sendAuthLocked(auth Auth, l *link, dst net.Addr, cmd uint8, entries []Entry) error {
	if len(entries) == 0 {
		return nil
	}
	seq := s.seq.Next()
	per := s.proto.MaxEntries
	if s.proto.Authenticated {
		per = auth.MaxRouteEntries()
	}
	for chunk := range slices.Chunk(entries, per) {
		pkt := Packet{Command: cmd, Version: s.proto.Version, Entries: chunk}
		plain, err := s.proto.Marshal(&pkt)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", s.proto.Name, l.name, err)
		}
		wire, err := auth.Sign(plain, seq)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", s.proto.Name, l.name, err)
		}
		if _, err := l.conn.WriteTo(wire, dst); err != nil {
			return fmt.Errorf("%s: send on %s to %v: %w", s.proto.Name, l.name, dst, err)
		}
		s.stats.sent.Add(1)
	}
	return nil
}

func (s *Speaker) periodicLoop() {
	defer s.wg.Done()
	t := time.NewTimer(s.jittered())
	defer t.Stop()
	for {
		select {
		case <-s.periodicStop:
			return
		case <-s.intervalSet:
			t.Reset(s.jittered())
			continue
		case <-t.C:
		}
		s.mu.Lock()
		if s.closed {
			// Close is poisoning: the table still holds the live metrics.
			s.mu.Unlock()
			return
		}
		entries := s.tableLocked()
		for _, l := range s.links {
			if err := s.sendUpdateLocked(l, entries); err != nil {
				s.log.Warn("periodic update failed", "interface", l.name, "err", err)
			}
		}
		for p, r := range s.routes {
			if r.withdrawn {
				if r.cyclesLeft--; r.cyclesLeft <= 0 {
					delete(s.routes, p)
				}
			}
		}
		s.mu.Unlock()
		t.Reset(s.jittered())
	}
}

func (s *Speaker) jittered() time.Duration {
	s.mu.Lock()
	every := s.cfg.UpdateInterval
	s.mu.Unlock()
	f := 1 - updateJitter + 2*updateJitter*rand.Float64()
	return time.Duration(float64(every) * f)
}

func (s *Speaker) forgetHeardLocked(p netip.Prefix) {
	for _, l := range s.links {
		for k := range l.heard {
			if k.prefix == p {
				delete(l.heard, k)
			}
		}
	}
}

func (s *Speaker) readLoop(l *link) {
	defer s.wg.Done()
	buf := make([]byte, maxPacket)
	for {
		n, from, err := l.conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || s.isClosed() {
				return
			}
			s.log.Warn("read failed", "interface", l.name, "err", err)
			time.Sleep(10 * time.Millisecond) // do not spin on a persistent error
			continue
		}
		src, ok := udpAddrPort(from)
		if !ok {
			continue
		}
		s.handle(l, src, buf[:n])
	}
}

func udpAddrPort(a net.Addr) (netip.AddrPort, bool) {
	ua, ok := a.(*net.UDPAddr)
	if !ok {
		return netip.AddrPort{}, false
	}
	ap := ua.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
}

// silentLocked: nothing more may be sent on l, because the speaker closed
// or Reconfigure removed the link.
func (s *Speaker) silentLocked(l *link) bool { return s.closed || l.gone }

func (s *Speaker) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// handle processes one received packet: verification, then Requests are
// answered and Responses are watched for poison of our prefixes. Nothing
// is learned.
func (s *Speaker) handle(l *link, src netip.AddrPort, wire []byte) {
	s.stats.received.Add(1)
	plain, err := wire, error(nil)
	if s.proto.Authenticated {
		s.mu.Lock()
		auth := s.cfg.Auth
		s.mu.Unlock()
		plain, _, err = auth.Verify(wire)
	}
	if errors.Is(err, ErrAuthMissing) {
		// On an authenticated link an unauthenticated packet is dropped:
		// it gets no answer, so no one can make the speaker sign a packet
		// of their choosing. One thing is taken from it: FRR 8.4 sends
		// its start-up whole-table Request without authentication even
		// when the interface is configured for it, and waiting for the
		// next periodic update would leave the restarted router without
		// our routes for up to UpdateInterval. Such a Request (from port
		// 520) makes the speaker re-send the table on the link now,
		// exactly as a periodic update sends it (rate-limited).
		s.stats.authFailed.Add(1)
		s.log.Debug("dropped unauthenticated packet", "interface", l.name, "from", src)
		var req Packet
		if src.Port() == uint16(s.proto.Port) && req.UnmarshalBinary(wire) == nil && req.Command == CommandRequest &&
			req.IsWholeTableRequest() {
			s.mu.Lock()
			if !s.silentLocked(l) {
				s.readvertiseLocked(l)
			}
			s.mu.Unlock()
		}
		return
	}
	if errors.Is(err, ErrShort) {
		s.stats.malformed.Add(1)
		s.log.Debug("dropped short packet", "interface", l.name, "from", src, "bytes", len(wire))
		return
	}
	if err != nil {
		s.stats.authFailed.Add(1)
		s.log.Debug("dropped packet failing authentication", "interface", l.name, "from", src, "err", err)
		return
	}
	pkt, err := s.proto.Unmarshal(plain)
	if err != nil {
		s.stats.malformed.Add(1)
		s.log.Debug("dropped malformed packet", "interface", l.name, "from", src, "err", err)
		return
	}
	switch pkt.Command {
	case CommandRequest:
		if src.Port() == uint16(s.proto.Port) { // a router asking, e.g. at its start
			s.mu.Lock()
			s.noteRouterLocked(l, src.Addr(), time.Now())
			s.mu.Unlock()
		}
		s.answerRequest(l, src, &pkt)
	case CommandResponse:
		// Routers speak from port 520 (RFC 2453 §3.9.2), RIPng routers
		// from 521 and a link-local address (RFC 2080 §2.4.2); anything
		// else is not a router's update.
		if src.Port() != uint16(s.proto.Port) || s.proto.Is6 && !src.Addr().IsLinkLocalUnicast() {
			return
		}
		s.mu.Lock()
		s.noteResponseLocked(l, src.Addr(), &pkt, time.Now())
		s.mu.Unlock()
		if s.deliverQuery(l, src.Addr(), &pkt) {
			return
		}
		s.watchPoison(l, src.Addr(), &pkt)
	}
}

func (s *Speaker) answerRequest(l *link, src netip.AddrPort, pkt *Packet) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.silentLocked(l) {
		return
	}
	var entries []Entry
	if pkt.IsWholeTableRequest() {
		entries = s.tableLocked()
	} else {
		// A specific Request gets back the asked entries that are ours,
		// with our metric. RFC 2453 §3.9.1 would echo the others with 16;
		// they are left out, so that no packet ever names a prefix not
		// given to Set. Specific Requests are diagnostics (routers ask for
		// the whole table), and a missing entry tells the asker the same.
		for _, e := range pkt.Entries {
			if r := s.routes[e.Prefix]; r != nil {
				re := routeEntry(e.Prefix, r.metric)
				re.RouteTag = e.RouteTag
				entries = append(entries, re)
			}
		}
	}
	if len(entries) == 0 {
		return
	}
	dst := net.UDPAddrFromAddrPort(src)
	if err := s.sendLocked(l, dst, CommandResponse, entries); err != nil {
		s.log.Warn("answering request failed", "interface", l.name, "to", src, "err", err)
		return
	}
	s.stats.requestsAnswered.Add(1)
}

// watchPoison re-advertises at once when a neighbour starts sending one of
// our live prefixes with metric 16: that router has just lost the route
// (for example because the other replica poisoned it) and takes ours as
// soon as it hears it. Only a change to 16 counts, so a router's poisoned
// reverse (BIRD sends our own routes back with 16 in every update) does not
// cause a re-advertisement every period.
//
// It also re-advertises when a neighbour starts sending one of them with a
// metric worse than ours would give it (more than ours + 1): the router
// uses a path it would drop for ours if it heard ours now. That happens
// when the path it had got worse without being lost: the other replica
// moved to a worse metric (make-before-break) and the router still holds
// our route only from our last periodic update, up to 30 s ago.
func (s *Speaker) watchPoison(l *link, from netip.Addr, pkt *Packet) {
	var poisoned []netip.Prefix
	worse := false
	s.mu.Lock()
	if s.silentLocked(l) {
		s.mu.Unlock()
		return
	}
	onPoison := s.cfg.OnPoisonHeard
	for _, e := range pkt.Entries {
		r := s.routes[e.Prefix]
		if r == nil || r.withdrawn || r.metric >= MetricInfinity {
			continue
		}
		k := heardKey{from, e.Prefix}
		prev, seen := l.heard[k]
		if !seen && len(l.heard) >= maxHeard {
			// Many senders on one link: forget rather than grow without
			// bound. The worst case is one extra re-advertisement.
			clear(l.heard)
		}
		l.heard[k] = e.Metric
		changed := !seen || prev != e.Metric
		switch {
		case e.Metric == MetricInfinity && changed:
			poisoned = append(poisoned, e.Prefix)
		case e.Metric > r.metric+1 && e.Metric < MetricInfinity && changed:
			worse = true
		}
	}
	if len(poisoned) > 0 {
		s.stats.poisonsHeard.Add(1)
	}
	if worse {
		s.stats.worsePathsHeard.Add(1)
	}
	if (len(poisoned) > 0 || worse) && !s.cfg.NoReadvertise {
		s.readvertiseLocked(l)
	}
	s.mu.Unlock()
	if onPoison != nil {
		for _, p := range poisoned {
			onPoison(p)
		}
	}
}

// readvertiseLocked sends the full table on one link now, or at the end of
// the rate-limit gap if the link re-advertised recently.
func (s *Speaker) readvertiseLocked(l *link) {
	if wait := readvertiseGap - time.Since(l.lastReadv); wait > 0 {
		if l.readvTmr == nil {
			l.readvTmr = time.AfterFunc(wait, func() {
				s.mu.Lock()
				defer s.mu.Unlock()
				l.readvTmr = nil
				if !s.silentLocked(l) {
					s.readvertiseLocked(l)
				}
			})
		}
		return
	}
	l.lastReadv = time.Now()
	if err := s.sendUpdateLocked(l, s.tableLocked()); err != nil {
		s.log.Warn("re-advertisement failed", "interface", l.name, "err", err)
	}
}

// Close implements advertisers.Advertiser: it poisons every prefix (metric
// 16) twice, closeRepeatGap apart, then closes the sockets.
func (s *Speaker) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	if s.trigTimer != nil {
		s.trigTimer.Stop()
	}
	for _, l := range s.links {
		if l.readvTmr != nil {
			l.readvTmr.Stop()
		}
	}
	poison := s.poisonLocked()
	var errs []error
	for _, l := range s.links {
		errs = append(errs, s.sendUpdateLocked(l, poison))
	}
	s.mu.Unlock()
	if len(poison) > 0 {
		time.Sleep(closeRepeatGap)
		s.mu.Lock()
		for _, l := range s.links {
			errs = append(errs, s.sendUpdateLocked(l, poison))
		}
		s.mu.Unlock()
	}
	close(s.periodicStop)
	for _, l := range s.links {
		errs = append(errs, l.conn.Close())
	}
	s.wg.Wait()
	s.log.Info("speaker closed", "poisoned", len(poison))
	return errors.Join(errs...)
}

// Query asks a directly connected router for its metric to prefix with a
// unicast specific Request from port 520 on iface, and returns the metric
// in its answer (16 when it has no route). FRR answers only requesters on
// its connected networks.
func (s *Speaker) Query(ctx context.Context, iface string, router netip.Addr, prefix netip.Prefix) (int, error) {
	if router.Is6() != s.proto.Is6 || !s.proto.carries(prefix) {
		return 0, fmt.Errorf("%s: query: %s router and prefix only", s.proto.Name, s.proto.family())
	}
	key := queryKey{iface, router, prefix.Masked()}
	ch := make(chan int, 1)
	s.mu.Lock()
	l := s.linkLocked(iface)
	if l == nil {
		s.mu.Unlock()
		return 0, fmt.Errorf("advertisers/rip: query: unknown interface %q", iface)
	}
	if s.closed {
		s.mu.Unlock()
		return 0, fmt.Errorf("%s: speaker closed", s.proto.Name)
	}
	if _, busy := s.queries[key]; busy {
		s.mu.Unlock()
		return 0, fmt.Errorf("%s: query for %v at %v already running", s.proto.Name, prefix, router)
	}
	s.queries[key] = ch
	err := s.sendLocked(l, s.proto.addr(router, l.name), CommandRequest,
		[]Entry{routeEntry(prefix.Masked(), MetricInfinity)})
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.queries, key)
		s.mu.Unlock()
	}()
	if err != nil {
		return 0, err
	}
	select {
	case m := <-ch:
		return m, nil
	case <-ctx.Done():
		return 0, fmt.Errorf("%s: query %v at %v: %w", s.proto.Name, prefix, router, ctx.Err())
	}
}

// deliverQuery hands a router's answer to a waiting Query. An answer is a
// Response from that router holding exactly the one entry asked for, which
// tells it apart from the router's periodic updates.
func (s *Speaker) deliverQuery(l *link, from netip.Addr, pkt *Packet) bool {
	if len(pkt.Entries) != 1 {
		return false
	}
	key := queryKey{l.name, from, pkt.Entries[0].Prefix}
	s.mu.Lock()
	ch, ok := s.queries[key]
	s.mu.Unlock()
	if !ok {
		return false
	}
	select {
	case ch <- pkt.Entries[0].Metric:
	default:
	}
	return true
}

func (s *Speaker) linkLocked(name string) *link {
	for _, l := range s.links {
		if l.name == name {
			return l
		}
	}
	return nil
}
