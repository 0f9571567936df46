package plugins

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/ripcord/ripcord/internal/checkpipe"
	"github.com/ripcord/ripcord/plugins/checkapi"
)

// launchPipe starts a built-in checker, which speaks checkpipe on the socket
// it inherits as file descriptor 3.
func launchPipe(cmd *exec.Cmd, log *slog.Logger) (*instance, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "checkpipe"), os.NewFile(uintptr(fds[1]), "checkpipe")
	defer theirs.Close() // the child has its copy
	conn, err := net.FileConn(ours)
	ours.Close()
	if err != nil {
		return nil, err
	}
	// The daemon's environment follows ours, so it may override it, as with
	// go-plugin.
	cmd.Env = append(append(cmd.Env, os.Environ()...), checkpipe.EnvProtocol+"="+strconv.Itoa(checkpipe.Version))
	cmd.ExtraFiles = []*os.File{theirs}
	cmd.Stdout = &lineLogger{l: log.With("stream", "stdout")}
	cmd.Stderr = &lineLogger{l: log.With("stream", "stderr"), records: log}
	// A grandchild that keeps the output pipes open must not hold up Wait.
	cmd.WaitDelay = time.Second
	p := &pipeProcess{exit: make(chan struct{})}
	if err := onOwnThread(cmd, cmd.Start, p.exit); err != nil {
		conn.Close()
		return nil, err
	}
	go func() {
		_ = cmd.Wait()
		close(p.exit)
	}()
	inst := &instance{cmd: cmd, proc: p}
	client, err := checkpipe.NewClient(conn, startTimeout)
	if err != nil {
		conn.Close()
		inst.stop(false)
		return nil, err
	}
	p.client = client
	inst.rpc = pipeConn{client}
	return inst, nil
}

// pipeProcess is a built-in checker's process.
type pipeProcess struct {
	client *checkpipe.Client // nil until the checker said hello
	exit   chan struct{}     // closed once the process is reaped
}

func (p *pipeProcess) exited() bool {
	select {
	case <-p.exit:
		return true
	default:
		return false
	}
}

// quit closes the connection, on which the checker exits.
func (p *pipeProcess) quit() {
	if p.client != nil {
		p.client.Close()
	}
	<-p.exit
}

func (p *pipeProcess) cleanup() {}

// pipeConn is the host's view of a built-in checker.
type pipeConn struct{ c *checkpipe.Client }

// fromPipe turns the checker's own error into a checkerFault.
func fromPipe(err error) error {
	var ce *checkpipe.CheckerError
	if errors.As(err, &ce) {
		return &checkerFault{ce.Msg}
	}
	return err
}

func (p pipeConn) describe(ctx context.Context) (checkapi.Description, error) {
	d, err := p.c.Describe(ctx)
	if err != nil {
		return checkapi.Description{}, fromPipe(err)
	}
	if d.Name == "" {
		return checkapi.Description{}, invalid("Describe returned no name")
	}
	return d, nil
}

func (p pipeConn) configure(ctx context.Context, req *checkapi.Request) (string, []checkapi.FieldError, error) {
	deadline, _ := ctx.Deadline()
	targetErr, errs, err := p.c.Configure(ctx, deadline, req)
	return targetErr, errs, fromPipe(err)
}

func (p pipeConn) check(ctx context.Context, req *checkapi.Request, deadline time.Time) (*checkapi.Result, error) {
	res, err := p.c.Check(ctx, deadline, req)
	var ce *checkpipe.CheckerError
	switch {
	case errors.As(err, &ce):
		return checkerError(ce.Msg), nil
	case err != nil:
		return nil, err
	}
	return judge(res)
}

// logRecord logs line, a JSON record of the checker's slog handler, under
// its level, message and attributes; it reports false if line is not one.
func logRecord(l *slog.Logger, line []byte) bool {
	var rec map[string]any
	if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &rec) != nil {
		return false
	}
	msg, ok := rec[slog.MessageKey].(string)
	if !ok {
		return false
	}
	var level slog.Level
	if s, ok := rec[slog.LevelKey].(string); !ok || level.UnmarshalText([]byte(s)) != nil {
		level = slog.LevelInfo
	}
	var attrs []any
	for _, k := range slices.Sorted(maps.Keys(rec)) {
		switch k {
		case slog.TimeKey, slog.LevelKey, slog.MessageKey:
		default:
			attrs = append(attrs, slog.Any(k, rec[k]))
		}
	}
	l.Log(context.Background(), level, msg, attrs...)
	return true
}
