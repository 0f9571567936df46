// Command failover measures failover and failback in the lab: for each
// scenario (shape x peer assistance on/off) it builds one lab, then runs N
// trials of "kill slapd on sa, wait, restart it", each after a random wait so
// that the routers' timer phase is sampled, and reports p50/p95/max failover
// and failback per client and the failed requests. With -write it puts the
// table into the "## Failover" section of docs/benchmarks.md.
//
//	go run ./bench/failover -trials 20 -shape both -write docs/benchmarks.md
//
// Needs root and the lab's packages (scripts/setup).
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ripcord/ripcord/lab"
)

type scenario struct {
	Shape         lab.Shape
	Assist        bool
	NoReadvertise bool // the RIP speaker's re-advertisement on heard poison is off
	Relay         bool // make-before-break relay configured on both replicas
	Service       string
	Fault         lab.Fault
}

func (s scenario) String() string {
	a := "assist"
	if !s.Assist {
		a = "no assist (baseline)"
	}
	if s.NoReadvertise {
		a += ", no re-advertisement on poison"
	}
	if s.Relay {
		a = fmt.Sprintf("relay, %s %s", s.Service, s.Fault)
	}
	return fmt.Sprintf("%s, %s", s.Shape, a)
}

// noReadvertise is -no-readvertise: every scenario runs without the RIP
// speaker's re-advertisement on heard poison.
var noReadvertise bool

// withRelay is -relay: every scenario runs with the relay, breaking
// relayService with relayFault.
var (
	withRelay    bool
	relayService = lab.ServiceLDAP
	relayFault   = lab.FaultKill
)

// overIPv6 is -ipv6: a dual-stack lab, and the clients' requests to the
// vip6 (RIPng) are measured.
var overIPv6 bool

// protocol and holdTime are -protocol and -hold-time: what the replicas
// speak to the routers.
var (
	protocol      string
	holdTime      time.Duration
	checkInterval time.Duration
)

// labOptions are the lab options every measurement shares.
func labOptions(sh lab.Shape, routerKind, ripcord string) lab.Options {
	return lab.Options{Shape: sh, Routers: routerKind, Protocol: protocol, IPv6: overIPv6, BGPHoldTime: holdTime, CheckInterval: checkInterval, Ripcord: ripcord}
}

// trialResult is one trial as measured by lab.Analyze.
type trialResult struct {
	Scenario string             `json:"scenario"`
	Trial    int                `json:"trial"`
	Wait     float64            `json:"wait_seconds"`
	Clients  []lab.ClientResult `json:"clients"`
	// Lost counts, per client, the long-lived LDAP connections lost between
	// the fault and the repair ([0]) and from the repair to the end ([1]).
	Lost map[string][2]int `json:"lost_connections"`
	Err  string            `json:"error,omitempty"`
}

func main() {
	trials := flag.Int("trials", 20, "trials per scenario")
	shape := flag.String("shape", "both", "failover, loadbalance or both")
	assist := flag.String("assist", "both", "on, off (the baseline: immediate poison only) or both")
	routers := flag.String("routers", "frr", "frr or bird")
	flag.StringVar(&protocol, "protocol", "rip", "rip, or bgp (eBGP replica to router; the table goes into the \"## Failover over BGP\" section)")
	flag.DurationVar(&checkInterval, "check-interval", 0, "the interval of every own service check (default the lab's, 500ms)")
	flag.DurationVar(&holdTime, "hold-time", 0, "with -protocol bgp: the replicas' bgp.hold_time (default ripcord's, 90s)")
	failback := flag.Duration("failback-delay", 5*time.Second, "the replicas' failback_delay")
	maxWait := flag.Duration("max-wait", 15*time.Second, "random wait before each fault, uniform in [1s, max-wait]")
	ripcord := flag.String("ripcord", "", "ripcord binary (default: build ./cmd/ripcord)")
	write := flag.String("write", "", "update the \"## Failover\" section of this markdown file (e.g. docs/benchmarks.md)")
	raw := flag.String("raw", "", "write every trial as JSON lines to this file")
	flag.BoolVar(&withRelay, "relay", false, "configure the make-before-break relay on both replicas (with assistance); the table goes to \"## Failover with the relay\"")
	flag.StringVar(&relayService, "service", lab.ServiceLDAP, "with -relay: the service to break (ldap or radius)")
	flag.Func("fault", "with -relay: kill (SIGKILL, default) or hang (SIGSTOP)", func(v string) error {
		if v != string(lab.FaultKill) && v != string(lab.FaultHang) {
			return fmt.Errorf("kill or hang")
		}
		relayFault = lab.Fault(v)
		return nil
	})
	flag.BoolVar(&overIPv6, "ipv6", false, "a dual-stack lab (ripcord lab --ipv6): measure the clients' requests to the services' IPv6 addresses, announced with RIPng; the table goes to \"## Failover over RIPng\"")
	flag.BoolVar(&noReadvertise, "no-readvertise", false, "turn off the RIP speaker's re-advertisement on heard poison (rip.readvertise_on_poison: false), to measure that lever")
	sigkill := flag.Bool("sigkill", false, "instead: measure once what SIGKILL of ripcord on sa does (no poison; failover shape)")
	var loss lossOptions
	flag.IntVar(&loss.percent, "loss", -1, "instead: drop this % of the packets between ripcord and its checked services on sa for -loss-duration, and count check failures and route changes (0: the same without loss, as a control)")
	flag.DurationVar(&loss.duration, "loss-duration", 5*time.Minute, "how long -loss holds")
	flag.DurationVar(&loss.interval, "interval", time.Second, "with -loss: the checks' interval")
	flag.DurationVar(&loss.timeout, "timeout", time.Second, "with -loss: the checks' timeout")
	flag.IntVar(&loss.fall, "fall", 3, "with -loss: the checks' fall")
	flag.BoolVar(&loss.replies, "loss-replies", false, "with -loss: drop the services' answers too (by default only what goes to them)")
	sigstop := flag.Bool("sigstop", false, "instead: measure once what SIGSTOP of ripcord on sa does (a hung replica: nothing is sent, nothing closed)")
	flag.Parse()

	err := func() error {
		if *ripcord == "" {
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			bin, cleanup, err := buildRipcord(ctx)
			stop()
			if err != nil {
				return err
			}
			defer cleanup()
			*ripcord = bin
		}
		if *sigkill || *sigstop {
			return measureStop(*routers, *ripcord, *sigstop)
		}
		if loss.percent >= 0 {
			loss.routerKind, loss.ripcordBin = *routers, *ripcord
			return measureLoss(loss)
		}
		return run(*trials, *shape, *assist, *routers, *failback, *maxWait, *ripcord, *write, *raw)
	}()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/failover:", err)
		os.Exit(1)
	}
}

func run(trials int, shape, assist, routerKind string, failback, maxWait time.Duration, ripcord, write, raw string) error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces)")
	}
	if err := lab.Prerequisites(routerKind); err != nil {
		return err
	}
	var shapes []lab.Shape
	switch shape {
	case "both":
		shapes = []lab.Shape{lab.ShapeLoadBalance, lab.ShapeFailover}
	case "failover", "loadbalance":
		shapes = []lab.Shape{lab.Shape(shape)}
	default:
		return fmt.Errorf("-shape %q: failover, loadbalance or both", shape)
	}
	var assists []bool
	switch assist {
	case "both":
		assists = []bool{true, false}
	case "on":
		assists = []bool{true}
	case "off":
		assists = []bool{false}
	default:
		return fmt.Errorf("-assist %q: on, off or both", assist)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	var rawFile *os.File
	if raw != "" {
		f, err := os.Create(raw)
		if err != nil {
			return err
		}
		defer f.Close()
		rawFile = f
	}

	started := time.Now()
	var all []summary
	for _, sh := range shapes {
		for _, as := range assists {
			sc := scenario{Shape: sh, Assist: as, NoReadvertise: noReadvertise, Relay: withRelay, Service: lab.ServiceLDAP, Fault: lab.FaultKill}
			if withRelay {
				if !as {
					continue // the relay needs assistance
				}
				sc.Service, sc.Fault = relayService, relayFault
			}
			fmt.Fprintf(os.Stderr, "== %s: %d trials\n", sc, trials)
			results, err := runScenario(ctx, sc, trials, routerKind, failback, maxWait, ripcord)
			for _, r := range results {
				if rawFile != nil {
					b, _ := json.Marshal(r)
					fmt.Fprintf(rawFile, "%s\n", b)
				}
			}
			if err != nil {
				return fmt.Errorf("%s: %w", sc, err)
			}
			all = append(all, summarize(sc, results))
		}
	}
	table := render(all, trials, routerKind, failback, maxWait, time.Since(started))
	fmt.Print(table)
	if write != "" {
		return writeSection(write, table)
	}
	return nil
}

func runScenario(ctx context.Context, sc scenario, trials int, routerKind string, failback, maxWait time.Duration, ripcord string) ([]trialResult, error) {
	opts := labOptions(sc.Shape, routerKind, ripcord)
	opts.NoAssist, opts.NoReadvertise, opts.Relay, opts.FailbackDelay = !sc.Assist, sc.NoReadvertise, sc.Relay, failback
	l, err := lab.Build(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	rec := l.Record(ctx, nil)
	defer rec.Stop()
	if err := l.WaitConverged(ctx, rec); err != nil {
		return nil, err
	}
	var out []trialResult
	for i := 0; i < trials; i++ {
		wait := time.Second + time.Duration(rand.Int64N(int64(maxWait-time.Second)+1))
		held := l.HoldLDAP(ctx) // opened during the wait: long-lived by the fault
		select {
		case <-ctx.Done():
			held.Stop()
			return out, ctx.Err()
		case <-time.After(wait):
		}
		tr, _, err := l.RunTrial(ctx, rec, lab.TrialOptions{Service: sc.Service, Replica: l.SA, Fault: sc.Fault})
		held.Stop()
		if overIPv6 {
			tr.Service = lab.Over6(tr.Service) // the same fault, seen at the vip6
		}
		res := trialResult{Scenario: sc.String(), Trial: i + 1, Wait: wait.Seconds(),
			Clients: lab.Analyze(rec.Samples(), tr, []string{"ca", "cb"}), Lost: map[string][2]int{}}
		for _, loss := range held.Losses() {
			n := res.Lost[loss.Client]
			switch {
			case loss.At.Before(tr.Fault):
			case loss.At.Before(tr.Repair):
				n[0]++
			default:
				n[1]++
			}
			res.Lost[loss.Client] = n
		}
		if err != nil {
			res.Err = err.Error()
		}
		out = append(out, res)
		fmt.Fprintf(os.Stderr, "  trial %2d (wait %4.1fs): %s\n", i+1, wait.Seconds(), brief(res))
		if err != nil {
			// The lab may be in an unknown state: stop this scenario here.
			return out, err
		}
	}
	return out, nil
}

func brief(r trialResult) string {
	var parts []string
	for _, c := range r.Clients {
		if !c.Affect {
			parts = append(parts, fmt.Sprintf("%s unaffected, %d failed", c.Client, c.FailedRequests))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s failover %s failback %s, %d failed, %d+%d held connections lost", c.Client, f2(c.FailoverSeconds), f2(c.FailbackSeconds), c.FailedRequests, r.Lost[c.Client][0], r.Lost[c.Client][1]))
	}
	if r.Err != "" {
		parts = append(parts, "ERROR "+r.Err)
	}
	return strings.Join(parts, "; ")
}

func f2(p *float64) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%.2fs", *p)
}

type clientSummary struct {
	Client             string
	Affected           int
	Failover, Failback []float64
	Failed             []int
	Never              int
	// LostAtFailover and LostAtFailback: long-lived LDAP connections lost
	// per trial.
	LostAtFailover, LostAtFailback []int
}

type summary struct {
	Scenario scenario
	Clients  []clientSummary
}

func summarize(sc scenario, results []trialResult) summary {
	s := summary{Scenario: sc}
	for _, name := range []string{"ca", "cb"} {
		cs := clientSummary{Client: name}
		for _, r := range results {
			for _, c := range r.Clients {
				if c.Client != name {
					continue
				}
				cs.Failed = append(cs.Failed, c.FailedRequests)
				cs.LostAtFailover = append(cs.LostAtFailover, r.Lost[name][0])
				cs.LostAtFailback = append(cs.LostAtFailback, r.Lost[name][1])
				if !c.Affect {
					continue
				}
				cs.Affected++
				if c.FailoverSeconds == nil || c.FailbackSeconds == nil {
					cs.Never++
				}
				if c.FailoverSeconds != nil {
					cs.Failover = append(cs.Failover, *c.FailoverSeconds)
				}
				if c.FailbackSeconds != nil {
					cs.Failback = append(cs.Failback, *c.FailbackSeconds)
				}
			}
		}
		s.Clients = append(s.Clients, cs)
	}
	return s
}

// percentile is the nearest-rank percentile.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	rank := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(rank, len(s)-1))]
}

func stats(xs []float64) string {
	if len(xs) == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f / %.2f / %.2f", percentile(xs, 50), percentile(xs, 95), percentile(xs, 100))
}

func render(all []summary, trials int, routerKind string, failback, maxWait time.Duration, took time.Duration) string {
	var b strings.Builder
	b.WriteString(sectionHead(routerKind))
	b.WriteString("\n")
	if withRelay {
		fmt.Fprintf(&b, `The same lab and trials as "Failover" below, with the make-before-break relay configured on both replicas
(`+"`relay: {ports: [tcp/389], quiet: 1s}`"+` per service, peers the assist peers, `+"`fast_interval`"+` 50 ms): the
broken replica relays the service's new flows to its peer through the VXLAN tunnel while it announces its worse relay
metric (its `+"`drain_metric`"+`, 10), poisons once no new flow came for 1 s, and removes the relay once no packet came
for 1 s. The broken service is %s, the fault %s. The clients send a real LDAP search and a real RADIUS
Access-Request to the VIP every %v.

`, sc0(all).Service, sc0(all).Fault, lab.ProbeInterval)
	}
	if protocol == "bgp" {
		renderBGPIntro(&b)
	}
	if overIPv6 {
		b.WriteString("The lab dual-stack (`ripcord lab --ipv6`): every service also has a vip6, announced by each replica's RIPng\n" +
			"speaker to routers running RIPng beside RIPv2, and the clients also send every request to the vip6. The table\n" +
			"measures those IPv6 requests (\"Failover\" has the IPv4 ones of an IPv4-only lab); the rest is as there.\n\n")
	}
	fmt.Fprintf(&b, `What clients see when LDAP breaks on sa and comes back, in the lab (`+"`ripcord lab`"+`'s topology: routers ra, rb
running %s with default %s timers; replicas sa, sb with slapd, FreeRADIUS, nginx and ripcord; clients ca, cb sending
a real LDAP search to the VIP every %v, each with a %v timeout). One trial: a random wait of 1–%v (so the
routers' 30 s update timers are met at a random phase), slapd on sa killed with SIGKILL, 2 s after every affected
client is served by sb it is restarted, then the clients must be back home. ripcord checks its own services every
%v (timeout the same, fall 2, rise 1) and, with assistance, polls the peer's own ripcord every 200 ms (checker
`+"`peer`"+`, which fails once the peer has sent its poison) with `+"`assist.delay`"+` 100 ms;
`+"`failback_delay`"+` is %v.

- **failover**: from the kill until the client's first answer from sb (only clients whose home was sa).
- **failback**: from the restarted slapd answering until the client's first answer from sa again; the goal is
  `+"`failback_delay`"+` + 1 s = %.0f s.
- **failed requests**: requests without an answer per trial (timeouts, unreachable, refused), fault to end of trial.
- Baseline ("no assist"): the failing replica poisons at once, nobody else helps. The RIP speaker's re-advertisement
  on hearing its VIP poisoned is always on (it is not an option).

`, routerName(routerKind), strings.ToUpper(protocol), lab.ProbeInterval, lab.RequestTimeout, maxWait, cmp.Or(checkInterval, 500*time.Millisecond), failback, (failback + time.Second).Seconds())
	if protocol == "bgp" {
		// The intro above speaks RIP; over BGP there is no update timer
		// and no re-advertisement, and a replica withdraws.
		text := b.String()
		b.Reset()
		text = strings.Replace(text, " (so the\nrouters' 30 s update timers are met at a random phase)", "", 1)
		text = strings.Replace(text, "has sent its poison", "has withdrawn the service", 1)
		if i := strings.Index(text, "- Baseline"); i >= 0 {
			text = text[:i] + "\n"
		}
		b.WriteString(text)
	}
	fmt.Fprintf(&b, "```sh\ngo run ./bench/failover %s\n```\n\n", strings.Join(os.Args[1:], " "))
	fmt.Fprintf(&b, "Machine: `nproc` = %d, %s/%s, %s, shared with other jobs; %d trials per scenario; whole run %s.\n\n",
		runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), trials, took.Round(time.Second))
	b.WriteString("| scenario | routers | client | trials affected | failover p50 / p95 / max (s) | failback p50 / p95 / max (s) | failed requests per trial p50 / p95 / max |\n")
	b.WriteString("|---|---|---|---|---|---|---|\n")
	for _, s := range all {
		for _, c := range s.Clients {
			failed := make([]float64, len(c.Failed))
			maxFailed := 0
			for i, n := range c.Failed {
				failed[i] = float64(n)
				maxFailed = max(maxFailed, n)
			}
			p50Failed, p95Failed := percentile(failed, 50), percentile(failed, 95)
			affected := fmt.Sprintf("%d of %d", c.Affected, len(c.Failed))
			if c.Never > 0 {
				affected += fmt.Sprintf(" (%d never recovered)", c.Never)
			}
			if c.Affected == 0 {
				fmt.Fprintf(&b, "| %s | %s | %s | %s (home sb: served throughout) | – | – | %.0f / %.0f / %d |\n", s.Scenario, routerKind, c.Client, affected, p50Failed, p95Failed, maxFailed)
				continue
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %.0f / %.0f / %d |\n", s.Scenario, routerKind, c.Client, affected,
				stats(c.Failover), stats(c.Failback), p50Failed, p95Failed, maxFailed)
		}
	}
	if overIPv6 {
		// The held connections go to the IPv4 VIP: "Failover" has them.
		return b.String() + "\n"
	}
	b.WriteString("\nLong-lived LDAP connections (one per client, opened before the fault, a search on it every ")
	fmt.Fprintf(&b, "%v, opened again at once when lost) lost per trial, p50 / max:\n\n", lab.ProbeInterval)
	b.WriteString("| scenario | client | lost between fault and repair | lost after the repair |\n|---|---|---|---|\n")
	for _, s := range all {
		for _, c := range s.Clients {
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", s.Scenario, c.Client, intStats(c.LostAtFailover), intStats(c.LostAtFailback))
		}
	}
	b.WriteString("\n")
	return b.String()
}

func routerName(kind string) string {
	if protocol == "bgp" {
		return map[string]string{"frr": "FRR bgpd", "bird": "BIRD 2 (bgp)"}[kind]
	}
	if overIPv6 {
		return map[string]string{"frr": "FRR ripd and ripngd", "bird": "BIRD 2 (rip and rip ng)"}[kind]
	}
	return map[string]string{"frr": "FRR ripd", "bird": "BIRD 2"}[kind]
}

// renderBGPIntro starts the BGP section: the same trial as the RIP one over
// the lab's BGP set-up.
func renderBGPIntro(b *strings.Builder) {
	b.WriteString("`ripcord lab --protocol bgp`'s set-up: ra and rb in AS 65000 (iBGP between them, next-hop-self), each\n" +
		"replica an eBGP session (AS 65010) to its site router, which accepts only the service /32s; sb's lower priority\n" +
		"in the failover shape is two AS-path prepends. Router timers are the daemons' defaults, ripcord's `bgp.hold_time`\n" +
		"its default unless the command says otherwise. The routers hold both replicas' paths, so the failing replica's\n" +
		"withdrawal alone moves traffic; assistance only re-ranks sb's path.\n\n")
}

func intStats(xs []int) string {
	fs := make([]float64, len(xs))
	for i, x := range xs {
		fs[i] = float64(x)
	}
	if len(fs) == 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f / %.0f", percentile(fs, 50), percentile(fs, 100))
}

// writeSection replaces a markdown file's section with the same "## "
// heading as section's first line (up to the next "## " heading), or
// appends it.
func writeSection(path, section string) error {
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	text := string(data)
	head, _, _ := strings.Cut(section, "\n")
	head += "\n"
	if i := strings.Index(text, head); i >= 0 {
		rest := text[i+len(head):]
		end := len(text)
		if j := strings.Index(rest, "\n## "); j >= 0 {
			end = i + len(head) + j + 1
		}
		// Keep hand-written notes that follow the generated table.
		text = text[:i] + section + keepNotes(text[i:end]) + text[end:]
	} else {
		if text != "" && !strings.HasSuffix(text, "\n\n") {
			text = strings.TrimRight(text, "\n") + "\n\n"
		}
		text += section
	}
	return os.WriteFile(path, []byte(text), 0o644)
}

// sectionHead is the heading of the section a run writes.
func sectionHead(routerKind string) string {
	if protocol == "bgp" {
		return fmt.Sprintf("## Failover over BGP (%s)\n", routerName(routerKind))
	}
	if withRelay {
		return "## Failover with the relay\n"
	}
	if overIPv6 {
		return fmt.Sprintf("## Failover over RIPng (%s)\n", map[string]string{"frr": "FRR ripngd", "bird": "BIRD 2 rip ng"}[routerKind])
	}
	return "## Failover\n"
}

// sc0 is the scenario of the first summary (all share service and fault).
func sc0(all []summary) scenario {
	if len(all) == 0 {
		return scenario{}
	}
	return all[0].Scenario
}

// notesMarker starts the hand-written part of the section, which a rerun
// keeps.
const notesMarker = "### Reading the numbers"

func keepNotes(old string) string {
	if i := strings.Index(old, notesMarker); i >= 0 {
		return old[i:]
	}
	return ""
}

func buildRipcord(ctx context.Context) (string, func(), error) {
	dir, err := os.MkdirTemp("", "ripcord-bench-")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	_ = os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "ripcord")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/ripcord").CombinedOutput(); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("building ripcord: %v: %s", err, out)
	}
	return bin, cleanup, nil
}

// converged builds a lab, starts its clients and waits until every client
// is served by its home replica; closeLab ends both.
func converged(ctx context.Context, opts lab.Options) (l *lab.Lab, rec *lab.Recorder, closeLab func(), err error) {
	if l, err = lab.Build(ctx, opts); err != nil {
		return nil, nil, nil, err
	}
	rec = l.Record(ctx, nil)
	closeLab = func() {
		rec.Stop()
		l.Close()
	}
	if err := l.WaitConverged(ctx, rec); err != nil {
		closeLab()
		return nil, nil, nil, err
	}
	return l, rec, closeLab, nil
}

// measureStop kills (SIGKILL) or hangs (SIGSTOP) ripcord on sa without
// letting it withdraw: the VIPs stay on sa's lo and the services keep
// running. Over RIP the routers keep the route until their timeout (180 s
// after the last update), as with the paper's dead routing daemon. Over BGP
// a killed process's sessions are closed by the kernel (the router notices
// at once); a hung one's last until the hold time. sb cannot help: its peer
// checks still pass after SIGKILL (the status listener is gone: they fail,
// but the routers still hold sa's route).
func measureStop(routerKind, ripcord string, hang bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	l, rec, closeLab, err := converged(ctx, labOptions(lab.ShapeFailover, routerKind, ripcord))
	if err != nil {
		return err
	}
	defer closeLab()
	time.Sleep(time.Duration(1+rand.IntN(10)) * time.Second)
	what := "SIGKILL"
	if hang {
		what = "SIGSTOP"
		err = l.SA.SuspendRipcord()
		defer l.SA.ResumeRipcord()
	} else {
		err = l.SA.KillRipcord()
	}
	if err != nil {
		return err
	}
	killed := time.Now()
	fmt.Fprintf(os.Stderr, "ripcord on sa stopped with %s at %s; waiting up to 240 s\n", what, killed.Format(time.TimeOnly))
	want := map[lab.Key]string{}
	for _, c := range []string{"ca", "cb"} {
		for _, svc := range lab.Services {
			want[lab.Key{Client: c, Service: svc}] = "sb"
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 240*time.Second)
	err = rec.WaitFor(wctx, want)
	cancel()
	took := time.Since(killed)
	rec.Stop()
	samples := rec.Samples()
	for _, c := range []string{"ca", "cb"} {
		for _, svc := range lab.Services {
			var first *time.Time
			failed := 0
			for _, s := range samples {
				if s.Client != c || s.Service != svc || s.At.Before(killed) {
					continue
				}
				if s.Replica == "" {
					failed++
				}
				if s.Replica == "sb" && first == nil {
					at := s.At
					first = &at
				}
			}
			if first != nil {
				fmt.Printf("%s %-8s first answer from sb %.1f s after %s, %d failed requests\n", c, svc, first.Sub(killed).Seconds(), what, failed)
			} else {
				fmt.Printf("%s %-8s never answered by sb, %d failed requests\n", c, svc, failed)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("after %.0f s: %w", took.Seconds(), err)
	}
	fmt.Printf("all clients on sb %.1f s after %s\n", took.Seconds(), what)
	return nil
}
