package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ripcord/ripcord/checkers"
	"github.com/ripcord/ripcord/core/config"
	"github.com/ripcord/ripcord/daemon"
	"github.com/ripcord/ripcord/internal/checkpipe"
	"github.com/ripcord/ripcord/plugins"
	"github.com/ripcord/ripcord/plugins/checkapi"
)

// cmdChecker serves a built-in checker to the daemon, which starts
// `ripcord checker NAME` when there is no ripcord-checker beside it.
func cmdChecker(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: ripcord checker NAME (started by the daemon, not by hand)")
	}
	c, ok := checkers.Get(args[0])
	if !ok {
		return fmt.Errorf("no built-in checker %q", args[0])
	}
	checkpipe.Serve(c)
	return nil
}

func cmdCheckers(args []string) error {
	fs := newFlags("checkers", "[-c FILE]", "List the built-in checkers and the third-party plugins in the config's plugins.dir,\n"+
		"each with its settings; a plugin also with its file, its sha256 and whether it matches the pin.\n"+
		"Plugins are started to ask them (Describe), as the daemon would start them.")
	cfgPath := fs.String("c", defaultConfig, "config file (its plugins section); without it, the built-in checkers only")
	if err := fs.Parse(args); err != nil {
		return exitError(2)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	for _, n := range checkers.Names() {
		c, _ := checkers.Get(n)
		printDescription(tw, c.Describe(), "built in")
	}
	if err := listPlugins(tw, *cfgPath, flagSet(fs, "c")); err != nil {
		tw.Flush()
		return err
	}
	return tw.Flush()
}

// flagSet reports whether the flag name was given.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// listPlugins describes every plugin in the plugins.dir of the config at
// path. A config that is missing is no error unless it was asked for.
func listPlugins(w io.Writer, path string, explicit bool) error {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) && !explicit {
		return nil
	}
	cfg, err := config.Load(path, config.Options{Portable: true})
	if err != nil {
		return err
	}
	if cfg.Plugins.Dir == "" {
		fmt.Fprintf(w, "(%s has no plugins.dir: no third-party plugins)\n", path)
		return nil
	}
	files, err := filepath.Glob(filepath.Join(cfg.Plugins.Dir, plugins.FilePrefix+"*"))
	if err != nil {
		return err
	}
	if len(files) == 0 {
		fmt.Fprintf(w, "(no %s* in %s)\n", plugins.FilePrefix, cfg.Plugins.Dir)
		return nil
	}
	host := daemon.NewOneShotHost(cfg, selfCommand(), oneShotLogger(cfg))
	defer host.Close()
	for _, f := range files {
		name := strings.TrimPrefix(filepath.Base(f), plugins.FilePrefix)
		where := "plugin " + f + ", " + pinState(f, cfg.Plugins.SHA256[name])
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		d, err := host.Describe(ctx, name)
		cancel()
		if err != nil {
			fmt.Fprintf(w, "%s\t(%s)\n  cannot use it: %v\n\n", name, where, err)
			continue
		}
		printDescription(w, d, where)
	}
	return nil
}

// pinState says whether the file at path matches its pin.
func pinState(path, pin string) string {
	sum, err := plugins.FileSHA256(path)
	switch {
	case err != nil:
		return err.Error()
	case pin == "":
		return "sha256 " + sum + ", not pinned"
	case !strings.EqualFold(pin, sum):
		return "sha256 " + sum + ", does NOT match the pin " + pin
	}
	return "sha256 " + sum + ", pinned"
}

func printDescription(w io.Writer, d checkapi.Description, where string) {
	fmt.Fprintf(w, "%s %s\t%s\t(%s)\n", d.Name, d.Version, d.Summary, where)
	for _, f := range d.Settings {
		req := ""
		if f.Required {
			req = " (required)"
		}
		def := ""
		if f.Default != "" {
			def = " [default " + f.Default + "]"
		}
		fmt.Fprintf(w, "  %s\t%s%s%s\t%s\n", f.Name, f.Type, req, def, f.Help)
	}
	fmt.Fprintln(w)
}
