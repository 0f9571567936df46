package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// unitPath is the systemd unit the package installs. ripcord runs here as
// systemd runs it from its unit: with the unit's environment (GOMAXPROCS)
// and timer slack, so that the numbers are those of an installed replica.
const unitPath = "examples/ripcord.service"

// unit is what of a systemd unit changes how a process runs.
type unit struct {
	path  string
	env   []string      // Environment=
	slack time.Duration // TimerSlackNSec=; zero: the kernel's default
}

func (u unit) String() string {
	slack := "the kernel's default timer slack"
	if u.slack > 0 {
		slack = "timer slack " + u.slack.String()
	}
	return strings.Join(append(slices.Clone(u.env), slack), ", ")
}

// readUnit reads the Environment= and TimerSlackNSec= lines of a unit file
// (one assignment per Environment= line, as ripcord's unit has them).
func readUnit(path string) (unit, error) {
	f, err := os.Open(path)
	if err != nil {
		return unit{}, err
	}
	defer f.Close()
	var u unit
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		key, val, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		switch {
		case !ok:
		case key == "Environment":
			u.env = append(u.env, strings.Trim(val, `"`))
		case key == "TimerSlackNSec":
			if u.slack, err = parseSpan(val); err != nil {
				return unit{}, fmt.Errorf("%s:%d: TimerSlackNSec: %w", path, n, err)
			}
		}
	}
	return u, sc.Err()
}

// parseSpan reads a systemd time span as TimerSlackNSec takes it: a bare
// number is nanoseconds.
func parseSpan(s string) (time.Duration, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Duration(n), nil
	}
	return time.ParseDuration(strings.ReplaceAll(s, " ", ""))
}

// start starts c as systemd would: from a thread with the unit's timer
// slack, which c inherits (prctl(2)).
func (u *unit) start(c *exec.Cmd) error {
	if u.slack == 0 {
		return c.Start()
	}
	errc := make(chan error, 1)
	go func() {
		// The thread keeps the slack; ending it with the goroutine (no
		// unlock) keeps it from running anything else.
		runtime.LockOSThread()
		if err := unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(u.slack.Nanoseconds()), 0, 0, 0); err != nil {
			errc <- fmt.Errorf("timer slack: %w", err)
			return
		}
		errc <- c.Start()
	}()
	return <-errc
}
