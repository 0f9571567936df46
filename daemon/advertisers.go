package daemon

import (
	"context"
	"log/slog"

	"github.com/ripcord/ripcord/advertisers"
	"github.com/ripcord/ripcord/core/config"
)

// buildAdvertisers starts the advertisers the config enables.
func buildAdvertisers(ctx context.Context, cfg *config.Config, log *slog.Logger) (map[string]advertisers.Advertiser, error) {
	out := map[string]advertisers.Advertiser{}
	return out, nil
}
