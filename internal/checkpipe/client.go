package checkpipe

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/ripcord/ripcord/plugins/checkapi"
)

// CheckerError is an error the checker reported about itself: it answered.
type CheckerError struct{ Msg string }

func (e *CheckerError) Error() string { return "checker error: " + e.Msg }

// ConnError says the connection to the checker is gone (the process exited,
// or sent what is not a frame), so no answer will come.
type ConnError struct{ Err error }

func (e *ConnError) Error() string { return e.Err.Error() }
func (e *ConnError) Unwrap() error { return e.Err }

// Client is the host's end of one checker process's connection. Its methods
// are safe for concurrent use; each waits for its answer, its ctx's end or
// the connection's.
type Client struct {
	conn net.Conn
	done chan struct{} // closed once the connection is gone

	w batchWriter

	mu      sync.Mutex // guards what follows
	err     error      // why the connection is gone
	next    uint64
	pending map[uint64]chan answer
}

// NewClient waits up to timeout for the checker's hello on conn and returns
// its client. It does not close conn on error.
func NewClient(conn net.Conn, timeout time.Duration) (*Client, error) {
	if err := conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return nil, err
	}
	body, err := readFrame(conn, nil)
	if err != nil {
		return nil, fmt.Errorf("no hello from the checker: %w", err)
	}
	hello, err := parseAnswer(body)
	switch {
	case err != nil:
		return nil, fmt.Errorf("no hello from the checker: %w", err)
	case hello.kind != kindHello:
		return nil, fmt.Errorf("the checker's first frame is kind 0x%02x, not a hello", hello.kind)
	case hello.version != Version:
		return nil, fmt.Errorf("the checker speaks protocol version %d, the daemon %d", hello.version, Version)
	}
	if err := conn.SetReadDeadline(time.Time{}); err != nil {
		return nil, err
	}
	c := &Client{conn: conn, done: make(chan struct{}), pending: map[uint64]chan answer{}}
	c.w.write = c.write
	go c.read()
	return c, nil
}

// Close closes the connection, which asks the checker to exit, and ends
// every call in flight.
func (c *Client) Close() { c.close(errors.New("connection closed by the daemon")) }

func (c *Client) close(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closeLocked(err)
}

func (c *Client) closeLocked(err error) {
	if c.err == nil {
		c.err = err
		c.conn.Close()
		close(c.done)
	}
}

// write writes frames b by deadline (zero: none): a checker that stopped
// reading must not block it forever. A write that fails may have sent part
// of a frame, so it closes the connection.
func (c *Client) write(b []byte, deadline time.Time) error {
	_ = c.conn.SetWriteDeadline(deadline)
	_, err := c.conn.Write(b)
	if err != nil {
		c.close(err)
	}
	return err
}

func (c *Client) read() {
	var buf []byte
	r := bufio.NewReader(c.conn) // a frame, often several, per read
	for {
		body, err := readFrame(r, buf)
		if err != nil {
			c.close(err)
			return
		}
		buf = body[:cap(body)]
		a, err := parseAnswer(body)
		if err == nil && a.kind&answerBit == 0 {
			err = fmt.Errorf("checkpipe: request kind 0x%02x from the checker", a.kind)
		}
		if err != nil {
			c.close(err)
			return
		}
		c.mu.Lock()
		ch := c.pending[a.id]
		delete(c.pending, a.id)
		c.mu.Unlock()
		if ch != nil {
			ch <- a // buffered
		}
	}
}

// call sends req and waits for its answer.
func (c *Client) call(ctx context.Context, req request) (answer, error) {
	ch := make(chan answer, 1)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return answer{}, &ConnError{err}
	}
	c.next++
	req.id = c.next
	c.pending[req.id] = ch
	c.mu.Unlock()
	deadline, _ := ctx.Deadline()
	if err := c.w.queue(req.append, deadline); err != nil {
		if ctx.Err() != nil {
			return answer{}, ctx.Err()
		}
		return answer{}, &ConnError{err}
	}
	select {
	case a := <-ch:
		if a.kind != req.kind|answerBit {
			return a, &ConnError{fmt.Errorf("checkpipe: answer kind 0x%02x to a request of kind 0x%02x", a.kind, req.kind)}
		}
		if a.err != "" {
			return a, &CheckerError{a.err}
		}
		return a, nil
	case <-c.done:
		c.mu.Lock()
		defer c.mu.Unlock()
		return answer{}, &ConnError{c.err}
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.pending, req.id)
		gone := c.err != nil
		c.mu.Unlock()
		if !gone {
			// Best effort: the checker stops working on it.
			_ = c.w.queue((&request{kind: kindCancel, id: req.id}).append, time.Now().Add(100*time.Millisecond))
		}
		return answer{}, ctx.Err()
	}
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// Describe asks the checker for its name, version and settings schema.
func (c *Client) Describe(ctx context.Context) (checkapi.Description, error) {
	a, err := c.call(ctx, request{kind: kindDescribe})
	return a.desc, err
}

// Configure asks the checker to validate a check's settings and target,
// with the given deadline (zero: none): the target's error ("" if none) and
// one FieldError per bad setting.
func (c *Client) Configure(ctx context.Context, deadline time.Time, req *checkapi.Request) (string, []checkapi.FieldError, error) {
	a, err := c.call(ctx, request{kind: kindConfigure, deadline: unixNano(deadline), target: req.Target, settings: req.Settings})
	return a.targetErr, a.fieldErrs, err
}

// Check runs one check; the checker's ctx ends at deadline (zero: never).
// ctx bounds the wait for the answer.
func (c *Client) Check(ctx context.Context, deadline time.Time, req *checkapi.Request) (Result, error) {
	a, err := c.call(ctx, request{kind: kindCheck, deadline: unixNano(deadline), target: req.Target, settings: req.Settings})
	return a.result, err
}
