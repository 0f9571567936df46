// Package advertisers holds the contract between the core engine and the
// things that tell the network about service addresses (rip, bgp, vip).
package advertisers

import (
	"context"
	"net/netip"
	"slices"
)

// MetricPoison is the RIP metric for "unreachable". Other advertisers map it to
// a withdrawal.
const MetricPoison = 16

// Announcement is one prefix with the metric this replica wants to advertise.
// Lower is better, as in RIP (1..16, 16 = unreachable).
type Announcement struct {
	Prefix netip.Prefix
	Metric int
	// Draining is set while an operator drains the service (BGP adds the
	// GRACEFUL_SHUTDOWN community).
	Draining bool
	// Down is set while the service is down or starting. Metric is then its
	// down_metric: 16, or below 16 to leave routers with holddown timers a
	// last-resort route. RIP announces Metric; an advertiser that can only
	// announce or withdraw (BGP) withdraws. A down service that announces
	// its last_resort_metric (no peer serves) is not Down: BGP announces it.
	Down bool
}

// Withdrawn reports whether an advertiser that can only announce or
// withdraw must withdraw a: the service is down, or Metric is the poison.
func (a Announcement) Withdrawn() bool { return a.Down || a.Metric >= MetricPoison }

// DownWithdrawer is implemented by advertisers that withdraw what
// Announcement.Withdrawn says (BGP), rather than announce Metric.
type DownWithdrawer interface {
	WithdrawsDown()
}

// Carrier is implemented by advertisers that carry only some prefixes (RIPv2
// IPv4, RIPng IPv6). They are given only the announcements they carry, so a
// dual-stack service reaches each family's routers through its advertiser.
type Carrier interface {
	Carries(p netip.Prefix) bool
}

// Carried is the part of anns that adv carries.
func Carried(adv Advertiser, anns []Announcement) []Announcement {
	c, ok := adv.(Carrier)
	if !ok {
		return anns
	}
	out := make([]Announcement, 0, len(anns))
	for _, a := range anns {
		if c.Carries(a.Prefix) {
			out = append(out, a)
		}
	}
	return out
}

// Advertiser converges to a desired set of announcements. Set replaces the
// whole set: a prefix absent from it is withdrawn (poisoned). Implementations
// must never announce a prefix that was not given to Set.
type Advertiser interface {
	Set(ctx context.Context, want []Announcement) error
	// Close withdraws everything (RIP: poisons) and releases resources.
	Close() error
}

// Sorted returns a copy of anns ordered by prefix, for stable output.
func Sorted(anns []Announcement) []Announcement {
	out := slices.Clone(anns)
	slices.SortFunc(out, func(a, b Announcement) int { return a.Prefix.Addr().Compare(b.Prefix.Addr()) })
	return out
}
