package checkpipe

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ripcord/ripcord/plugins/checkapi"
)

// EnvProtocol is set by the daemon when it starts a built-in checker: the
// protocol version it speaks on file descriptor 3.
const EnvProtocol = "RIPCORD_CHECKPIPE"

// connFD is the descriptor of the checker's end of the socket pair.
const connFD = 3

// Serve runs c for the daemon, which started this process with the socket on
// file descriptor 3, and exits when the daemon closes it. Log records go to
// stderr as JSON lines, which the daemon logs under the checker's name; so
// does anything else written to stdout or stderr. Run by hand, Serve says
// what the program is and exits with status 1.
func Serve(c checkapi.Checker) {
	if os.Getenv(EnvProtocol) != strconv.Itoa(Version) {
		fmt.Fprintf(os.Stderr, "This program serves ripcord's built-in checker %q to the ripcord daemon, which starts it.\n"+
			"Run by hand it does nothing.\n", c.Describe().Name)
		os.Exit(1)
	}
	level := slog.LevelInfo
	_ = level.UnmarshalText([]byte(os.Getenv(checkapi.EnvLogLevel))) // keep Info if unset or invalid
	slog.SetDefault(slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
	f := os.NewFile(connFD, "checkpipe")
	conn, err := net.FileConn(f)
	f.Close()
	if err == nil {
		err = ServeConn(conn, c)
	}
	if err != nil {
		slog.Error("checker connection to the daemon failed", "error", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// server answers one host's requests; each runs in its own goroutine.
type server struct {
	c      checkapi.Checker
	filled *checkapi.FilledSettings
	w      batchWriter

	mu      sync.Mutex // guards cancels
	cancels map[uint64]context.CancelFunc
}

// ServeConn says hello and answers requests from conn until the host closes
// it (nil) or sends what is not a request; Serve calls it, tests may too.
func ServeConn(conn io.ReadWriteCloser, c checkapi.Checker) error {
	defer conn.Close()
	s := &server{c: c, cancels: map[uint64]context.CancelFunc{},
		filled: checkapi.NewFilledSettings(c)}
	s.w.write = func(b []byte, _ time.Time) error { _, err := conn.Write(b); return err }
	s.send(&answer{kind: kindHello, version: Version})
	buf := make([]byte, 512)
	r := bufio.NewReader(conn) // a frame, often several, per read
	for {
		body, err := readFrame(r, buf)
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case err != nil:
			return err
		}
		buf = body[:cap(body)]
		req, err := parseRequest(body)
		if err != nil {
			return err
		}
		if req.kind == kindCancel {
			s.mu.Lock()
			if cancel := s.cancels[req.id]; cancel != nil {
				cancel()
			}
			s.mu.Unlock()
			continue
		}
		var ctx context.Context
		var cancel context.CancelFunc
		if req.deadline != 0 {
			ctx, cancel = context.WithDeadline(context.Background(), time.Unix(0, req.deadline))
		} else {
			ctx, cancel = context.WithCancel(context.Background())
		}
		s.mu.Lock()
		s.cancels[req.id] = cancel
		s.mu.Unlock()
		go s.handle(ctx, req)
	}
}

func (s *server) handle(ctx context.Context, req request) {
	a := answer{kind: req.kind | answerBit, id: req.id}
	switch req.kind {
	case kindDescribe:
		a.desc, a.err = DescribeChecker(s.c)
	case kindConfigure:
		a.targetErr, a.fieldErrs, a.err = ConfigureChecker(ctx, s.c, req.target, req.settings)
	case kindCheck:
		a.result, a.err = RunCheck(ctx, s.c, s.filled, req.target, req.settings)
	}
	s.mu.Lock()
	s.cancels[req.id]()
	delete(s.cancels, req.id)
	s.mu.Unlock()
	s.send(&a)
}

// send writes a, with the answers that end at about the same time; a write
// error means the host is gone, which the read loop sees too.
func (s *server) send(a *answer) { _ = s.w.queue(a.append, time.Time{}) }

// WireResult converts r as it is: the host, not the checker, judges results,
// so that a plugin built without this code gets the same treatment. Only
// text is mended, as protobuf needs it for the gRPC contract.
func WireResult(r *checkapi.Result) Result {
	w := Result{Status: int32(r.Status) + 1, Reason: ValidUTF8(r.Reason), Message: ValidUTF8(r.Message)}
	for _, p := range r.Phases {
		w.Phases = append(w.Phases, Phase{Name: ValidUTF8(p.Name), Seconds: p.Duration.Seconds()})
	}
	for k, v := range r.Observations {
		if w.Observations == nil {
			w.Observations = make(map[string]float64, len(r.Observations))
		}
		w.Observations[ValidUTF8(k)] = v
	}
	return w
}

// ValidUTF8 replaces what is not UTF-8 in s: a message may quote raw bytes
// from a server, and protobuf refuses to send them.
func ValidUTF8(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

// ErrorText is the message of a checker's error, never empty.
func ErrorText(err error) string {
	if msg := err.Error(); msg != "" {
		return ValidUTF8(msg)
	}
	return fmt.Sprintf("%T with an empty message", err)
}

// Recover, deferred, turns a panic in method into a checker error, so that
// one bad check does not take the checker process down; the stack goes to
// the log.
func Recover(method string, set func(msg string)) {
	v := recover()
	if v == nil {
		return
	}
	msg := ValidUTF8(fmt.Sprintf("%s panicked: %v", method, v))
	slog.Error(msg, "stack", string(debug.Stack()))
	set(msg)
}
