package services

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// stopWait bounds how long Suspend waits for a process to stop.
const stopWait = 5 * time.Second

// WaitStopped returns once every thread of each process is stopped. A
// SIGSTOP is delivered asynchronously: kill(2) returns while threads of a
// busy process may still be running and answer one more request, so a test
// that hangs a server must wait for the stop before it asserts the hang.
// It gives up after timeout.
func WaitStopped(timeout time.Duration, pids ...int) error {
	deadline := time.Now().Add(timeout)
	for _, pid := range pids {
		for {
			running, err := runningThread(pid)
			if err != nil {
				return err
			}
			if running == "" {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("lab/services: pid %d: thread %s still running %s after SIGSTOP", pid, running, timeout)
			}
			time.Sleep(time.Millisecond)
		}
	}
	return nil
}

// runningThread names a thread of pid that is neither stopped nor exited
// (per /proc/PID/task/TID/stat), or returns "" when there is none.
func runningThread(pid int) (string, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("lab/services: %w", err)
	}
	for _, t := range tasks {
		stat, err := os.ReadFile(filepath.Join(dir, t.Name(), "stat"))
		if os.IsNotExist(err) {
			continue // the thread exited
		}
		if err != nil {
			return "", fmt.Errorf("lab/services: %w", err)
		}
		// T/t: stopped; Z/X: exited (a group leader stays a zombie
		// while its other threads run).
		switch state := threadState(string(stat)); state {
		case "T", "t", "Z", "X":
		default:
			return t.Name() + " (state " + state + ")", nil
		}
	}
	return "", nil
}

// threadState is the state field of a stat line; it follows the command
// name, which is in parentheses and may itself hold spaces and parentheses.
func threadState(stat string) string {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return ""
	}
	fields := strings.Fields(stat[i+1:])
	if len(fields) == 0 {
		return ""
	}
	return fields[0]
}
