package checkpipe

import (
	"runtime"
	"sync"
	"time"
)

// batchWriter gathers frames queued at about the same time into one write.
// Checks that share a tick start together and often end together; one write
// for all of them wakes the process at the other end once instead of once
// per frame, which is most of what a check costs (docs/benchmarks.md).
//
// The goroutine that finds no write in progress becomes the writer: it
// yields once, so that the goroutines made runnable with it can queue their
// frames, then writes everything queued, and goes on until nothing is left.
// The others return at once; their frame goes out with the writer's. No
// frame waits for a timer.
type batchWriter struct {
	write func(b []byte, deadline time.Time) error

	mu       sync.Mutex
	queued   []byte    // frames waiting, back to back
	deadline time.Time // the earliest deadline of the queued frames; zero: none
	spare    []byte    // the buffer of the last write, reused
	writing  bool
	err      error // the write that failed; later frames are dropped
}

// queue appends a frame with add and sees that it is written by deadline
// (zero: none). It returns the error of the write that carried the frame
// if this goroutine made it; otherwise nil, or an earlier write's error.
// A failed write may have sent part of a frame, so the caller must treat
// the connection as gone, as its reader will.
func (w *batchWriter) queue(add func([]byte) []byte, deadline time.Time) error {
	w.mu.Lock()
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return err
	}
	w.queued = add(w.queued)
	if !deadline.IsZero() && (w.deadline.IsZero() || deadline.Before(w.deadline)) {
		w.deadline = deadline
	}
	if w.writing {
		w.mu.Unlock()
		return nil
	}
	w.writing = true
	w.mu.Unlock()
	runtime.Gosched()
	for {
		w.mu.Lock()
		b, deadline := w.queued, w.deadline
		if len(b) == 0 {
			w.writing = false
			w.mu.Unlock()
			return nil
		}
		w.queued, w.deadline, w.spare = w.spare[:0], time.Time{}, nil
		w.mu.Unlock()
		err := w.write(b, deadline)
		w.mu.Lock()
		w.spare = b[:0]
		if err != nil {
			w.err, w.writing = err, false
			w.queued = nil
			w.mu.Unlock()
			return err
		}
		w.mu.Unlock()
	}
}
