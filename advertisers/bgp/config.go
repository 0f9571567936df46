package bgp

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"
)

// Priority encodings: how a RIP-style metric (1 best .. 15 worst) reaches BGP.
const (
	// PriorityMED sends MULTI_EXIT_DISC = metric * MEDScale. Routers compare
	// MED only between routes from the same neighbouring AS, so all replicas
	// must share one ASN (the usual anycast set-up).
	PriorityMED = "med"
	// PriorityPrepend prepends our ASN metric-1 times, so the AS_PATH is
	// metric hops long. Works across ASNs but needs eBGP sessions.
	PriorityPrepend = "prepend"
)

// Defaults applied by New to zero fields.
const (
	DefaultPriority     = PriorityMED
	DefaultMEDScale     = 1
	DefaultConnectRetry = 5 * time.Second
	DefaultHoldTime     = 90 * time.Second
	DefaultCloseTimeout = 2 * time.Second
)

// Peer is one router the speaker connects to.
type Peer struct {
	Address netip.Addr
	ASN     uint32
	// Port is the router's BGP port; 0 means 179.
	Port uint16
	// Password enables TCP MD5 signatures (RFC 2385). It is never logged.
	Password string
	// MultihopTTL allows an eBGP router that is not directly connected; 0
	// keeps the eBGP default TTL of 1.
	MultihopTTL uint8
}

// Config configures a Speaker.
type Config struct {
	// ASN is the replica's own AS number.
	ASN uint32
	// RouterID is the BGP identifier, an IPv4 address unique in the network.
	RouterID netip.Addr
	// NextHop is the next hop put on announced IPv4 routes. The zero value
	// means each session's local address; an IPv6 session carries IPv4
	// routes only with it set.
	NextHop netip.Addr
	// NextHop6 is the next hop of IPv6 routes (MP-BGP), a global address.
	// The zero value means each IPv6 session's local address; an IPv4
	// session carries IPv6 routes only with it set.
	NextHop6 netip.Addr
	// Peers are the routers to announce to (at least one).
	Peers []Peer
	// Priority is PriorityMED (default) or PriorityPrepend.
	Priority string
	// MEDScale multiplies the metric into the MED (default 1).
	MEDScale uint32
	// ConnectRetry is the wait between connection attempts (default 5s; GoBGP's
	// own default of 120s would leave a replica unannounced for minutes if its
	// router restarts).
	ConnectRetry time.Duration
	// HoldTime is the proposed hold time (default 90s, keepalive a third).
	HoldTime time.Duration
	// CloseTimeout bounds how long Close waits for withdrawals to be sent
	// before it tears the sessions down (default 2s).
	CloseTimeout time.Duration
	// Logger receives session and route changes. Nil means slog.Default().
	Logger *slog.Logger
}

// withDefaults returns cfg with zero fields set to their defaults.
func (cfg Config) withDefaults() Config {
	if cfg.Priority == "" {
		cfg.Priority = DefaultPriority
	}
	if cfg.MEDScale == 0 {
		cfg.MEDScale = DefaultMEDScale
	}
	if cfg.ConnectRetry == 0 {
		cfg.ConnectRetry = DefaultConnectRetry
	}
	if cfg.HoldTime == 0 {
		cfg.HoldTime = DefaultHoldTime
	}
	if cfg.CloseTimeout == 0 {
		cfg.CloseTimeout = DefaultCloseTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg
}

// Validate checks a Config after defaults are applied.
func (cfg Config) Validate() error {
	var errs []error
	if cfg.ASN == 0 {
		errs = append(errs, errors.New("bgp: asn must be set"))
	}
	if !cfg.RouterID.Is4() || cfg.RouterID.IsUnspecified() {
		errs = append(errs, fmt.Errorf("bgp: router_id %q must be a non-zero IPv4 address", addrString(cfg.RouterID)))
	}
	if cfg.NextHop.IsValid() && !cfg.NextHop.Is4() {
		errs = append(errs, fmt.Errorf("bgp: next_hop %s must be an IPv4 address", cfg.NextHop))
	}
	if nh := cfg.NextHop6; nh.IsValid() && (!nh.Is6() || nh.Is4In6() || nh.IsLinkLocalUnicast() || nh.IsUnspecified() || nh.IsMulticast()) {
		errs = append(errs, fmt.Errorf("bgp: next_hop6 %s must be a global IPv6 address", nh))
	}
	switch cfg.Priority {
	case PriorityMED, PriorityPrepend:
	default:
		errs = append(errs, fmt.Errorf("bgp: priority %q must be %q or %q", cfg.Priority, PriorityMED, PriorityPrepend))
	}
	// 15 (the worst finite metric) times the scale must fit a 32-bit MED.
	if uint64(cfg.MEDScale)*15 > 1<<32-1 {
		errs = append(errs, fmt.Errorf("bgp: med_scale %d too large", cfg.MEDScale))
	}
	if cfg.ConnectRetry < time.Second {
		errs = append(errs, fmt.Errorf("bgp: connect_retry %s below 1s", cfg.ConnectRetry))
	}
	if cfg.HoldTime < 3*time.Second {
		errs = append(errs, fmt.Errorf("bgp: hold_time %s below 3s (RFC 4271)", cfg.HoldTime))
	}
	if cfg.CloseTimeout < 0 {
		errs = append(errs, fmt.Errorf("bgp: close_timeout %s negative", cfg.CloseTimeout))
	}
	if len(cfg.Peers) == 0 {
		errs = append(errs, errors.New("bgp: at least one peer is needed"))
	}
	seen := make(map[netip.Addr]bool)
	for i, p := range cfg.Peers {
		if !p.Address.IsValid() || p.Address.IsUnspecified() {
			errs = append(errs, fmt.Errorf("bgp: peers[%d]: address %q invalid", i, addrString(p.Address)))
			continue
		}
		if p.Address.Is4In6() || p.Address.Zone() != "" || p.Address.IsLinkLocalUnicast() || p.Address.IsMulticast() {
			errs = append(errs, fmt.Errorf("bgp: peers[%d]: %s: want a unicast IPv4 or global IPv6 address", i, p.Address))
		}
		if seen[p.Address] {
			// GoBGP keys neighbours by address.
			errs = append(errs, fmt.Errorf("bgp: peers[%d]: %s listed twice", i, p.Address))
		}
		seen[p.Address] = true
		if p.ASN == 0 {
			errs = append(errs, fmt.Errorf("bgp: peers[%d]: %s: asn must be set", i, p.Address))
		}
		if cfg.Priority == PriorityPrepend && p.ASN == cfg.ASN {
			// Our ASN in the AS_PATH of an iBGP route makes the router drop
			// it as a loop.
			errs = append(errs, fmt.Errorf("bgp: peers[%d]: %s: priority prepend needs eBGP, but the peer has our asn %d", i, p.Address, cfg.ASN))
		}
	}
	return errors.Join(errs...)
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
