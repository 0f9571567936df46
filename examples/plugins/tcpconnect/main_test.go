package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ripcord/ripcord/plugins"
	"github.com/ripcord/ripcord/plugins/sdk"
)

// serve listens on 127.0.0.1:0 and runs handle for each connection.
func serve(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// closedPort returns an address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func banner(s string) func(net.Conn) {
	return func(c net.Conn) { io.WriteString(c, s) }
}

// pong answers "PONG\n" once it has read "PING".
func pong(c net.Conn) {
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err == nil && string(buf) == "PING" {
		io.WriteString(c, "PONG\n")
	}
}

func silent(c net.Conn) { io.Copy(io.Discard, c) }

func TestCheck(t *testing.T) {
	ssh := serve(t, banner("SSH-2.0-OpenSSH_9.6\r\n"))
	ping := serve(t, pong)
	quiet := serve(t, silent)
	flood := serve(t, banner(strings.Repeat("x", 5000)))
	closed := closedPort(t)
	for _, tc := range []struct {
		name, target, settings string
		status                 sdk.Status
		reason, message        string
		phases                 []string
	}{
		{name: "connect", target: ssh, status: sdk.StatusOK, reason: "ok", message: "connected to " + ssh, phases: []string{"connect"}},
		{name: "banner", target: ssh, settings: `{"expect":"SSH-"}`, status: sdk.StatusOK, reason: "ok", phases: []string{"connect", "expect"}},
		{name: "send-expect", target: ping, settings: `{"send":"PING","expect":"PONG"}`, status: sdk.StatusOK, reason: "ok",
			phases: []string{"connect", "send", "expect"}},
		{name: "wrong banner", target: ssh, settings: `{"expect":"220 "}`, status: sdk.StatusFailed, reason: "unexpected_response",
			message: `no "220 " from ` + ssh + `: connection closed (got "SSH-2.0-OpenSSH_9.6\r\n")`, phases: []string{"connect", "expect"}},
		{name: "silent", target: quiet, settings: `{"expect":"SSH-"}`, status: sdk.StatusFailed, reason: "timeout",
			message: `no "SSH-" from ` + quiet + ` before the deadline (got nothing)`, phases: []string{"connect", "expect"}},
		{name: "flood", target: flood, settings: `{"expect":"SSH-"}`, status: sdk.StatusFailed, reason: "unexpected_response",
			message: "not within the first 4096 bytes", phases: []string{"connect", "expect"}},
		{name: "refused", target: closed, status: sdk.StatusFailed, reason: "refused",
			message: "connect to " + closed + ": connection refused", phases: []string{"connect"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			res, err := checker{}.Check(ctx, &sdk.Request{Target: tc.target, Settings: sdk.Settings(tc.settings)})
			if err != nil {
				t.Fatal(err)
			}
			var phases []string
			for _, p := range res.Phases {
				phases = append(phases, p.Name)
			}
			if res.Status != tc.status || res.Reason != tc.reason || !strings.Contains(res.Message, tc.message) ||
				!cmp.Equal(phases, tc.phases) {
				t.Errorf("got %s %s %q phases %v; want %s %s %q phases %v",
					res.Status, res.Reason, res.Message, phases, tc.status, tc.reason, tc.message, tc.phases)
			}
		})
	}
}

func TestCheckBadTarget(t *testing.T) {
	_, err := checker{}.Check(context.Background(), &sdk.Request{Target: "localhost"})
	if err == nil || err.Error() != `target "localhost": want host:port` {
		t.Errorf("error %v", err)
	}
}

func TestConfigure(t *testing.T) {
	for settings, want := range map[string][]sdk.FieldError{
		`{"send":"x","expect":"y"}`: nil,
		`{}`:                        nil,
		`{"expetc":"y"}`:            {{Field: "expetc", Message: "unknown setting"}},
		`{"send":1}`:                {{Field: "send", Message: "cannot use a number as string"}},
		`{"expect":"` + strings.Repeat("y", 5000) + `"}`: {{Field: "expect", Message: "longer than 4096 bytes"}},
	} {
		got, err := checker{}.Configure(context.Background(), sdk.Settings(settings))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Configure(%.40s) (-want +got):\n%s", settings, diff)
		}
	}
}

// TestThroughHost builds the plugin, installs it in a plugin directory, pins
// it and runs checks through the daemon's plugin host, as ripcord would.
func TestThroughHost(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	dir := t.TempDir()
	exe := filepath.Join(dir, plugins.FilePrefix+"tcpconnect")
	if out, err := exec.Command(gobin, "build", "-o", exe, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)

	h := plugins.NewHost(plugins.Options{Dir: dir, SHA256: map[string]string{"tcpconnect": hex.EncodeToString(sum[:])}})
	defer h.Close()
	ctx := context.Background()

	d, err := h.Describe(ctx, "tcpconnect")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(checker{}.Describe(), d); diff != "" {
		t.Errorf("Describe (-want +got):\n%s", diff)
	}
	_, errs, err := h.Configure(ctx, "tcpconnect", &sdk.Request{Target: "127.0.0.1:22", Settings: sdk.Settings(`{"expetc":"SSH-"}`)})
	if err != nil || len(errs) != 1 || errs[0].Field != "expetc" {
		t.Errorf("Configure with a typo: %v, %v", errs, err)
	}

	up := serve(t, banner("SSH-2.0-test\r\n"))
	down := closedPort(t)
	for _, tc := range []struct {
		target, reason string
	}{
		{up, "ok"},
		{down, "refused"},
	} {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		res := h.Check(ctx, "tcpconnect", &sdk.Request{Target: tc.target, Settings: sdk.Settings(`{"expect":"SSH-"}`)})
		cancel()
		if res.Reason != tc.reason {
			t.Errorf("check %s: got %s %s %q, want reason %s", tc.target, res.Status, res.Reason, res.Message, tc.reason)
		}
	}
}
