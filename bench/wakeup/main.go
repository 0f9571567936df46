// Command wakeup measures the floor under ripcord's CPU per check: what a Go
// process pays to wake up at all. It wakes on a ticker, does nothing else,
// and reports its CPU time and context switches (all its threads) per
// wake-up. A check costs at least four wake-ups across the daemon and its
// checker process (the check's timer, the request, the network, the answer).
//
//	go run ./bench/wakeup -rates 20,200,1000
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	rates := flag.String("rates", "20,200,1000", "wake-ups per second, comma-separated")
	window := flag.Duration("window", 20*time.Second, "measuring window per rate")
	flag.Parse()
	for _, f := range strings.Split(*rates, ",") {
		rate, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || rate <= 0 {
			fmt.Fprintf(os.Stderr, "wakeup: -rates: %q is not a positive number\n", f)
			os.Exit(2)
		}
		cpu, sw := measure(rate, *window)
		fmt.Printf("%d/s: %.1f µs CPU and %.1f context switches per wake-up\n", rate, cpu, sw)
	}
}

// measure wakes rate times a second for window, after a 2 s settling.
func measure(rate int, window time.Duration) (cpuMicros, switchesPer float64) {
	t := time.NewTicker(time.Second / time.Duration(rate))
	defer t.Stop()
	time.Sleep(2 * time.Second)
	for len(t.C) > 0 {
		<-t.C
	}
	c0, s0 := cpuTime(), switches()
	n := int(window.Seconds() * float64(rate))
	for range n {
		<-t.C
	}
	c1, s1 := cpuTime(), switches()
	return float64((c1 - c0).Microseconds()) / float64(n), float64(s1-s0) / float64(n)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// switches sums the voluntary and involuntary context switches of every
// thread of this process.
func switches() int {
	tasks, _ := os.ReadDir("/proc/self/task")
	n := 0
	for _, task := range tasks {
		b, _ := os.ReadFile("/proc/self/task/" + task.Name() + "/status")
		for _, l := range strings.Split(string(b), "\n") {
			k, v, _ := strings.Cut(l, ":")
			if k == "voluntary_ctxt_switches" || k == "nonvoluntary_ctxt_switches" {
				x, _ := strconv.Atoi(strings.TrimSpace(v))
				n += x
			}
		}
	}
	return n
}
