package main

import (
	"context"
	"fmt"

	"github.com/ripcord/ripcord/core/config"
	"github.com/ripcord/ripcord/daemon"
	"github.com/ripcord/ripcord/plugins"
)

func cmdValidate(args []string) error {
	fs := newFlags("validate", "-c FILE [-portable]", "Check a config file: syntax, keys, values, secret files, checker names and each checker's settings,\n"+
		"and everything run checks at start on this host (interfaces, metrics_listen, control socket, state_dir).")
	cfgPath := fs.String("c", defaultConfig, "config file")
	portable := fs.Bool("portable", false, "skip what depends on this host (interfaces, local addresses, state_dir): for a config meant for another machine")
	if err := fs.Parse(args); err != nil {
		return exitError(2)
	}
	loadCfg := daemon.Load
	if *portable {
		loadCfg = daemon.LoadPortable
	}
	cfg, host, err := loadCfg(context.Background(), *cfgPath, func(c *config.Config) *plugins.Host {
		return daemon.NewHost(c, selfCommand(), oneShotLogger(c))
	})
	if err != nil {
		return err
	}
	host.Close()
	n := len(cfg.AllChecks())
	fmt.Printf("%s: ok (%d services, %d checks)\n", *cfgPath, len(cfg.Services), n)
	for _, w := range cfg.Warnings() {
		fmt.Printf("warning: %s\n", w)
	}
	return nil
}
