package plugins

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ripcord/ripcord/internal/checkpipe"
	"github.com/ripcord/ripcord/plugins/checkapi"
	"github.com/ripcord/ripcord/plugins/sdk"
)

// helperArg makes the test binary a built-in checker, as `ripcord checker`
// does for the real binary: `plugins.test ripcord-test-plugin NAME` serves
// testChecker over checkpipe. A link to the test binary named
// ripcord-checker-NAME serves it as a third-party plugin, over go-plugin.
const helperArg = "ripcord-test-plugin"

func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == helperArg {
		checkpipe.Serve(testChecker{name: os.Args[2]})
	}
	if name, ok := strings.CutPrefix(filepath.Base(os.Args[0]), FilePrefix); ok {
		if name == "impostor" {
			name = "dns" // a plugin whose file name is not its name
		}
		sdk.Serve(testChecker{name: name})
	}
	os.Exit(m.Run())
}

// testChecker behaves as its target says:
//
//	ok        ok, with the plugin's pid as observation "pid"
//	deadline  ok, message = the ctx deadline in Unix nanoseconds ("none" without)
//	exit      the process exits mid-check
//	gopanic   a goroutine panics: the process dies
//	panic     Check panics (the SDK recovers)
//	hang      ignores ctx and never returns
//	garbage   status out of range
//	noreason  failed without a reason
//	error     returns an error
//	spawn     starts `sleep 60`; ok, with its pid as observation "pid"
//	log       logs through slog and prints to stderr, then ok
//	http://…  failed, quoting the target (a URL, maybe with a password)
//	ldap://…  returns an error quoting the target
type testChecker struct{ name string }

func (c testChecker) Describe() checkapi.Description {
	return checkapi.Description{
		Name: c.name, Version: "1.2.3", Summary: "test checker",
		Settings: []checkapi.Field{
			{Name: "port", Type: "int", Help: "port to probe"},
			{Name: "broken", Type: "bool", Default: "false", Help: "make Configure fail"},
		},
	}
}

type testSettings struct {
	Port   int  `json:"port"`
	Broken bool `json:"broken"`
}

func (testChecker) Configure(_ context.Context, s checkapi.Settings) ([]checkapi.FieldError, error) {
	var ts testSettings
	if err := s.Decode(&ts); err != nil {
		return []checkapi.FieldError{{Field: "settings", Message: err.Error()}}, nil
	}
	if ts.Broken {
		return nil, errors.New("configure broke")
	}
	if ts.Port <= 0 {
		return []checkapi.FieldError{{Field: "port", Message: "must be positive"}}, nil
	}
	return nil, nil
}

// ValidateTarget refuses targets that start with "bad:".
func (testChecker) ValidateTarget(target string) error {
	if strings.HasPrefix(target, "bad:") {
		return errors.New("want a good target")
	}
	return nil
}

func (testChecker) Check(ctx context.Context, req *checkapi.Request) (*checkapi.Result, error) {
	switch req.Target {
	case "ok":
		return checkapi.OK("fine").Observe("pid", float64(os.Getpid())).AddPhase("work", 1500*time.Microsecond), nil
	case "deadline":
		if d, ok := ctx.Deadline(); ok {
			return checkapi.OK(strconv.FormatInt(d.UnixNano(), 10)), nil
		}
		return checkapi.OK("none"), nil
	case "exit":
		os.Exit(3)
	case "gopanic":
		go panic("goroutine boom")
		time.Sleep(time.Hour)
	case "panic":
		panic("boom")
	case "hang":
		time.Sleep(time.Hour)
	case "garbage":
		return &checkapi.Result{Status: checkapi.Status(7), Reason: checkapi.ReasonOK}, nil
	case "noreason":
		return &checkapi.Result{Status: checkapi.StatusFailed, Message: "no reason given"}, nil
	case "error":
		return nil, errors.New("broken on purpose")
	case "spawn":
		child := exec.Command("sleep", "60")
		if err := child.Start(); err != nil {
			return nil, err
		}
		go child.Wait()
		return checkapi.OK("spawned").Observe("pid", float64(child.Process.Pid)), nil
	case "log":
		slog.Info("hello from plugin", "k", "v")
		fmt.Fprintln(os.Stderr, "plain stderr line")
		return checkapi.OK("logged"), nil
	}
	switch {
	case strings.HasPrefix(req.Target, "http://"):
		return checkapi.Failed(checkapi.ReasonRefused, "no answer from %s", req.Target), nil
	case strings.HasPrefix(req.Target, "ldap://"):
		return nil, fmt.Errorf("cannot reach %s", req.Target)
	}
	return nil, fmt.Errorf("unknown test target %q", req.Target)
}

// transport is how the host talks to the test checker: as a built-in
// checker (checkpipe) or as a third-party plugin (go-plugin's gRPC).
type transport struct {
	name       string
	thirdParty bool
}

var (
	builtin    = transport{name: "builtin"}
	thirdParty = transport{name: "thirdparty", thirdParty: true}
)

// forTransports runs test once per transport: a plugin's crash, hang or
// nonsense is a failed check whichever way the host talks to it.
func forTransports(t *testing.T, test func(t *testing.T, tr transport)) {
	for _, tr := range []transport{builtin, thirdParty} {
		t.Run(tr.name, func(t *testing.T) { test(t, tr) })
	}
}

// testNames are the checkers the tests use; as third-party plugins each is
// a link to the test binary.
var testNames = []string{"test-ok", "test-redact", "test-deadline", "test-crash-exit", "test-crash-gopanic",
	"test-panic", "test-error", "test-hang", "test-other", "test-garbage", "test-noreason", "test-cancel",
	"test-reset", "test-storm", "test-a", "test-b", "test-c", "test-log", "test-desc", "test-frozen", "test-bench"}

// newTestHost returns a Host that serves the testChecker of this test
// binary over tr, with short backoffs, closed at the end of t.
func newTestHost(t testing.TB, tr transport, o Options) (*Host, *recorder) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	switch {
	case tr.thirdParty:
		o.Builtin = func(string) bool { return false }
		o.Dir = t.TempDir()
		for _, name := range testNames {
			installSelf(t, o.Dir, name)
		}
	case o.Builtin == nil:
		o.Builtin = func(name string) bool { return strings.HasPrefix(name, "test") }
	}
	o.Self = []string{self, helperArg}
	o.Logger = slog.New(rec)
	if o.Grace == 0 {
		o.Grace = 300 * time.Millisecond
	}
	h := NewHost(o)
	h.minBackoff, h.maxBackoff = 100*time.Millisecond, 400*time.Millisecond
	t.Cleanup(func() {
		h.Close()
		if t.Failed() {
			t.Logf("host log:\n%s", rec)
		}
	})
	return h, rec
}

// check runs one check with a timeout.
func check(h *Host, checker, target string, timeout time.Duration) *checkapi.Result {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return h.Check(ctx, checker, &checkapi.Request{Target: target})
}

// pidOf returns the pid an "ok" check reports.
func pidOf(t *testing.T, res *checkapi.Result) int {
	t.Helper()
	if res.Status != checkapi.StatusOK {
		t.Fatalf("check: got %s %s %q, want ok", res.Status, res.Reason, res.Message)
	}
	return int(res.Observations["pid"])
}

// eventually polls f until it returns true or d passes.
func eventually(t *testing.T, d time.Duration, what string, f func() bool) {
	t.Helper()
	for end := time.Now().Add(d); !f(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("after %s: %s", d, what)
		}
	}
}

// recorder is a slog.Handler that keeps records for assertions.
type recorder struct {
	mu    sync.Mutex
	recs  []record
	attrs []slog.Attr
	root  *recorder
}

type record struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }

func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	root := r.root
	if root == nil {
		root = r
	}
	out := record{level: rec.Level, msg: rec.Message, attrs: map[string]string{}}
	for _, a := range r.attrs {
		out.attrs[a.Key] = a.Value.String()
	}
	rec.Attrs(func(a slog.Attr) bool {
		out.attrs[a.Key] = a.Value.String()
		return true
	})
	root.mu.Lock()
	root.recs = append(root.recs, out)
	root.mu.Unlock()
	return nil
}

func (r *recorder) WithAttrs(as []slog.Attr) slog.Handler {
	root := r.root
	if root == nil {
		root = r
	}
	return &recorder{root: root, attrs: append(append([]slog.Attr(nil), r.attrs...), as...)}
}

func (r *recorder) WithGroup(string) slog.Handler { return r }

// find returns the first record with message msg.
func (r *recorder) find(msg string) (record, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range r.recs {
		if rec.msg == msg {
			return rec, true
		}
	}
	return record{}, false
}

func (r *recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, rec := range r.recs {
		fmt.Fprintf(&b, "  %s %s %v\n", rec.level, rec.msg, rec.attrs)
	}
	return b.String()
}
