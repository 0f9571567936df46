package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ripcord/ripcord/control"
	"github.com/ripcord/ripcord/core"
	"github.com/ripcord/ripcord/core/config"
)

func socketFlag(fs interface {
	String(string, string, string) *string
}) *string {
	return fs.String("s", config.DefaultSocket, "control socket of the daemon")
}

func cmdStatus(args []string) error {
	fs := newFlags("status", "[-s SOCKET] [-json] [-exit-code]", "Show each service's state, last transition, reason, the metric its policy decided and the metric\neach advertiser announces.")
	sock := socketFlag(fs)
	asJSON := fs.Bool("json", false, "print the raw JSON report")
	exitCode := fs.Bool("exit-code", false, "exit as a Nagios/Icinga plugin does: 0 every service up, 1 one degraded or drained,\n2 one down or starting, 3 the daemon does not answer")
	if err := fs.Parse(args); err != nil {
		if slices.Contains(args, "-exit-code") || slices.Contains(args, "--exit-code") {
			return exitError(3) // a monitoring plugin's "unknown", not "critical"
		}
		return exitError(2)
	}
	r, err := control.NewClient(*sock).Status()
	if err != nil {
		if *exitCode {
			fmt.Fprintln(os.Stderr, "ripcord:", err)
			return exitError(3)
		}
		return err
	}
	if err := printStatus(r, *asJSON); err != nil {
		return err
	}
	if code := statusCode(r); *exitCode && code != 0 {
		return exitError(code)
	}
	return nil
}

// statusCode is the worst state of any service, as monitoring plugins
// count: 0 up, 1 degraded or drained (a drain someone forgot), 2 down or
// starting.
func statusCode(r control.Report) int {
	code := 0
	for _, s := range r.Services {
		switch s.State {
		case core.Up.String():
		case core.Degraded.String(), core.Drained.String():
			code = max(code, 1)
		default:
			code = 2
		}
	}
	return code
}

func printStatus(r control.Report, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	fmt.Printf("node %s, ripcord %s, up %s\n", r.Node, r.Version, time.Since(r.Started).Round(time.Second))
	if rl := r.Reload; rl != nil {
		ago := time.Since(rl.At).Round(time.Second)
		if rl.OK {
			fmt.Printf("last reload %s ago: %s\n", ago, rl.Summary)
		} else {
			fmt.Printf("last reload %s ago REFUSED, the previous config runs: %s\n", ago, rl.Error)
		}
	}
	fmt.Println()
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	// METRIC is what the policy decided, with or without an advertiser;
	// ANNOUNCED is what each advertiser last sent.
	fmt.Fprintln(tw, "SERVICE\tVIP\tSTATE\tSINCE\tMETRIC\tANNOUNCED\tRELAY\tREASON")
	for _, s := range r.Services {
		var ann []string
		for _, a := range slices.Sorted(maps.Keys(s.Announced)) {
			ann = append(ann, fmt.Sprintf("%s=%d", a, s.Announced[a]))
		}
		for a, e := range s.LastError {
			ann = append(ann, a+"=error: "+e)
		}
		if len(ann) == 0 {
			ann = []string{"-"}
		}
		state := s.State
		if s.Assisting {
			state += " (assisting)"
		}
		vips := strings.Trim(s.VIP+","+s.VIP6, ",")
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s ago\t%d\t%s\t%s\t%s\n", s.Name, vips, state,
			time.Since(s.Since).Round(time.Second), s.Metric, strings.Join(ann, " "), relayColumn(s.Relay), s.Reason)
	}
	tw.Flush()
	fmt.Println()
	tw = tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tCHECK\tSTATE\tLAST\tREASON\tLATENCY\tMESSAGE")
	for _, s := range r.Services {
		for _, c := range s.Checks {
			name := c.Name
			if c.Peer {
				name = "peer:" + name
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, name, c.State, c.Status, c.Reason,
				c.Latency.Round(100*time.Microsecond), c.Message)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	printRouterViews(r)
	printBGPSessions(r)
	return nil
}

func printBGPSessions(r control.Report) {
	if len(r.BGP) == 0 {
		return
	}
	fmt.Println()
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BGP PEER\tASN\tSTATE\tSINCE\tADVERTISED\tRECEIVED")
	for _, s := range r.BGP {
		since := "-"
		if !s.Since.IsZero() {
			since = time.Since(s.Since).Round(time.Second).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%d\n", s.Peer, s.PeerASN, s.State, since, s.Advertised, s.Received)
	}
	tw.Flush()
}

// printRouterViews shows what the routers on RIP links hold for each VIP,
// and says where that contradicts our announcement: the first question
// during an incident.
func printRouterViews(r control.Report) {
	if !slices.ContainsFunc(r.Services, func(s control.ServiceReport) bool { return len(s.Routers) > 0 }) {
		return
	}
	fmt.Println()
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tINTERFACE\tROUTER\tHOLDS\tSEEN\tNOTE")
	for _, s := range r.Services {
		for _, v := range s.Routers {
			seen := "-"
			if !v.At.IsZero() {
				seen = time.Since(v.At).Round(time.Second).String() + " ago (" + v.Source + ")"
			}
			note := v.Disagreement
			if note != "" {
				note = "DISAGREES: " + note
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, v.Interface, v.Router, v.Holds(), seen, note)
		}
	}
	tw.Flush()
}

// relayColumn is "-" without a relay, else e.g. "all to 10.0.2.10
// (moving) 2s, 12 flows 340 packets".
func relayColumn(r *core.RelayStatus) string {
	if r == nil {
		return "-"
	}
	s := r.Mode
	if r.Peer != "" {
		s += " to " + r.Peer
	}
	if r.Phase != "" {
		s += " (" + r.Phase + ")"
	}
	if !r.Since.IsZero() {
		s += " " + time.Since(r.Since).Round(100*time.Millisecond).String()
	}
	return fmt.Sprintf("%s, %d flows %d packets", s, r.Flows, r.Packets)
}

func cmdDrain(cmd string, args []string) error {
	help := "Move traffic away from SERVICE gracefully: it is announced with its drain_metric, so routers keep\n" +
		"using it until they hear a better replica. The flag survives a restart of ripcord."
	if cmd == "undrain" {
		help = "Bring a drained SERVICE back to its normal metric."
	}
	fs := newFlags(cmd, "[-s SOCKET] SERVICE", help)
	sock := socketFlag(fs)
	if err := fs.Parse(args); err != nil {
		return exitError(2)
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitError(2)
	}
	c := control.NewClient(*sock)
	var err error
	if cmd == "drain" {
		err = c.Drain(fs.Arg(0))
	} else {
		err = c.Undrain(fs.Arg(0))
	}
	if err != nil {
		return err
	}
	fmt.Printf("%s: %sed\n", fs.Arg(0), cmd)
	return nil
}

func cmdReload(args []string) error {
	fs := newFlags("reload", "[-s SOCKET]", "Make the daemon read its config file again and apply the difference: unchanged services keep\n"+
		"their state and announcements. An invalid file changes nothing; its error is printed and the exit status is 1.")
	sock := socketFlag(fs)
	if err := fs.Parse(args); err != nil {
		return exitError(2)
	}
	res, err := control.NewClient(*sock).Reload()
	if err != nil {
		return fmt.Errorf("reload refused, nothing changed: %w", err)
	}
	fmt.Printf("reloaded: %s\n", res.Summary)
	return nil
}
