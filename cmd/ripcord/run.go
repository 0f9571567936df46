package main

import (
	"context"
	"os/signal"
	"syscall"

	"github.com/ripcord/ripcord/daemon"
)

func cmdRun(args []string) error {
	fs := newFlags("run", "-c FILE", "Run the daemon in the foreground. SIGTERM or SIGINT poisons every route, then exits.")
	cfgPath := fs.String("c", defaultConfig, "config file")
	noVIP := fs.Bool("no-vip", false, "do not manage the service addresses on their interfaces (they are configured elsewhere)")
	if err := fs.Parse(args); err != nil {
		return exitError(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	cfg, host, err := load(ctx, *cfgPath, newLogger)
	if err != nil {
		return err
	}
	return daemon.Run(ctx, daemon.Options{Config: cfg, Host: host, Logger: newLogger(cfg), NoVIP: *noVIP})
}
