// Package vip keeps service addresses (VIPs) configured as host addresses on
// an interface, normally lo, through netlink.
//
// Every replica of a service holds the same /32 on lo; the routing
// advertisers (rip, bgp) decide whether traffic reaches it. The Manager is
// therefore driven by configuration, not by health: a VIP stays on lo while
// the service is down, so local clients keep working and the route alone moves
// traffic (the paper's design).
//
// The Manager only ever removes addresses it added itself. An address that was
// already present when it was first wanted belongs to the operator: it is
// restored if someone deletes it while it is wanted, but never removed.
package vip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// DefaultInterface holds VIPs when Address.Interface is empty.
const DefaultInterface = "lo"

// DefaultCheck is the default period of the full re-check that backs up the
// netlink address subscription.
const DefaultCheck = 5 * time.Second

// Config configures a Manager.
type Config struct {
	// Logger receives additions, removals and repairs. Nil means slog.Default().
	Logger *slog.Logger
	// Check is the period of the full re-check (default 5s). The netlink
	// subscription normally repairs a deleted address at once; the re-check
	// covers lost notifications (socket overruns) and interfaces that come back.
	Check time.Duration
	// Namespace, when set, makes the Manager operate in that network namespace
	// instead of the caller's. The handle must stay open until Close returns.
	// It lets one process manage VIPs for several replicas (the lab).
	Namespace *netns.NsHandle
	// Claim lists addresses an earlier run of this program added and did not
	// remove (it was killed): they are owned even though they are present
	// when first wanted, so they are removed when no longer wanted or on
	// Close. The daemon keeps this list in its state directory.
	Claim []Address

	// noSubscription leaves only the periodic re-check (tests of the fallback).
	noSubscription bool
}

// Address is one VIP on one interface.
type Address struct {
	// Prefix is a host prefix: a.b.c.d/32 or an IPv6 /128.
	Prefix netip.Prefix
	// Interface is the link name; empty means "lo".
	Interface string
}

func (a Address) String() string { return a.Prefix.String() + " dev " + a.Interface }

// entry is the Manager's record of one wanted address.
type entry struct {
	addr Address
	// owned is true when the Manager added the address (it was absent when
	// first wanted); only owned addresses are ever removed.
	owned bool
	// installed is true once the address was seen present or was added, so a
	// later absence means somebody removed it.
	installed bool
}

// Manager keeps a set of VIPs present. It is safe for concurrent use.
type Manager struct {
	log    *slog.Logger
	check  time.Duration
	ns     *netns.NsHandle
	handle *netlink.Handle
	noSub  bool

	mu      sync.Mutex
	entries map[Address]*entry
	claimed map[Address]bool
	closed  bool
	repairs uint64

	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

// New opens a netlink handle (in cfg.Namespace if set) and starts the watcher.
func New(cfg Config) (*Manager, error) {
	if cfg.Check < 0 {
		return nil, fmt.Errorf("vip: negative check period %s", cfg.Check)
	}
	if cfg.Check == 0 {
		cfg.Check = DefaultCheck
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	var (
		h   *netlink.Handle
		err error
	)
	if cfg.Namespace != nil {
		h, err = netlink.NewHandleAt(*cfg.Namespace, unix.NETLINK_ROUTE)
	} else {
		h, err = netlink.NewHandle(unix.NETLINK_ROUTE)
	}
	if err != nil {
		return nil, fmt.Errorf("vip: open netlink: %w", err)
	}
	m := &Manager{
		log:     cfg.Logger,
		check:   cfg.Check,
		ns:      cfg.Namespace,
		noSub:   cfg.noSubscription,
		handle:  h,
		entries: make(map[Address]*entry),
		claimed: make(map[Address]bool),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	for _, a := range cfg.Claim {
		if n, err := normalize(a); err == nil {
			m.claimed[n] = true
		}
	}
	// Subscribed before New returns: a deletion right after the first
	// Ensure must not fall between New and the subscription.
	updates, stopSub := m.subscribe()
	go m.watch(updates, stopSub)
	return m, nil
}

// Owned returns the addresses the Manager added (and will remove), sorted.
func (m *Manager) Owned() []Address {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Address
	for _, key := range sortedKeys(m.entries) {
		if m.entries[key].owned {
			out = append(out, key)
		}
	}
	return out
}

// normalize checks an Address and fills in the default interface.
func normalize(a Address) (Address, error) {
	if !a.Prefix.IsValid() {
		return a, errors.New("vip: invalid prefix")
	}
	if a.Prefix.Bits() != a.Prefix.Addr().BitLen() {
		return a, fmt.Errorf("vip: %s is not a host prefix (want /%d)", a.Prefix, a.Prefix.Addr().BitLen())
	}
	a.Prefix = netip.PrefixFrom(a.Prefix.Addr().Unmap(), a.Prefix.Addr().Unmap().BitLen())
	if a.Interface == "" {
		a.Interface = DefaultInterface
	}
	return a, nil
}

// Ensure converges to want: it adds the addresses that are missing and
// removes the addresses it added earlier that are no longer wanted. Invalid
// input changes nothing. Errors for single addresses are joined; the others
// are still applied.
func (m *Manager) Ensure(ctx context.Context, want []Address) error {
	next := make(map[Address]bool, len(want))
	for _, a := range want {
		n, err := normalize(a)
		if err != nil {
			return err
		}
		next[n] = true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errors.New("vip: manager closed")
	}
	var errs []error
	// Removals first, so a VIP moving between interfaces is never doubled up
	// for longer than needed.
	for _, key := range sortedKeys(m.entries) {
		if next[key] {
			continue
		}
		e := m.entries[key]
		if e.owned {
			if err := m.remove(key); err != nil {
				errs = append(errs, err)
				continue // keep the record so Close retries
			}
			m.log.Info("vip: removed address no longer wanted", "address", key.Prefix.String(), "interface", key.Interface)
		}
		delete(m.entries, key)
	}
	for key := range next {
		if _, ok := m.entries[key]; !ok {
			m.entries[key] = &entry{addr: key, owned: m.claimed[key]}
		}
	}
	if err := ctx.Err(); err != nil {
		errs = append(errs, err)
		return errors.Join(errs...)
	}
	errs = append(errs, m.reconcileLocked()...)
	return errors.Join(errs...)
}

// Wanted returns the addresses the Manager currently keeps, sorted.
func (m *Manager) Wanted() []Address {
	m.mu.Lock()
	defer m.mu.Unlock()
	return sortedKeys(m.entries)
}

// Repairs counts the addresses put back after someone else removed them.
func (m *Manager) Repairs() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.repairs
}

// Close stops the watcher and removes exactly the addresses the Manager added.
// Addresses that were present before are left in place. Close is idempotent.
func (m *Manager) Close() error {
	m.stopOnce.Do(func() { close(m.stop) })
	<-m.done
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	var errs []error
	for _, key := range sortedKeys(m.entries) {
		if m.entries[key].owned {
			if err := m.remove(key); err != nil {
				errs = append(errs, err)
				continue
			}
			m.log.Info("vip: removed address on shutdown", "address", key.Prefix.String(), "interface", key.Interface)
		}
	}
	m.entries = nil
	m.handle.Close()
	return errors.Join(errs...)
}

// reconcileLocked adds every wanted address that is missing. Caller holds mu.
func (m *Manager) reconcileLocked() []error {
	var errs []error
	for _, key := range sortedKeys(m.entries) {
		e := m.entries[key]
		link, err := m.handle.LinkByName(key.Interface)
		if err != nil {
			errs = append(errs, fmt.Errorf("vip: %s: interface %s: %w", key.Prefix, key.Interface, err))
			continue
		}
		present, err := m.present(link, key.Prefix)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if present {
			if !e.installed && !e.owned {
				m.log.Info("vip: address already present, leaving it to its owner", "address", key.Prefix.String(), "interface", key.Interface)
			}
			e.installed = true
			continue
		}
		if err := m.handle.AddrAdd(link, netlinkAddr(key.Prefix)); err != nil {
			if errors.Is(err, unix.EEXIST) {
				// Someone added it between our look and our add: theirs.
				e.installed = true
				continue
			}
			errs = append(errs, fmt.Errorf("vip: add %s: %w", key, err))
			continue
		}
		if e.installed {
			// It was there and is gone: someone removed it while we run.
			m.repairs++
			m.log.Warn("vip: address was removed, restored it", "address", key.Prefix.String(), "interface", key.Interface)
		} else {
			// First time wanted and absent: it is ours from now on.
			e.owned = true
			m.log.Info("vip: added address", "address", key.Prefix.String(), "interface", key.Interface)
		}
		e.installed = true
	}
	return errs
}

func (m *Manager) present(link netlink.Link, p netip.Prefix) (bool, error) {
	family := netlink.FAMILY_V4
	if p.Addr().Is6() {
		family = netlink.FAMILY_V6
	}
	addrs, err := m.handle.AddrList(link, family)
	if err != nil {
		return false, fmt.Errorf("vip: list addresses of %s: %w", link.Attrs().Name, err)
	}
	for _, a := range addrs {
		if sameHost(a.IPNet, p) {
			return true, nil
		}
	}
	return false, nil
}

// remove deletes an address; an address already gone is not an error.
func (m *Manager) remove(a Address) error {
	link, err := m.handle.LinkByName(a.Interface)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil // the interface and its addresses are gone
		}
		return fmt.Errorf("vip: remove %s: %w", a, err)
	}
	if err := m.handle.AddrDel(link, netlinkAddr(a.Prefix)); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
		return fmt.Errorf("vip: remove %s: %w", a, err)
	}
	return nil
}

// watch repairs deletions reported by netlink at once and re-checks
// everything every m.check as a fallback.
func (m *Manager) watch(updates <-chan netlink.AddrUpdate, stopSub func()) {
	defer close(m.done)
	ticker := time.NewTicker(m.check)
	defer ticker.Stop()
	defer func() { stopSub() }()
	for {
		select {
		case <-m.stop:
			return
		case u, ok := <-updates:
			if !ok {
				// The subscription died (socket error); the ticker keeps
				// working and resubscribes.
				updates = nil
				m.log.Warn("vip: address subscription ended, relying on periodic re-check")
				continue
			}
			if u.NewAddr || !m.wants(u.LinkAddress) {
				continue
			}
			m.recheck()
		case <-ticker.C:
			if updates == nil && !m.noSub {
				stopSub()
				updates, stopSub = m.subscribe()
			}
			m.recheck()
		}
	}
}

// subscribe opens a netlink address subscription. On failure it returns a nil
// channel (never ready) so the periodic re-check alone keeps working.
func (m *Manager) subscribe() (<-chan netlink.AddrUpdate, func()) {
	if m.noSub {
		return nil, func() {}
	}
	ch := make(chan netlink.AddrUpdate, 64)
	done := make(chan struct{})
	opts := netlink.AddrSubscribeOptions{
		Namespace:     m.ns,
		ErrorCallback: func(err error) { m.log.Debug("vip: address subscription", "err", err) },
	}
	if err := netlink.AddrSubscribeWithOptions(ch, done, opts); err != nil {
		m.log.Warn("vip: cannot subscribe to address changes, relying on periodic re-check", "err", err)
		return nil, func() {}
	}
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			close(done)
			// Drain so the library's reader goroutine is never stuck on a send.
			go func() {
				for range ch {
				}
			}()
		})
	}
}

func (m *Manager) wants(n net.IPNet) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for key := range m.entries {
		if sameHost(&n, key.Prefix) {
			return true
		}
	}
	return false
}

func (m *Manager) recheck() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	for _, err := range m.reconcileLocked() {
		m.log.Error("vip: re-check failed", "err", err)
	}
}

func sameHost(n *net.IPNet, p netip.Prefix) bool {
	if n == nil {
		return false
	}
	addr, ok := netip.AddrFromSlice(n.IP)
	if !ok || addr.Unmap() != p.Addr() {
		return false
	}
	ones, _ := n.Mask.Size()
	return ones == p.Bits()
}

func netlinkAddr(p netip.Prefix) *netlink.Addr {
	ip := net.IP(p.Addr().AsSlice())
	a := &netlink.Addr{IPNet: &net.IPNet{IP: ip, Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
	if p.Addr().Is6() {
		// A VIP must be usable at once; duplicate address detection would
		// hold it tentative on a non-loopback link.
		a.Flags = unix.IFA_F_NODAD
	}
	return a
}

func sortedKeys(m map[Address]*entry) []Address {
	keys := make([]Address, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if c := keys[i].Prefix.Addr().Compare(keys[j].Prefix.Addr()); c != 0 {
			return c < 0
		}
		return keys[i].Interface < keys[j].Interface
	})
	return keys
}
