package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/ripcord/ripcord/control"
	"github.com/ripcord/ripcord/core"
	"github.com/ripcord/ripcord/core/config"
	"github.com/ripcord/ripcord/relay"
	"github.com/vishvananda/netlink"
)

// Relayer is the kernel side of the relay (relay.Manager); the daemon's
// tests give their own.
type Relayer interface {
	Set(ctx context.Context, want []relay.Want) error
	SetPeers(peers []netip.Addr) error
	Stats() []relay.Stats
	Close() error
}

// relayPoll is how often the relays' counters are fed to the engine: the
// engine's evidence that routers moved is dated to this.
const relayPoll = 150 * time.Millisecond

// relayLoop applies the engine's desired relays (the newest only, retrying
// on error) and feeds the kernel's stats back into the engine.
type relayLoop struct {
	r      Relayer
	engine *core.Engine
	log    *slog.Logger
	next   chan []relay.Want
	errors prometheus.Counter
	ipv6   bool // the relay carries IPv6 VIPs too
	// peers are what the relay was last given (SetPeers), which a reload
	// compares its config with; guarded by the daemon's reloadMu.
	peers []netip.Addr

	mu    sync.Mutex
	stats []relay.Stats
}

func newRelayLoop(r Relayer, ipv6 bool, m *control.Metrics, log *slog.Logger) *relayLoop {
	l := &relayLoop{r: r, ipv6: ipv6, log: log.With("component", "relay"), next: make(chan []relay.Want, 1),
		errors: m.AdvertiseErrors.WithLabelValues("relay")}
	registerRelayStats(m, l)
	return l
}

// want replaces any pending set with w.
func (l *relayLoop) want(w []relay.Want) {
	for {
		select {
		case l.next <- w:
			return
		default:
		}
		select {
		case <-l.next:
		default:
		}
	}
}

func (l *relayLoop) run(ctx context.Context) {
	poll := time.NewTicker(relayPoll)
	defer poll.Stop()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	var pending []relay.Want
	for {
		select {
		case <-ctx.Done():
			return
		case pending = <-l.next:
		case <-retry.C:
		case <-poll.C:
			st := l.r.Stats()
			l.mu.Lock()
			l.stats = st
			l.mu.Unlock()
			l.engine.ObserveRelay(st)
			continue
		}
		if pending == nil {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := l.r.Set(cctx, pending)
		cancel()
		if err != nil {
			l.errors.Inc()
			l.log.Warn("relay failed, will retry", "err", err)
			retry.Reset(retryEvery)
			continue
		}
		for _, w := range pending {
			l.log.Debug("relay", "service", w.Service, "mode", w.Mode.String(), "peer", w.Peer)
		}
		pending = nil
	}
}

// registerRelayStats exports the relays' counters as polled.
func registerRelayStats(m *control.Metrics, l *relayLoop) {
	m.Registry.MustRegister(relayCollector{l})
}

var (
	relayModeDesc = prometheus.NewDesc("ripcord_relay_mode",
		"1 for the relay mode in force in the kernel (off, fallback, all).", []string{"service", "mode"}, nil)
	relayFlowsDesc = prometheus.NewDesc("ripcord_relay_flows_total",
		"New flows relayed to a peer.", []string{"service"}, nil)
	relayPacketsDesc = prometheus.NewDesc("ripcord_relay_packets_total",
		"Packets relayed to a peer.", []string{"service"}, nil)
	relayStalledDesc = prometheus.NewDesc("ripcord_relay_listener_stalled",
		"1 while the service's listening socket holds a queue that has not shrunk for 100ms (the server looks hung).", []string{"service"}, nil)
)

type relayCollector struct{ l *relayLoop }

func (c relayCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- relayModeDesc
	ch <- relayFlowsDesc
	ch <- relayPacketsDesc
	ch <- relayStalledDesc
}

func (c relayCollector) Collect(ch chan<- prometheus.Metric) {
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	for _, s := range c.l.stats {
		ch <- prometheus.MustNewConstMetric(relayModeDesc, prometheus.GaugeValue, 1, s.Service, s.Mode.String())
		ch <- prometheus.MustNewConstMetric(relayFlowsDesc, prometheus.CounterValue, float64(s.Flows), s.Service)
		ch <- prometheus.MustNewConstMetric(relayPacketsDesc, prometheus.CounterValue, float64(s.Packets), s.Service)
		ch <- prometheus.MustNewConstMetric(relayStalledDesc, prometheus.GaugeValue, b2f(s.Stalled), s.Service)
	}
}

// newRelayer builds the kernel relay for the services that relay: one
// tunnel to every relay peer, from relay_address (default: the source
// address the kernel picks towards the first peer), carrying IPv6 VIPs too
// with ipv6.
func newRelayer(ctx context.Context, cfg *config.Config, ipv6 bool, log *slog.Logger) (Relayer, error) {
	var peers []netip.Addr
	for _, s := range cfg.Services {
		if s.Relay == nil {
			continue
		}
		for _, p := range s.Relay.Peers {
			if !slices.Contains(peers, p) {
				peers = append(peers, p)
			}
		}
	}
	local := cfg.RelayAddress
	if !local.IsValid() {
		var err error
		if local, err = sourceTowards(peers[0]); err != nil {
			return nil, fmt.Errorf("relay_address: %w", err)
		}
	}
	m, err := relay.New(ctx, relayConfig(cfg, local, peers, ipv6, log))
	if err != nil {
		return nil, err
	}
	log.Info("relay ready", "local", local, "peers", fmt.Sprint(peers), "ipv6", ipv6)
	return m, nil
}

// relayConfig is the kernel relay's configuration; zero tunnel settings
// are the relay's defaults.
func relayConfig(cfg *config.Config, local netip.Addr, peers []netip.Addr, ipv6 bool, log *slog.Logger) relay.Config {
	t := cfg.RelayTunnel
	return relay.Config{Local: local, Peers: peers, IPv6: ipv6, Logger: log.With("component", "relay"),
		Port: uint16(t.Port), VNI: uint32(t.VNI), MTU: t.MTU}
}

// sourceTowards is the source address the kernel uses to reach peer.
func sourceTowards(peer netip.Addr) (netip.Addr, error) {
	routes, err := netlink.RouteGet(peer.AsSlice())
	if err != nil {
		return netip.Addr{}, fmt.Errorf("no route to relay peer %s: %w", peer, err)
	}
	for _, r := range routes {
		if a, ok := netip.AddrFromSlice(r.Src); ok && a.Unmap().Is4() {
			return a.Unmap(), nil
		}
	}
	return netip.Addr{}, fmt.Errorf("no source address towards relay peer %s: set relay_address", peer)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
