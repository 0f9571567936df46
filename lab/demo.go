package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

// DemoOptions configure RunDemo.
type DemoOptions struct {
	Lab Options
	// Keep leaves the lab up after the demo until ctx ends (Ctrl-C).
	Keep bool
	// JSON prints only the machine-readable summary on Out.
	JSON bool
	// SVG is the file the timeline picture is written to ("" for none).
	SVG string
	Out io.Writer
}

// Summary is the machine-readable result of the demo.
type Summary struct {
	Shape    string `json:"shape"`
	Routers  string `json:"routers"`
	Protocol string `json:"protocol"`
	Assist   bool   `json:"assist"`
	Relay    bool   `json:"relay"`
	// FailedRequests counts the LDAP requests of every client that got no
	// answer, fault to end, at the IPv6 address too with --ipv6.
	FailedRequests       int                     `json:"failed_requests"`
	Requests             int                     `json:"requests"`
	FailbackDelaySeconds float64                 `json:"failback_delay_seconds"`
	Fault                string                  `json:"fault"`
	Repair               string                  `json:"repair"`
	Clients              map[string]ClientResult `json:"clients"`
	// ClientsIPv6 are the same clients' requests to the LDAP vip6 (with
	// --ipv6; the relay carries them like the IPv4 ones).
	ClientsIPv6 map[string]ClientResult `json:"clients_ipv6,omitempty"`
	SVG         string                  `json:"svg,omitempty"`
	Namespaces  map[string]string       `json:"namespaces"`
}

// RunDemo builds the lab, shows which replica answers each client, breaks
// LDAP on the active replica, repairs it, prints the timeline, writes the
// picture and tears the lab down (also when ctx ends early).
func RunDemo(ctx context.Context, o DemoOptions) (*Summary, error) {
	out := o.Out
	if out == nil {
		out = os.Stdout
	}
	say := func(format string, args ...any) {
		if !o.JSON {
			fmt.Fprintf(out, format+"\n", args...)
		}
	}
	o.Lab.Logf = func(format string, args ...any) { say(format, args...) }
	if err := o.Lab.defaults(); err != nil {
		return nil, err
	}
	assist := "on (each replica watches the other's ripcord and nudges the routers when it withdraws)"
	if o.Lab.NoAssist {
		assist = "off (a failing replica only poisons its own route)"
	}
	say("ripcord lab: %s shape, %s routers with default %s timers, peer assistance %s", o.Lab.Shape, o.Lab.Routers, strings.ToUpper(o.Lab.Protocol), assist)
	if o.Lab.Relay {
		say("relay on: a replica whose service breaks hands its new flows to the other through a tunnel until the routes moved")
	}
	say("failback_delay is %v for the demo (the production default is 30s)", o.Lab.FailbackDelay)

	l, err := Build(ctx, o.Lab)
	if err != nil {
		return nil, err
	}
	defer func() {
		say("lab: tearing down (processes by pid, then the namespaces)")
		if err := l.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "ripcord lab: teardown:", err)
		}
	}()
	say("lab: namespaces %s", formatNamespaces(l.Namespaces()))

	start := time.Now()
	rec := l.Record(ctx, func(s Sample, prev string) {
		who := s.Replica
		if who == "" {
			who = "no answer (" + s.Err + ")"
		}
		if prev == "" {
			prev = "-"
		}
		say("  %+7.2fs  %s %-8s %-6s -> %s", s.At.Sub(start).Seconds(), s.Client, s.Service, prev, who)
	})
	defer rec.Stop()

	say("lab: waiting for the routes to converge (clients ask every %v)", ProbeInterval)
	if err := l.WaitConverged(ctx, rec); err != nil {
		return nil, err
	}
	say("lab: converged after %.1fs: %s", time.Since(start).Seconds(), describeHomes(l))
	// The timeline and picture begin here: the convergence at start-up is
	// not what the demo is about.
	shown := time.Now()
	// Let the routers' triggered-update pacing (1-5 s after the last one,
	// and start-up sent many) run out, so the fault meets quiet routers.
	say("lab: letting the routers settle for 6s before the fault")
	sleep(ctx, 6*time.Second)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	tr, events, err := l.RunTrial(ctx, rec, TrialOptions{Service: ServiceLDAP, Replica: l.SA, Fault: FaultKill,
		OnEvent: func(e Event) {
			say("  %+7.2fs  *** %s: %s", e.At.Sub(start).Seconds(), strings.ToUpper(e.Kind), e.Text)
		}})
	rec.Stop()
	end := time.Now()
	samples := rec.Samples()
	if err != nil {
		return nil, err
	}

	results := Analyze(samples, tr, []string{"ca", "cb"})
	var results6 []ClientResult
	if l.Opts.IPv6 {
		tr6 := tr
		tr6.Service = Over6(tr.Service)
		results6 = Analyze(samples, tr6, []string{"ca", "cb"})
	}
	var after []Sample
	for _, s := range samples {
		if !s.At.Before(shown) {
			after = append(after, s)
		}
	}
	samples = after
	events = append(events, Event{At: tr.Repair.Add(l.Opts.FailbackDelay), Kind: "note",
		Text: fmt.Sprintf("repair + failback_delay (%v)", l.Opts.FailbackDelay)})
	sum := &Summary{Shape: string(l.Opts.Shape), Routers: l.Opts.Routers, Protocol: l.Opts.Protocol, Assist: !l.Opts.NoAssist, Relay: l.Opts.Relay,
		FailbackDelaySeconds: l.Opts.FailbackDelay.Seconds(), Fault: events[0].Text, Repair: events[1].Text,
		Clients: map[string]ClientResult{}, Namespaces: l.Namespaces()}
	for _, r := range results {
		sum.Clients[r.Client] = r
		sum.FailedRequests += r.FailedRequests
		sum.Requests += r.Requests
	}
	for _, r := range results6 {
		if sum.ClientsIPv6 == nil {
			sum.ClientsIPv6 = map[string]ClientResult{}
		}
		sum.ClientsIPv6[r.Client] = r
		sum.FailedRequests += r.FailedRequests
		sum.Requests += r.Requests
	}

	if o.SVG != "" {
		f, err := os.Create(o.SVG)
		if err != nil {
			return nil, fmt.Errorf("lab: %w", err)
		}
		assist := "on"
		if l.Opts.NoAssist {
			assist = "off"
		}
		relay := "off"
		if l.Opts.Relay {
			relay = "on"
		}
		title := fmt.Sprintf("ripcord lab: %s shape, %s routers (%s), peer assistance %s, relay %s: LDAP on sa killed, then restarted",
			l.Opts.Shape, l.Opts.Routers, strings.ToUpper(l.Opts.Protocol), assist, relay)
		err = WriteSVG(f, title, shown, end, samples, events)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("lab: writing %s: %w", o.SVG, err)
		}
		sum.SVG = o.SVG
	}

	if o.JSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(sum); err != nil {
			return nil, err
		}
	} else {
		say("\ntimeline (who answered each client, from the moment the lab had converged):")
		WriteTimeline(out, shown, samples, events)
		say("\nmeasured (LDAP, fault = slapd killed on sa):")
		for _, r := range results {
			say("  %s", describeResult(r, l.Opts.FailbackDelay))
		}
		if len(results6) > 0 {
			say("measured (LDAP at its IPv6 address, announced with RIPng):")
			for _, r := range results6 {
				say("  %s", describeResult(r, l.Opts.FailbackDelay))
			}
		}
		switch {
		case l.Opts.Relay:
			say("  (sa relayed new LDAP connections to sb from the kill on, first because no local socket took them,")
			say("   then because its checks failed, and announced a worse route until the routers had moved to sb)")
		case l.Opts.Protocol == "bgp":
			say("  (the routers already held sb's path: sa's withdrawal alone moves traffic; the time is mostly detection,")
			say("   two failed checks 500 ms apart)")
		case l.Opts.Shape == ShapeFailover:
			say("  (cb, behind rb, hears sb's route within about a second; ca waits for rb's next triggered update,")
			say("   which the router holds back 1-5 s after its previous one: see docs/benchmarks.md, Failover)")
		case !l.Opts.NoAssist:
			say("  (sb changed its metric when its peer check saw sa fail, so rb told ra at once)")
		default:
			say("  (without peer assistance ra learns sb's route only from rb's next periodic update, up to 30 s)")
		}
		at := ""
		if len(results6) > 0 {
			at = " at each address"
		}
		say("\n%d of %d LDAP requests failed from the fault to the end (clients ca and cb, one every %v each%s)",
			sum.FailedRequests, sum.Requests, ProbeInterval, at)
		if o.SVG != "" {
			say("\npicture of the timeline: %s", o.SVG)
		}
	}

	if o.Keep {
		say("\nlab kept up for exploring until Ctrl-C; for example:")
		ns := l.Namespaces()
		say("  ip netns exec %s ldapsearch -x -H ldap://%s -s base -b '' description", ns["ca"], VIP(ServiceLDAP).Addr())
		switch {
		case l.Opts.Routers == "bird":
			say("  ip netns exec %s birdc -s %s/bird.ctl show route all", ns["ra"], l.RA.Router.Dir())
		case l.Opts.Protocol == "bgp":
			say("  ip netns exec %s vtysh --vty_socket %s -c 'show bgp ipv4 unicast'", ns["ra"], l.RA.Router.Dir())
		default:
			say("  ip netns exec %s vtysh --vty_socket %s -c 'show ip rip'", ns["ra"], l.RA.Router.Dir())
		}
		say("  %s status -s %s", l.Opts.Ripcord, l.SA.Socket)
		<-ctx.Done()
	}
	return sum, nil
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func formatNamespaces(m map[string]string) string {
	var parts []string
	for role, name := range m {
		parts = append(parts, role+"="+name)
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func describeHomes(l *Lab) string {
	if l.Opts.Shape == ShapeLoadBalance {
		return "ca uses sa, cb uses sb (each site its own replica)"
	}
	return "ca and cb both use sa (sb is the standby)"
}

func describeResult(r ClientResult, failbackDelay time.Duration) string {
	if !r.Affect {
		return fmt.Sprintf("%s: unaffected (served by %s throughout), %d of %d requests failed%s",
			r.Client, r.Home, r.FailedRequests, r.Requests, describeFailures(r.Failures))
	}
	f := func(p *float64) string {
		if p == nil {
			return "never"
		}
		return fmt.Sprintf("%.2fs", *p)
	}
	return fmt.Sprintf("%s: failover %s -> %s in %s; failback in %s (failback_delay %v); %d of %d requests failed%s",
		r.Client, r.Home, r.During, f(r.FailoverSeconds), f(r.FailbackSeconds), failbackDelay, r.FailedRequests, r.Requests,
		describeFailures(r.Failures))
}

// describeFailures says when the first few failed requests were sent, from
// the fault, and why they failed.
func describeFailures(fs []Failure) string {
	const most = 3
	var parts []string
	for i, f := range fs {
		if i == most {
			parts = append(parts, fmt.Sprintf("%d more", len(fs)-most))
			break
		}
		parts = append(parts, fmt.Sprintf("+%.2fs %s", f.Seconds, f.Err))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}
