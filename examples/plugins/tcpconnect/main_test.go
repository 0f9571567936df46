package main

import (
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ripcord/ripcord/plugins/sdk"
	"github.com/ripcord/ripcord/plugins/sdk/sdktest"
)

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
	ssh := sdktest.Serve(t, banner("SSH-2.0-OpenSSH_9.6\r\n"))
	ping := sdktest.Serve(t, pong)
	quiet := sdktest.Serve(t, silent)
	flood := sdktest.Serve(t, banner(strings.Repeat("x", 5000)))
	closed := sdktest.ClosedPort(t)
	for _, tc := range []struct {
		name, target string
		settings     map[string]any
		status       sdk.Status
		reason       string
		message      string
		phases       []string
	}{
		{name: "connect", target: ssh, status: sdk.StatusOK, reason: "ok", message: "connected to " + ssh, phases: []string{"connect"}},
		{name: "banner", target: ssh, settings: map[string]any{"expect": "SSH-"}, status: sdk.StatusOK, reason: "ok", phases: []string{"connect", "expect"}},
		{name: "send-expect", target: ping, settings: map[string]any{"send": "PING", "expect": "PONG"}, status: sdk.StatusOK, reason: "ok",
			phases: []string{"connect", "send", "expect"}},
		{name: "wrong banner", target: ssh, settings: map[string]any{"expect": "220 "}, status: sdk.StatusFailed, reason: "unexpected_response",
			message: `no "220 " from ` + ssh + ` (got "SSH-2.0-OpenSSH_9.6\r\n"): EOF`, phases: []string{"connect", "expect"}},
		{name: "silent", target: quiet, settings: map[string]any{"expect": "SSH-"}, status: sdk.StatusFailed, reason: "timeout",
			message: `no "SSH-" from ` + quiet + ` (got nothing): no answer within the check's deadline`, phases: []string{"connect", "expect"}},
		{name: "flood", target: flood, settings: map[string]any{"expect": "SSH-"}, status: sdk.StatusFailed, reason: "unexpected_response",
			message: "in the first 4096 bytes", phases: []string{"connect", "expect"}},
		{name: "max_read", target: flood, settings: map[string]any{"expect": "SSH-", "max_read": 10}, status: sdk.StatusFailed, reason: "unexpected_response",
			message: `in the first 10 bytes (got "xxxxxxxxxx")`, phases: []string{"connect", "expect"}},
		{name: "refused", target: closed, status: sdk.StatusFailed, reason: "refused",
			message: "connect to " + closed + ": dial tcp " + closed + ": connect: connection refused", phases: []string{"connect"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, _ := sdktest.Check(t, checker{}, 300*time.Millisecond, tc.target, sdktest.Settings(t, tc.settings))
			sdktest.Want(t, res, tc.status, tc.reason)
			if !strings.Contains(res.Message, tc.message) || !slices.Equal(sdktest.PhaseNames(res), tc.phases) {
				t.Errorf("got %q phases %v; want %q phases %v", res.Message, sdktest.PhaseNames(res), tc.message, tc.phases)
			}
		})
	}
}

func TestValidateTarget(t *testing.T) {
	for target, want := range map[string]string{
		"127.0.0.1:22":  "",
		"[::1]:22":      "",
		"localhost":     `"localhost": want host:port`,
		"dns://nowhere": `"dns://nowhere": want host:port`,
		"h:ssh":         `"h:ssh": port "ssh" is not a number from 1 to 65535`,
		"h:0":           `"h:0": port "0" is not a number from 1 to 65535`,
	} {
		err := checker{}.ValidateTarget(target)
		if (err == nil && want != "") || (err != nil && err.Error() != want) {
			t.Errorf("ValidateTarget(%q) = %v, want %q", target, err, want)
		}
	}
}

func TestConfigure(t *testing.T) {
	for settings, want := range map[string][]string{
		`{"send":"x","expect":"y"}`: nil,
		`{}`:                        nil,
		`{"expetc":"y"}`:            {"expetc"},
		`{"send":1,"expect":2}`:     {"expect", "send"}, // every error, not just the first
		`{"max_read":0}`:            {"max_read"},
		`{"expect":"` + strings.Repeat("y", 5000) + `"}`: {"expect"}, // longer than the default max_read
		`{"expect":"yyy","max_read":2}`:                  {"expect"},
	} {
		if got, errs := sdktest.ConfigureFields(t, checker{}, settings); !slices.Equal(got, want) {
			t.Errorf("Configure(%.40s): errors %v, want errors of %v", settings, errs, want)
		}
	}
}

func TestDescribe(t *testing.T) { sdktest.DescribeMatches(t, checker{}, "tcpconnect", settings{}) }

// TestThroughHost builds the plugin, pins it and runs it through the
// daemon's plugin host, as ripcord would.
func TestThroughHost(t *testing.T) {
	p := sdktest.Build(t, "tcpconnect", ".")
	target, fes := p.Configure(t, "dns://nowhere/", sdk.Settings(`{"expetc":"SSH-","max_read":"4k"}`))
	wantFes := []sdk.FieldError{
		{Field: "expetc", Message: "unknown setting (known: expect, max_read, send)"},
		{Field: "max_read", Message: "cannot use a string as int"},
	}
	if target != `"dns://nowhere/": want host:port` || !cmp.Equal(fes, wantFes) {
		t.Errorf("Configure: target error %q, field errors %v", target, fes)
	}
	up := sdktest.Serve(t, banner("SSH-2.0-test\r\n"))
	res := p.Check(t, 2*time.Second, up, sdk.Settings(`{"expect":"SSH-"}`))
	sdktest.Want(t, res, sdk.StatusOK, sdk.ReasonOK)
	res = p.Check(t, 2*time.Second, sdktest.ClosedPort(t), sdk.Settings(`{"expect":"SSH-"}`))
	sdktest.Want(t, res, sdk.StatusFailed, sdk.ReasonRefused)
}
