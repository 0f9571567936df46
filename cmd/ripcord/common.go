package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"

	"github.com/ripcord/ripcord/core/config"
	"github.com/ripcord/ripcord/daemon"
	"github.com/ripcord/ripcord/plugins"
)

const defaultConfig = "/etc/ripcord/ripcord.yaml"

func version() string {
	if daemon.Version != "dev" {
		return daemon.Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return daemon.Version
}

func newFlags(name, args, help string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: ripcord %s %s\n\n%s\n", name, args, help)
		fs.PrintDefaults()
	}
	return fs
}

// selfCommand is how the daemon starts its built-in checkers: the small
// ripcord-checker binary when it is installed beside this one (each checker
// process then links only the checkers, not the daemon), otherwise this same
// binary as `ripcord checker NAME`.
func selfCommand() []string {
	exe, err := os.Executable()
	if err != nil {
		return []string{os.Args[0], "checker"}
	}
	small := filepath.Join(filepath.Dir(exe), "ripcord-checker")
	if fi, err := os.Stat(small); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
		return []string{small}
	}
	return []string{exe, "checker"}
}

func newLogger(c *config.Config) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.Log.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// oneShotLogger is for commands that print their own output (check): only
// warnings, unless the config asks for debug.
func oneShotLogger(c *config.Config) *slog.Logger {
	if c.Log.Level == "debug" {
		return newLogger(c)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// load reads and validates a config, asking each checker about its settings.
// The host of a one-shot command (oneShotLogger) never restarts a plugin.
func load(ctx context.Context, path string, log func(*config.Config) *slog.Logger, oneShot bool) (*config.Config, *plugins.Host, error) {
	return daemon.Load(ctx, path, func(c *config.Config) *plugins.Host {
		if oneShot {
			return daemon.NewOneShotHost(c, selfCommand(), log(c))
		}
		return daemon.NewHost(c, selfCommand(), log(c))
	})
}
