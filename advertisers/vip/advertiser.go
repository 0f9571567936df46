package vip

import (
	"context"

	"github.com/ripcord/ripcord/advertisers"
)

// Advertiser lets the core drive a Manager like any other advertiser.
//
// Every prefix in the set is kept on Interface whatever its metric or drain
// state: a replica whose service is down keeps its VIP, because the routing
// advertisers withdraw or poison the route and that alone moves traffic, while
// local clients of the address keep working. A prefix absent from the set (the
// VIP was removed from the configuration) is removed if the Manager added it.
type Advertiser struct {
	Manager *Manager
	// Interface holds the VIPs; empty means "lo".
	Interface string
}

var _ advertisers.Advertiser = (*Advertiser)(nil)

// Set keeps exactly the prefixes of want on the interface.
func (a *Advertiser) Set(ctx context.Context, want []advertisers.Announcement) error {
	addrs := make([]Address, 0, len(want))
	for _, ann := range want {
		addrs = append(addrs, Address{Prefix: ann.Prefix, Interface: a.Interface})
	}
	return a.Manager.Ensure(ctx, addrs)
}

// Close removes the addresses the Manager added and stops it.
func (a *Advertiser) Close() error { return a.Manager.Close() }
