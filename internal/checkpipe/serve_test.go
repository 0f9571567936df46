package checkpipe

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ripcord/ripcord/plugins/checkapi"
)

// waitChecker's check of "wait" returns when its ctx ends, saying why; any
// other target is ok at once.
type waitChecker struct{ started chan string }

func (waitChecker) Describe() checkapi.Description { return checkapi.Description{Name: "wait"} }

func (waitChecker) Configure(context.Context, checkapi.Settings) ([]checkapi.FieldError, error) {
	return nil, nil
}

func (c waitChecker) Check(ctx context.Context, req *checkapi.Request) (*checkapi.Result, error) {
	c.started <- req.Target
	if req.Target != "wait" {
		return checkapi.OK(req.Target), nil
	}
	<-ctx.Done()
	return checkapi.Failed(checkapi.ReasonTimeout, "%v", ctx.Err()), nil
}

func pipePair(t *testing.T, c checkapi.Checker) (*Client, chan error) {
	t.Helper()
	ours, theirs := net.Pipe()
	served := make(chan error, 1)
	go func() { served <- ServeConn(theirs, c) }()
	client, err := NewClient(ours, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	return client, served
}

// Checks run at once, answers come back in any order, a canceled call ends
// the checker's ctx, and closing the connection ends ServeConn cleanly.
func TestServeConcurrentAndCancel(t *testing.T) {
	c := waitChecker{started: make(chan string, 4)}
	client, served := pipePair(t, c)

	slow := make(chan Result, 1)
	go func() {
		res, _ := client.Check(context.Background(), time.Now().Add(300*time.Millisecond), &checkapi.Request{Target: "wait"})
		slow <- res
	}()
	<-c.started
	res, err := client.Check(context.Background(), time.Time{}, &checkapi.Request{Target: "quick"})
	if err != nil || res.Message != "quick" {
		t.Fatalf("check while another waits: %+v, %v", res, err)
	}
	<-c.started
	if res := <-slow; res.Message != context.DeadlineExceeded.Error() {
		t.Errorf("waiting check ended with %q, want its deadline", res.Message)
	}

	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-c.started; cancel() }()
	if _, err := client.Check(ctx, time.Time{}, &checkapi.Request{Target: "wait"}); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled call: %v", err)
	}
	// The checker got the cancel: its answer, which nobody waits for, comes
	// back and is dropped, and the connection still works.
	if res, err := client.Check(context.Background(), time.Time{}, &checkapi.Request{Target: "again"}); err != nil || res.Message != "again" {
		t.Fatalf("check after a cancel: %+v, %v", res, err)
	}
	<-c.started

	client.Close()
	if err := <-served; err != nil {
		t.Errorf("ServeConn after the host closed: %v", err)
	}
	var ce *ConnError
	if _, err := client.Describe(context.Background()); !errors.As(err, &ce) {
		t.Errorf("call after Close: %v, want a ConnError", err)
	}
}

// A checker that goes away ends the calls in flight with a ConnError.
func TestClientCheckerGone(t *testing.T) {
	ours, theirs := net.Pipe()
	go func() {
		_, _ = theirs.Write((&answer{kind: kindHello, version: Version}).append(nil))
		buf := make([]byte, 64)
		_, _ = theirs.Read(buf) // the request
		theirs.Close()
	}()
	client, err := NewClient(ours, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	var ce *ConnError
	if _, err := client.Check(context.Background(), time.Time{}, &checkapi.Request{Target: "x"}); !errors.As(err, &ce) {
		t.Errorf("check when the checker hangs up: %v, want a ConnError", err)
	}
}

func TestClientHello(t *testing.T) {
	for name, tc := range map[string]struct {
		first []byte
		want  string
	}{
		"version": {(&answer{kind: kindHello, version: 9}).append(nil), "the checker speaks protocol version 9, the daemon 1"},
		"kind":    {(&answer{kind: kindDescribe | answerBit, desc: checkapi.Description{Name: "x"}}).append(nil), "not a hello"},
		"text":    {[]byte("1|1|unix|/tmp/plugin|grpc|\n"), "no hello from the checker"},
	} {
		t.Run(name, func(t *testing.T) {
			ours, theirs := net.Pipe()
			defer ours.Close()
			go func() { _, _ = theirs.Write(tc.first); theirs.Close() }()
			if _, err := NewClient(ours, 2*time.Second); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewClient: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
