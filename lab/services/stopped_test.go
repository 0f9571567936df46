package services

import (
	"os/exec"
	"syscall"
	"testing"
	"time"
)

func TestThreadState(t *testing.T) {
	for _, tt := range []struct{ stat, want string }{
		{"1234 (slapd) S 1 1234 1234 0 -1", "S"},
		{"1234 (slapd) T 1 1234", "T"},
		{"1234 (a) b) (c) t 1", "t"}, // the name holds ") "
		{"1234 (nginx: worker) R 7", "R"},
		{"1234 (cut", ""},
		{"1234 (x)", ""},
		{"1 (x) Z 1", "Z"},
	} {
		if got := threadState(tt.stat); got != tt.want {
			t.Errorf("threadState(%q) = %q, want %q", tt.stat, got, tt.want)
		}
	}
}

func TestWaitStopped(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	pid := cmd.Process.Pid
	if err := WaitStopped(50*time.Millisecond, pid); err == nil {
		t.Fatal("WaitStopped returned nil for a running process")
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	if err := WaitStopped(5*time.Second, pid); err != nil {
		t.Fatal(err)
	}
}
