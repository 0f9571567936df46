// Package plugins runs checker plugins for the daemon. It finds a checker
// (built in, or a third-party executable ripcord-checker-NAME in a directory,
// optionally pinned by sha256), starts one process per checker, shares it
// between all checks that use the checker, and kills and restarts it, with
// exponential backoff, when it crashes, hangs past a check's deadline or
// answers nonsense.
//
// Third-party plugins speak hashicorp/go-plugin over gRPC (the public SDK).
// Built-in checkers run out of process too, as `ripcord-checker NAME` (or the
// daemon re-executed as `ripcord checker NAME`), and speak checkpipe: small
// frames over a socket pair, without gRPC's weight.
package plugins

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	plugin "github.com/hashicorp/go-plugin"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ripcord/ripcord/internal/checkerpb"
	"github.com/ripcord/ripcord/internal/checkpipe"
	"github.com/ripcord/ripcord/plugins/checkapi"
)

// FilePrefix starts the file name of every third-party checker plugin:
// checker "tcpconnect" is the executable Dir/ripcord-checker-tcpconnect.
const FilePrefix = "ripcord-checker-"

const (
	defaultGrace = 500 * time.Millisecond
	minBackoff   = time.Second
	maxBackoff   = 30 * time.Second
	startTimeout = 10 * time.Second
	// stopTimeout bounds a graceful stop: go-plugin alone waits forever for
	// a plugin that cannot answer its shutdown request.
	stopTimeout = 2 * time.Second
	// callTimeout bounds Describe and Configure when ctx has no deadline.
	callTimeout = 10 * time.Second
)

// Options says where checkers come from. It must not change after NewHost.
type Options struct {
	// Builtin reports whether checker name is compiled into this binary.
	Builtin func(name string) bool
	// Self is the argv prefix that starts a built-in checker, e.g.
	// {"/usr/sbin/ripcord", "checker"}; the checker name is appended.
	Self []string
	// Dir holds third-party plugins, named FilePrefix + checker name.
	Dir string
	// SHA256 optionally pins third-party plugins: checker name -> hex sha256
	// of the executable. A pinned plugin whose file differs does not start.
	SHA256 map[string]string
	// Logger receives the host's events and the plugins' log lines, each with
	// a "checker" attribute. Nil discards them.
	Logger *slog.Logger
	// Grace is how long past a check's deadline a plugin may take to answer
	// before it counts as hung and is killed (default 500ms).
	Grace time.Duration
	// StateDir, when set, gives each checker the directory StateDir/NAME
	// for state that must survive a restart (checkapi.EnvStateDir).
	StateDir string
	// OneShot is for a command that asks its plugins once (validate,
	// check): errors say what failed, not when the next start would be.
	OneShot bool
}

// Host starts and supervises checker plugins. Its methods are safe for
// concurrent use.
type Host struct {
	o                      Options
	minBackoff, maxBackoff time.Duration

	mu     sync.Mutex
	closed bool
	slots  map[string]*slot // by checker name
	bg     sync.WaitGroup   // starts and kills in flight
}

// slot is the state of one checker's plugin; guarded by Host.mu.
type slot struct {
	inst     *instance     // the running plugin, nil if none
	starting chan struct{} // non-nil while a start is in flight; closed when it ends
	failures int           // consecutive failures, for the backoff
	retryAt  time.Time     // no start before this
	lastErr  string        // why the last start or instance failed
}

// instance is one plugin process.
type instance struct {
	cmd  *exec.Cmd // started, in a process group of its own
	rpc  conn
	proc process
	gone string // why it was stopped, empty while it is in use; guarded by Host.mu
}

// process watches and ends one plugin process: a third-party plugin through
// go-plugin, a built-in checker through its pipe.
type process interface {
	exited() bool
	// quit asks the process to exit and waits until it has; the caller
	// kills it if that takes too long.
	quit()
	// cleanup removes what the process leaves behind (its socket).
	cleanup()
}

func (i *instance) pid() int {
	if i.cmd.Process == nil {
		return 0
	}
	return i.cmd.Process.Pid
}

// stop ends the plugin. A graceful stop asks the plugin to exit and kills it
// only if it has not within stopTimeout; otherwise the plugin, being broken,
// is killed at once. Either way its whole process group goes, so nothing the
// plugin started outlives it, and so does its socket, which a killed plugin
// cannot remove.
func (i *instance) stop(graceful bool) {
	if !graceful {
		i.kill()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		i.proc.quit() // reaps the process, collects its last output
	}()
	select {
	case <-done:
	case <-time.After(stopTimeout):
		i.kill()
		<-done
	}
	i.kill()
	i.proc.cleanup()
}

func (i *instance) kill() {
	if pid := i.pid(); pid > 0 {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
}

// NewHost returns a Host; it starts nothing until a checker is used.
func NewHost(o Options) *Host {
	if o.Grace <= 0 {
		o.Grace = defaultGrace
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Host{o: o, minBackoff: minBackoff, maxBackoff: maxBackoff, slots: map[string]*slot{}}
}

// Check runs one check with the deadline of ctx (which the plugin sees as the
// deadline of its own ctx). It never fails: when the plugin cannot start,
// crashes, hangs past the deadline plus Grace or answers nonsense, the result
// is failed with reason checker_error and a message saying what happened, and
// the plugin is killed and restarted on next use after a backoff (1s doubling
// to 30s, reset by a good answer). During the backoff Check fails at once.
// Without a deadline in ctx the plugin gets none either, and only canceling
// ctx ends a check that hangs.
func (h *Host) Check(ctx context.Context, checker string, req *checkapi.Request) *checkapi.Result {
	var res *checkapi.Result
	err := h.call(ctx, checker, "the check", 0, func(ctx context.Context, deadline time.Time, r conn) (err error) {
		res, err = r.check(ctx, req, deadline)
		return err
	})
	if err != nil {
		res = checkerError(err.Error())
	}
	// The message goes to status, logs and metrics: checkers often quote
	// their target, which must not bring its password along.
	res.Message = checkapi.RedactTarget(res.Message, req.Target)
	return res
}

// Describe asks the checker for its name, version and settings schema.
func (h *Host) Describe(ctx context.Context, checker string) (checkapi.Description, error) {
	var d checkapi.Description
	err := h.call(ctx, checker, "Describe", callTimeout, func(ctx context.Context, _ time.Time, r conn) (err error) {
		d, err = r.describe(ctx)
		return err
	})
	return d, err
}

// Configure asks the checker to validate one check's settings and, if the
// checker can (checkapi.TargetValidator), its target: targetErr says why the
// target is invalid ("" if it is not, or cannot be told), fieldErrs has one
// FieldError per bad setting. An error means the checker or its plugin broke.
func (h *Host) Configure(ctx context.Context, checker string, req *checkapi.Request) (targetErr string, fieldErrs []checkapi.FieldError, err error) {
	err = h.call(ctx, checker, "Configure", callTimeout, func(ctx context.Context, _ time.Time, r conn) (err error) {
		targetErr, fieldErrs, err = r.configure(ctx, req)
		return err
	})
	return checkapi.RedactTarget(targetErr, req.Target), fieldErrs, err
}

// Close stops all plugins and waits for them: each is asked to exit, and
// killed, with everything it started, if it has not within 2s. Calls after
// Close fail.
func (h *Host) Close() {
	h.mu.Lock()
	h.closed = true
	var insts []*instance
	for _, s := range h.slots {
		if s.inst != nil {
			s.inst.gone = "the plugin host was closed"
			insts = append(insts, s.inst)
			s.inst = nil
		}
	}
	h.bg.Add(len(insts))
	h.mu.Unlock()
	for _, inst := range insts {
		go func() {
			defer h.bg.Done()
			inst.stop(true)
		}()
	}
	h.bg.Wait()
}

// Lookup resolves where checker name comes from without starting it: built
// in (path is then Self[0]), or the path of a third-party executable. It fails
// if the executable is missing or not executable, or if its sha256 differs
// from the pin.
func (h *Host) Lookup(name string) (path string, builtin bool, err error) {
	path, builtin, err = h.lookup(name)
	if err != nil {
		return path, builtin, fmt.Errorf("plugins: checker %q: %w", name, err)
	}
	return path, builtin, nil
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

func (h *Host) lookup(name string) (string, bool, error) {
	if !nameRE.MatchString(name) {
		return "", false, errors.New("invalid checker name: want lower-case letters, digits, '_' and '-'")
	}
	pin, pinned := h.o.SHA256[name]
	if h.o.Builtin != nil && h.o.Builtin(name) {
		switch {
		case pinned:
			return "", true, errors.New("built-in checker: a sha256 pin applies only to third-party plugins")
		case len(h.o.Self) == 0:
			return "", true, errors.New("built-in checker, but the host has no command to start built-ins")
		}
		return h.o.Self[0], true, nil
	}
	if h.o.Dir == "" {
		return "", false, errors.New("not built in, and no plugin directory is configured")
	}
	path := filepath.Join(h.o.Dir, FilePrefix+name)
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return path, false, fmt.Errorf("not built in, and there is no %s", path)
	case err != nil:
		return path, false, err
	case !fi.Mode().IsRegular():
		return path, false, fmt.Errorf("%s is not a regular file", path)
	case fi.Mode().Perm()&0o111 == 0:
		return path, false, fmt.Errorf("%s is not executable (mode %s)", path, fi.Mode().Perm())
	}
	if err := checkTrusted(path); err != nil {
		return path, false, err
	}
	if pinned {
		if want, err := hex.DecodeString(pin); err != nil || len(want) != sha256.Size {
			return path, false, fmt.Errorf("sha256 pin %q is not 64 hex digits", pin)
		}
		got, err := FileSHA256(path)
		if err != nil {
			return path, false, err
		}
		if !strings.EqualFold(got, pin) {
			return path, false, fmt.Errorf("sha256 mismatch for %s: expected %s, actual %s", path, strings.ToLower(pin), got)
		}
	}
	return path, false, nil
}

// FileSHA256 is the hex sha256 of a file, as plugins.sha256 pins it.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sum := sha256.New()
	if _, err := io.Copy(sum, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(sum.Sum(nil)), nil
}

// call runs f against checker's plugin, starting it if needed, and judges the
// outcome: an error that shows the plugin is broken kills it. f gets a ctx
// that ends Grace after the caller's deadline (or defaultTimeout from now if
// the caller has none and defaultTimeout is set), and the deadline itself.
func (h *Host) call(ctx context.Context, checker, what string, defaultTimeout time.Duration,
	f func(ctx context.Context, deadline time.Time, r conn) error) error {
	inst, err := h.get(ctx, checker)
	if err != nil {
		return err
	}
	callCtx, deadline, cancel := h.callContext(ctx, defaultTimeout)
	defer cancel()
	err = f(callCtx, deadline, inst.rpc)
	var fault *checkerFault
	var inv *invalidError
	var dropped *checkpipe.ConnError
	var why string
	st, isStatus := status.FromError(err)
	switch {
	case err == nil:
		h.answered(checker, inst)
		return nil
	case errors.Is(ctx.Err(), context.Canceled):
		return fmt.Errorf("plugins: checker %s: %s was canceled: %w", checker, what, context.Cause(ctx))
	case errors.As(err, &fault):
		h.answered(checker, inst)
		return fmt.Errorf("plugins: checker %s: %s: %w", checker, what, err)
	case isStatus && st.Code() == codes.Unknown && !errors.As(err, &inv):
		// The plugin's gRPC handler returned an error of its own: it answered.
		h.answered(checker, inst)
		return fmt.Errorf("plugins: checker %s: %s: checker error: %s", checker, what, st.Message())
	case errors.As(err, &dropped):
		why = fmt.Sprintf("plugin exited or dropped its connection during %s (%s)", what, dropped.Err)
	case errors.As(err, &inv):
		why = fmt.Sprintf("invalid answer to %s: %s", what, inv.msg)
	case errors.Is(callCtx.Err(), context.DeadlineExceeded), status.Code(err) == codes.DeadlineExceeded:
		// gRPC's own timer for the same deadline can fire a moment before
		// the context reports it.
		why = fmt.Sprintf("no answer to %s %s after its deadline", what, h.o.Grace)
	case status.Code(err) == codes.Unavailable:
		why = fmt.Sprintf("plugin exited or dropped its connection during %s (%s)", what, status.Convert(err).Message())
	default:
		why = fmt.Sprintf("%s failed: %v", what, err)
	}
	return errors.New(h.fail(checker, inst, why))
}

// callContext derives the context of one call: it keeps running Grace past
// ctx's deadline (so a plugin that honours the deadline can still answer) but
// ends at once when ctx is canceled.
func (h *Host) callContext(ctx context.Context, defaultTimeout time.Duration) (context.Context, time.Time, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok {
		if defaultTimeout == 0 {
			return ctx, time.Time{}, func() {}
		}
		deadline = time.Now().Add(defaultTimeout)
	}
	callCtx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline.Add(h.o.Grace))
	stop := context.AfterFunc(ctx, func() {
		if errors.Is(ctx.Err(), context.Canceled) {
			cancel()
		}
	})
	return callCtx, deadline, func() { stop(); cancel() }
}

var errClosed = errors.New("plugins: the plugin host is closed")

// get returns checker's running plugin, starting it if needed.
func (h *Host) get(ctx context.Context, checker string) (*instance, error) {
	for {
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			return nil, errClosed
		}
		s := h.slots[checker]
		if s == nil {
			s = &slot{}
			h.slots[checker] = s
		}
		if inst := s.inst; inst != nil {
			if !inst.proc.exited() {
				h.mu.Unlock()
				return inst, nil
			}
			h.failLocked(checker, s, inst, "plugin exited between calls")
		}
		if s.starting == nil {
			if wait := time.Until(s.retryAt); wait > 0 {
				msg := fmt.Sprintf("plugins: checker %s: %s", checker, s.lastErr)
				if !h.o.OneShot {
					msg += fmt.Sprintf("; restarting in %s", wait.Round(time.Millisecond))
				}
				h.mu.Unlock()
				return nil, errors.New(msg)
			}
			s.starting = make(chan struct{})
			h.bg.Add(1)
			go h.start(checker, s, s.starting)
		}
		started := s.starting
		h.mu.Unlock()
		select {
		case <-started:
		case <-ctx.Done():
			return nil, fmt.Errorf("plugins: checker %s: plugin still starting: %w", checker, context.Cause(ctx))
		}
	}
}

// start launches checker's plugin in the background; callers wait on done.
func (h *Host) start(checker string, s *slot, done chan struct{}) {
	defer h.bg.Done()
	inst, err := h.launch(checker)
	h.mu.Lock()
	s.starting = nil
	close(done)
	var orphan *instance
	switch {
	case err != nil:
		d := h.backoffLocked(s, err.Error())
		h.o.Logger.Error("plugin did not start", "checker", checker, "error", err, "retry_in", d)
	case h.closed:
		inst.gone = "the plugin host was closed"
		orphan = inst
	default:
		s.inst = inst
	}
	h.mu.Unlock()
	if orphan != nil {
		orphan.stop(true)
	}
}

// launch starts checker's plugin process and connects to it.
func (h *Host) launch(checker string) (*instance, error) {
	path, builtin, err := h.lookup(checker)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path)
	if builtin {
		cmd = exec.Command(path, append(slices.Clone(h.o.Self[1:]), checker)...)
	}
	// Own process group, so a hung plugin and its children can be killed as
	// one; Pdeathsig so a daemon that is killed outright takes its plugins
	// with it instead of leaving them orphaned.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	log := h.o.Logger.With("checker", checker)
	cmd.Env = []string{
		checkapi.EnvLogLevel + "=" + minLevel(log).String(),
		// One P per checker process: checks wait on the network, and a single
		// P answers each call sooner (docs/benchmarks.md). The daemon's own
		// environment may override it.
		"GOMAXPROCS=1",
	}
	if h.o.StateDir != "" {
		cmd.Env = append(cmd.Env, checkapi.EnvStateDir+"="+filepath.Join(h.o.StateDir, checker))
	}
	var inst *instance
	if builtin {
		inst, err = launchPipe(cmd, log)
	} else {
		inst, err = h.launchGoPlugin(checker, cmd, log)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot start %s: %w", strings.Join(cmd.Args, " "), err)
	}
	if err := inst.answersAs(checker); err != nil {
		inst.stop(true)
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	log.Info("plugin started", "path", path, "pid", inst.pid())
	return inst, nil
}

// answersAs refuses a plugin whose Describe().Name is not the name it was
// started as. Results, metrics and logs carry the configured name and the
// pin is keyed by it, so a plugin that calls itself something else is
// most likely another plugin installed under a wrong name.
func (i *instance) answersAs(checker string) error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	d, err := i.rpc.describe(ctx)
	switch {
	case err != nil:
		return fmt.Errorf("Describe: %w", err)
	case d.Name != checker:
		return fmt.Errorf("the plugin answers as checker %q, not %q: its file must be named %s%s, or its Describe().Name %q",
			d.Name, checker, FilePrefix, d.Name, checker)
	}
	return nil
}

// launchGoPlugin starts a third-party plugin through go-plugin (gRPC).
func (h *Host) launchGoPlugin(checker string, cmd *exec.Cmd, log *slog.Logger) (*instance, error) {
	sockDir, err := os.MkdirTemp("", "ripcord-"+checker+"-")
	if err != nil {
		return nil, err
	}
	cmd.Env = append(cmd.Env, plugin.EnvUnixSocketDir+"="+sockDir)
	cfg := &plugin.ClientConfig{
		HandshakeConfig:  checkerpb.Handshake,
		Plugins:          plugin.PluginSet{checkerpb.PluginName: goPlugin{}},
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		StartTimeout:     startTimeout,
		Logger:           newHCLog(log),
		SyncStdout:       &lineLogger{l: log.With("stream", "stdout")},
		SyncStderr:       &lineLogger{l: log.With("stream", "stderr")},
	}
	if pin, ok := h.o.SHA256[checker]; ok {
		sum, _ := hex.DecodeString(pin) // lookup checked it
		cfg.SecureConfig = &plugin.SecureConfig{Checksum: sum, Hash: sha256.New()}
	}
	gp := &goPluginProcess{client: plugin.NewClient(cfg), sockDir: sockDir, gone: make(chan struct{})}
	inst := &instance{cmd: cmd, proc: gp}
	err = onOwnThread(cmd, func() error { _, err := gp.client.Start(); return err }, gp.gone)
	if err == nil {
		inst.rpc, err = dispense(gp.client)
	}
	if err != nil {
		inst.stop(false)
		return nil, err
	}
	return inst, nil
}

// goPluginProcess is a plugin process that go-plugin started.
type goPluginProcess struct {
	client  *plugin.Client
	sockDir string        // private directory of the plugin's socket
	gone    chan struct{} // closed once it is stopped
	once    sync.Once
}

func (p *goPluginProcess) exited() bool { return p.client.Exited() }
func (p *goPluginProcess) quit()        { p.client.Kill() }

func (p *goPluginProcess) cleanup() {
	_ = os.RemoveAll(p.sockDir)
	p.once.Do(func() { close(p.gone) })
}

// onOwnThread calls start, which starts cmd, on an OS thread that no other
// goroutine uses until gone is closed. Pdeathsig fires when the thread that
// forked a child ends, not the process, and the runtime ends a thread whose
// goroutine locked it and returned (as code that leaves a thread in another
// network namespace must): a plugin forked from such a thread would be
// killed. The plugin inherits the thread's timer slack, set to
// pluginTimerSlack for the fork.
func onOwnThread(cmd *exec.Cmd, start func() error, gone <-chan struct{}) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		restore := setTimerSlack(pluginTimerSlack)
		err := start()
		if restore() {
			// Otherwise the runtime ends the thread with the goroutine,
			// slack and all.
			defer runtime.UnlockOSThread()
		}
		errc <- err
		if cmd.Process != nil {
			<-gone
		}
	}()
	return <-errc
}

// pluginTimerSlack is how late the kernel may wake a plugin's timers. A Go
// process's monitor thread sleeps 20 µs at a time while the process is busy;
// with the kernel's default slack of 50 µs each of those sleeps is a wake-up
// of its own, and on a virtual machine a wake-up costs more CPU than a
// check's work. With 1 ms they mostly fall together with others: half the
// context switches of a checker at 1,000 checks/s (docs/benchmarks.md).
// Nothing in a check needs its timers closer than a millisecond.
const pluginTimerSlack = time.Millisecond

// setTimerSlack sets the calling thread's timer slack, which processes it
// forks inherit (prctl(2)), and returns what puts the old one back and
// reports whether the thread has it again. The caller has locked the thread.
func setTimerSlack(d time.Duration) (restore func() bool) {
	old, err := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0)
	if err != nil || unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(d.Nanoseconds()), 0, 0, 0) != nil {
		return func() bool { return true } // unchanged
	}
	return func() bool { return unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(old), 0, 0, 0) == nil }
}

func dispense(client *plugin.Client) (remote, error) {
	proto, err := client.Client()
	if err != nil {
		return remote{}, err
	}
	raw, err := proto.Dispense(checkerpb.PluginName)
	if err != nil {
		return remote{}, err
	}
	return raw.(remote), nil
}

// minLevel is the lowest level l logs, passed on to plugins.
func minLevel(l *slog.Logger) slog.Level {
	for _, lv := range []slog.Level{slog.LevelDebug - 4, slog.LevelDebug, slog.LevelInfo, slog.LevelWarn} {
		if l.Enabled(context.Background(), lv) {
			return lv
		}
	}
	return slog.LevelError
}

// answered records that inst answered, which ends a run of failures.
func (h *Host) answered(checker string, inst *instance) {
	h.mu.Lock()
	if s := h.slots[checker]; inst.gone == "" && s.failures != 0 {
		s.failures = 0
	}
	h.mu.Unlock()
}

// fail handles a call that showed inst is broken: the first caller to see it
// kills it; calls caught in the same fall just say so. It returns the message.
func (h *Host) fail(checker string, inst *instance, why string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if inst.gone != "" {
		return fmt.Sprintf("plugins: checker %s: plugin stopped during this call (%s)", checker, inst.gone)
	}
	return h.failLocked(checker, h.slots[checker], inst, why)
}

// failLocked stops inst, the running instance of s, in the background.
func (h *Host) failLocked(checker string, s *slot, inst *instance, why string) string {
	inst.gone = why
	s.inst = nil
	d := h.backoffLocked(s, why)
	h.o.Logger.Warn("killing plugin", "checker", checker, "pid", inst.pid(), "why", why, "restart_in", d)
	h.bg.Add(1)
	go func() {
		defer h.bg.Done()
		inst.stop(false)
	}()
	if h.o.OneShot {
		return fmt.Sprintf("plugins: checker %s: %s; plugin killed", checker, why)
	}
	return fmt.Sprintf("plugins: checker %s: %s; plugin killed, restarting in %s", checker, why, d)
}

// backoffLocked counts a failure of s and returns the wait before the next start.
func (h *Host) backoffLocked(s *slot, why string) time.Duration {
	d := h.maxBackoff
	if s.failures < 16 {
		d = min(h.minBackoff<<s.failures, h.maxBackoff)
	}
	s.failures++
	s.retryAt = time.Now().Add(d)
	s.lastErr = why
	return d
}
