package lab

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The ripcord binary the lab tests run on the replicas, built once on first
// use (the unit tests and fuzzing need none).
var (
	ripcordOnce sync.Once
	ripcordDir  string
	ripcordPath string
	ripcordErr  error
)

func ripcordBinary(t *testing.T) string {
	t.Helper()
	ripcordOnce.Do(func() {
		if ripcordDir, ripcordErr = os.MkdirTemp("", "ripcord-lab-bin-"); ripcordErr != nil {
			return
		}
		// Traversable by everyone: the daemon re-executes itself as checker.
		_ = os.Chmod(ripcordDir, 0o755)
		ripcordPath = filepath.Join(ripcordDir, "ripcord")
		out, err := exec.Command("go", "build", "-o", ripcordPath, "github.com/ripcord/ripcord/cmd/ripcord").CombinedOutput()
		if err != nil {
			ripcordErr = err
			t.Logf("go build: %s", out)
		}
	})
	if ripcordErr != nil {
		t.Fatalf("building ripcord: %v", ripcordErr)
	}
	return ripcordPath
}

// The e2e tests share the test binary's -timeout. When it runs out, go test
// kills the binary with a dump of every goroutine and no cleanup. So each
// test's context ends (labContext) early enough for the test to fail with
// its own message and tear its lab down, and a watchdog, a little before
// the -timeout, names the tests that still hang, closes their labs and
// exits.
var budget struct {
	mu       sync.Mutex
	end      time.Time         // contexts from labContext end by then; zero: no -timeout
	watchdog time.Time         // the watchdog fires then
	doing    map[string]string // running test -> what it is doing
	labs     map[*Lab]bool     // labs to close if the watchdog fires
}

// Every test that builds a lab calls t.Parallel: each lab lives in its own
// namespaces and mostly waits on timers, so two at a time (go test's
// default -parallel on two cores) halve the package's time.
func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.timeout"); f != nil {
		if timeout := f.Value.(flag.Getter).Get().(time.Duration); timeout > 0 {
			startWatchdog(time.Now(), timeout)
		}
	}
	code := m.Run()
	if ripcordDir != "" {
		os.RemoveAll(ripcordDir)
	}
	os.Exit(code)
}

// startWatchdog plans the budget of a binary started at start with the
// given -timeout: the watchdog fires a tenth of it (at most a minute)
// before, and contexts end as much again (at most 90 s) before the watchdog,
// leaving time for the tests' own failure and teardown.
func startWatchdog(start time.Time, timeout time.Duration) {
	budget.watchdog = start.Add(timeout - min(time.Minute, timeout/10))
	budget.end = budget.watchdog.Add(-min(90*time.Second, timeout/10))
	budget.doing, budget.labs = map[string]string{}, map[*Lab]bool{}
	go func() {
		time.Sleep(time.Until(budget.watchdog))
		fmt.Fprintf(os.Stderr, "\nFAIL: lab tests still running %s after the start, close to go test's -timeout %s:\n%s",
			time.Since(start).Round(time.Second), timeout, hangReport())
		closeLabs(min(time.Minute, timeout/10) / 2)
		os.Exit(1)
	}()
}

// labContext returns the context for one e2e test: it ends after d, or
// earlier if the binary's -timeout comes first (then the test fails saying
// so). Every long test in this package takes its context from here.
func labContext(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	deadline := time.Now().Add(d)
	budget.mu.Lock()
	end := budget.end
	if budget.doing != nil {
		budget.doing[t.Name()] = "started"
	}
	budget.mu.Unlock()
	if !end.IsZero() && end.Before(deadline) {
		t.Logf("%s of the %s wanted are left before go test's -timeout", time.Until(end).Round(time.Second), d)
		deadline = end
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	t.Cleanup(func() {
		cancel()
		budget.mu.Lock()
		delete(budget.doing, t.Name())
		budget.mu.Unlock()
	})
	return ctx
}

// doing records what test t is doing now, for the watchdog's report,
// until t ends.
func doing(t *testing.T, format string, args ...any) {
	budget.mu.Lock()
	defer budget.mu.Unlock()
	if budget.doing == nil {
		return
	}
	name := t.Name()
	if _, ok := budget.doing[name]; !ok {
		t.Cleanup(func() {
			budget.mu.Lock()
			delete(budget.doing, name)
			budget.mu.Unlock()
		})
	}
	budget.doing[name] = fmt.Sprintf(format, args...)
}

// trackLab has the watchdog close l if it fires before the test does.
func trackLab(t *testing.T, l *Lab) {
	budget.mu.Lock()
	defer budget.mu.Unlock()
	if budget.labs == nil {
		return
	}
	budget.labs[l] = true
	t.Cleanup(func() {
		budget.mu.Lock()
		delete(budget.labs, l)
		budget.mu.Unlock()
	})
}

func closeLabs(bound time.Duration) {
	budget.mu.Lock()
	var labs []*Lab
	for l := range budget.labs {
		labs = append(labs, l)
	}
	budget.mu.Unlock()
	done := make(chan struct{})
	go func() {
		for _, l := range labs {
			if err := l.Close(); err != nil {
				fmt.Fprintf(os.Stderr, "closing a lab: %v\n", err)
			}
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(bound):
		fmt.Fprintf(os.Stderr, "closing %d labs took more than %s: namespaces rc*-* may be left\n", len(labs), bound)
	}
}

// hangReport says what each running test was doing (as it recorded it) and
// where each test goroutine waits: the test function and the innermost call
// in this module, not a dump of every goroutine.
func hangReport() string {
	var b strings.Builder
	budget.mu.Lock()
	for _, name := range slices.Sorted(maps.Keys(budget.doing)) {
		fmt.Fprintf(&b, "  %s: %s\n", name, budget.doing[name])
	}
	budget.mu.Unlock()
	for _, w := range testGoroutines() {
		fmt.Fprintf(&b, "  goroutine of %s [%s] waits in %s\n", w.test, w.state, w.where)
	}
	return b.String()
}

type waiting struct{ test, state, where string }

var (
	goroutineHeader = regexp.MustCompile(`^goroutine \d+ \[(.*)\]:$`)
	callArgs        = regexp.MustCompile(`\([^()]*\)$`)
	pcOffset        = regexp.MustCompile(` \+0x[0-9a-f]+$`)
)

// testGoroutines finds the goroutines running a test of this package.
func testGoroutines() []waiting {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	const module = "github.com/ripcord/ripcord/"
	var out []waiting
	for _, g := range strings.Split(string(buf), "\n\n") {
		lines := strings.Split(g, "\n")
		h := goroutineHeader.FindStringSubmatch(lines[0])
		if h == nil {
			continue
		}
		var w waiting
		w.state = h[1]
		for i := 1; i+1 < len(lines); i += 2 {
			fn := callArgs.ReplaceAllString(lines[i], "")
			if !strings.HasPrefix(fn, module) {
				continue
			}
			if w.where == "" {
				w.where = strings.TrimPrefix(fn, module) + " at " + pcOffset.ReplaceAllString(strings.TrimSpace(lines[i+1]), "")
			}
			if strings.HasPrefix(fn, module+"lab.Test") {
				w.test = strings.TrimPrefix(fn, module+"lab.")
			}
		}
		if w.test != "" && w.test != "TestMain" {
			out = append(out, w)
		}
	}
	return out
}

// hangEnv makes TestWatchdogHang hang, in the child that TestWatchdog starts.
const hangEnv = "RIPCORD_LAB_TEST_HANG"

// TestWatchdog runs a test that hangs under a short -timeout and wants the
// watchdog's report naming it instead of go test's goroutine dump.
func TestWatchdog(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run", "^TestWatchdogHang$", "-test.timeout", "5s", "-test.v")
	cmd.Env = append(os.Environ(), hangEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the hanging test passed:\n%s", out)
	}
	for _, want := range []string{
		"lab tests still running",
		"TestWatchdogHang: waiting for a channel that never closes",
		"goroutine of TestWatchdogHang [chan receive",
		"waits in lab.hangForever at",
		"main_test.go:",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "panic: test timed out") {
		t.Errorf("go test's timeout dump instead of the watchdog's report:\n%s", out)
	}
}

func TestWatchdogHang(t *testing.T) {
	if os.Getenv(hangEnv) == "" {
		t.Skip("run by TestWatchdog")
	}
	labContext(t, time.Minute)
	doing(t, "waiting for a channel that never closes")
	hangForever()
}

func hangForever() { <-make(chan struct{}) }
