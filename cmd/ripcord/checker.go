package main

import (
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/ripcord/ripcord/checkers"
	"github.com/ripcord/ripcord/plugins/sdk"
)

// cmdChecker is the plugin side of a built-in checker: the daemon starts
// `ripcord checker NAME` through go-plugin.
func cmdChecker(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: ripcord checker NAME (started by the daemon, not by hand)")
	}
	c, ok := checkers.Get(args[0])
	if !ok {
		return fmt.Errorf("no built-in checker %q", args[0])
	}
	sdk.Serve(c)
	return nil
}

func cmdCheckers(args []string) error {
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	for _, n := range checkers.Names() {
		c, _ := checkers.Get(n)
		d := c.Describe()
		fmt.Fprintf(tw, "%s %s\t%s\n", d.Name, d.Version, d.Summary)
		for _, f := range d.Settings {
			req := ""
			if f.Required {
				req = " (required)"
			}
			def := ""
			if f.Default != "" {
				def = " [default " + f.Default + "]"
			}
			fmt.Fprintf(tw, "  %s\t%s%s%s\t%s\n", f.Name, f.Type, req, def, f.Help)
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}
