package services

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// nginxNetns makes a namespace with lo up and deletes it at cleanup.
func nginxNetns(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for ip netns")
	}
	var b [3]byte
	rand.Read(b[:])
	ns := "rc" + hex.EncodeToString(b[:])
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	if out, err := exec.Command("ip", "-n", ns, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up: %v: %s", err, out)
	}
	return ns
}

// nginxDialInNetns opens a TCP connection from inside namespace ns: the
// socket is created on a thread switched into ns and stays there.
func nginxDialInNetns(ctx context.Context, ns, addr string) (net.Conn, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return nil, err
	}
	defer orig.Close()
	target, err := netns.GetFromName(ns)
	if err != nil {
		return nil, err
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		return nil, err
	}
	conn, dialErr := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err := netns.Set(orig); err != nil {
		runtime.LockOSThread() // leave the thread locked: the runtime discards it
		if conn != nil {
			conn.Close()
		}
		return nil, fmt.Errorf("restore netns: %w", err)
	}
	return conn, dialErr
}

// The lab runs one FreeRADIUS and one nginx per replica namespace, on the
// same well-known ports.
func TestFreeRADIUSAndNginxInNetns(t *testing.T) {
	ns := nginxNetns(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	rad, err := StartFreeRADIUS(ctx, RadiusOptions{Dir: t.TempDir(), Netns: ns, Secret: "s3cret", RequireMA: true,
		Marker: "in-" + ns, Listen: netip.MustParseAddrPort("0.0.0.0:1812")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rad.Stop() })
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "radclient", "-x", "-r", "1", "-t", "2", "127.0.0.1:1812", "auth", "s3cret")
	cmd.Stdin = strings.NewReader("User-Name = alice\nUser-Password = alice-pw\nMessage-Authenticator = 0x00\n")
	if out, _ := cmd.CombinedOutput(); !strings.Contains(string(out), "Access-Accept") || !strings.Contains(string(out), "in-"+ns) {
		t.Fatalf("radclient in %s: want Access-Accept naming the namespace, got:\n%s", ns, out)
	}

	web, err := StartNginx(ctx, NginxOptions{Dir: t.TempDir(), Netns: ns, Marker: "in-" + ns,
		Listen: netip.MustParseAddrPort("0.0.0.0:80")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { web.Stop() })
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) { return nginxDialInNetns(ctx, ns, addr) },
	}}
	resp, err := client.Get("http://127.0.0.1:80/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != "ok in-"+ns {
		t.Fatalf("/healthz in %s: %s %q", ns, resp.Status, body)
	}
	if err := web.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := rad.Stop(); err != nil {
		t.Fatal(err)
	}
}
