package routers

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ripcord/ripcord/lab/netns"
)

const (
	frrZebra = "/usr/lib/frr/zebra"
	frrRipd  = "/usr/lib/frr/ripd"
	frrRipng = "/usr/lib/frr/ripngd"
	frrVtysh = "vtysh"
)

// FRR is zebra and one routing daemon (ripd, or bgpd for FRRBGP) in one
// namespace. Both run in the foreground (no -d) so the pids we hold are the
// daemons' own.
type FRR struct {
	ns     *netns.NS
	dir    string
	name   string // the routing daemon: ripd or bgpd
	zebra  *netns.Process
	daemon *netns.Process
	ripng  *netns.Process // with Config.RIPng
}

// StartFRR writes the configs, starts zebra then ripd as user frr with
// every path inside a fresh instance directory, and waits until ripd
// answers on its vty socket and has joined 224.0.0.9 on every interface.
func StartFRR(ctx context.Context, cfg Config) (*FRR, error) {
	if err := needBinary(frrRipd, "frr"); err != nil {
		return nil, err
	}
	if cfg.Auth.Mode == AuthHMACSHA256 {
		return nil, errors.New("routers: FRR ripd has no HMAC-SHA authentication")
	}
	if cfg.RIPng {
		if err := needBinary(frrRipng, "frr"); err != nil {
			return nil, err
		}
	}
	return startFRR(ctx, cfg, frrRipd, frrRipdConf(cfg), func(ctx context.Context, f *FRR) error {
		if _, err := f.vtysh(ctx, "show ip rip status"); err != nil {
			return err
		}
		if cfg.RIPng {
			if _, err := f.vtysh(ctx, "show ipv6 ripng status"); err != nil {
				return err
			}
		}
		return joinedRIPGroup(f.ns, cfg.Interfaces, cfg.RIPng)
	})
}

// startRIPng starts ripngd beside ripd, on the same zebra.
func (f *FRR) startRIPng(cfg Config) error {
	conf := filepath.Join(f.dir, "ripngd.conf")
	if err := os.WriteFile(conf, []byte(frrRipngdConf(cfg)), 0o640); err != nil {
		return fmt.Errorf("routers: write ripngd.conf: %w", err)
	}
	if err := f.chownFRR(conf); err != nil {
		return err
	}
	p, err := f.ns.Start(filepath.Join(f.dir, "ripngd.out"), frrRipng, f.args("ripngd")...)
	if err != nil {
		return err
	}
	f.ripng = p
	return nil
}

func (f *FRR) chownFRR(paths ...string) error {
	u, err := user.Lookup("frr")
	if err != nil {
		return fmt.Errorf("routers: user frr: %w (install the Debian package frr)", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	for _, p := range paths {
		if err := os.Chown(p, uid, gid); err != nil {
			return fmt.Errorf("routers: chown %s: %w", p, err)
		}
	}
	return nil
}

// startFRR starts zebra and daemon (a path below /usr/lib/frr) with conf in
// a fresh instance directory, then waits until ready succeeds.
func startFRR(ctx context.Context, cfg Config, daemon, conf string, ready func(context.Context, *FRR) error) (*FRR, error) {
	for _, b := range []string{frrZebra, daemon, frrVtysh} {
		if err := needBinary(b, "frr"); err != nil {
			return nil, err
		}
	}
	dir, err := makeInstanceDir(cfg.BaseDir, "ripcord-frr-")
	if err != nil {
		return nil, err
	}
	f := &FRR{ns: cfg.NS, dir: dir, name: filepath.Base(daemon)}
	if err := f.start(ctx, conf); err != nil {
		_ = f.Stop()
		return nil, err
	}
	if cfg.RIPng && daemon == frrRipd {
		if err := f.startRIPng(cfg); err != nil {
			_ = f.Stop()
			return nil, err
		}
	}
	if err := waitReady(ctx, func(ctx context.Context) error { return ready(ctx, f) }, f.zebra, f.daemon); err != nil {
		_ = f.Stop()
		return nil, err
	}
	return f, nil
}

func (f *FRR) start(ctx context.Context, conf string) error {
	files := map[string]string{
		"zebra.conf":     "hostname zebra\n",
		f.name + ".conf": conf,
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(f.dir, name), []byte(body), 0o640); err != nil {
			return fmt.Errorf("routers: write %s: %w", name, err)
		}
	}
	// The daemons run as frr and create their sockets and pid files here.
	if err := os.Chmod(f.dir, 0o750); err != nil {
		return fmt.Errorf("routers: %w", err)
	}
	if err := f.chownFRR(f.dir, filepath.Join(f.dir, "zebra.conf"), filepath.Join(f.dir, f.name+".conf")); err != nil {
		return err
	}
	var err error
	if f.zebra, err = f.ns.Start(filepath.Join(f.dir, "zebra.out"), frrZebra, f.args("zebra")...); err != nil {
		return err
	}
	// The routing daemon needs zebra's API socket; wait for it rather than
	// racing.
	if err := waitReady(ctx, func(context.Context) error {
		_, err := os.Stat(filepath.Join(f.dir, "zserv.api"))
		return err
	}, f.zebra); err != nil {
		return fmt.Errorf("routers: zebra: %w", err)
	}
	return f.startDaemon()
}

// args are a daemon's command-line arguments: every path inside the
// instance directory.
func (f *FRR) args(name string) []string {
	return []string{"-u", "frr", "-g", "frr", "-P", "0",
		"-f", filepath.Join(f.dir, name+".conf"),
		"-i", filepath.Join(f.dir, name+".pid"),
		"-z", filepath.Join(f.dir, "zserv.api"),
		"--vty_socket", f.dir,
		"--log", "file:" + filepath.Join(f.dir, name+".log")}
}

func (f *FRR) startDaemon() error {
	p, err := f.ns.Start(filepath.Join(f.dir, f.name+".out"), filepath.Join(filepath.Dir(frrZebra), f.name), f.args(f.name)...)
	if err != nil {
		return err
	}
	f.daemon = p
	return nil
}

// RestartRIP kills ripd by pid (SIGKILL, as in a crash: zebra drops its
// routes) and starts it again on the same configuration. It returns as soon
// as the new ripd runs, without waiting for it to be ready, so that callers
// can time how long the routes take to come back.
func (f *FRR) RestartRIP() error {
	if err := f.daemon.Cmd.Process.Kill(); err != nil {
		return fmt.Errorf("routers: kill %s: %w", f.name, err)
	}
	select {
	case <-f.daemon.Done():
	case <-time.After(stopGrace):
		return fmt.Errorf("routers: %s (pid %d) survived SIGKILL", f.name, f.daemon.Pid())
	}
	return f.startDaemon()
}

func frrRipdConf(cfg Config) string {
	var b strings.Builder
	b.WriteString("hostname ripd\n!\n")
	if cfg.Auth.Mode == AuthMD5 {
		fmt.Fprintf(&b, "key chain ripcord\n key %d\n  key-string %s\n!\n", cfg.Auth.KeyID, cfg.Auth.Key)
	}
	for _, ifname := range cfg.Interfaces {
		fmt.Fprintf(&b, "interface %s\n", ifname)
		switch mode := cfg.Auth.Mode; {
		case !cfg.Auth.on(ifname):
		case mode == AuthMD5:
			b.WriteString(" ip rip authentication mode md5\n ip rip authentication key-chain ripcord\n")
		case mode == AuthPlain:
			fmt.Fprintf(&b, " ip rip authentication mode text\n ip rip authentication string %s\n", cfg.Auth.Key)
		}
		b.WriteString("!\n")
	}
	frrPrefixLists(&b, cfg, false)
	b.WriteString("router rip\n version 2\n")
	for _, ifname := range cfg.Interfaces {
		fmt.Fprintf(&b, " network %s\n", ifname)
	}
	for _, ifname := range slices.Sorted(maps.Keys(cfg.Accept)) {
		fmt.Fprintf(&b, " distribute-list prefix ripcord-%s in %s\n", ifname, ifname)
	}
	fmt.Fprintf(&b, " timers basic %d %d %d\n!\n",
		seconds(cfg.Timers.Update, 30*time.Second),
		seconds(cfg.Timers.Timeout, 180*time.Second),
		seconds(cfg.Timers.Garbage, 120*time.Second))
	return b.String()
}

// frrPrefixLists writes one prefix-list per Accept interface with the
// family's prefixes (ripcord-IF for IPv4, ripcord6-IF for IPv6); one with
// none of the family denies everything.
func frrPrefixLists(b *strings.Builder, cfg Config, is6 bool) {
	kw, name := "ip", "ripcord-"
	if is6 {
		kw, name = "ipv6", "ripcord6-"
	}
	for _, ifname := range slices.Sorted(maps.Keys(cfg.Accept)) {
		ps := acceptOf(cfg.Accept[ifname], is6)
		for i, p := range ps {
			fmt.Fprintf(b, "%s prefix-list %s%s seq %d permit %s\n", kw, name, ifname, 5*(i+1), p)
		}
		if len(ps) == 0 {
			fmt.Fprintf(b, "%s prefix-list %s%s seq 5 deny any\n", kw, name, ifname)
		}
		b.WriteString("!\n")
	}
}

// frrRipngdConf is ripngd's config: RIPng on the interfaces, and the
// IPv6 half of Accept as ipv6 prefix-lists (an interface with no IPv6
// prefix listed takes none).
func frrRipngdConf(cfg Config) string {
	var b strings.Builder
	b.WriteString("hostname ripngd\n!\n")
	frrPrefixLists(&b, cfg, true)
	b.WriteString("router ripng\n")
	for _, ifname := range cfg.Interfaces {
		fmt.Fprintf(&b, " network %s\n", ifname)
	}
	for _, ifname := range slices.Sorted(maps.Keys(cfg.Accept)) {
		fmt.Fprintf(&b, " ipv6 distribute-list prefix ripcord6-%s in %s\n", ifname, ifname)
	}
	fmt.Fprintf(&b, " timers basic %d %d %d\n!\n",
		seconds(cfg.Timers.Update, 30*time.Second),
		seconds(cfg.Timers.Timeout, 180*time.Second),
		seconds(cfg.Timers.Garbage, 120*time.Second))
	return b.String()
}

func (f *FRR) vtysh(ctx context.Context, command string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return f.ns.Exec(ctx, frrVtysh, "--vty_socket", f.dir, "-c", command)
}

// Kind implements Router.
func (f *FRR) Kind() string { return "frr" }

// Dir implements Router.
func (f *FRR) Dir() string { return f.dir }

// Route implements Router by parsing `show ip rip` (`show ipv6 ripng` for
// an IPv6 prefix).
func (f *FRR) Route(ctx context.Context, prefix netip.Prefix) (Route, error) {
	if prefix.Addr().Is6() {
		out, err := f.vtysh(ctx, "show ipv6 ripng")
		if err != nil {
			return Route{}, err
		}
		return parseFRRShowIPv6RIPng(out, prefix)
	}
	out, err := f.vtysh(ctx, "show ip rip")
	if err != nil {
		return Route{}, err
	}
	return parseFRRShowIPRIP(out, prefix)
}

// parseFRRShowIPRIP finds prefix in `show ip rip` output. Lines look like
//
//	R(n) 10.255.0.1/32      10.200.0.2               2 10.200.0.2       0 02:58
//
// A route in garbage collection still shows, with metric 16.
func parseFRRShowIPRIP(out string, prefix netip.Prefix) (Route, error) {
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || fields[1] != prefix.String() {
			continue
		}
		metric, err := strconv.Atoi(fields[3])
		if err != nil {
			return Route{}, fmt.Errorf("routers: frr metric in %q: %w", sc.Text(), err)
		}
		nh, err := netip.ParseAddr(fields[2])
		if err != nil {
			return Route{}, fmt.Errorf("routers: frr next hop in %q: %w", sc.Text(), err)
		}
		return Route{Present: metric < 16, Metric: metric, NextHop: nh}, nil
	}
	return Route{Metric: 16}, nil
}

// Rejected implements Router by adding up the BadPackets column of the
// "Routing Information Sources" in `show ip rip status`.
func (f *FRR) Rejected(ctx context.Context) (int, error) {
	out, err := f.vtysh(ctx, "show ip rip status")
	if err != nil {
		return 0, err
	}
	return parseFRRBadPackets(out)
}

func parseFRRBadPackets(out string) (int, error) {
	total := 0
	inSources := false
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) > 0 && f[0] == "Gateway":
			inSources = true
		case inSources && len(f) >= 2:
			if _, err := netip.ParseAddr(f[0]); err != nil {
				inSources = false
				continue
			}
			n, err := strconv.Atoi(f[1])
			if err != nil {
				return 0, fmt.Errorf("routers: frr bad packets in %q: %w", sc.Text(), err)
			}
			total += n
		}
	}
	return total, nil
}

// Kernel implements Router.
func (f *FRR) Kernel(ctx context.Context, prefix netip.Prefix) (KernelRoute, error) {
	return kernelRoute(f.ns, prefix)
}

// Stop implements Router: the routing daemon first (so it can withdraw from
// zebra), then zebra, each by pid.
func (f *FRR) Stop() error {
	var errs []error
	for _, p := range []*netns.Process{f.ripng, f.daemon, f.zebra} {
		if p != nil {
			errs = append(errs, p.Stop(stopGrace))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err // keep the logs for a look
	}
	return os.RemoveAll(f.dir)
}

// parseFRRShowIPv6RIPng finds prefix in `show ipv6 ripng` output. Lines
// look like
//
//	R(n) 2001:db8::10/128  fe80::cc4b:2eff:fe1f:4a5b  sr0  2  0  02:58
//
// FRR puts the rest of the line on the next one when the network is long.
func parseFRRShowIPv6RIPng(out string, prefix netip.Prefix) (Route, error) {
	fields := strings.Fields(out)
	for i, f := range fields {
		if f != prefix.String() || i == 0 || !strings.HasPrefix(fields[i-1], "R(") || i+3 >= len(fields) {
			continue
		}
		nh, err := netip.ParseAddr(fields[i+1])
		if err != nil {
			return Route{}, fmt.Errorf("routers: frr next hop %q: %w", fields[i+1], err)
		}
		metric, err := strconv.Atoi(fields[i+3])
		if err != nil {
			return Route{}, fmt.Errorf("routers: frr metric %q: %w", fields[i+3], err)
		}
		return Route{Present: metric < 16, Metric: metric, NextHop: nh}, nil
	}
	return Route{Metric: 16}, nil
}
