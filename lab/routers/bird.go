package routers

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ripcord/ripcord/lab/netns"
)

const (
	birdDaemon = "bird"
	birdClient = "birdc"
)

// BIRD is a BIRD 2 daemon running RIP in one namespace, in the foreground so
// the pid we hold is its own.
type BIRD struct {
	ns   *netns.NS
	dir  string
	proc *netns.Process
}

// StartBIRD writes bird.conf (device, kernel export and RIP protocols), starts
// bird and waits until its control socket answers and it has joined
// 224.0.0.9 on every interface.
func StartBIRD(ctx context.Context, cfg Config) (*BIRD, error) {
	return startBIRD(ctx, cfg, func(dir string) string { return birdConf(cfg, dir) }, func(ctx context.Context, b *BIRD) error {
		return joinedRIPGroup(b.ns, cfg.Interfaces, cfg.RIPng)
	})
}

// startBIRD writes the bird.conf that conf makes for the instance directory,
// starts bird and waits until its control socket answers and ready succeeds.
func startBIRD(ctx context.Context, cfg Config, conf func(dir string) string, ready func(context.Context, *BIRD) error) (*BIRD, error) {
	for _, b := range []string{birdDaemon, birdClient} {
		if err := needBinary(b, "bird2"); err != nil {
			return nil, err
		}
	}
	dir, err := makeInstanceDir(cfg.BaseDir, "ripcord-bird-")
	if err != nil {
		return nil, err
	}
	b := &BIRD{ns: cfg.NS, dir: dir}
	path := filepath.Join(dir, "bird.conf")
	if err := os.WriteFile(path, []byte(conf(dir)), 0o600); err != nil {
		_ = b.Stop()
		return nil, fmt.Errorf("routers: write bird.conf: %w", err)
	}
	b.proc, err = cfg.NS.Start(filepath.Join(dir, "bird.out"), birdDaemon, "-f",
		"-c", path, "-s", b.ctl(), "-P", filepath.Join(dir, "bird.pid"))
	if err != nil {
		_ = b.Stop()
		return nil, err
	}
	if err := waitReady(ctx, func(ctx context.Context) error {
		if _, err := b.birdc(ctx, "show", "protocols"); err != nil {
			return err
		}
		return ready(ctx, b)
	}, b.proc); err != nil {
		_ = b.Stop()
		return nil, fmt.Errorf("routers: bird: %w", err)
	}
	return b, nil
}

func (b *BIRD) ctl() string { return filepath.Join(b.dir, "bird.ctl") }

func birdConf(cfg Config, dir string) string {
	var s strings.Builder
	fmt.Fprintf(&s, "log %q all;\n", filepath.Join(dir, "bird.log"))
	s.WriteString("protocol device { scan time 10; }\n")
	s.WriteString("protocol kernel { ipv4 { import none; export all; }; }\n")
	if cfg.RIPng {
		s.WriteString("protocol kernel { ipv6 { import none; export all; }; }\n")
	}
	if cfg.AnnounceConnected {
		s.WriteString("protocol direct {\n  ipv4;\n")
		if cfg.RIPng {
			s.WriteString("  ipv6;\n")
		}
		for _, ifname := range cfg.Interfaces {
			fmt.Fprintf(&s, "  interface %q;\n", ifname)
		}
		s.WriteString("}\n")
	}
	birdRIP(&s, cfg, false)
	if cfg.RIPng {
		birdRIP(&s, cfg, true)
	}
	return s.String()
}

// birdRIP writes one RIP protocol: rip1 (RIPv2, ipv4) or ripng1 (RIPng,
// ipv6), with the family's half of Accept as import filter.
func birdRIP(s *strings.Builder, cfg Config, ng bool) {
	proto, name, channel := "rip", "rip1", "ipv4"
	if ng {
		proto, name, channel = "rip ng", "ripng1", "ipv6"
	}
	if len(cfg.Accept) == 0 {
		fmt.Fprintf(s, "protocol %s %s {\n  %s { import all; export all; };\n", proto, name, channel)
	} else {
		fmt.Fprintf(s, "protocol %s %s {\n  %s {\n    import filter {\n", proto, name, channel)
		for _, ifname := range slices.Sorted(maps.Keys(cfg.Accept)) {
			var set []string
			for _, p := range acceptOf(cfg.Accept[ifname], ng) {
				set = append(set, p.String())
			}
			if len(set) == 0 {
				fmt.Fprintf(s, "      if ifname = %q then reject;\n", ifname)
				continue
			}
			fmt.Fprintf(s, "      if ifname = %q && !(net ~ [ %s ]) then reject;\n", ifname, strings.Join(set, ", "))
		}
		s.WriteString("      accept;\n    };\n    export all;\n  };\n")
	}
	for _, ifname := range cfg.Interfaces {
		fmt.Fprintf(s, "  interface %q {\n", ifname)
		if !ng {
			s.WriteString("    version 2;\n")
		}
		fmt.Fprintf(s, "    update time %d; timeout time %d; garbage time %d;\n",
			seconds(cfg.Timers.Update, 30*time.Second),
			seconds(cfg.Timers.Timeout, 180*time.Second),
			seconds(cfg.Timers.Garbage, 120*time.Second))
		switch mode := cfg.Auth.Mode; {
		case ng: // RIPng has no authentication of its own
		case !cfg.Auth.on(ifname):
		case mode == AuthPlain:
			fmt.Fprintf(s, "    authentication plaintext;\n    password %q;\n", cfg.Auth.Key)
		case mode == AuthMD5:
			fmt.Fprintf(s, "    authentication cryptographic;\n    password %q { id %d; algorithm keyed md5; };\n", cfg.Auth.Key, cfg.Auth.KeyID)
		case mode == AuthHMACSHA256:
			fmt.Fprintf(s, "    authentication cryptographic;\n    password %q { id %d; algorithm hmac sha256; };\n", cfg.Auth.Key, cfg.Auth.KeyID)
		}
		s.WriteString("  };\n")
	}
	s.WriteString("}\n")
}

func (b *BIRD) birdc(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return b.ns.Exec(ctx, birdClient, append([]string{"-s", b.ctl()}, args...)...)
}

// Kind implements Router.
func (b *BIRD) Kind() string { return "bird" }

// Dir implements Router.
func (b *BIRD) Dir() string { return b.dir }

// Route implements Router by parsing `show route PREFIX all`.
func (b *BIRD) Route(ctx context.Context, prefix netip.Prefix) (Route, error) {
	proto := "rip1"
	if prefix.Addr().Is6() {
		proto = "ripng1"
	}
	out, err := b.birdc(ctx, "show", "route", prefix.String(), "protocol", proto, "all")
	if err != nil {
		// birdc exits non-zero when BIRD answers with an error code, and
		// "no such route" is one.
		if strings.Contains(out, "Network not found") {
			return Route{Metric: 16}, nil
		}
		return Route{}, err
	}
	return parseBIRDShowRoute(out)
}

// parseBIRDShowRoute reads the first route of `show route X all`:
//
//	10.202.0.0/24        unicast [rip1 09:04:41.911] * (120/2)
//		via 10.201.0.1 on bf
//		Type: RIP univ
//		RIP.metric: 2
//		RIP.tag: 0000
//
// (Other BIRD 2 releases name the attribute rip_metric; both are read.)
//
// BIRD drops a route once its metric reaches infinity, so "no route" means
// metric 16.
func parseBIRDShowRoute(out string) (Route, error) {
	r := Route{Metric: 16}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "via ") && !r.NextHop.IsValid():
			f := strings.Fields(line)
			nh, err := netip.ParseAddr(f[1])
			if err != nil {
				return Route{}, fmt.Errorf("routers: bird next hop in %q: %w", line, err)
			}
			r.NextHop = nh
		case strings.HasPrefix(line, "RIP.metric:") || strings.HasPrefix(line, "rip_metric:"):
			_, val, _ := strings.Cut(line, ":")
			m, err := strconv.Atoi(strings.TrimSpace(val))
			if err != nil {
				return Route{}, fmt.Errorf("routers: bird metric in %q: %w", line, err)
			}
			r.Metric = m
			r.Present = m < 16
			return r, nil
		}
	}
	return Route{Metric: 16}, nil
}

// Rejected implements Router by counting authentication failures in
// bird.log.
func (b *BIRD) Rejected(context.Context) (int, error) {
	log, err := os.ReadFile(filepath.Join(b.dir, "bird.log"))
	if err != nil {
		return 0, fmt.Errorf("routers: %w", err)
	}
	return strings.Count(string(log), "Authentication failed"), nil
}

// Kernel implements Router.
func (b *BIRD) Kernel(ctx context.Context, prefix netip.Prefix) (KernelRoute, error) {
	return kernelRoute(b.ns, prefix)
}

// Stop implements Router.
func (b *BIRD) Stop() error {
	if b.proc != nil {
		if err := b.proc.Stop(stopGrace); err != nil {
			return err
		}
	}
	return errors.Join(os.RemoveAll(b.dir))
}
