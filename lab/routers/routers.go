// Package routers runs real RIP routers (FRR zebra+ripd, BIRD 2) inside
// network namespaces for tests and the demo lab, and reads what they learned:
// the RIP table entry for a prefix and the kernel route.
package routers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/ripcord/ripcord/lab/netns"
)

// stopGrace bounds how long a router gets to exit on SIGTERM before SIGKILL.
const stopGrace = 3 * time.Second

// readyTimeout bounds the wait for a freshly started router's control socket.
const readyTimeout = 10 * time.Second

// AuthMode selects RIP authentication on the router's interfaces.
type AuthMode string

const (
	AuthNone       AuthMode = ""
	AuthPlain      AuthMode = "plain"       // simple password (FRR: mode text; BIRD: plaintext)
	AuthMD5        AuthMode = "md5"         // keyed MD5 (FRR key chain, BIRD keyed md5)
	AuthHMACSHA256 AuthMode = "hmac-sha256" // RFC 4822 HMAC-SHA-256 (BIRD only)
)

// Auth is the router side of RIP authentication.
type Auth struct {
	Mode  AuthMode
	KeyID uint8
	Key   string // FRR and BIRD take the secret in their config file
	// Only, when set, limits authentication to these interfaces. FRR 8.4
	// answers no authenticated Request (ripd stops at the authentication
	// entry), so between two authenticating FRR routers the one that
	// starts second misses the first one's networks until its next
	// periodic update, up to 30 s.
	Only []string
}

// on reports whether interface ifname authenticates.
func (a Auth) on(ifname string) bool {
	return a.Mode != AuthNone && (a.Only == nil || slices.Contains(a.Only, ifname))
}

// Timers are the RIP timers; zero fields keep the daemon's default
// (30 s update, 180 s timeout, 120 s garbage).
type Timers struct {
	Update, Timeout, Garbage time.Duration
}

// Config describes one router.
type Config struct {
	NS         *netns.NS
	Interfaces []string // RIPv2 runs on these
	// RIPng also runs RIPng (RFC 2080) on Interfaces, for IPv6: FRR's
	// ripngd beside ripd, BIRD's "protocol rip ng" beside "protocol rip".
	// Route and Kernel then answer for IPv6 prefixes too.
	RIPng  bool
	Auth   Auth
	Timers Timers
	// AnnounceConnected also puts the networks of the RIP interfaces into
	// RIP, so that routers in a chain reach each other's hosts. FRR always
	// does ("network IFACE"); BIRD needs a direct protocol for it.
	AnnounceConnected bool
	// Accept limits what the router takes in on the interfaces it names:
	// only these prefixes (the service /32s and /128s of the replicas on
	// that link; each family's protocol takes its own and nothing else),
	// so a compromised or misconfigured replica cannot announce a default
	// route or someone else's prefix. Interfaces it does not name (links
	// between routers) accept everything. The configs are the router-side
	// snippets of advertisers/rip/README.md.
	Accept map[string][]netip.Prefix
	// BaseDir holds the instance directory (configs, sockets, pid and log
	// files); default os.TempDir(). FRR drops privileges to user frr, so the
	// directory must be reachable by that user: avoid t.TempDir().
	BaseDir string
}

// Route is a router's RIP table entry for one prefix.
type Route struct {
	Present bool // a usable route (metric below 16)
	Metric  int  // RIP metric; 16 when absent or poisoned
	NextHop netip.Addr
}

// KernelRoute is the route the router installed in its namespace's kernel.
type KernelRoute struct {
	Present  bool
	Gateway  netip.Addr
	Dev      string
	Protocol string // "rip" for FRR, "bird" for BIRD
}

// Router is a running RIP router.
type Router interface {
	// Kind is "frr" or "bird".
	Kind() string
	// Route reads the router's RIP table entry for prefix.
	Route(ctx context.Context, prefix netip.Prefix) (Route, error)
	// Kernel reads the kernel route for prefix in the router's namespace.
	Kernel(ctx context.Context, prefix netip.Prefix) (KernelRoute, error)
	// Rejected counts RIP packets the router dropped as bad (failed
	// authentication, malformed) since it started: FRR's BadPackets per
	// source, BIRD's "Authentication failed" log lines (BIRD rate-limits
	// those, so it is a lower bound).
	Rejected(ctx context.Context) (int, error)
	// Dir is the instance directory (configs and logs, for debugging).
	Dir() string
	// Stop stops the daemons by pid and removes the instance directory.
	Stop() error
}

// ErrMissingBinary is returned when a router's programs are not installed.
var ErrMissingBinary = errors.New("routers: binary not installed")

func needBinary(path, pkg string) error {
	if _, err := exec.LookPath(path); err != nil {
		return fmt.Errorf("%w: %s (install the Debian package %s)", ErrMissingBinary, path, pkg)
	}
	return nil
}

// kernelRoute reads `ip -j route show exact PREFIX` in the namespace.
func kernelRoute(ns *netns.NS, prefix netip.Prefix) (KernelRoute, error) {
	family := "-4"
	if prefix.Addr().Is6() {
		family = "-6"
	}
	out, err := ns.IP(family, "-j", "route", "show", "exact", prefix.String())
	if err != nil {
		return KernelRoute{}, err
	}
	var routes []struct {
		Dst      string `json:"dst"`
		Gateway  string `json:"gateway"`
		Dev      string `json:"dev"`
		Protocol string `json:"protocol"`
	}
	if err := json.Unmarshal([]byte(out), &routes); err != nil {
		return KernelRoute{}, fmt.Errorf("routers: parse ip route output %q: %w", out, err)
	}
	if len(routes) == 0 {
		return KernelRoute{}, nil
	}
	r := routes[0]
	kr := KernelRoute{Present: true, Dev: r.Dev, Protocol: r.Protocol}
	if r.Gateway != "" {
		gw, err := netip.ParseAddr(r.Gateway)
		if err != nil {
			return KernelRoute{}, fmt.Errorf("routers: gateway %q: %w", r.Gateway, err)
		}
		kr.Gateway = gw
	}
	return kr, nil
}

// makeInstanceDir creates a fresh directory for one router instance.
func makeInstanceDir(base, pattern string) (string, error) {
	if base == "" {
		base = os.TempDir()
	}
	dir, err := os.MkdirTemp(base, pattern)
	if err != nil {
		return "", fmt.Errorf("routers: instance dir: %w", err)
	}
	return dir, nil
}

// waitReady polls probe until it succeeds, a process exits, or the bound.
func waitReady(ctx context.Context, probe func(context.Context) error, procs ...*netns.Process) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	var last error
	for {
		for _, p := range procs {
			if p.Exited() {
				return fmt.Errorf("routers: %s exited during start-up", p.Name)
			}
		}
		if last = probe(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("routers: not ready after %v: %w", readyTimeout, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// joinedRIPGroup succeeds once every interface has joined 224.0.0.9 (and
// ff02::9 with ripng): a router that answers on its control socket may not
// hear RIP yet (ripd joins about a second after start-up).
func joinedRIPGroup(ns *netns.NS, ifaces []string, ripng bool) error {
	for _, ifname := range ifaces {
		out, err := ns.IP("maddr", "show", "dev", ifname)
		if err != nil {
			return err
		}
		if !strings.Contains(out, "inet  224.0.0.9") && !strings.Contains(out, "inet 224.0.0.9") {
			return fmt.Errorf("routers: %s has not joined 224.0.0.9", ifname)
		}
		if ripng && !strings.Contains(out, "inet6 ff02::9") {
			return fmt.Errorf("routers: %s has not joined ff02::9", ifname)
		}
	}
	return nil
}

// acceptOf is the part of an Accept list of one family.
func acceptOf(ps []netip.Prefix, is6 bool) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range ps {
		if p.Addr().Is6() == is6 {
			out = append(out, p)
		}
	}
	return out
}

func seconds(d, def time.Duration) int {
	if d <= 0 {
		d = def
	}
	return int(d / time.Second)
}
