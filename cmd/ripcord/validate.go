package main

import (
	"context"
	"fmt"
	"os"

	"github.com/ripcord/ripcord/core/config"
	"github.com/ripcord/ripcord/daemon"
	"github.com/ripcord/ripcord/plugins"
	"github.com/ripcord/ripcord/plugins/checkapi"
)

func cmdValidate(args []string) error {
	fs := newFlags("validate", "-c FILE [-portable] [-check]", "Check a config file: syntax, keys, values, secret files, checker names and each checker's settings,\n"+
		"and everything run checks at start on this host (interfaces, metrics_listen, control socket, state_dir).\n"+
		"With -check, also run every check once and fail on a check that reports itself misconfigured\n"+
		"(credentials, a missing LDAP heartbeat entry): what only the servers can tell. Other failing\n"+
		"checks are warnings: their server may just be down now.")
	cfgPath := fs.String("c", defaultConfig, "config file")
	portable := fs.Bool("portable", false, "skip what depends on this host (interfaces, local addresses, state_dir): for a config meant for another machine")
	once := fs.Bool("check", false, "also run every check once against its server")
	if err := fs.Parse(args); err != nil {
		return exitError(2)
	}
	loadCfg := daemon.Load
	if *portable {
		loadCfg = daemon.LoadPortable
	}
	ctx := context.Background()
	cfg, host, err := loadCfg(ctx, *cfgPath, func(c *config.Config) *plugins.Host {
		return daemon.NewOneShotHost(c, selfCommand(), oneShotLogger(c))
	})
	if err != nil {
		return err
	}
	defer host.Close()
	n := len(cfg.AllChecks())
	var checkWarnings []string
	if *once {
		rows, err := checkOnce(ctx, cfg, host, "")
		if err != nil {
			return err
		}
		bad := 0
		for _, r := range rows {
			if checkapi.IsMisconfiguration(r.res.Reason) {
				bad++
				fmt.Fprintf(os.Stderr, "%s: service %s, check %s: %s: %s\n", *cfgPath, r.svc, r.name(), r.res.Reason, r.res.Message)
			}
		}
		if bad > 0 {
			return exitError(1)
		}
		// Other failures are no proof of a bad config (the server may be
		// down now), but some are one in disguise: a wrong RADIUS secret
		// times out, a wrong portal password is a failed login.
		for _, r := range rows {
			switch r.res.Status {
			case checkapi.StatusFailed:
				checkWarnings = append(checkWarnings, fmt.Sprintf("service %s, check %s: failed now: %s: %s (a server that is down, or a setting no server can confirm: a wrong RADIUS secret times out, a wrong portal password fails the login)",
					r.svc, r.name(), r.res.Reason, r.res.Message))
			case checkapi.StatusDegraded:
				checkWarnings = append(checkWarnings, fmt.Sprintf("service %s, check %s: degraded now: %s: %s", r.svc, r.name(), r.res.Reason, r.res.Message))
			}
		}
	}
	fmt.Printf("%s: ok (%d services, %d checks", *cfgPath, len(cfg.Services), n)
	if *once {
		fmt.Print(", each run once")
	}
	fmt.Println(")")
	for _, w := range append(checkWarnings, daemon.Warnings(cfg)...) {
		fmt.Printf("warning: %s\n", w)
	}
	return nil
}
