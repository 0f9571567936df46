package daemon

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/ripcord/ripcord/advertisers"
	"github.com/ripcord/ripcord/advertisers/bgp"
	"github.com/ripcord/ripcord/advertisers/rip"
	"github.com/ripcord/ripcord/advertisers/ripng"
	"github.com/ripcord/ripcord/core/config"
	"github.com/ripcord/ripcord/plugins/sdk"
)

// buildAdvertisers starts the advertisers the config enables.
func buildAdvertisers(ctx context.Context, cfg *config.Config, log *slog.Logger) (map[string]advertisers.Advertiser, error) {
	out := map[string]advertisers.Advertiser{}
	if r := cfg.RIP; r != nil {
		mode, _ := rip.ParseAuthType(r.Auth.Mode) // validated with the config
		rc := rip.Config{UpdateInterval: r.UpdateInterval.D(), Logger: log.With("advertiser", "rip"),
			NoReadvertise: !r.ReadvertiseOnPoison,
			Auth:          rip.Auth{Type: mode, KeyID: uint8(r.Auth.KeyID)}}
		if r.Auth.KeyFile != "" {
			key, err := sdk.ReadSecretFile(r.Auth.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("rip.auth.key_file: %w", err)
			}
			rc.Auth.Key = []byte(key)
		}
		for _, ifc := range r.Interfaces {
			rc.Interfaces = append(rc.Interfaces, rip.Interface{Name: ifc.Name, Neighbors: ifc.Neighbors})
		}
		s, err := rip.New(rc)
		if err != nil {
			return nil, err
		}
		out["rip"] = s
	}
	if r := cfg.RIPng; r != nil {
		rc := rip.Config{UpdateInterval: r.UpdateInterval.D(), Logger: log.With("advertiser", "ripng"),
			NoReadvertise: !r.ReadvertiseOnPoison}
		for _, ifc := range r.Interfaces {
			rc.Interfaces = append(rc.Interfaces, rip.Interface{Name: ifc.Name, Neighbors: ifc.Neighbors})
		}
		s, err := ripng.New(rc)
		if err != nil {
			closeAll(out)
			return nil, err
		}
		out["ripng"] = s
	}
	if b := cfg.BGP; b != nil {
		bc := bgp.Config{ASN: b.ASN, RouterID: b.RouterID, NextHop: b.NextHop, Priority: b.Priority,
			HoldTime: b.HoldTime.D(),
			Logger:   log.With("advertiser", "bgp")}
		for _, p := range b.Peers {
			peer := bgp.Peer{Address: p.Address, ASN: p.ASN, Port: uint16(p.Port)}
			if p.PasswordFile != "" {
				pw, err := sdk.ReadSecretFile(p.PasswordFile)
				if err != nil {
					return nil, fmt.Errorf("bgp.peers: %w", err)
				}
				peer.Password = pw
			}
			bc.Peers = append(bc.Peers, peer)
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
