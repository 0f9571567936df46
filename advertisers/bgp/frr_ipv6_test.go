package bgp

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ripcord/ripcord/advertisers"
	"github.com/ripcord/ripcord/lab/netns"
	"github.com/ripcord/ripcord/lab/netns/netnstest"
)

// The IPv6 interop test needs the speaker in a namespace of its own, with a
// global IPv6 address on a link to FRR (on loopback the next hop would be
// ::1, which FRR drops as martian). GoBGP dials from goroutines that no
// test can move into a namespace, so the speaker runs in a copy of the test
// binary started there (TestSpeakerHelper), driven line by line:
// "set PREFIX METRIC DRAIN ..." and "close".
const helperEnv = "RIPCORD_BGP_SPEAKER_HELPER"

var (
	v6Replica = netip.MustParsePrefix("2001:db8:1::10/64")
	v6Router  = netip.MustParsePrefix("2001:db8:1::1/64")
	v4Replica = netip.MustParsePrefix("10.200.0.2/24")
	v4Router  = netip.MustParsePrefix("10.200.0.1/24")
)

// TestFRRInteropIPv6: IPv6 unicast (MP-BGP) to a real FRR bgpd, over an
// IPv6 session (next hop: the session's global address) and over an IPv4
// session (next hop: next_hop6), with MED and prepend, GRACEFUL_SHUTDOWN,
// withdrawal on metric 16 and on Close, as for IPv4.
func TestFRRInteropIPv6(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	rtr, srv := netnstest.New(t, "rcr"), netnstest.New(t, "rcs")
	if err := netns.Veth(netns.End{NS: srv, Dev: "rs0", Addr: v4Replica, Addr6: v6Replica},
		netns.End{NS: rtr, Dev: "sr0", Addr: v4Router, Addr6: v6Router}); err != nil {
		t.Fatal(err)
	}
	r := startFRRIn(t, rtr)
	vip6, vip4 := "2001:db8:ff::10/128", "10.77.0.1/32"
	for _, tc := range []struct {
		name     string
		cfg      Config
		nextHop6 string
	}{
		{"ipv6 session, med", Config{Priority: PriorityMED, Peers: []Peer{{Address: v6Router.Addr(), ASN: routerASN}}},
			v6Replica.Addr().String()},
		{"ipv4 session, prepend, next_hop6", Config{Priority: PriorityPrepend, NextHop6: netip.MustParseAddr("2001:db8:1::77"),
			Peers: []Peer{{Address: v4Router.Addr(), ASN: routerASN}}}, "2001:db8:1::77"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sp := startSpeakerIn(t, srv, tc.cfg)
			med, path := func(m int) int {
				if tc.cfg.Priority == PriorityMED {
					return m
				}
				return -1
			}, func(m int) string {
				if tc.cfg.Priority == PriorityMED {
					return "65001"
				}
				return strings.TrimSpace(strings.Repeat("65001 ", m))
			}
			seen := func(m int, drain bool) frrSeen {
				s := frrSeen{NextHop: tc.nextHop6, MED: med(m), ASPath: path(m), LocalPref: -1}
				if drain {
					s.LocalPref, s.Community = 0, "graceful-shutdown"
				}
				return s
			}
			sp.set(t, vip6, 3, false, vip4, 2, false)
			r.waitRoutesOf(t, "ipv6", "announce", map[string]frrSeen{vip6: seen(3, false)})
			// The IPv4 VIP goes out on the same session, with its own next hop.
			v4 := seen(2, false)
			v4.NextHop = v4Replica.Addr().String()
			if tc.cfg.Peers[0].Address.Is6() {
				v4 = frrSeen{} // an IPv6 session without next_hop carries no IPv4
			}
			if v4 == (frrSeen{}) {
				r.waitRoutesOf(t, "ipv4", "no IPv4 on an IPv6 session without next_hop", map[string]frrSeen{})
			} else {
				r.waitRoutesOf(t, "ipv4", "IPv4 beside", map[string]frrSeen{vip4: v4})
			}
			sp.set(t, vip6, 1, true, vip4, 2, false)
			r.waitRoutesOf(t, "ipv6", "metric change and drain", map[string]frrSeen{vip6: seen(1, true)})
			sp.set(t, vip6, 16, false, vip4, 2, false)
			r.waitRoutesOf(t, "ipv6", "metric 16", map[string]frrSeen{})
			sp.set(t, vip6, 2, false)
			r.waitRoutesOf(t, "ipv6", "back", map[string]frrSeen{vip6: seen(2, false)})
			sp.close(t)
			r.waitRoutesOf(t, "ipv6", "after Close", map[string]frrSeen{})
		})
	}
}

// startFRRIn starts bgpd (no zebra) in ns on port 179, passive towards the
// replica's IPv6 and IPv4 addresses, IPv6 unicast active on both sessions.
func startFRRIn(t *testing.T, ns *netns.NS) *frrRouter {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r := &frrRouter{dir: dir, port: 179}
	var conf strings.Builder
	fmt.Fprintf(&conf, "frr defaults traditional\nhostname rcfrr\nlog file %s/bgpd.log\nrouter bgp %d\n bgp router-id 10.255.255.1\n no bgp ebgp-requires-policy\n", dir, routerASN)
	peers := []string{v6Replica.Addr().String(), v4Replica.Addr().String()}
	for _, p := range peers {
		fmt.Fprintf(&conf, " neighbor %s remote-as %d\n neighbor %s passive\n neighbor %s timers 3 9\n", p, speakerASN, p, p)
	}
	conf.WriteString(" address-family ipv6 unicast\n")
	for _, p := range peers {
		fmt.Fprintf(&conf, "  neighbor %s activate\n", p)
	}
	conf.WriteString(" exit-address-family\n")
	if err := os.WriteFile(filepath.Join(dir, "bgpd.conf"), []byte(conf.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", ns.Name, "/usr/lib/frr/bgpd", "-S", "-Z", "-P", "0",
		"--vty_socket", dir, "-f", filepath.Join(dir, "bgpd.conf"), "-i", filepath.Join(dir, "bgpd.pid"))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start bgpd: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill() // ip netns exec execs bgpd: this pid is bgpd's
		cmd.Wait()
	})
	waitFor(t, "bgpd vty", func() bool {
		_, err := os.Stat(filepath.Join(dir, "bgpd.vty"))
		return err == nil
	})
	return r
}

// helperSpeaker is a speaker running in a namespace, in a helper process.
type helperSpeaker struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

func startSpeakerIn(t *testing.T, ns *netns.NS, cfg Config) *helperSpeaker {
	t.Helper()
	cfg.ASN, cfg.RouterID, cfg.ConnectRetry = speakerASN, netip.MustParseAddr("10.255.0.1"), time.Second
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", ns.Name, os.Args[0], "-test.run=^TestSpeakerHelper$")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(js))
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helperSpeaker{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	t.Cleanup(func() {
		in.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	h.expect(t, "ready")
	return h
}

func (h *helperSpeaker) expect(t *testing.T, want string) {
	t.Helper()
	for h.out.Scan() {
		line := h.out.Text()
		if line == want {
			return
		}
		if strings.HasPrefix(line, "error: ") {
			t.Fatalf("speaker helper: %s", line)
		}
	}
	t.Fatalf("speaker helper ended before %q", want)
}

// set announces prefix, metric, drain triples.
func (h *helperSpeaker) set(t *testing.T, anns ...any) {
	t.Helper()
	line := "set"
	for i := 0; i+2 < len(anns); i += 3 {
		line += fmt.Sprintf(" %s %d %t", anns[i], anns[i+1], anns[i+2])
	}
	fmt.Fprintln(h.in, line)
	h.expect(t, "ok")
}

func (h *helperSpeaker) close(t *testing.T) {
	t.Helper()
	fmt.Fprintln(h.in, "close")
	h.expect(t, "ok")
}

// TestSpeakerHelper is the speaker process of TestFRRInteropIPv6; without
// its environment variable it is skipped.
func TestSpeakerHelper(t *testing.T) {
	js := os.Getenv(helperEnv)
	if js == "" {
		t.Skip("the speaker process of TestFRRInteropIPv6")
	}
	var cfg Config
	if err := json.Unmarshal([]byte(js), &cfg); err != nil {
		fmt.Println("error:", err)
		return
	}
	cfg.Logger = quiet
	sp, err := New(context.Background(), cfg)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	defer sp.Close()
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		switch {
		case len(f) > 0 && f[0] == "set":
			var want []advertisers.Announcement
			for i := 1; i+2 < len(f); i += 3 {
				m, _ := strconv.Atoi(f[i+1])
				want = append(want, advertisers.Announcement{Prefix: netip.MustParsePrefix(f[i]), Metric: m, Draining: f[i+2] == "true"})
			}
			err = sp.Set(context.Background(), want)
		case len(f) > 0 && f[0] == "close":
			err = sp.Close()
		}
		if err != nil {
			fmt.Println("error:", err)
			continue
		}
		fmt.Println("ok")
	}
}
