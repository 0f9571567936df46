package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/ripcord/ripcord/core/config"
	"github.com/ripcord/ripcord/plugins"
	"github.com/ripcord/ripcord/plugins/checkapi"
)

func cmdCheck(args []string) error {
	fs := newFlags("check", "-c FILE [-service NAME] [-v]",
		"Run every check once, through the same plugins the daemon uses, and print a table.\nExits 1 if any check failed.")
	cfgPath := fs.String("c", defaultConfig, "config file")
	only := fs.String("service", "", "only this service")
	verbose := fs.Bool("v", false, "also print each check's phases (how long each step took) and observations")
	if err := fs.Parse(args); err != nil {
		return exitError(2)
	}
	ctx := context.Background()
	cfg, host, err := load(ctx, *cfgPath, oneShotLogger, true)
	if err != nil {
		return err
	}
	defer host.Close()
	rows, err := checkOnce(ctx, cfg, host, *only)
	if err != nil {
		return fmt.Errorf("%w in %s", err, *cfgPath)
	}

	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tCHECK\tCHECKER\tSTATUS\tREASON\tLATENCY\tMESSAGE")
	failed := 0
	for _, r := range rows {
		if r.res.Status == checkapi.StatusFailed && !r.peer {
			failed++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.svc, r.name(), r.checker, r.res.Status, r.res.Reason,
			r.took.Round(100*time.Microsecond), r.res.Message)
	}
	tw.Flush()
	if *verbose {
		for _, r := range rows {
			printDetails(os.Stdout, r)
		}
	}
	if failed > 0 {
		fmt.Fprintf(os.Stderr, "%d check(s) failed\n", failed)
		return exitError(1)
	}
	return nil
}

// printDetails prints what a check's table row leaves out: its phases and
// observations, one line each.
func printDetails(w io.Writer, r *checkRow) {
	var phases, obs []string
	for _, p := range r.res.Phases {
		phases = append(phases, fmt.Sprintf("%s %s", p.Name, p.Duration.Round(10*time.Microsecond)))
	}
	for _, k := range slices.Sorted(maps.Keys(r.res.Observations)) {
		obs = append(obs, fmt.Sprintf("%s=%g", k, r.res.Observations[k]))
	}
	fmt.Fprintf(w, "\n%s %s:\n", r.svc, r.name())
	if len(phases) > 0 {
		fmt.Fprintf(w, "  phases: %s\n", strings.Join(phases, ", "))
	}
	if len(obs) > 0 {
		fmt.Fprintf(w, "  observations: %s\n", strings.Join(obs, ", "))
	}
	if len(phases)+len(obs) == 0 {
		fmt.Fprintln(w, "  no phases, no observations")
	}
}

// checkRow is one check run once.
type checkRow struct {
	svc, check, checker string
	peer                bool
	res                 *checkapi.Result
	took                time.Duration
}

func (r *checkRow) name() string {
	if r.peer {
		return "peer:" + r.check
	}
	return r.check
}

// checkOnce runs every check of the config (of service only, when set) once,
// a few at a time, and returns the results in config order.
func checkOnce(ctx context.Context, cfg *config.Config, host *plugins.Host, only string) ([]*checkRow, error) {
	var rows []*checkRow
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8) // bound concurrent checks
	run := func(svc string, chs []config.Check, peer bool) {
		for _, c := range chs {
			r := &checkRow{svc: svc, check: c.Name, checker: c.Checker, peer: peer}
			rows = append(rows, r)
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				cctx, cancel := context.WithTimeout(ctx, c.Timeout.D())
				defer cancel()
				start := time.Now()
				r.res = host.Check(cctx, c.Checker, &checkapi.Request{Target: c.Target, Settings: c.SettingsJSON})
				r.took = time.Since(start)
			}()
		}
	}
	found := false
	for _, s := range cfg.Services {
		if only != "" && s.Name != only {
			continue
		}
		found = true
		run(s.Name, s.Checks, false)
		if s.Assist != nil {
			run(s.Name, s.Assist.Peers, true)
		}
	}
	wg.Wait()
	if !found {
		return nil, fmt.Errorf("no service %q", only)
	}
	return rows, nil
}
