// Package daemon wires ripcord together: config -> plugin host -> engine ->
// advertisers and VIPs, plus the control socket and metrics.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/ripcord/ripcord/advertisers"
	"github.com/ripcord/ripcord/advertisers/bgp"
	"github.com/ripcord/ripcord/advertisers/rip"
	"github.com/ripcord/ripcord/advertisers/vip"
	"github.com/ripcord/ripcord/checkers"
	"github.com/ripcord/ripcord/control"
	"github.com/ripcord/ripcord/core"
	"github.com/ripcord/ripcord/core/config"
	"github.com/ripcord/ripcord/plugins"
	"github.com/ripcord/ripcord/plugins/checkapi"
	"github.com/ripcord/ripcord/relay"
)

// Version is set at build time.
var Version = "dev"

// NewHost returns the plugin host for a config. self is the argv prefix that
// starts this binary as a built-in checker.
func NewHost(cfg *config.Config, self []string, log *slog.Logger) *plugins.Host {
	return plugins.NewHost(hostOptions(cfg, self, log))
}

// NewOneShotHost is NewHost for a command that asks its plugins once
// (validate, check): it never restarts a plugin, and its errors say so.
func NewOneShotHost(cfg *config.Config, self []string, log *slog.Logger) *plugins.Host {
	o := hostOptions(cfg, self, log)
	o.OneShot = true
	return plugins.NewHost(o)
}

func hostOptions(cfg *config.Config, self []string, log *slog.Logger) plugins.Options {
	return plugins.Options{
		Builtin:  checkers.IsBuiltin,
		Self:     self,
		Dir:      cfg.Plugins.Dir,
		SHA256:   cfg.Plugins.SHA256,
		Logger:   log,
		StateDir: filepath.Join(cfg.StateDir, "checkers"),
	}
}

// KnownChecker resolves a checker name for config validation: the host's
// Lookup (built in, or an executable in plugins.dir matching its pin), with
// a message that lists the alternatives when the name is unknown.
func KnownChecker(cfg *config.Config, name string) error {
	_, _, err := NewHost(cfg, []string{"ripcord", "checker"}, nil).Lookup(name) // starts nothing
	if err == nil || checkers.IsBuiltin(name) {
		return err
	}
	builtins := strings.Join(checkers.Names(), ", ")
	if cfg.Plugins.Dir == "" {
		return fmt.Errorf("unknown checker %q (built in: %s; no plugins.dir is configured for third-party checkers)", name, builtins)
	}
	if _, statErr := os.Stat(filepath.Join(cfg.Plugins.Dir, plugins.FilePrefix+name)); errors.Is(statErr, os.ErrNotExist) {
		return fmt.Errorf("unknown checker %q (built in: %s; no %s%s in %s)", name, builtins, plugins.FilePrefix, name, cfg.Plugins.Dir)
	}
	return err
}

// Warnings are the config's warnings (config.Warnings) and the plugins':
// a third-party plugin not pinned by sha256 runs whatever its file holds.
func Warnings(cfg *config.Config) []string {
	w := cfg.Warnings()
	seen := map[string]bool{}
	for _, ch := range cfg.AllChecks() {
		name := ch.Checker
		if seen[name] || checkers.IsBuiltin(name) || cfg.Plugins.SHA256[name] != "" {
			continue
		}
		seen[name] = true
		path := filepath.Join(cfg.Plugins.Dir, plugins.FilePrefix+name)
		pin := "<sha256sum of the file>"
		if sum, err := plugins.FileSHA256(path); err == nil {
			pin = sum
		}
		w = append(w, fmt.Sprintf("checker %s runs %s unpinned: a changed file would run too; pin it with plugins.sha256.%s: %s", name, path, name, pin))
	}
	return w
}

// Load reads a config file and asks every checker to validate its settings.
func Load(ctx context.Context, path string, host func(*config.Config) *plugins.Host) (*config.Config, *plugins.Host, error) {
	return load(ctx, path, config.Options{KnownChecker: KnownChecker}, host)
}

// LoadPortable is Load without the checks that depend on this host
// (interfaces, local addresses, state_dir), for a config meant for another.
func LoadPortable(ctx context.Context, path string, host func(*config.Config) *plugins.Host) (*config.Config, *plugins.Host, error) {
	return load(ctx, path, config.Options{KnownChecker: KnownChecker, Portable: true}, host)
}

func load(ctx context.Context, path string, o config.Options, host func(*config.Config) *plugins.Host) (*config.Config, *plugins.Host, error) {
	cfg, err := config.Load(path, o)
	if err != nil {
		return nil, nil, err
	}
	h := host(cfg)
	if err := cfg.ConfigureChecks(ctx, h.Configure); err != nil {
		h.Close()
		return nil, nil, err
	}
	return cfg, h, nil
}

// Specs turns the config into the engine's service specs and jobs.
func Specs(cfg *config.Config) ([]core.ServiceSpec, []core.Job) {
	var specs []core.ServiceSpec
	var jobs []core.Job
	cs := func(svc string, chs []config.Check, peer bool) []core.CheckSpec {
		var out []core.CheckSpec
		for _, c := range chs {
			out = append(out, core.CheckSpec{Name: c.Name, Rise: c.Rise, Fall: c.Fall})
			jobs = append(jobs, core.Job{Service: svc, Name: c.Name, Peer: peer, Checker: c.Checker, Target: c.Target,
				Settings: c.SettingsJSON, Interval: c.Interval.D(), FastInterval: c.FastInterval.D(), Timeout: c.Timeout.D()})
		}
		return out
	}
	for _, s := range cfg.Services {
		n, _ := s.RequireN()
		sp := core.ServiceSpec{Name: s.Name, VIP: s.VIP, VIP6: s.VIP6, Metric: s.Metric, DegradedPenalty: s.DegradedPenalty,
			DownMetric: s.DownMetric, LastResortMetric: s.LastResortMetric, DrainMetric: s.DrainMetric,
			FailbackDelay: s.FailbackDelay.D(), Require: n,
			Checks: cs(s.Name, s.Checks, false)}
		if a := s.Assist; a != nil {
			sp.Assist = &core.AssistSpec{Metric: a.Metric, Delay: a.Delay.D(), Peers: cs(s.Name, a.Peers, true)}
		}
		if r := s.Relay; r != nil {
			sp.Relay = &core.RelaySpec{Ports: r.ParsedPorts, Metric: r.Metric, Quiet: r.Quiet.D(), Max: r.Max.D(),
				Fallback: r.Fallback, OnDrain: r.OnDrain, OnHang: r.OnHang}
			for i, a := range r.Peers {
				sp.Relay.Peers = append(sp.Relay.Peers, core.RelayPeer{Addr: a, Check: r.PeerChecks[i]})
			}
		}
		specs = append(specs, sp)
	}
	return specs, jobs
}

// Daemon is a running ripcord.
type Daemon struct {
	cfg      atomic.Pointer[config.Config] // replaced by reload
	path     string                        // the config file, for reload
	log      *slog.Logger
	host     *plugins.Host
	engine   *core.Engine
	metrics  *control.Metrics
	series   checkSeries
	appliers []*applier
	notify   *notifier
	routers  *routerViews // nil without a RIP speaker
	rip      *rip.Speaker // nil without RIP (or with a test's advertiser)
	ripng    *rip.Speaker // nil without RIPng (or with a test's advertiser)
	bgp      *bgp.Speaker // nil without BGP
	started  time.Time
	drainDir string
	vips     *vip.Manager // nil with NoVIP
	relays   *relayLoop   // nil without a kernel relay

	reloadMu   sync.Mutex
	specs      []core.ServiceSpec // as given to the engine; guarded by reloadMu after start
	lastReload atomic.Pointer[control.ReloadResult]
}

// config is the config in force.
func (d *Daemon) config() *config.Config { return d.cfg.Load() }

// Options configure Run.
type Options struct {
	Config *config.Config
	Host   *plugins.Host
	Logger *slog.Logger
	// Advertisers overrides the advertisers built from the config (tests).
	Advertisers map[string]advertisers.Advertiser
	// NoVIP skips managing addresses on interfaces (tests without root).
	NoVIP bool
	// Relay overrides the kernel relay built from the config (tests).
	Relay Relayer
	// ConfigPath is the file Config was read from; Reload reads it again.
	ConfigPath string
	// Reload, when it delivers, reloads the config (SIGHUP).
	Reload <-chan os.Signal
}

// Run runs the daemon until ctx is done, then withdraws every announcement
// (RIP: poison) before returning.
func Run(ctx context.Context, o Options) error {
	cfg, log := o.Config, o.Logger
	d := &Daemon{path: o.ConfigPath, log: log, host: o.Host, metrics: control.NewMetrics(Version), started: time.Now(),
		drainDir: filepath.Join(cfg.StateDir, "drained"), notify: newNotifier(log)}
	d.cfg.Store(cfg)
	defer d.host.Close()
	for _, w := range Warnings(cfg) {
		log.Warn("config: " + w)
	}

	// One instance per state_dir, decided before anything is touched.
	unlock, err := lockStateDir(cfg.StateDir)
	if err != nil {
		return err
	}
	defer unlock()
	if err := control.CheckSocketFree(cfg.Control.Socket); err != nil {
		return err
	}

	if err := os.MkdirAll(d.drainDir, 0o755); err != nil {
		return fmt.Errorf("state_dir: %w", err)
	}
	drained, err := d.drainedOf(cfg)
	if err != nil {
		return err
	}
	for _, name := range drained {
		log.Info("service starts drained (persisted flag)", "service", name)
	}

	if !o.NoVIP {
		if err := d.startVIPs(ctx); err != nil {
			return err
		}
		defer d.stopVIPs()
	}

	advs := o.Advertisers
	if advs == nil {
		if advs, err = buildAdvertisers(ctx, cfg, log); err != nil {
			return err
		}
	}
	d.metrics.Registry.MustRegister(replicasCollector{d})
	if d.bgp, _ = advs["bgp"].(*bgp.Speaker); d.bgp != nil {
		d.metrics.Registry.MustRegister(bgpCollector{d.bgp})
	}
	d.rip, _ = advs["rip"].(*rip.Speaker)
	d.ripng, _ = advs["ripng"].(*rip.Speaker)
	var speakers []*rip.Speaker // whose routers status shows
	for _, s := range []struct {
		proto string
		sp    *rip.Speaker
	}{{"rip", d.rip}, {"ripng", d.ripng}} {
		if s.sp != nil {
			registerRIPStats(d.metrics, s.sp, s.proto)
			speakers = append(speakers, s.sp)
		}
	}
	if len(speakers) > 0 {
		d.routers = &routerViews{}
	}
	for _, name := range slices.Sorted(maps.Keys(advs)) {
		d.appliers = append(d.appliers, newApplier(name, advs[name], d.metrics, log))
	}
	d.allow(cfg.Services)

	specs, jobs := Specs(cfg)
	ipv6 := relayIPv6(specs)
	rl := o.Relay
	if rl == nil && slices.ContainsFunc(specs, func(s core.ServiceSpec) bool { return s.Relay != nil }) {
		if rl, err = newRelayer(ctx, cfg, ipv6, log); err != nil {
			return err
		}
	}
	var relays *relayLoop
	var wantRelays func([]relay.Want)
	if rl != nil {
		defer func() {
			// After the advertisers withdrew: routers heard the poison.
			if err := rl.Close(); err != nil {
				log.Error("removing the relay", "err", err)
			}
		}()
		relays = newRelayLoop(rl, ipv6, d.metrics, log)
		relays.peers = relayPeers(specs)
		wantRelays = relays.want
		d.relays = relays
	} else {
		for i := range specs {
			specs[i].Relay = nil
		}
	}
	d.engine = core.New(core.Options{
		Services: specs, Jobs: jobs, Runner: d.host, Drained: drained, Logger: log,
		Publish: func(set []advertisers.Announcement) {
			for _, a := range d.appliers {
				a.want(set)
			}
		},
		Relay:          wantRelays,
		OnResult:       d.observe,
		OnLate:         func(late time.Duration) { d.metrics.CheckLate.Observe(late.Seconds()) },
		OnTransition:   d.transition,
		Heartbeat:      d.notify.alive,
		HeartbeatEvery: d.notify.watchdog / 2,
	})
	if relays != nil {
		relays.engine = d.engine
	}
	d.specs = specs

	srv, err := control.Listen(cfg.Control.Socket, d, log)
	if err != nil {
		return err
	}
	defer srv.Close()
	if cfg.Control.MetricsListen != "" {
		ms, err := d.metrics.ServeMetrics(cfg.Control.MetricsListen, cfg.MetricsAllowed(), d.Report, log)
		if err != nil {
			return fmt.Errorf("metrics_listen: %w", err)
		}
		defer ms.Shutdown(context.Background())
	}

	var wg sync.WaitGroup
	actx, stopAppliers := context.WithCancel(context.Background())
	for _, a := range d.appliers {
		wg.Add(1)
		go func() { defer wg.Done(); a.run(actx) }()
	}
	if len(speakers) > 0 {
		wg.Add(1)
		go func() { defer wg.Done(); d.watchRouters(actx, speakers) }()
	}
	if relays != nil {
		wg.Add(1)
		go func() { defer wg.Done(); relays.run(actx) }()
	}
	if o.Reload != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-actx.Done():
					return
				case <-o.Reload:
					d.Reload()
				}
			}
		}()
	}
	log.Info("ripcord started", "node", cfg.Node, "version", Version, "services", len(specs), "checks", len(jobs),
		"advertisers", strings.Join(slices.Sorted(maps.Keys(advs)), ","))
	d.notify.progress(d.engine.Status()) // services drained at start are decided already
	err = d.engine.Run(ctx)
	d.notify.stopping()

	// Withdraw first, then stop: routers must hear the poison while our
	// sockets still exist.
	stopAppliers()
	wg.Wait()
	for _, a := range d.appliers {
		if cerr := a.adv.Close(); cerr != nil {
			log.Error("closing advertiser", "advertiser", a.name, "err", cerr)
		}
	}
	log.Info("ripcord stopped: announcements withdrawn")
	return err
}

func (d *Daemon) observe(j core.Job, r *checkapi.Result, took time.Duration) {
	svc, check := j.Service, seriesCheck(j)
	d.series.replace(d.metrics, svc, check, r)
	misconfig := 0.0
	if checkapi.IsMisconfiguration(r.Reason) {
		misconfig = 1
	}
	d.metrics.CheckMisconfig.WithLabelValues(svc, check).Set(misconfig)
	d.metrics.CheckDuration.WithLabelValues(svc, check).Observe(took.Seconds())
	if r.Status != checkapi.StatusOK {
		d.log.Debug("check", "service", svc, "check", check, "status", r.Status.String(), "reason", r.Reason, "message", r.Message)
	}
}

func (d *Daemon) transition(svc string, from, to core.State, reason string) {
	d.metrics.Transitions.WithLabelValues(svc, from.String(), to.String()).Inc()
	d.metrics.ServiceState.DeletePartialMatch(map[string]string{"service": svc})
	d.metrics.ServiceState.WithLabelValues(svc, to.String()).Set(1)
	d.notify.progress(d.engine.Status())
}

// Report implements control.Backend.
func (d *Daemon) Report() control.Report {
	r := control.Report{Node: d.config().Node, Version: Version, Started: d.started, Reload: d.lastReload.Load()}
	for _, st := range d.engine.Status() {
		sr := control.ServiceReport{Status: st, Announced: map[string]int{}}
		for _, v := range []string{st.VIP, st.VIP6} {
			if v == "" {
				continue
			}
			// Each advertiser carries one family, BGP both with one metric.
			for _, a := range d.appliers {
				m, errText := a.state(v)
				if m > 0 {
					sr.Announced[a.name] = m
				}
				if errText != "" {
					if sr.LastError == nil {
						sr.LastError = map[string]string{}
					}
					sr.LastError[a.name] = errText
				}
			}
			if vip, err := netip.ParsePrefix(v); err == nil {
				sr.Routers = append(sr.Routers, d.routers.get(vip)...)
			}
		}
		r.Services = append(r.Services, sr)
	}
	if d.bgp != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		r.BGP = bgpSessions(ctx, d.bgp)
		cancel()
	}
	return r
}

// SetDrained implements control.Backend; the flag is persisted first so that
// a restart keeps it.
func (d *Daemon) SetDrained(svc string, on bool) error {
	if !slices.ContainsFunc(d.config().Services, func(s config.Service) bool { return s.Name == svc }) {
		return fmt.Errorf("no service %q", svc)
	}
	p := filepath.Join(d.drainDir, svc)
	var err error
	if on {
		err = writeFileAtomic(p, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"))
	} else if err = os.Remove(p); errors.Is(err, os.ErrNotExist) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("persisting drain flag: %w", err)
	}
	d.log.Info("drain", "service", svc, "drained", on)
	return d.engine.SetDrained(svc, on)
}

// writeFileAtomic writes a file under a temporary name and renames it into
// place, so that a full disk leaves no half-written file behind (an empty
// drain flag would still drain the service at the next start).
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// CheckNow implements control.Backend.
func (d *Daemon) CheckNow(svc string) error { return d.engine.CheckNow(svc) }

// drainedOf lists the services of cfg with a persisted drain flag.
func (d *Daemon) drainedOf(cfg *config.Config) ([]string, error) {
	ents, err := os.ReadDir(d.drainDir)
	if err != nil {
		return nil, fmt.Errorf("state_dir: %w", err)
	}
	var out []string
	for _, e := range ents {
		if slices.ContainsFunc(cfg.Services, func(s config.Service) bool { return s.Name == e.Name() }) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// startVIPs puts every service address on its interface. The addresses
// ripcord added are listed in state_dir, so that after a crash the next run
// still knows they are its own and removes them when it exits.
func (d *Daemon) startVIPs(ctx context.Context) error {
	var claim []vip.Address
	if b, err := os.ReadFile(d.vipStateFile()); err == nil {
		for _, line := range strings.Fields(string(b)) {
			pfx, dev, _ := strings.Cut(line, "@")
			if p, err := netip.ParsePrefix(pfx); err == nil {
				claim = append(claim, vip.Address{Prefix: p, Interface: dev})
			}
		}
	}
	vm, err := vip.New(vip.Config{Logger: d.log, Claim: claim})
	if err != nil {
		return err
	}
	d.vips = vm
	if err := d.ensureVIPs(ctx, d.config().Services); err != nil {
		vm.Close()
		d.vips = nil
		return err
	}
	return nil
}

func (d *Daemon) vipStateFile() string { return filepath.Join(d.config().StateDir, "vips") }

// ensureVIPs converges the addresses to those of svcs and records the ones
// ripcord added.
func (d *Daemon) ensureVIPs(ctx context.Context, svcs []config.Service) error {
	if d.vips == nil {
		return nil
	}
	var addrs []vip.Address
	for _, s := range svcs {
		for _, v := range s.VIPs() {
			addrs = append(addrs, vip.Address{Prefix: v, Interface: s.Interface})
		}
	}
	if err := d.vips.Ensure(ctx, addrs); err != nil {
		return err
	}
	var lines []string
	for _, a := range d.vips.Owned() {
		lines = append(lines, a.Prefix.String()+"@"+a.Interface)
	}
	if err := os.WriteFile(d.vipStateFile(), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		return fmt.Errorf("state_dir: %w", err)
	}
	return nil
}

func (d *Daemon) stopVIPs() {
	if err := d.vips.Close(); err != nil {
		d.log.Error("removing service addresses", "err", err)
		return
	}
	os.Remove(d.vipStateFile())
}

// registerRIPStats exports the speaker's packet counters; malformed and
// unauthenticated packets are dropped, and this is where they show.
func registerRIPStats(m *control.Metrics, sp *rip.Speaker, proto string) {
	for kind, get := range map[string]func(rip.Stats) uint64{
		"sent":              func(s rip.Stats) uint64 { return s.Sent },
		"received":          func(s rip.Stats) uint64 { return s.Received },
		"malformed":         func(s rip.Stats) uint64 { return s.Malformed },
		"auth_failed":       func(s rip.Stats) uint64 { return s.AuthFailed },
		"requests_answered": func(s rip.Stats) uint64 { return s.RequestsAnswered },
		"poisons_heard":     func(s rip.Stats) uint64 { return s.PoisonsHeard },
		"worse_paths_heard": func(s rip.Stats) uint64 { return s.WorsePathsHeard },
	} {
		m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "ripcord_" + proto + "_packets_total", Help: "RIP packets by kind; malformed and auth_failed ones were dropped.",
			ConstLabels: prometheus.Labels{"kind": kind},
		}, func() float64 { return float64(get(sp.Stats())) }))
	}
}
