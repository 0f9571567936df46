// Package netns builds small test and demo topologies out of Linux network
// namespaces: namespaces with unique names, veth pairs between them, addresses,
// and processes started inside a namespace whose real pid is kept so they can
// be stopped by pid.
//
// Everything goes through the ip(8) command; the package needs root.
package netns

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// commandTimeout bounds every ip(8) invocation: they are local and quick, a
// hang means something is badly wrong.
const commandTimeout = 10 * time.Second

// NS is one named network namespace (as listed by `ip netns`).
type NS struct {
	Name string
}

// New creates a namespace named prefix + 6 random hex digits, brings its lo
// up and returns it. Names stay within 15 characters when prefix is short,
// so they can also serve as interface name stems.
func New(prefix string) (*NS, error) {
	if prefix == "" {
		prefix = "rc"
	}
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("netns: random name: %w", err)
	}
	ns := &NS{Name: prefix + hex.EncodeToString(b[:])}
	if _, err := ipCmd("netns", "add", ns.Name); err != nil {
		return nil, err
	}
	if err := ns.LinkUp("lo"); err != nil {
		_ = ns.Delete()
		return nil, err
	}
	return ns, nil
}

// Delete removes the namespace. Interfaces inside it (veth ends) go with it;
// processes still running inside keep it alive, so stop them first.
func (n *NS) Delete() error {
	_, err := ipCmd("netns", "delete", n.Name)
	return err
}

// IP runs `ip -n NAME args...` and returns its standard output.
func (n *NS) IP(args ...string) (string, error) {
	return ipCmd(append([]string{"-n", n.Name}, args...)...)
}

// Exec runs a program inside the namespace and waits for it, returning its
// combined output.
func (n *NS) Exec(ctx context.Context, prog string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name, prog}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("netns: %s in %s: %w: %s", prog, n.Name, err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// LinkUp sets an interface up.
func (n *NS) LinkUp(dev string) error {
	_, err := n.IP("link", "set", "dev", dev, "up")
	return err
}

// LinkDown sets an interface down.
func (n *NS) LinkDown(dev string) error {
	_, err := n.IP("link", "set", "dev", dev, "down")
	return err
}

// AddAddr adds an address (with its prefix length) to an interface, for
// example a service /32 on lo.
func (n *NS) AddAddr(dev string, p netip.Prefix) error {
	_, err := n.IP("addr", "add", p.String(), "dev", dev)
	return err
}

// DelAddr removes an address from an interface.
func (n *NS) DelAddr(dev string, p netip.Prefix) error {
	_, err := n.IP("addr", "del", p.String(), "dev", dev)
	return err
}

// End is one side of a veth pair.
type End struct {
	NS   *NS
	Dev  string
	Addr netip.Prefix // interface address with the link's prefix length; zero for none
	// Addr6 is an optional IPv6 address beside Addr. Every end also has its
	// link-local address, usable at once (no duplicate address detection
	// on a link between two namespaces).
	Addr6 netip.Prefix
}

// Veth creates a veth pair with one end in each namespace, assigns the
// addresses and brings both ends up. Device names live inside the namespaces,
// so short fixed names are fine.
func Veth(a, b End) error {
	if _, err := ipCmd("link", "add", "name", a.Dev, "netns", a.NS.Name, "type", "veth",
		"peer", "name", b.Dev, "netns", b.NS.Name); err != nil {
		return err
	}
	for _, e := range []End{a, b} {
		if _, err := e.NS.Exec(context.Background(), "sysctl", "-qw", "net.ipv6.conf."+e.Dev+".accept_dad=0"); err != nil {
			return err
		}
		for _, p := range []netip.Prefix{e.Addr, e.Addr6} {
			if p.IsValid() {
				if err := e.NS.AddAddr(e.Dev, p); err != nil {
					return err
				}
			}
		}
		if err := e.NS.LinkUp(e.Dev); err != nil {
			return err
		}
	}
	return nil
}

// Do runs f on an OS thread switched into the namespace, so sockets f opens
// (and interface look-ups it makes) belong to the namespace. Goroutines that
// f starts run elsewhere and are not inside the namespace; sockets keep their
// namespace for life, so f should open them and return.
func (n *NS) Do(f func() error) error {
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns: own namespace: %w", err)
	}
	defer orig.Close()
	target, err := os.Open("/var/run/netns/" + n.Name)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns: open %s: %w", n.Name, err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns: enter %s: %w", n.Name, err)
	}
	ferr := f()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// The thread is stuck in the wrong namespace: keep it locked so the
		// runtime discards it when this goroutine ends.
		return errors.Join(ferr, fmt.Errorf("netns: leave %s: %w", n.Name, err))
	}
	runtime.UnlockOSThread()
	return ferr
}

// Process is a program started in the background inside a namespace.
type Process struct {
	Name string
	Cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start starts prog inside the namespace without waiting for it. ip(8) execs
// the program, so Cmd.Process.Pid is the program's own pid. Output goes to
// logPath (appended) when it is not empty.
func (n *NS) Start(logPath string, prog string, args ...string) (*Process, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.Name, prog}, args...)...)
	if logPath != "" {
		f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("netns: log for %s: %w", prog, err)
		}
		defer f.Close() // the child holds its own copy
		cmd.Stdout, cmd.Stderr = f, f
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("netns: start %s in %s: %w", prog, n.Name, err)
	}
	p := &Process{Name: prog, Cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id of the running program.
func (p *Process) Pid() int { return p.Cmd.Process.Pid }

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Done is closed when the process has ended.
func (p *Process) Done() <-chan struct{} { return p.done }

// Stop sends SIGTERM, waits up to grace for the process to end, then sends
// SIGKILL and waits up to another grace. It is safe to call more than once.
func (p *Process) Stop(grace time.Duration) error {
	if p.Exited() {
		return nil
	}
	_ = p.Cmd.Process.Signal(unix.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	_ = p.Cmd.Process.Kill()
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
		return fmt.Errorf("netns: %s (pid %d) did not exit after SIGKILL", p.Name, p.Pid())
	}
}

func ipCmd(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "ip", args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("netns: ip %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.String(), nil
}

// Group tracks the namespaces and processes of one topology so they can be
// torn down together: processes first (by pid; a live process would keep
// its namespace alive), then the namespaces, newest first.
type Group struct {
	mu    sync.Mutex
	nss   []*NS
	procs []*Process
}

// NewNS creates a namespace (see New) that the group will delete.
func (g *Group) NewNS(prefix string) (*NS, error) {
	ns, err := New(prefix)
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	g.nss = append(g.nss, ns)
	g.mu.Unlock()
	return ns, nil
}

// Start starts a process in ns (see NS.Start) that the group will stop.
func (g *Group) Start(ns *NS, logPath, prog string, args ...string) (*Process, error) {
	p, err := ns.Start(logPath, prog, args...)
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	g.procs = append(g.procs, p)
	g.mu.Unlock()
	return p, nil
}

// Close stops every tracked process (SIGTERM, SIGKILL after grace) and
// deletes every tracked namespace. It returns all errors and may be called
// again.
func (g *Group) Close(grace time.Duration) error {
	g.mu.Lock()
	procs, nss := g.procs, g.nss
	g.procs, g.nss = nil, nil
	g.mu.Unlock()
	var errs []error
	for i := len(procs) - 1; i >= 0; i-- {
		errs = append(errs, procs[i].Stop(grace))
	}
	for i := len(nss) - 1; i >= 0; i-- {
		errs = append(errs, nss[i].Delete())
	}
	return errors.Join(errs...)
}
