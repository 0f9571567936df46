package netns

import (
	"context"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
}

func newNS(t *testing.T) *NS {
	t.Helper()
	ns, err := New("rct")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ns.Delete(); err != nil {
			t.Error(err)
		}
	})
	return ns
}

func TestVethAndExec(t *testing.T) {
	needRoot(t)
	a, b := newNS(t), newNS(t)
	if a.Name == b.Name || !strings.HasPrefix(a.Name, "rct") || len(a.Name) > 15 {
		t.Fatalf("names %q %q: want unique, prefixed, at most 15 characters", a.Name, b.Name)
	}
	err := Veth(
		End{NS: a, Dev: "va", Addr: netip.MustParsePrefix("10.77.0.1/30")},
		End{NS: b, Dev: "vb", Addr: netip.MustParsePrefix("10.77.0.2/30")},
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.AddAddr("lo", netip.MustParsePrefix("10.77.9.9/32")); err != nil {
		t.Fatal(err)
	}
	// A UDP datagram from a's socket reaches b's socket across the veth.
	var rx net.PacketConn
	if err := b.Do(func() (err error) {
		rx, err = net.ListenPacket("udp4", "10.77.0.2:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	var tx net.PacketConn
	if err := a.Do(func() (err error) {
		tx, err = net.ListenPacket("udp4", "10.77.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	if _, err := tx.WriteTo([]byte("hello"), rx.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	_ = rx.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 16)
	n, from, err := rx.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "hello" || from.(*net.UDPAddr).IP.String() != "10.77.0.1" {
		t.Fatalf("read %q from %v: %v", buf[:n], from, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := a.Exec(ctx, "ip", "route", "get", "10.77.9.9")
	if err == nil {
		t.Fatalf("the /32 on b's lo is routable from a without any routing: %s", out)
	}
	if err := a.LinkDown("va"); err != nil {
		t.Fatal(err)
	}
	out, err = a.IP("-br", "link", "show", "dev", "va")
	if err != nil || !strings.Contains(out, "DOWN") {
		t.Fatalf("link after LinkDown: %q %v", out, err)
	}
}

func TestDoSeesNamespaceInterfaces(t *testing.T) {
	needRoot(t)
	a, b := newNS(t), newNS(t)
	if err := Veth(End{NS: a, Dev: "insidea"}, End{NS: b, Dev: "insideb"}); err != nil {
		t.Fatal(err)
	}
	var found bool
	err := a.Do(func() error {
		_, err := net.InterfaceByName("insidea")
		found = err == nil
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !found {
		t.Fatal("Do did not run inside the namespace")
	}
	if _, err := net.InterfaceByName("insidea"); err == nil {
		t.Fatal("the calling namespace sees the namespace's interface: Do leaked")
	}
}

func TestStartKeepsRealPid(t *testing.T) {
	needRoot(t)
	ns := newNS(t)
	p, err := ns.Start("", "sleep", "30")
	if err != nil {
		t.Fatal(err)
	}
	// ip(8) execs the program: the same pid turns into sleep.
	var comm string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(p.Pid()) + "/comm")
		if err != nil {
			t.Fatal(err)
		}
		if comm = strings.TrimSpace(string(b)); comm == "sleep" {
			break
		}
	}
	if comm != "sleep" {
		t.Fatalf("pid %d is %q, want sleep", p.Pid(), comm)
	}
	if err := p.Stop(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	if !p.Exited() {
		t.Fatal("process still running after Stop")
	}
	if err := p.Stop(time.Second); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

func TestGroupCloseStopsAndDeletes(t *testing.T) {
	needRoot(t)
	var g Group
	t.Cleanup(func() { _ = g.Close(time.Second) })
	ns, err := g.NewNS("rcg")
	if err != nil {
		t.Fatal(err)
	}
	p, err := g.Start(ns, "", "sleep", "30")
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Close(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	if !p.Exited() {
		t.Fatal("process still running after Close")
	}
	if _, err := os.Stat("/var/run/netns/" + ns.Name); !os.IsNotExist(err) {
		t.Fatalf("namespace %s still there: %v", ns.Name, err)
	}
	if err := g.Close(time.Second); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
