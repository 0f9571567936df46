package plugins

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ripcord/ripcord/lab/services"
	"github.com/ripcord/ripcord/plugins/checkapi"
)

// procState returns the state letter of process pid (R, S, T, Z...), or ""
// if there is no such process.
func procState(pid int) string {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if pid <= 0 || err != nil {
		return ""
	}
	_, rest, _ := strings.Cut(string(stat), ") ")
	return rest[:1]
}

// alive reports whether process pid exists and is not a zombie (an orphan
// waits for PID 1 to reap it, which in a container may be never).
func alive(pid int) bool {
	st := procState(pid)
	return st != "" && st != "Z"
}

// freeze stops process pid and waits until all its threads are stopped:
// kill returns before the signal has taken effect.
func freeze(t *testing.T, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	if err := services.WaitStopped(2*time.Second, pid); err != nil {
		t.Fatal(err)
	}
}

// wantCheckerError fails t unless res is a checker_error whose message
// contains every one of parts.
func wantCheckerError(t *testing.T, res *checkapi.Result, parts ...string) {
	t.Helper()
	if res.Status != checkapi.StatusFailed || res.Reason != checkapi.ReasonCheckerError {
		t.Fatalf("got %s %s %q, want failed checker_error", res.Status, res.Reason, res.Message)
	}
	for _, p := range parts {
		if !strings.Contains(res.Message, p) {
			t.Errorf("message %q does not contain %q", res.Message, p)
		}
	}
}

func TestCheckOK(t *testing.T) { forTransports(t, testCheckOK) }

func testCheckOK(t *testing.T, tr transport) {
	h, _ := newTestHost(t, tr, Options{})
	res := check(h, "test-ok", "ok", 10*time.Second)
	pid := pidOf(t, res)
	want := &checkapi.Result{
		Status: checkapi.StatusOK, Reason: "ok", Message: "fine",
		Phases:       []checkapi.Phase{{Name: "work", Duration: 1500 * time.Microsecond}},
		Observations: map[string]float64{"pid": float64(pid)},
	}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	if pid == os.Getpid() || !alive(pid) {
		t.Errorf("plugin pid %d: not a live child process", pid)
	}
	// One process per checker, shared by all checks.
	if again := pidOf(t, check(h, "test-ok", "ok", 10*time.Second)); again != pid {
		t.Errorf("second check ran in pid %d, first in %d", again, pid)
	}
}

// A password in the target never comes back in a message, whether the
// checker quotes the target in a result or in an error.
func TestCheckRedactsTargetPassword(t *testing.T) { forTransports(t, testCheckRedactsTargetPassword) }

func testCheckRedactsTargetPassword(t *testing.T, tr transport) {
	h, _ := newTestHost(t, tr, Options{})
	for _, target := range []string{"http://admin:hunter2@portal/login", "ldap://cn=admin:hunter2@ldap1"} {
		res := check(h, "test-redact", target, 10*time.Second)
		if res.Status != checkapi.StatusFailed || strings.Contains(res.Message, "hunter2") ||
			!strings.Contains(res.Message, ":xxxxx@") {
			t.Errorf("%s: got %s %s %q, want failed with the password redacted", target, res.Status, res.Reason, res.Message)
		}
	}
}

// The plugin's ctx carries exactly the check's deadline, not the host's grace.
func TestCheckDeadline(t *testing.T) { forTransports(t, testCheckDeadline) }

func testCheckDeadline(t *testing.T, tr transport) {
	h, _ := newTestHost(t, tr, Options{})
	check(h, "test-deadline", "ok", 10*time.Second) // start it
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	want, _ := ctx.Deadline()
	res := h.Check(ctx, "test-deadline", &checkapi.Request{Target: "deadline"})
	if res.Message != strconv.FormatInt(want.UnixNano(), 10) {
		t.Errorf("plugin saw deadline %s, want %d", res.Message, want.UnixNano())
	}
	if res := h.Check(context.Background(), "test-deadline", &checkapi.Request{Target: "deadline"}); res.Message != "none" {
		t.Errorf("without a deadline the plugin saw %q, want none", res.Message)
	}
}

// A crash mid-check gives checker_error, a fast failure during the backoff,
// and a fresh process after it.
func TestCheckCrash(t *testing.T) { forTransports(t, testCheckCrash) }

func testCheckCrash(t *testing.T, tr transport) {
	for _, target := range []string{"exit", "gopanic"} {
		t.Run(target, func(t *testing.T) {
			h, rec := newTestHost(t, tr, Options{})
			h.minBackoff, h.maxBackoff = time.Second, 2*time.Second // a window wide enough to hit on a loaded machine
			name := "test-crash-" + target
			pid := pidOf(t, check(h, name, "ok", 10*time.Second))

			wantCheckerError(t, check(h, name, target, 5*time.Second),
				"plugins: checker "+name+": plugin exited or dropped its connection during the check",
				"plugin killed, restarting in 1s")
			eventually(t, 5*time.Second, "crashed plugin reaped", func() bool { return !alive(pid) })

			start := time.Now()
			wantCheckerError(t, check(h, name, "ok", 5*time.Second), "restarting in")
			if d := time.Since(start); d > 200*time.Millisecond {
				t.Errorf("check during backoff took %s, want a fast failure", d)
			}

			time.Sleep(time.Second)
			if again := pidOf(t, check(h, name, "ok", 10*time.Second)); again == pid {
				t.Errorf("restarted plugin has the crashed one's pid %d", pid)
			}
			if _, ok := rec.find("killing plugin"); !ok {
				t.Errorf("no log record about killing the plugin")
			}
			if target == "gopanic" {
				eventually(t, 2*time.Second, "panic logged", func() bool {
					_, ok := rec.find("panic: goroutine boom")
					return ok
				})
			}
		})
	}
}

// A panic inside Check is recovered by the SDK: checker_error, same process.
func TestCheckPanicRecovered(t *testing.T) { forTransports(t, testCheckPanicRecovered) }

func testCheckPanicRecovered(t *testing.T, tr transport) {
	h, rec := newTestHost(t, tr, Options{})
	pid := pidOf(t, check(h, "test-panic", "ok", 10*time.Second))
	wantCheckerError(t, check(h, "test-panic", "panic", 5*time.Second), "Check panicked: boom")
	if again := pidOf(t, check(h, "test-panic", "ok", 5*time.Second)); again != pid {
		t.Errorf("plugin restarted (pid %d -> %d) after a recovered panic", pid, again)
	}
	eventually(t, 2*time.Second, "panic stack logged", func() bool {
		r, ok := rec.find("Check panicked: boom")
		return ok && strings.Contains(r.attrs["stack"], "goroutine") && r.attrs["checker"] == "test-panic"
	})
}

// A checker that returns an error is broken, its plugin is not.
func TestCheckError(t *testing.T) { forTransports(t, testCheckError) }

func testCheckError(t *testing.T, tr transport) {
	h, _ := newTestHost(t, tr, Options{})
	pid := pidOf(t, check(h, "test-error", "ok", 10*time.Second))
	res := check(h, "test-error", "error", 5*time.Second)
	if diff := cmp.Diff(checkerError("broken on purpose"), res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	if again := pidOf(t, check(h, "test-error", "ok", 5*time.Second)); again != pid {
		t.Errorf("plugin restarted (pid %d -> %d) after a checker error", pid, again)
	}
}

// A hung plugin is killed at deadline + grace; other checkers carry on.
func TestCheckHang(t *testing.T) { forTransports(t, testCheckHang) }

func testCheckHang(t *testing.T, tr transport) {
	h, _ := newTestHost(t, tr, Options{Grace: 300 * time.Millisecond})
	pid := pidOf(t, check(h, "test-hang", "ok", 10*time.Second))
	other := pidOf(t, check(h, "test-other", "ok", 10*time.Second))

	done := make(chan *checkapi.Result)
	start := time.Now()
	go func() { done <- check(h, "test-hang", "hang", 400*time.Millisecond) }()
	var others int
	for hung := true; hung; {
		select {
		case res := <-done:
			hung = false
			took := time.Since(start)
			wantCheckerError(t, res, "plugins: checker test-hang: no answer to the check 300ms after its deadline",
				"plugin killed, restarting in 100ms")
			if took < 700*time.Millisecond || took > 3*time.Second {
				t.Errorf("hung check returned after %s, want about 400ms + 300ms", took)
			}
		default:
			t0 := time.Now()
			if got := pidOf(t, check(h, "test-other", "ok", 5*time.Second)); got != other {
				t.Fatalf("other checker's plugin changed: pid %d -> %d", other, got)
			}
			if d := time.Since(t0); d > 500*time.Millisecond {
				t.Errorf("other checker took %s while test-hang hung", d)
			}
			others++
			time.Sleep(20 * time.Millisecond)
		}
	}
	if others < 5 {
		t.Errorf("only %d checks of another checker ran while one hung", others)
	}
	eventually(t, 5*time.Second, "hung plugin killed", func() bool { return !alive(pid) })
	time.Sleep(100 * time.Millisecond)
	if again := pidOf(t, check(h, "test-hang", "ok", 10*time.Second)); again == pid {
		t.Errorf("hung plugin was not replaced")
	}
}

// An answer that breaks the contract is a broken plugin: killed, restarted.
func TestCheckGarbage(t *testing.T) { forTransports(t, testCheckGarbage) }

func testCheckGarbage(t *testing.T, tr transport) {
	for target, want := range map[string]string{
		"garbage":  "invalid answer to the check: status 8 is none of ok, degraded, failed",
		"noreason": "invalid answer to the check: failed result without a reason",
	} {
		t.Run(target, func(t *testing.T) {
			h, _ := newTestHost(t, tr, Options{})
			name := "test-" + target
			pid := pidOf(t, check(h, name, "ok", 10*time.Second))
			wantCheckerError(t, check(h, name, target, 5*time.Second), want, "plugin killed")
			eventually(t, 5*time.Second, "plugin killed", func() bool { return !alive(pid) })
			time.Sleep(100 * time.Millisecond)
			pidOf(t, check(h, name, "ok", 10*time.Second))
		})
	}
}

// The caller canceling a check is not the plugin's fault.
func TestCheckCanceled(t *testing.T) { forTransports(t, testCheckCanceled) }

func testCheckCanceled(t *testing.T, tr transport) {
	h, _ := newTestHost(t, tr, Options{})
	pid := pidOf(t, check(h, "test-cancel", "ok", 10*time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	time.AfterFunc(100*time.Millisecond, cancel)
	wantCheckerError(t, h.Check(ctx, "test-cancel", &checkapi.Request{Target: "hang"}), "the check was canceled")
	// The hung call goes on in the plugin, but the plugin still serves.
	if again := pidOf(t, check(h, "test-cancel", "ok", 5*time.Second)); again != pid {
		t.Errorf("plugin restarted (pid %d -> %d) after a canceled check", pid, again)
	}
}

func TestBackoff(t *testing.T) {
	h := NewHost(Options{})
	s := &slot{}
	var got []time.Duration
	for range 8 {
		got = append(got, h.backoffLocked(s, "x"))
	}
	want := []time.Duration{1, 2, 4, 8, 16, 30, 30, 30}
	for i := range want {
		want[i] *= time.Second
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("backoffs (-want +got):\n%s", diff)
	}
	s.failures = 1000
	if d := h.backoffLocked(s, "x"); d != 30*time.Second {
		t.Errorf("after 1000 failures: backoff %s", d)
	}
	if h.o.Grace != 500*time.Millisecond {
		t.Errorf("default grace %s", h.o.Grace)
	}
}

// The backoff grows while restarts keep failing, and a good answer resets it.
func TestBackoffResets(t *testing.T) { forTransports(t, testBackoffResets) }

func testBackoffResets(t *testing.T, tr transport) {
	h, _ := newTestHost(t, tr, Options{})
	pidOf(t, check(h, "test-reset", "ok", 10*time.Second))
	wantCheckerError(t, check(h, "test-reset", "exit", 5*time.Second), "restarting in 100ms")
	time.Sleep(120 * time.Millisecond)
	wantCheckerError(t, check(h, "test-reset", "exit", 10*time.Second), "restarting in 200ms")
	time.Sleep(220 * time.Millisecond)
	pidOf(t, check(h, "test-reset", "ok", 10*time.Second))
	wantCheckerError(t, check(h, "test-reset", "exit", 5*time.Second), "restarting in 100ms")
}

// Many checks at once while the plugin crashes and restarts: no races (run
// with -race), every result either ok or checker_error.
func TestConcurrentRestarts(t *testing.T) { forTransports(t, testConcurrentRestarts) }

func testConcurrentRestarts(t *testing.T, tr transport) {
	h, _ := newTestHost(t, tr, Options{})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 30 {
				target := "ok"
				if (g+i)%11 == 10 {
					target = "exit"
				}
				res := check(h, "test-storm", target, 5*time.Second)
				if res.Status != checkapi.StatusOK && res.Reason != checkapi.ReasonCheckerError {
					t.Errorf("check %s: %s %s %q", target, res.Status, res.Reason, res.Message)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	time.Sleep(450 * time.Millisecond)
	pidOf(t, check(h, "test-storm", "ok", 10*time.Second))
}

// Close kills every plugin process, and what they started, and leaves no
// goroutine behind.
func TestCloseLeaksNothing(t *testing.T) { forTransports(t, testCloseLeaksNothing) }

func testCloseLeaksNothing(t *testing.T, tr transport) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // where the plugins' sockets go
	before := runtime.NumGoroutine()
	h, _ := newTestHost(t, tr, Options{})
	var pids []int
	for _, name := range []string{"test-a", "test-b", "test-c"} {
		pids = append(pids, pidOf(t, check(h, name, "ok", 10*time.Second)))
	}
	wantCheckerError(t, check(h, "test-b", "exit", 5*time.Second))
	child := pidOf(t, check(h, "test-c", "spawn", 5*time.Second)) // the plugin's own child
	if !alive(child) {
		t.Fatalf("spawned child %d not running", child)
	}
	h.Close()
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("plugin pid %d still alive after Close", pid)
		}
	}
	// Not our child, so nothing waits for it: the SIGKILL lands a moment later.
	eventually(t, 2*time.Second, "the plugin's child killed", func() bool { return !alive(child) })
	// Sockets, the crashed plugin's included, are gone.
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("%d files left in TMPDIR after Close: %v", len(left), left)
	}
	wantCheckerError(t, check(h, "test-a", "ok", time.Second), "plugin host is closed")
	h.Close() // twice is fine
	eventually(t, 5*time.Second, "goroutines back to "+strconv.Itoa(before), func() bool {
		return runtime.NumGoroutine() <= before
	})
}

// Plugin log records reach the Logger with the checker's name.
func TestPluginLogs(t *testing.T) { forTransports(t, testPluginLogs) }

func testPluginLogs(t *testing.T, tr transport) {
	h, rec := newTestHost(t, tr, Options{})
	if res := check(h, "test-log", "log", 10*time.Second); res.Status != checkapi.StatusOK {
		t.Fatalf("check: %+v", res)
	}
	eventually(t, 2*time.Second, "plugin log lines at the host", func() bool {
		r1, ok1 := rec.find("hello from plugin")
		r2, ok2 := rec.find("plain stderr line")
		return ok1 && ok2 && r1.level == slog.LevelInfo && r1.attrs["checker"] == "test-log" && r1.attrs["k"] == "v" &&
			r2.attrs["checker"] == "test-log" && r2.attrs["stream"] == "stderr"
	})
	if r, ok := rec.find("plugin started"); !ok || r.attrs["checker"] != "test-log" {
		t.Errorf("no 'plugin started' record for test-log: %v", r)
	}
}

func TestDescribeConfigure(t *testing.T) { forTransports(t, testDescribeConfigure) }

func testDescribeConfigure(t *testing.T, tr transport) {
	h, _ := newTestHost(t, tr, Options{})
	ctx := context.Background()
	d, err := h.Describe(ctx, "test-desc")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(testChecker{name: "test-desc"}.Describe(), d); diff != "" {
		t.Errorf("Describe (-want +got):\n%s", diff)
	}
	targetErr, errs, err := h.Configure(ctx, "test-desc", &checkapi.Request{Target: "ok", Settings: checkapi.Settings(`{"port": -1}`)})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]checkapi.FieldError{{Field: "port", Message: "must be positive"}}, errs); diff != "" || targetErr != "" {
		t.Errorf("Configure: target error %q, field errors (-want +got):\n%s", targetErr, diff)
	}
	targetErr, errs, err = h.Configure(ctx, "test-desc", &checkapi.Request{Target: "bad:x", Settings: checkapi.Settings(`{"port": 1}`)})
	if err != nil || errs != nil || targetErr != "want a good target" {
		t.Errorf("Configure with a bad target: %q, %v, %v", targetErr, errs, err)
	}
	_, _, err = h.Configure(ctx, "test-desc", &checkapi.Request{Settings: checkapi.Settings(`{"broken": true}`)})
	if want := "plugins: checker test-desc: Configure: checker error: configure broke"; err == nil || err.Error() != want {
		t.Errorf("Configure broken: error %v, want %q", err, want)
	}
	if _, err := h.Describe(ctx, "nosuch"); err == nil || !strings.Contains(err.Error(), "not built in") {
		t.Errorf("Describe of an unknown checker: error %v", err)
	}
}

// installSelf links the test binary into dir as checker name's plugin.
func installSelf(t testing.TB, dir, name string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, FilePrefix+name)
	if err := os.Symlink(self, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestThirdPartyPinned(t *testing.T) {
	dir := t.TempDir()
	path := installSelf(t, dir, "pinned")
	sum, err := FileSHA256(path)
	if err != nil {
		t.Fatal(err)
	}
	wrong := strings.Repeat("ab", 32)

	h, _ := newTestHost(t, builtin, Options{Dir: dir, SHA256: map[string]string{"pinned": strings.ToUpper(sum)}})
	if got, builtin, err := h.Lookup("pinned"); err != nil || builtin || got != path {
		t.Fatalf("Lookup: %q %v %v", got, builtin, err)
	}
	pidOf(t, check(h, "pinned", "ok", 10*time.Second))

	h2, _ := newTestHost(t, builtin, Options{Dir: dir, SHA256: map[string]string{"pinned": wrong}})
	wantCheckerError(t, check(h2, "pinned", "ok", 10*time.Second),
		"plugins: checker pinned: sha256 mismatch for "+path+": expected "+wrong+", actual "+sum, "restarting in")
}

// A program that is not a plugin fails to start with a clear message.
func TestNotAPlugin(t *testing.T) {
	dir := t.TempDir()
	script := "#!/bin/sh\necho hello\n"
	if err := os.WriteFile(filepath.Join(dir, FilePrefix+"liar"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	h, _ := newTestHost(t, builtin, Options{Dir: dir})
	wantCheckerError(t, check(h, "liar", "ok", 10*time.Second),
		"plugins: checker liar: cannot start "+filepath.Join(dir, FilePrefix+"liar"), "hello", "restarting in 100ms")
}

// Run by hand, a plugin says what it is and exits 1.
func TestServeByHand(t *testing.T) {
	path := installSelf(t, t.TempDir(), "byhand")
	cmd := exec.Command(path)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("run by hand: %v, want exit status 1\n%s", err, out)
	}
	for _, want := range []string{
		"This program is a ripcord checker plugin",
		"checker byhand 1.2.3: test checker",
		"broken  bool  default false",
		"ripcord-checker-byhand",
		"checker: byhand",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// A plugin frozen at the OS level (SIGSTOP; think swapped out, or wedged in
// the kernel) answers nothing, not even go-plugin's graceful shutdown: it is
// still detected as hung, killed and replaced, and Close does not wait for it.
func TestFrozenPlugin(t *testing.T) { forTransports(t, testFrozenPlugin) }

func testFrozenPlugin(t *testing.T, tr transport) {
	h, _ := newTestHost(t, tr, Options{Grace: 200 * time.Millisecond})
	pid := pidOf(t, check(h, "test-frozen", "ok", 10*time.Second))
	freeze(t, pid)
	wantCheckerError(t, check(h, "test-frozen", "ok", 300*time.Millisecond), "no answer to the check 200ms after its deadline")
	eventually(t, 5*time.Second, "frozen plugin killed", func() bool { return !alive(pid) })
	time.Sleep(100 * time.Millisecond)
	pid = pidOf(t, check(h, "test-frozen", "ok", 10*time.Second))

	// Close with a frozen plugin.
	freeze(t, pid)
	closed := make(chan struct{})
	start := time.Now()
	go func() {
		h.Close()
		close(closed)
	}()
	select {
	case <-closed:
		t.Logf("Close with a frozen plugin took %s", time.Since(start))
	case <-time.After(10 * time.Second):
		syscall.Kill(pid, syscall.SIGKILL)
		t.Fatal("Close blocked on a frozen plugin")
	}
	if alive(pid) {
		t.Errorf("frozen plugin pid %d still alive after Close", pid)
	}
}

// A plugin that answers with another name than its file's is refused, and
// the error says which name it has.
func TestNameMismatchRefused(t *testing.T) {
	dir := t.TempDir()
	path := installSelf(t, dir, "impostor")
	h := NewHost(Options{Dir: dir})
	defer h.Close()
	_, _, err := h.Configure(context.Background(), "impostor", &checkapi.Request{Target: "ok"})
	want := path + `: the plugin answers as checker "dns", not "impostor": its file must be named ripcord-checker-dns, or its Describe().Name "impostor"`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want it to contain %q", err, want)
	}
	res := h.Check(context.Background(), "impostor", &checkapi.Request{Target: "ok"})
	if res.Reason != checkapi.ReasonCheckerError || !strings.Contains(res.Message, "restarting in") {
		t.Errorf("check: %s %s %q", res.Status, res.Reason, res.Message)
	}

	// validate and check ask once: no restart to announce.
	one := NewHost(Options{Dir: dir, OneShot: true})
	defer one.Close()
	for i := range 2 {
		if _, _, err := one.Configure(context.Background(), "impostor", &checkapi.Request{Target: "ok"}); err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "restarting") {
			t.Errorf("one-shot host, call %d: %v", i, err)
		}
	}
}

// Goroutines that lock their thread and return end that thread (as the
// relay's namespace switches do). A plugin forked from such a thread would
// get its Pdeathsig; it must not.
func TestThreadExitKeepsPlugins(t *testing.T) { forTransports(t, testThreadExitKeepsPlugins) }

func testThreadExitKeepsPlugins(t *testing.T, tr transport) {
	h, _ := newTestHost(t, tr, Options{})
	pid := pidOf(t, check(h, "test-ok", "ok", 10*time.Second))
	for range 50 {
		done := make(chan struct{})
		go func() {
			defer close(done)
			runtime.LockOSThread()
		}()
		<-done
	}
	time.Sleep(100 * time.Millisecond)
	if !alive(pid) {
		t.Fatalf("plugin pid %d died when threads of the host ended", pid)
	}
	if again := pidOf(t, check(h, "test-ok", "ok", 10*time.Second)); again != pid {
		t.Errorf("plugin restarted (pid %d -> %d)", pid, again)
	}
}

// A plugin runs with pluginTimerSlack, inherited from the thread that
// forked it; that thread gets its own slack back for the host's work.
func TestPluginTimerSlack(t *testing.T) { forTransports(t, testPluginTimerSlack) }

func testPluginTimerSlack(t *testing.T, tr transport) {
	own, _ := readSlack(t, "/proc/self/timerslack_ns")
	if own == pluginTimerSlack {
		t.Skipf("the test runs with a timer slack of %s already", own)
	}
	h, _ := newTestHost(t, tr, Options{})
	pid := pidOf(t, check(h, "test-ok", "ok", 10*time.Second))
	if got, _ := readSlack(t, fmt.Sprintf("/proc/%d/timerslack_ns", pid)); got != pluginTimerSlack {
		t.Errorf("plugin's timer slack %s, want %s", got, pluginTimerSlack)
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		// A thread may end meanwhile.
		if got, ok := readSlack(t, "/proc/self/task/"+task.Name()+"/timerslack_ns"); ok && got != own {
			t.Errorf("thread %s: timer slack %s, want the host's %s", task.Name(), got, own)
		}
	}
}

// readSlack reads a timerslack_ns file; false if it is gone.
func readSlack(t *testing.T, path string) (time.Duration, bool) {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false
	} else if err != nil {
		t.Fatal(err)
	}
	ns, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return time.Duration(ns), true
}
