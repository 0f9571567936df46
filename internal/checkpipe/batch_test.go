package checkpipe

import (
	"bufio"
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestFramesAppendBackToBack(t *testing.T) {
	a := (&request{kind: kindCheck, id: 7, deadline: 9, target: "http://x/", settings: []byte(`{"a":1}`)}).append(nil)
	b := (&answer{kind: kindCheck | answerBit, id: 7, result: Result{Status: 2, Reason: "ok"}}).append(nil)
	both := (&answer{kind: kindCheck | answerBit, id: 7, result: Result{Status: 2, Reason: "ok"}}).append(
		(&request{kind: kindCheck, id: 7, deadline: 9, target: "http://x/", settings: []byte(`{"a":1}`)}).append(nil))
	if !bytes.Equal(both, append(append([]byte{}, a...), b...)) {
		t.Fatalf("two frames appended to one buffer:\n%x\nwant\n%x", both, append(a, b...))
	}
}

// TestBatchWriterGathersFrames queues frames from many goroutines at once:
// every frame arrives whole, each once, and they share writes.
func TestBatchWriterGathersFrames(t *testing.T) {
	var mu sync.Mutex
	var out bytes.Buffer
	writes := 0
	w := batchWriter{write: func(b []byte, _ time.Time) error {
		mu.Lock()
		defer mu.Unlock()
		writes++
		out.Write(b)
		time.Sleep(time.Millisecond) // frames queued meanwhile go in the next write
		return nil
	}}
	const n = 200
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if err := w.queue((&request{kind: kindCheck, id: uint64(i + 1), target: "t"}).append, time.Time{}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	// The writer is one of the goroutines: it returns once nothing is queued.
	seen := map[uint64]bool{}
	r := bufio.NewReader(&out)
	for {
		body, err := readFrame(r, nil)
		if err != nil {
			break
		}
		req, err := parseRequest(body)
		if err != nil {
			t.Fatal(err)
		}
		if seen[req.id] {
			t.Fatalf("frame %d written twice", req.id)
		}
		seen[req.id] = true
	}
	if len(seen) != n || out.Len() != 0 {
		t.Fatalf("%d of %d frames arrived, %d bytes left over", len(seen), n, out.Len())
	}
	if writes >= n {
		t.Errorf("%d writes for %d frames queued at once", writes, n)
	}
	t.Logf("%d frames in %d writes", n, writes)
}

func TestBatchWriterKeepsTheError(t *testing.T) {
	broken := errors.New("broken pipe")
	w := batchWriter{write: func([]byte, time.Time) error { return broken }}
	if err := w.queue((&request{kind: kindDescribe, id: 1}).append, time.Time{}); err != broken {
		t.Fatalf("first queue: %v, want the write's error", err)
	}
	if err := w.queue((&request{kind: kindDescribe, id: 2}).append, time.Time{}); err != broken {
		t.Fatalf("after a failed write: %v, want the same error", err)
	}
}

func TestBatchWriterPassesTheEarliestDeadline(t *testing.T) {
	var got []time.Time
	w := batchWriter{write: func(_ []byte, d time.Time) error { got = append(got, d); return nil }}
	t0 := time.Unix(1000, 0)
	w.writing = true // as if another goroutine were writing: these two only queue
	_ = w.queue((&request{kind: kindDescribe, id: 1}).append, t0.Add(time.Second))
	_ = w.queue((&request{kind: kindDescribe, id: 2}).append, t0)
	w.writing = false
	_ = w.queue((&request{kind: kindDescribe, id: 3}).append, time.Time{})
	if len(got) != 1 || !got[0].Equal(t0) {
		t.Fatalf("deadlines of the writes: %v, want one write by %v", got, t0)
	}
}
