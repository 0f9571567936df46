// Command resources measures what health checking costs the server it runs
// on: CPU per check and memory, for ripcord and for ExaBGP's healthcheck
// (one process per check running `curl -sf`), side by side against the same
// local nginx, and ripcord alone at a high rate. Each side runs in a fresh
// cpuacct cgroup; CPU is the cgroup's usage over the measuring window (after
// a warm-up), RSS the sum of VmRSS (and PSS) over the cgroup's processes at
// the end of the window. ripcord runs as its systemd unit runs it
// (unit.go). With -write it puts the table into the "## Resources" section of
// docs/benchmarks.md.
//
//	go run ./bench/resources -write docs/benchmarks.md
//	go run ./bench/resources -bin before=DIR1,after=DIR2   # two builds side by side
//	go run ./bench/resources -rates '' -high 1000 -window 5m -sample 30s   # the soak
//
// Needs root (cgroups), nginx, curl and exabgp (scripts/setup). All traffic
// goes to 127.0.0.1.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ripcord/ripcord/lab/services"
)

func main() {
	rates := flag.String("rates", "20,200", "checks per second for the side-by-side runs (comma-separated; empty: none)")
	high := flag.Int("high", 1000, "checks per second for the ripcord-only run (0: none)")
	targetURL := flag.String("target", "", "what ripcord checks instead of the local nginx, e.g. a closed port to measure the cost of a check that does almost nothing")
	replica := flag.Bool("replica", false, "first measure an idle replica: one http, ldap, radius and peer check each, every 1s, against closed ports")
	warmup := flag.Duration("warmup", 15*time.Second, "time before the window (plugins start, caches fill)")
	window := flag.Duration("window", 60*time.Second, "measuring window of each run")
	bin := flag.String("bin", "", "directory with prebuilt ripcord, ripcord-checker and, optionally, the ripcord.service to run them with "+
		"(default: build them, and "+unitPath+"); "+
		"several as NAME=DIR,NAME=DIR are measured side by side, each in its own rows")
	every := flag.Duration("sample", 0, "also sample memory, descriptors and goroutines this often during each ripcord window (the soak)")
	write := flag.String("write", "", "put the table into this markdown file's \"## Resources\" section")
	flag.Parse()
	if os.Geteuid() != 0 {
		fail(errors.New("needs root (it makes cgroups)"))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *targetURL, *replica, *rates, *high, *warmup, *window, *bin, *every, *write); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "resources:", err)
	os.Exit(1)
}

// usage is what one side used over the window.
type usage struct {
	cpu       time.Duration // cgroup CPU time
	checks    int           // checks completed in the window
	rss, pss  int64         // bytes, summed over the processes
	procs     int
	maxRSS    int64 // of the largest process
	perProc   string
	split     map[string]time.Duration // CPU of the processes that lived through the window, by name
	delayP50  time.Duration            // ripcord only: scheduling delay
	delayP99  time.Duration
	delayOver int // checks later than 20 ms
	samples   []sample
}

// sample is the state of ripcord's processes at one moment of a window.
type sample struct {
	at         time.Duration // since the window opened
	rss        int64         // summed over the processes
	fds        int           // open descriptors, summed
	goroutines int           // the daemon's (-1: unknown)
}

// growth compares the first and the last samples of a window.
func (u usage) growth() string {
	first, last := u.samples[0], u.samples[len(u.samples)-1]
	var maxRSS int64
	for _, s := range u.samples {
		maxRSS = max(maxRSS, s.rss)
	}
	var series []string
	for _, s := range u.samples {
		series = append(series, fmt.Sprintf("%.1f", mb(s.rss)))
	}
	return fmt.Sprintf("Over the window (%d samples, %s to %s): RSS %.1f → %.1f MB (max %.1f; every sample: %s), "+
		"descriptors %d → %d, daemon goroutines %d → %d.", len(u.samples), first.at, last.at, mb(first.rss), mb(last.rss),
		mb(maxRSS), strings.Join(series, " "), first.fds, last.fds, first.goroutines, last.goroutines)
}

func (u usage) cpuPerCheck() float64 {
	if u.checks == 0 {
		return math.NaN()
	}
	return float64(u.cpu.Microseconds()) / 1000 / float64(u.checks)
}

// binSet is one build of ripcord and ripcord-checker, and the unit that
// runs it.
type binSet struct {
	name, dir string
	unit      unit
}

func parseBins(bin, built string) ([]binSet, error) {
	if bin == "" {
		return withUnits([]binSet{{name: "", dir: built}})
	}
	if !strings.Contains(bin, "=") {
		return withUnits([]binSet{{name: "", dir: bin}})
	}
	var sets []binSet
	for _, f := range strings.Split(bin, ",") {
		name, dir, ok := strings.Cut(f, "=")
		if !ok || name == "" || dir == "" {
			return nil, fmt.Errorf("-bin: %q is not NAME=DIR", f)
		}
		sets = append(sets, binSet{name: name, dir: dir})
	}
	return withUnits(sets)
}

// withUnits reads each build's unit: DIR/ripcord.service if there is one
// (the unit of an older build), else the one in this tree.
func withUnits(sets []binSet) ([]binSet, error) {
	for i := range sets {
		path := filepath.Join(sets[i].dir, "ripcord.service")
		if _, err := os.Stat(path); err != nil {
			path = unitPath
		}
		u, err := readUnit(path)
		if err != nil {
			return nil, err
		}
		u.path = path
		sets[i].unit = u
	}
	return sets, nil
}

func (b binSet) label() string {
	if b.name == "" {
		return "ripcord"
	}
	return "ripcord (" + b.name + ")"
}

func run(ctx context.Context, targetURL string, replica bool, rates string, high int, warmup, window time.Duration, bin string, every time.Duration, write string) error {
	dir, err := os.MkdirTemp("", "ripcord-res-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if bin == "" {
		for _, c := range []string{"ripcord", "ripcord-checker"} {
			cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(dir, c), "./cmd/"+c)
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0") // as scripts/package builds them
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("build %s: %v\n%s", c, err, out)
			}
		}
	}
	bins, err := parseBins(bin, dir)
	if err != nil {
		return err
	}
	ngx, err := services.StartNginx(ctx, services.NginxOptions{Dir: filepath.Join(dir, "nginx"), Marker: "bench"})
	if err != nil {
		return err
	}
	defer ngx.Stop()
	target := fmt.Sprintf("http://%s/healthz", ngx.Addr)
	if targetURL != "" {
		target = targetURL
	}

	var rows, notes []string
	for _, b := range bins {
		// Say how each build ran: a build without its own unit runs with
		// this tree's, which may differ from the one it shipped with.
		note := fmt.Sprintf("%s runs as %s does: %s", b.label(), b.unit.path, b.unit)
		fmt.Println(note)
		notes = append(notes, note)
	}
	if replica {
		for _, b := range bins {
			u, err := measureReplica(ctx, dir, b, warmup)
			if err != nil {
				return err
			}
			rows = append(rows, fmt.Sprintf("| %s | idle replica | %.3f ms | %.1f %% | %d in %s | %.1f MB | %.1f MB (PSS %.1f MB) | %s |",
				b.label(), u.cpuPerCheck(), 100*u.cpu.Seconds()/replicaWindow.Seconds(), u.checks, replicaWindow,
				mb(u.maxRSS), mb(u.rss), mb(u.pss), u.perProc))
			fmt.Println(rows[len(rows)-1])
		}
	}
	for _, f := range strings.Split(rates, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		rate, err := strconv.Atoi(f)
		if err != nil || rate <= 0 {
			return fmt.Errorf("-rates: %q is not a positive number", f)
		}
		var rcs []usage
		for _, b := range bins {
			rc, err := measureRipcord(ctx, dir, b, target, rate, warmup, window, every)
			if err != nil {
				return err
			}
			rcs = append(rcs, rc)
			rows = append(rows, row(b.label(), rate, window, rc))
			fmt.Println(rows[len(rows)-1])
		}
		ex, err := measureExaBGP(ctx, dir, target, rate, warmup, window)
		if err != nil {
			return err
		}
		rows = append(rows, row("ExaBGP healthcheck + curl", rate, window, ex))
		fmt.Println(rows[len(rows)-1])
		for i, b := range bins {
			rows = append(rows, fmt.Sprintf("| ratio at %d/s | | ExaBGP / %s: **%.0fx** CPU per check, **%.1fx** RSS | | | | | |",
				rate, b.label(), ex.cpuPerCheck()/rcs[i].cpuPerCheck(), float64(ex.rss)/float64(rcs[i].rss)))
			fmt.Println(rows[len(rows)-1])
		}
	}
	if high > 0 {
		for _, b := range bins {
			rc, err := measureRipcord(ctx, dir, b, target, high, warmup, window, every)
			if err != nil {
				return err
			}
			rows = append(rows, row(b.label(), high, window, rc))
			fmt.Println(rows[len(rows)-1])
			note := fmt.Sprintf("%s at %d checks/s: scheduling delay (actual start minus planned start) p50 %s, p99 %s; "+
				"%d checks started more than 20 ms late.", b.label(), high, delayText(rc.delayP50), delayText(rc.delayP99), rc.delayOver)
			if len(rc.samples) > 0 {
				note += " " + rc.growth()
			}
			note += " " + rc.splitText()
			fmt.Println(note)
			notes = append(notes, note)
		}
	}
	if write == "" {
		return nil
	}
	if len(notes) > 0 {
		rows = append(rows, "")
		for _, n := range notes {
			rows = append(rows, "- "+n)
		}
	}
	return writeSection(write, rows, warmup, window)
}

func row(who string, rate int, window time.Duration, u usage) string {
	return fmt.Sprintf("| %s | %d/s | %.3f ms | %.1f %% | %d in %s | %.1f MB | %.1f MB (PSS %.1f MB) | %s |",
		who, rate, u.cpuPerCheck(), 100*u.cpu.Seconds()/window.Seconds(), u.checks, window,
		mb(u.maxRSS), mb(u.rss), mb(u.pss), u.perProc)
}

func mb(b int64) float64 { return float64(b) / 1e6 }

// measureRipcord runs `ripcord run` with rate checks per second (interval 1s,
// 20 checks per service) and measures it.
func measureRipcord(ctx context.Context, dir string, bin binSet, target string, rate int, warmup, window, every time.Duration) (usage, error) {
	port, err := freePort()
	if err != nil {
		return usage{}, err
	}
	var b strings.Builder
	tag := fmt.Sprintf("%s%d", bin.name, rate)
	fmt.Fprintf(&b, "state_dir: %s/state-%s\ncontrol: {socket: %s/ripcord-%s.sock, metrics_listen: \"127.0.0.1:%d\"}\nlog: {level: warn}\nservices:\n",
		dir, tag, dir, tag, port)
	for i := range rate {
		if i%20 == 0 {
			fmt.Fprintf(&b, "  - name: s%d\n    vip: 10.200.%d.%d\n    checks:\n", i/20, i/20/250, i/20%250+1)
		}
		fmt.Fprintf(&b, "      - {name: c%d, checker: http, target: \"%s?c=%d\", interval: 1s, timeout: 500ms}\n", i, target, i)
	}
	cfg := filepath.Join(dir, fmt.Sprintf("ripcord-%s.yaml", tag))
	if err := os.WriteFile(cfg, []byte(b.String()), 0o644); err != nil {
		return usage{}, err
	}
	metrics := fmt.Sprintf("http://127.0.0.1:%d/metrics", port)
	var before, after scrape
	var samples []sample
	var sampler func(cg string, at time.Duration)
	if every > 0 {
		sampler = func(cg string, at time.Duration) {
			s := sample{at: at, goroutines: -1}
			for _, pid := range cgroupPids(cg) {
				rss, _, _ := memOf(pid)
				s.rss += rss
				if fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
					s.fds += len(fds)
				}
			}
			if sc, err := scrapeMetrics(metrics); err == nil {
				s.goroutines = int(sc.goroutines)
			}
			samples = append(samples, s)
		}
	}
	u, err := measure(ctx, "rc"+tag, filepath.Join(dir, fmt.Sprintf("ripcord-%s.log", tag)),
		[][]string{{filepath.Join(bin.dir, "ripcord"), "run", "-no-vip", "-c", cfg}}, &bin.unit, warmup, window,
		func(context.Context) error { return nil },
		func(context.Context) (err error) { before, err = scrapeMetrics(metrics); return err },
		func(context.Context) (err error) { after, err = scrapeMetrics(metrics); return err },
		every, sampler)
	u.samples = samples
	if err != nil {
		return u, err
	}
	u.checks = int(after.count - before.count)
	u.delayP50, u.delayP99, u.delayOver = after.delays(before)
	return u, nil
}

// replicaWindow is the measuring window of the idle replica.
const replicaWindow = 10 * time.Second

// measureReplica runs an idle replica: one check of each built-in checker at
// 1 s intervals against closed ports on 127.0.0.1.
func measureReplica(ctx context.Context, dir string, bin binSet, warmup time.Duration) (usage, error) {
	port, err := freePort()
	if err != nil {
		return usage{}, err
	}
	tag := "replica" + bin.name
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("x\n"), 0o600); err != nil {
		return usage{}, err
	}
	cfg := filepath.Join(dir, tag+".yaml")
	yaml := fmt.Sprintf(`state_dir: %[1]s/state-%[2]s
control: {socket: %[1]s/ripcord-%[2]s.sock, metrics_listen: "127.0.0.1:%[3]d"}
log: {level: warn}
services:
  - name: all
    vip: 10.200.255.1
    checks:
      - {name: h, checker: http, target: "http://127.0.0.1:1/", interval: 1s, timeout: 500ms}
      - {name: l, checker: ldap, target: "ldap://127.0.0.1:1", interval: 1s, timeout: 500ms, settings: {bind_dn: cn=x, password_file: %[4]s}}
      - {name: r, checker: radius, target: "127.0.0.1:1", interval: 1s, timeout: 500ms, settings: {secret_file: %[4]s, user: u, password_file: %[4]s}}
    assist:
      metric: 2
      peers:
        - {name: p, checker: peer, target: "http://127.0.0.1:1", interval: 1s, timeout: 500ms, settings: {service: all}}
`, dir, tag, port, secret)
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		return usage{}, err
	}
	metrics := fmt.Sprintf("http://127.0.0.1:%d/metrics", port)
	var before, after scrape
	u, err := measure(ctx, "rc"+tag, filepath.Join(dir, tag+".log"),
		[][]string{{filepath.Join(bin.dir, "ripcord"), "run", "-no-vip", "-c", cfg}}, &bin.unit, warmup, replicaWindow,
		func(context.Context) error { return nil },
		func(context.Context) (err error) { before, err = scrapeMetrics(metrics); return err },
		func(context.Context) (err error) { after, err = scrapeMetrics(metrics); return err }, 0, nil)
	u.checks = int(after.count - before.count)
	return u, err
}

// measureExaBGP runs rate ExaBGP healthcheck processes, each checking every
// second with curl, and counts the checks in nginx's access log.
func measureExaBGP(ctx context.Context, dir, target string, rate int, warmup, window time.Duration) (usage, error) {
	var cmds [][]string
	for i := range rate {
		cmds = append(cmds, []string{"/usr/bin/python3", "-m", "exabgp", "healthcheck", "--no-syslog",
			"--interval", "1", "--timeout", "1", "--no-ip-setup", "--ip", fmt.Sprintf("10.201.%d.%d/32", i/250, i%250+1),
			"--cmd", fmt.Sprintf("curl -sf %s?e=%d", target, i)})
	}
	access := filepath.Join(dir, "nginx", "access.log")
	var before, after int
	// Hundreds of Python processes take a while to start on two cores: the
	// window opens once two 5 s periods in a row see about the same number
	// of checks, at least half the rate (each process sleeps its interval
	// after its check, so it checks a little less than once a second), or
	// after 90 s: then the machine cannot keep up, and the checks completed
	// in the window say how far it got.
	settle := func(ctx context.Context) error {
		prev := 0
		n0, err := countLines(access, "?e=")
		for deadline := time.Now().Add(90 * time.Second); err == nil && time.Now().Before(deadline); {
			if err := sleep(ctx, 5*time.Second); err != nil {
				return err
			}
			n1, err := countLines(access, "?e=")
			if err != nil {
				return err
			}
			if d := n1 - n0; d >= 5*rate/2 && math.Abs(float64(d-prev)) <= 0.15*float64(d) {
				return nil
			} else {
				prev, n0 = d, n1
			}
		}
		if err == nil {
			fmt.Fprintf(os.Stderr, "ExaBGP healthcheck did not settle at %d checks/s in 90 s; measuring anyway\n", rate)
		}
		return err
	}
	u, err := measure(ctx, fmt.Sprintf("ex%d", rate), filepath.Join(dir, fmt.Sprintf("exabgp-%d.log", rate)), cmds, nil, warmup, window, settle,
		func(context.Context) (err error) { before, err = countLines(access, "?e="); return err },
		func(context.Context) (err error) { after, err = countLines(access, "?e="); return err }, 0, nil)
	u.checks = after - before
	return u, err
}

// measure starts cmds in a fresh cpuacct cgroup, waits warmup and then for
// settle, calls start, waits window (calling sampler every so often, if
// set), calls end, and stops them.
func measure(ctx context.Context, name, logPath string, cmds [][]string, svc *unit, warmup, window time.Duration,
	settle, start, end func(context.Context) error, every time.Duration, sampler func(cg string, at time.Duration)) (usage, error) {
	cg := fmt.Sprintf("/sys/fs/cgroup/cpuacct/ripcord-bench-%d-%s", os.Getpid(), name) // another run may be going on
	if err := os.Mkdir(cg, 0o755); err != nil {
		return usage{}, fmt.Errorf("cgroup: %w", err)
	}
	defer os.Remove(cg)
	logf, err := os.Create(logPath)
	if err != nil {
		return usage{}, err
	}
	defer logf.Close()
	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			p.Process.Signal(syscall.SIGTERM)
		}
		for _, p := range procs {
			done := make(chan struct{})
			go func() { p.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				syscall.Kill(-p.Process.Pid, syscall.SIGKILL)
				<-done
			}
		}
		// Children that outlived their parent (curl) are in the cgroup too.
		for range 50 {
			if pids := cgroupPids(cg); len(pids) == 0 {
				break
			} else {
				for _, pid := range pids {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	for _, argv := range cmds {
		// The shell joins the cgroup, then becomes the command: everything it
		// starts is counted from its first instruction.
		c := exec.Command("/bin/sh", append([]string{"-c", `echo $$ > "$0"/cgroup.procs && exec "$@"`, cg}, argv...)...)
		c.Stdout, c.Stderr = logf, logf
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		start := c.Start
		if svc != nil {
			c.Env = append(os.Environ(), svc.env...)
			start = func() error { return svc.start(c) }
		}
		if err := start(); err != nil {
			return usage{}, err
		}
		procs = append(procs, c)
	}
	if err := sleep(ctx, warmup); err != nil {
		return usage{}, err
	}
	if err := settle(ctx); err != nil {
		return usage{}, err
	}
	cpu0, err := readInt(cg + "/cpuacct.usage")
	if err != nil {
		return usage{}, err
	}
	onCPU0 := onCPUByPid(cg)
	if err := start(ctx); err != nil {
		return usage{}, err
	}
	if sampler == nil {
		if err := sleep(ctx, window); err != nil {
			return usage{}, err
		}
	} else {
		t0 := time.Now()
		for at := time.Duration(0); at <= window; at += every {
			if err := sleep(ctx, time.Until(t0.Add(at))); err != nil {
				return usage{}, err
			}
			sampler(cg, at)
		}
		if err := sleep(ctx, time.Until(t0.Add(window))); err != nil {
			return usage{}, err
		}
	}
	cpu1, err := readInt(cg + "/cpuacct.usage")
	if err != nil {
		return usage{}, err
	}
	u := usage{cpu: time.Duration(cpu1 - cpu0)}
	onCPU1 := onCPUByPid(cg)
	splitCPU := map[string]time.Duration{}
	for pid, t1 := range onCPU1 {
		if t0, ok := onCPU0[pid]; ok {
			_, _, comm := memOf(pid)
			splitCPU[comm] += t1 - t0
		}
	}
	if err := end(ctx); err != nil {
		return u, err
	}
	byName := map[string][]int64{}
	for _, pid := range cgroupPids(cg) {
		rss, pss, comm := memOf(pid)
		if rss == 0 {
			continue // exited meanwhile, or a kernel thread
		}
		u.procs++
		u.rss += rss
		u.pss += pss
		u.maxRSS = max(u.maxRSS, rss)
		byName[comm] = append(byName[comm], rss)
	}
	var parts []string
	for _, n := range slices.Sorted(func(yield func(string) bool) {
		for k := range byName {
			if !yield(k) {
				return
			}
		}
	}) {
		r := byName[n]
		slices.Sort(r)
		parts = append(parts, fmt.Sprintf("%d× %s %.1f–%.1f MB", len(r), n, mb(r[0]), mb(r[len(r)-1])))
	}
	u.perProc = strings.Join(parts, ", ")
	u.split = splitCPU
	return u, nil
}

// splitText says how the CPU per check divides between the processes.
func (u usage) splitText() string {
	if u.checks == 0 || len(u.split) == 0 {
		return ""
	}
	var parts []string
	for _, n := range slices.Sorted(maps.Keys(u.split)) {
		parts = append(parts, fmt.Sprintf("%s %.3f ms", n, u.split[n].Seconds()*1e3/float64(u.checks)))
	}
	return "CPU per check by process: " + strings.Join(parts, ", ") + "."
}

// onCPUByPid is the time each process of cgroup cg has spent on a CPU, the
// sum over its threads (schedstat, in nanoseconds).
func onCPUByPid(cg string) map[int]time.Duration {
	out := map[int]time.Duration{}
	for _, pid := range cgroupPids(cg) {
		tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		for _, t := range tasks {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
			if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
				ns, _ := strconv.ParseInt(f[0], 10, 64)
				out[pid] += time.Duration(ns)
			}
		}
	}
	return out
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func cgroupPids(cg string) []int {
	b, _ := os.ReadFile(cg + "/cgroup.procs")
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// memOf returns a process's RSS and PSS in bytes and a short name: the
// command, or for ripcord's checker plugins the command and the checker.
func memOf(pid int) (rss, pss int64, name string) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, 0, ""
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && (f[0] == "Rss:" || f[0] == "Pss:") {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			if f[0] == "Rss:" {
				rss = v * 1024
			} else {
				pss = v * 1024
			}
		}
	}
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	name = filepath.Base(args[0])
	switch {
	case args[0] == "":
		name = "(exiting)"
	case name == "python3" && slices.Contains(args, "healthcheck"):
		name = "healthcheck"
	case name == "ripcord" && len(args) > 1:
		name = strings.Join(args[:min(len(args), 3)], " ")[len(args[0])-len(name):] // ripcord run, ripcord checker NAME
	case name == "ripcord-checker" && len(args) > 1:
		name += " " + args[1]
	}
	return rss, pss, name
}

func readInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

func countLines(path, substr string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.Contains(sc.Text(), substr) {
			n++
		}
	}
	return n, sc.Err()
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// scrape is what the bench reads from ripcord's /metrics.
type scrape struct {
	count      float64             // checks completed
	goroutines float64             // the daemon's
	buckets    map[float64]float64 // schedule delay histogram: le -> cumulative count
}

func scrapeMetrics(url string) (scrape, error) {
	s := scrape{buckets: map[float64]float64{}}
	resp, err := http.Get(url)
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return s, err
	}
	for _, l := range strings.Split(string(body), "\n") {
		name, val, ok := strings.Cut(l, " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			continue
		}
		switch {
		case strings.HasPrefix(name, "ripcord_check_duration_seconds_count{"):
			s.count += v
		case name == "go_goroutines":
			s.goroutines = v
		case strings.HasPrefix(name, "ripcord_check_schedule_delay_seconds_bucket{"):
			_, le, _ := strings.Cut(name, `le="`)
			le = strings.TrimSuffix(le, `"}`)
			bound, err := strconv.ParseFloat(le, 64)
			if le == "+Inf" {
				bound, err = math.Inf(1), nil
			}
			if err == nil {
				s.buckets[bound] += v
			}
		}
	}
	return s, nil
}

// delayText shows a delay quantile; a negative one is beyond the
// histogram's largest bound.
func delayText(d time.Duration) string {
	if d < 0 {
		return "over " + (-d).String()
	}
	return d.Round(10 * time.Microsecond).String()
}

// delays are the p50 and p99 of the schedule delay between two scrapes (the
// upper bound of the bucket each falls in, or minus the largest bound when
// beyond it) and how many were over 20 ms.
func (s scrape) delays(before scrape) (p50, p99 time.Duration, over20 int) {
	bounds := slices.Sorted(func(yield func(float64) bool) {
		for k := range s.buckets {
			if !yield(k) {
				return
			}
		}
	})
	if len(bounds) == 0 {
		return 0, 0, -1
	}
	total := s.buckets[bounds[len(bounds)-1]] - before.buckets[bounds[len(bounds)-1]]
	q := func(p float64) time.Duration {
		for _, b := range bounds {
			if s.buckets[b]-before.buckets[b] >= p*total {
				if math.IsInf(b, 1) && len(bounds) > 1 {
					return -time.Duration(bounds[len(bounds)-2] * float64(time.Second))
				}
				return time.Duration(b * float64(time.Second))
			}
		}
		return -1
	}
	under20 := 0.0
	for _, b := range bounds {
		if b <= 0.020 {
			under20 = s.buckets[b] - before.buckets[b]
		}
	}
	return q(0.5), q(0.99), int(total - under20)
}

// writeSection replaces the "## Resources" section of a markdown file (or
// appends it) with the table.
func writeSection(path string, rows []string, warmup, window time.Duration) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	model := "unknown CPU"
	if ci, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(ci), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	load, _ := os.ReadFile("/proc/loadavg")
	var sec strings.Builder
	fmt.Fprintf(&sec, `## Resources

What health checking costs the server it protects: ripcord (daemon plus its checker processes) and ExaBGP's
healthcheck (one Python process per check, each running `+"`curl -sf`"+` every second) checking the same nginx on
127.0.0.1, side by side in one run; then ripcord alone at a high rate. N checks per second are N checks with a 1 s
interval. Each side runs in a fresh cpuacct cgroup: CPU is the cgroup's usage over a %s window after a %s warm-up
(so it includes curl and every process either side starts), memory the sum of RSS (and PSS, which counts pages
shared between processes once) over the side's processes at the end of the window. Checks completed: ripcord's
`+"`ripcord_check_duration_seconds_count`"+`, ExaBGP's requests in nginx's access log. ripcord runs as its systemd
unit runs it: with the unit's `+"`Environment=`"+` and `+"`TimerSlackNSec=`"+` (each build's own unit, or this tree's).

`+"```sh\n"+strings.Join(append([]string{"go run ./bench/resources"}, os.Args[1:]...), " ")+"\n```"+`

Machine: `+"`nproc`"+` = %d, CPU `+"`%s`"+`, a VM shared with other jobs (load average at the end: %s), %s, %s/%s.

| side | rate | CPU per check | CPU (of one core) | checks | largest process | RSS total | processes |
|---|---|---|---|---|---|---|---|
`, window, warmup, runtime.NumCPU(), model, strings.Join(strings.Fields(string(load))[:3], " "), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	for _, r := range rows {
		sec.WriteString(r + "\n")
	}
	text := string(b)
	i := strings.Index(text, "\n## Resources\n")
	if i < 0 {
		text = strings.TrimRight(text, "\n") + "\n\n" + sec.String()
	} else {
		rest := text[i+1:]
		j := strings.Index(rest[3:], "\n## ")
		tail := ""
		if j >= 0 {
			tail = rest[3+j:]
		}
		text = text[:i+1] + sec.String() + tail
	}
	return os.WriteFile(path, []byte(text), 0o644)
}
