package daemon

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/ripcord/ripcord/control"
	"github.com/ripcord/ripcord/core"
	"github.com/ripcord/ripcord/core/config"
	"github.com/ripcord/ripcord/relay"
)

// reloadTimeout bounds one reload: reading the file, the checkers'
// validation of their settings, and the engine taking the new services.
const reloadTimeout = 30 * time.Second

// Reload implements control.Backend (also SIGHUP): it reads the config file
// again, validates all of it, and only then applies the difference. An
// invalid file, or a change that needs a restart, changes nothing.
func (d *Daemon) Reload() control.ReloadResult {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	res := control.ReloadResult{At: time.Now()}
	summary, err := d.reload()
	if err != nil {
		res.Error = err.Error()
		d.log.Error("reload refused; the running config is unchanged", "err", err)
		d.metrics.ReloadOK.Set(0)
	} else {
		res.OK, res.Summary = true, summary
		d.log.Info("reloaded", "changes", summary)
		d.metrics.ReloadOK.Set(1)
		d.metrics.ReloadTime.Set(float64(res.At.Unix()))
	}
	d.lastReload.Store(&res)
	return res
}

func (d *Daemon) reload() (string, error) {
	if d.path == "" {
		return "", errors.New("reload: this daemon was started without a config file")
	}
	ctx, cancel := context.WithTimeout(context.Background(), reloadTimeout)
	defer cancel()
	cfg, err := config.Load(d.path, config.Options{KnownChecker: KnownChecker})
	if err != nil {
		return "", err
	}
	old := d.config()
	if err := needsRestart(d.path, old, cfg); err != nil {
		return "", err
	}
	if err := cfg.ConfigureChecks(ctx, d.host.Configure); err != nil {
		return "", err
	}
	specs, jobs := Specs(cfg)
	if d.relays == nil {
		for i := range specs {
			specs[i].Relay = nil
		}
	}
	var havePeers []netip.Addr
	if d.relays != nil {
		havePeers = d.relays.peers
	}
	wantPeers := relayPeers(specs)
	peersChange := d.relays != nil && !slices.Equal(havePeers, wantPeers)
	if peersChange {
		if err := relayingTo(d.relays.r.Stats(), havePeers, wantPeers); err != nil {
			return "", fmt.Errorf("%s: %w", d.path, err)
		}
	}
	if d.relays != nil && !d.relays.ipv6 && relayIPv6(specs) {
		return "", fmt.Errorf("%s: the relay was set up without IPv6 and now relays a vip6: that needs a restart", d.path)
	}
	drained, err := d.drainedOf(cfg)
	if err != nil {
		return "", err
	}
	// The advertisers first: a new RIP interface's socket is what is most
	// likely to fail, and then no service has changed yet.
	advChanges, err := d.reconfigureAdvertisers(ctx, old, cfg)
	if err != nil {
		return "", err
	}
	partly := func(err error) error {
		if len(advChanges) == 0 {
			return err
		}
		return fmt.Errorf("%w (the services are unchanged, but this was applied: %s)", err, strings.Join(advChanges, "; "))
	}

	// Make-before-break for addresses too: a new VIP is on its interface
	// and allowed before it is announced; a removed one is withdrawn
	// first and leaves the interface after.
	both := append(slices.Clone(old.Services), cfg.Services...)
	d.allow(both)
	if err := d.ensureVIPs(ctx, both); err != nil {
		d.allow(old.Services)
		return "", partly(err)
	}
	if peersChange {
		// New peers before the services that relay to them, removed ones
		// after the services stopped naming them. Whatever happens, the
		// relay may hold both now: the next reload compares with that.
		both := union(havePeers, wantPeers)
		d.relays.peers = both
		if err := d.relays.r.SetPeers(both); err != nil {
			return "", partly(err)
		}
	}
	changes, err := d.engine.Update(ctx, specs, jobs, drained)
	if err != nil {
		return "", partly(err)
	}
	if peersChange {
		// The services changed: this reload stands. A peer that could not
		// go yet (a relay to it began meanwhile) goes at the next reload.
		if err := d.relays.r.SetPeers(wantPeers); err != nil {
			d.log.Warn("relay: old peers kept until the next reload", "err", err)
			advChanges = append(advChanges, fmt.Sprintf("relay peers %v added, but the old ones stay until the next reload: %v", wantPeers, err))
		} else {
			d.relays.peers = wantPeers
			advChanges = append(advChanges, fmt.Sprintf("relay peers %v (were %v)", wantPeers, havePeers))
		}
	}
	_, oldJobs := Specs(old)
	d.forgetRemoved(oldJobs, jobs, d.specs, specs)
	d.cfg.Store(cfg)
	d.specs = specs
	d.allow(cfg.Services)
	if err := d.ensureVIPs(ctx, cfg.Services); err != nil {
		d.log.Error("removing the addresses of removed services", "err", err)
	}
	for _, w := range cfg.Warnings() {
		d.log.Warn("config: " + w)
	}
	return strings.Join(append([]string{changes.String()}, advChanges...), "; "), nil
}

// needsRestart refuses changes that reload does not apply: what the daemon
// binds or builds once at start. Services, their checks and the rip and bgp
// sections (reconfigureAdvertisers) are what reload is for.
func needsRestart(path string, old, cfg *config.Config) error {
	for _, c := range []struct {
		key      string
		old, new any
	}{
		{"node", old.Node, cfg.Node},
		{"state_dir", old.StateDir, cfg.StateDir},
		{"log", old.Log, cfg.Log},
		{"control", old.Control, cfg.Control},
		{"plugins", old.Plugins, cfg.Plugins},
		{"relay_address", old.RelayAddress, cfg.RelayAddress},
		{"relay_tunnel", old.RelayTunnel, cfg.RelayTunnel},
	} {
		if !reflect.DeepEqual(c.old, c.new) {
			return fmt.Errorf("%s: %s changed: that needs a restart (reload applies services, their checks, rip and bgp)", path, c.key)
		}
	}
	return nil
}

// relayPeers is every peer address that some service may relay to.
func relayPeers(specs []core.ServiceSpec) []netip.Addr {
	set := map[netip.Addr]bool{}
	for _, s := range specs {
		if s.Relay != nil {
			for _, p := range s.Relay.Peers {
				set[p.Addr] = true
			}
		}
	}
	return slices.SortedFunc(maps.Keys(set), func(a, b netip.Addr) int { return a.Compare(b) })
}

// relayingTo refuses a change of relay peers that removes a peer some
// service relays to now: that flow of clients must end first.
func relayingTo(stats []relay.Stats, have, want []netip.Addr) error {
	for _, st := range stats {
		if st.Mode != relay.Off && slices.Contains(have, st.Peer) && !slices.Contains(want, st.Peer) {
			return fmt.Errorf("relay peer %v is removed while service %s relays to it (%s): reload again when that has ended", st.Peer, st.Service, st.Mode)
		}
	}
	return nil
}

func union(a, b []netip.Addr) []netip.Addr {
	out := slices.Clone(a)
	for _, p := range b {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// relayIPv6 reports whether some service relays a vip6: the kernel relay
// then sets up its IPv6 side (and IPv6 forwarding).
func relayIPv6(specs []core.ServiceSpec) bool {
	return slices.ContainsFunc(specs, func(s core.ServiceSpec) bool { return s.Relay != nil && s.VIP6.IsValid() })
}

// allow sets the prefixes the appliers pass on to the advertisers.
func (d *Daemon) allow(svcs []config.Service) {
	allowed := map[string]bool{}
	for _, s := range svcs {
		for _, v := range s.VIPs() {
			allowed[v.String()] = true
		}
	}
	for _, a := range d.appliers {
		a.setAllowed(allowed)
	}
}
