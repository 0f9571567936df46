package main

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ripcord/ripcord/plugins/sdk/sdktest"
)

// thirdParty builds the tcpconnect example as a pinned plugin and returns
// its plugin directory and pin.
func thirdParty(t *testing.T) (dir, pin string) {
	t.Helper()
	p := sdktest.Build(t, "tcpconnect", "../../examples/plugins/tcpconnect")
	return filepath.Dir(p.Path), p.SHA256
}

// A third-party plugin as users meet it: listed by `ripcord checkers -c`,
// run by `ripcord check -v` with its phases, and its config errors (target,
// settings in block and flow style) reported by `validate` at their line.
func TestThirdPartyPluginCommands(t *testing.T) {
	dir, pin := thirdParty(t)
	ssh := sdktest.Serve(t, func(c net.Conn) { io.WriteString(c, "SSH-2.0-test\r\n") })
	good := writeConfig(t, `plugins:
  dir: `+dir+`
  sha256:
    tcpconnect: `+pin+`
services:
  - name: x
    vip: 192.0.2.22
    checks:
      - name: port
        checker: tcpconnect
        target: `+ssh+`
        settings: {expect: "SSH-"}
`)
	out, code := run(t, "checkers", "-c", good)
	for _, want := range []string{
		"ldap ", "(built in)",
		"tcpconnect 0.2.0", "(plugin " + dir + "/ripcord-checker-tcpconnect, sha256 " + pin + ", pinned)",
		"max_read", "int [default 4096]",
	} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("checkers -c: exit %d, output lacks %q:\n%s", code, want, out)
		}
	}
	out, code = run(t, "check", "-v", "-c", good)
	if code != 0 || !regexp.MustCompile(`x\s+port\s+tcpconnect\s+ok\s+ok`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^x port:\n  phases: connect \S+, expect \S+$`).MatchString(out) {
		t.Errorf("check -v: exit %d\n%s", code, out)
	}

	bad := writeConfig(t, `plugins:
  dir: `+dir+`
services:
  - name: x
    vip: 192.0.2.22
    checks:
      - name: port
        checker: tcpconnect
        target: dns://nowhere/
        settings:
          send: "PING"
          expetc: "PONG"
          max_read: 0
      - {name: flow, checker: tcpconnect, target: "127.0.0.1:22", settings: {send: 1, expect: [a]}}
`)
	out, code = run(t, "validate", "-c", bad)
	want := bad + `:9:17: services[0].checks[0].target: "dns://nowhere/": want host:port
` + bad + `:12:11: services[0].checks[0].settings.expetc: unknown setting (known: expect, max_read, send)
` + bad + `:13:11: services[0].checks[0].settings.max_read: must be from 1 to 1048576
` + bad + `:14:78: services[0].checks[1].settings.send: cannot use the number 1 as string
` + bad + `:14:87: services[0].checks[1].settings.expect: cannot use a list as string
`
	if code != 1 || out != "ripcord: "+want {
		t.Errorf("validate: exit %d\n%s\nwant\n%s", code, out, want)
	}
}

// A plugin installed under another name than its own is refused.
func TestPluginUnderAnotherNameRefused(t *testing.T) {
	dir, _ := thirdParty(t)
	if err := os.Rename(filepath.Join(dir, "ripcord-checker-tcpconnect"), filepath.Join(dir, "ripcord-checker-resolver")); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, `plugins: {dir: `+dir+`}
services:
  - name: x
    vip: 192.0.2.22
    checks:
      - {name: port, checker: resolver, target: "127.0.0.1:22"}
`)
	out, code := run(t, "validate", "-c", cfg)
	if want := `:6:31: services[0].checks[0].checker: plugins: checker resolver: ` + dir + `/ripcord-checker-resolver: the plugin answers as checker "tcpconnect", not "resolver"`; code != 1 || !strings.Contains(out, want) {
		t.Errorf("validate: exit %d\n%s\nwant it to contain %s", code, out, want)
	}
	if strings.Contains(out, "restarting") {
		t.Errorf("validate announces a restart it will not make:\n%s", out)
	}
}
