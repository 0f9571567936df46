package rip

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"
)

// Reconfigure applies cfg to the running speaker and touches only what
// changed, so that routers on unchanged links hear nothing they would not
// have heard anyway:
//   - An added interface gets a socket (opened before anything changes: if
//     that fails, nothing changes) and at once the whole table, as a router
//     starting there would ask for it.
//   - A removed interface is poisoned (every prefix with metric 16, twice,
//     as Close does) with the authentication its routers know, then left.
//   - An added neighbour gets the whole table by unicast. A removed one just
//     gets nothing more: it may still hear the group, and a unicast poison
//     would move its traffic off a healthy replica; if it hears nothing
//     else, its route through us ages out by RIP's timeout.
//   - Changed authentication re-sends the whole table on every link, signed
//     the new way: the routers may have dropped what the old way signed.
//   - A new update interval takes effect from now; nothing is sent for it.
//
// Logger and OnPoisonHeard stay as New set them. It returns a description
// of what changed (empty if nothing). Sending errors do not undo anything;
// they are logged.
func (s *Speaker) Reconfigure(cfg Config) ([]string, error) {
	return s.reconfigure(cfg, s.proto.Listen)
}

// ReconfigureWithConns is Reconfigure with the sockets of added interfaces
// given, by name, as NewWithConns takes them.
func (s *Speaker) ReconfigureWithConns(cfg Config, conns map[string]net.PacketConn) ([]string, error) {
	return s.reconfigure(cfg, func(name string) (net.PacketConn, error) {
		if c, ok := conns[name]; ok {
			return c, nil
		}
		return nil, fmt.Errorf("%s: no socket for interface %q", s.proto.Name, name)
	})
}

var errClosed = errors.New("advertisers/rip: speaker closed")

func (s *Speaker) reconfigure(cfg Config, open func(string) (net.PacketConn, error)) ([]string, error) {
	cfg.Protocol = s.proto
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s.reconfMu.Lock()
	defer s.reconfMu.Unlock()

	// Open the added interfaces' sockets before anything changes.
	s.mu.Lock()
	closed, have := s.closed, map[string]*link{}
	for _, l := range s.links {
		have[l.name] = l
	}
	s.mu.Unlock()
	if closed {
		return nil, errClosed
	}
	added := map[string]net.PacketConn{}
	closeAdded := func() {
		for _, c := range added {
			_ = c.Close()
		}
	}
	for _, ifc := range cfg.Interfaces {
		if have[ifc.Name] == nil {
			c, err := open(ifc.Name)
			if err != nil {
				closeAdded()
				return nil, err
			}
			added[ifc.Name] = c
		}
	}

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		closeAdded()
		return nil, errClosed
	}
	old := s.cfg
	cfg.Logger, cfg.OnPoisonHeard = old.Logger, old.OnPoisonHeard
	var changes []string
	var errs []error

	// Removed links first, while s.cfg is still the old one: the poison
	// and the added links' announcements go out back to back, so a router
	// hearing both switches without a gap.
	poison := s.poisonLocked()
	var removed []*link
	for _, l := range s.links {
		if !slices.ContainsFunc(cfg.Interfaces, func(ifc Interface) bool { return ifc.Name == l.name }) {
			l.gone = true
			if l.readvTmr != nil {
				l.readvTmr.Stop()
			}
			errs = append(errs, s.sendUpdateLocked(l, poison))
			removed = append(removed, l)
			changes = append(changes, "removed interface "+l.name)
		}
	}

	s.cfg = cfg
	authChanged := !sameAuth(old.Auth, cfg.Auth)
	if authChanged {
		changes = append(changes, "authentication "+cfg.Auth.String())
	}
	table := s.tableLocked()
	var links []*link
	for _, ifc := range cfg.Interfaces {
		l := have[ifc.Name]
		if l == nil {
			l = s.newLink(ifc, added[ifc.Name])
			s.wg.Add(1)
			go s.readLoop(l)
			errs = append(errs, s.sendUpdateLocked(l, table))
			changes = append(changes, "added interface "+ifc.Name)
			links = append(links, l)
			continue
		}
		before := l.neighbors
		l.neighbors, l.dests = ifc.Neighbors, s.linkDests(ifc)
		if !slices.Equal(before, ifc.Neighbors) {
			changes = append(changes, fmt.Sprintf("neighbors on %s %v", ifc.Name, ifc.Neighbors))
		}
		if authChanged {
			errs = append(errs, s.sendUpdateLocked(l, table))
		} else {
			for _, n := range ifc.Neighbors {
				if !slices.Contains(before, n) {
					errs = append(errs, s.sendLocked(l, s.proto.addr(n, l.name), CommandResponse, table))
				}
			}
		}
		links = append(links, l)
	}
	s.links = links
	if old.UpdateInterval != cfg.UpdateInterval {
		changes = append(changes, "update interval "+cfg.UpdateInterval.String())
		select {
		case s.intervalSet <- struct{}{}:
		default:
		}
	}
	if old.NoReadvertise != cfg.NoReadvertise {
		changes = append(changes, fmt.Sprintf("re-advertising on heard poison %v", !cfg.NoReadvertise))
	}
	if old.TriggeredDelay != cfg.TriggeredDelay {
		changes = append(changes, "triggered delay "+cfg.TriggeredDelay.String())
	}
	if old.WithdrawCycles != cfg.WithdrawCycles {
		changes = append(changes, fmt.Sprintf("withdraw cycles %d", cfg.WithdrawCycles))
	}
	s.mu.Unlock()

	if len(removed) > 0 {
		time.Sleep(closeRepeatGap)
		s.mu.Lock()
		for _, l := range removed {
			errs = append(errs, s.sendUpdateAuthLocked(old.Auth, l, poison))
		}
		s.mu.Unlock()
		for _, l := range removed {
			errs = append(errs, l.conn.Close())
		}
	}
	if err := errors.Join(errs...); err != nil {
		s.log.Warn("reconfigured, but sending failed", "err", err)
	}
	if len(changes) > 0 {
		s.log.Info("speaker reconfigured", "changes", changes)
	}
	return changes, nil
}

func sameAuth(a, b Auth) bool {
	return a.Type == b.Type && a.KeyID == b.KeyID && bytes.Equal(a.Key, b.Key) && a.MD5AuthDataLen == b.MD5AuthDataLen
}
