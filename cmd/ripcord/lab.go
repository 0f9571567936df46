package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ripcord/ripcord/lab"
)

func cmdLab(args []string) error {
	fs := newFlags("lab", "[flags]", `The demo: the two-site topology in network namespaces (routers ra, rb with
default RIP or BGP timers; replicas sa, sb running slapd, FreeRADIUS, nginx and
ripcord; clients ca, cb). Shows which replica answers each client, kills
slapd on sa, shows the failover, restarts it, shows the failback after
failback_delay, prints the timeline and writes it as an SVG picture. The
replicas relay a broken service's new flows to each other while the routes
move (make-before-break), so the clients see no gap. Needs root. Everything
is torn down at the end, also on Ctrl-C.`)
	shape := fs.String("shape", "failover", "failover (sa metric 1, sb 3) or loadbalance (both 1)")
	routerKind := fs.String("routers", "frr", "frr or bird")
	protocol := fs.String("protocol", "rip", "what replicas and routers speak: rip, or bgp (eBGP from each replica to its router, the routers iBGP peers)")
	ipv6 := fs.Bool("ipv6", false, "dual-stack: every link and service also has an IPv6 address, the replicas announce each vip6 with RIPng and the routers run RIPng beside RIPv2 (rip only); the clients ask both addresses")
	noAssist := fs.Bool("no-assist", false, "turn peer assistance off (the baseline: only the failing replica's poison; implies -no-relay)")
	noRelay := fs.Bool("no-relay", false, "turn the relay off: clients lose their requests while the routes move")
	keep := fs.Bool("keep", false, "keep the lab up after the demo until Ctrl-C, for exploring")
	asJSON := fs.Bool("json", false, "print a machine-readable summary instead of the live view")
	svg := fs.String("svg", "lab-timeline.svg", "write the timeline picture here (empty: none)")
	keepFiles := fs.Bool("keep-files", false, "leave the lab directory (configs and logs of every daemon) after teardown")
	failback := fs.Duration("failback-delay", 10*time.Second, "the replicas' failback_delay (production default 30s)")
	if err := fs.Parse(args); err != nil {
		return exitError(2)
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return exitError(2)
	}
	if os.Geteuid() != 0 {
		return errors.New("lab: needs root (it creates network namespaces and starts routers): run it with sudo")
	}
	if err := lab.Prerequisites(*routerKind); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("lab: own binary: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	_, err = lab.RunDemo(ctx, lab.DemoOptions{
		Lab: lab.Options{Shape: lab.Shape(*shape), Routers: *routerKind, Protocol: *protocol, IPv6: *ipv6, NoAssist: *noAssist, Relay: !*noRelay && !*noAssist,
			FailbackDelay: *failback, Ripcord: self, KeepFiles: *keepFiles},
		Keep: *keep, JSON: *asJSON, SVG: *svg, Out: os.Stdout,
	})
	if err != nil && ctx.Err() != nil && !*keep {
		return errors.New("lab: interrupted; the lab was torn down")
	}
	return err
}
