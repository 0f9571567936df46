package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/ripcord/ripcord/daemon"
)

func cmdRun(args []string) error {
	fs := newFlags("run", "-c FILE", "Run the daemon in the foreground. SIGTERM or SIGINT poisons every route, then exits;\n"+
		"SIGHUP reloads the config file (as `ripcord reload` does).")
	cfgPath := fs.String("c", defaultConfig, "config file")
	noVIP := fs.Bool("no-vip", false, "do not manage the service addresses on their interfaces (they are configured elsewhere)")
	if err := fs.Parse(args); err != nil {
		return exitError(2)
	}
	// SIGHUP is taken before anything else: its default would kill the
	// daemon without poisoning its routes.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	cfg, host, err := load(ctx, *cfgPath, newLogger, false)
	if err != nil {
		return err
	}
	return daemon.Run(ctx, daemon.Options{Config: cfg, Host: host, Logger: newLogger(cfg), NoVIP: *noVIP,
		ConfigPath: *cfgPath, Reload: hup})
}
