package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"strings"

	"github.com/ripcord/ripcord/advertisers"
	"github.com/ripcord/ripcord/advertisers/bgp"
	"github.com/ripcord/ripcord/advertisers/rip"
	"github.com/ripcord/ripcord/advertisers/ripng"
	"github.com/ripcord/ripcord/core/config"
	"github.com/ripcord/ripcord/plugins/checkapi"
)

// buildAdvertisers starts the advertisers the config enables.
func buildAdvertisers(ctx context.Context, cfg *config.Config, log *slog.Logger) (map[string]advertisers.Advertiser, error) {
	out := map[string]advertisers.Advertiser{}
	if cfg.RIP != nil {
		rc, err := ripConfig(cfg.RIP, log)
		if err != nil {
			return nil, err
		}
		s, err := rip.New(rc)
		if err != nil {
			return nil, err
		}
		out["rip"] = s
	}
	if cfg.RIPng != nil {
		s, err := ripng.New(ripngConfig(cfg.RIPng, log))
		if err != nil {
			closeAll(out)
			return nil, err
		}
		out["ripng"] = s
	}
	if cfg.BGP != nil {
		bc, err := bgpConfig(cfg.BGP, log)
		if err != nil {
			closeAll(out)
			return nil, err
		}
		s, err := bgp.New(ctx, bc)
		if err != nil {
			closeAll(out)
			return nil, err
		}
		out["bgp"] = s
	}
	return out, nil
}

func closeAll(advs map[string]advertisers.Advertiser) {
	for _, a := range advs {
		a.Close()
	}
}

// ripConfig is the speaker's config for the rip section, with the key read
// from its file.
func ripConfig(r *config.RIP, log *slog.Logger) (rip.Config, error) {
	mode, _ := rip.ParseAuthType(r.Auth.Mode) // validated with the config
	rc := rip.Config{UpdateInterval: r.UpdateInterval.D(), Logger: log.With("advertiser", "rip"),
		NoReadvertise: !r.ReadvertiseOnPoison,
		Auth:          rip.Auth{Type: mode, KeyID: uint8(r.Auth.KeyID)}}
	if r.Auth.KeyFile != "" {
		key, err := checkapi.ReadSecretFile(r.Auth.KeyFile)
		if err != nil {
			return rip.Config{}, fmt.Errorf("rip.auth.key_file: %w", err)
		}
		rc.Auth.Key = []byte(key)
	}
	rc.Interfaces = ripInterfaces(r.Interfaces)
	return rc, nil
}

// ripngConfig is the RIPng speaker's config for the ripng section.
func ripngConfig(r *config.RIPng, log *slog.Logger) rip.Config {
	return rip.Config{UpdateInterval: r.UpdateInterval.D(), Logger: log.With("advertiser", "ripng"),
		NoReadvertise: !r.ReadvertiseOnPoison, Interfaces: ripInterfaces(r.Interfaces)}
}

func ripInterfaces(ifcs []config.RIPInterface) []rip.Interface {
	var out []rip.Interface
	for _, ifc := range ifcs {
		out = append(out, rip.Interface{Name: ifc.Name, Neighbors: ifc.Neighbors})
	}
	return out
}

// bgpConfig is the speaker's config for the bgp section, with the
// passwords read from their files.
func bgpConfig(b *config.BGP, log *slog.Logger) (bgp.Config, error) {
	bc := bgp.Config{ASN: b.ASN, RouterID: b.RouterID, NextHop: b.NextHop, NextHop6: b.NextHop6, Priority: b.Priority,
		HoldTime: b.HoldTime.D(),
		Logger:   log.With("advertiser", "bgp")}
	for _, p := range b.Peers {
		peer := bgp.Peer{Address: p.Address, ASN: p.ASN, Port: uint16(p.Port)}
		if p.PasswordFile != "" {
			pw, err := checkapi.ReadSecretFile(p.PasswordFile)
			if err != nil {
				return bgp.Config{}, fmt.Errorf("bgp.peers: %w", err)
			}
			peer.Password = pw
		}
		bc.Peers = append(bc.Peers, peer)
	}
	return bc, nil
}

// reconfigureAdvertisers applies the rip, ripng and bgp sections of cfg to
// the running speakers, which change only what differs. Key and password
// files are read again, so a rotated secret counts. Every speaker's config
// is built (files read) before any speaker changes.
func (d *Daemon) reconfigureAdvertisers(ctx context.Context, old, cfg *config.Config) ([]string, error) {
	type apply func() ([]string, error)
	sections := []struct {
		key                     string
		had, has, diff, running bool
		prepare                 func() (apply, error)
	}{
		{"rip", old.RIP != nil, cfg.RIP != nil, !reflect.DeepEqual(old.RIP, cfg.RIP), d.rip != nil, func() (apply, error) {
			rc, err := ripConfig(cfg.RIP, d.log)
			return func() ([]string, error) { return d.rip.Reconfigure(rc) }, err
		}},
		{"ripng", old.RIPng != nil, cfg.RIPng != nil, !reflect.DeepEqual(old.RIPng, cfg.RIPng), d.ripng != nil, func() (apply, error) {
			rc := ripngConfig(cfg.RIPng, d.log)
			return func() ([]string, error) { return d.ripng.Reconfigure(rc) }, nil
		}},
		{"bgp", old.BGP != nil, cfg.BGP != nil, !reflect.DeepEqual(old.BGP, cfg.BGP), d.bgp != nil, func() (apply, error) {
			bc, err := bgpConfig(cfg.BGP, d.log)
			return func() ([]string, error) { return d.bgp.Reconfigure(ctx, bc) }, err
		}},
	}
	var keys []string
	var applies []apply
	for _, s := range sections {
		switch {
		case s.had != s.has:
			return nil, fmt.Errorf("%s: the %s section was added or removed: that needs a restart", d.path, s.key)
		case s.diff && !s.running:
			return nil, fmt.Errorf("%s: %s changed, but its advertiser cannot be reconfigured: that needs a restart", d.path, s.key)
		case s.has && s.running:
			a, err := s.prepare()
			if err != nil {
				return nil, err
			}
			keys, applies = append(keys, s.key), append(applies, a)
		}
	}
	var changes []string
	for i, a := range applies {
		done, err := a()
		for _, c := range done {
			changes = append(changes, keys[i]+": "+c)
		}
		if err != nil {
			if len(changes) > 0 {
				err = fmt.Errorf("%w (applied before the error: %s)", err, strings.Join(changes, "; "))
			}
			return nil, err
		}
	}
	return changes, nil
}
