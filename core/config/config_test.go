package config

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ripcord/ripcord/checkers"
	"github.com/ripcord/ripcord/plugins/checkapi"
)

// testOptions resolves checker names from the real registry of built-ins
// (the daemon also looks in the plugin directory).
var testOptions = Options{KnownChecker: func(_ *Config, name string) error {
	if checkers.IsBuiltin(name) {
		return nil
	}
	return fmt.Errorf("unknown checker %q (built in: %s; no ripcord-checker-%s in the plugin directory)", name, strings.Join(checkers.Names(), ", "), name)
}}

// testConfigure validates the one setting the bad-setting case uses.
func testConfigure(_ context.Context, checker string, req *checkapi.Request) (string, []checkapi.FieldError, error) {
	var v struct {
		Scope string `json:"scope"`
	}
	_ = req.Settings.Decode(&v)
	if v.Scope != "" && v.Scope != "base" && v.Scope != "one" && v.Scope != "sub" {
		return "", []checkapi.FieldError{{Field: "scope", Message: "must be base, one or sub"}}, nil
	}
	return "", nil, nil
}

// builtinConfigure validates a check with the real built-in checker, as its
// plugin does (checkapi.ValidateSettings, checkapi.TargetValidator).
func builtinConfigure(t *testing.T) Configurer {
	return func(ctx context.Context, name string, req *checkapi.Request) (string, []checkapi.FieldError, error) {
		c, ok := checkers.Get(name)
		if !ok {
			t.Fatalf("no built-in checker %q", name)
		}
		fes, err := checkapi.ValidateSettings(ctx, c, req.Settings)
		targetErr := ""
		if tv, ok := c.(checkapi.TargetValidator); ok {
			if err := tv.ValidateTarget(req.Target); err != nil {
				targetErr = err.Error()
			}
		}
		return targetErr, fes, err
	}
}

func TestInvalidConfigs(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid-*.yml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 20 {
		t.Fatalf("found %d invalid configs in testdata, want at least 20", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			want := expectedError(t, f)
			c, err := Load(f, testOptions)
			if err == nil {
				err = c.ConfigureChecks(context.Background(), testConfigure)
			}
			if err == nil {
				t.Fatalf("no error, want %q", want)
			}
			if got := err.Error(); got != want {
				t.Errorf("error mismatch\n got: %s\nwant: %s", got, want)
			}
		})
	}
}

// expectedError reads the "# error: ..." first line of a testdata file.
func expectedError(t *testing.T, f string) string {
	t.Helper()
	fh, err := os.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	s := bufio.NewScanner(fh)
	s.Scan()
	line, ok := strings.CutPrefix(s.Text(), "# error: ")
	if !ok {
		t.Fatalf("%s: first line must be '# error: <expected error>'", f)
	}
	return line
}

func TestValidMinimalDefaults(t *testing.T) {
	c, err := Load("testdata/valid-minimal.yml", testOptions)
	if err != nil {
		t.Fatal(err)
	}
	s := c.Services[0]
	if s.Metric != DefaultMetric || s.DownMetric != 16 || s.DrainMetric != DefaultDrainMetric || s.Interface != "lo" || s.Require != "all" {
		t.Errorf("service defaults not applied: %+v", s)
	}
	ch := s.Checks[0]
	if ch.Interval.D() != DefaultCheckInterval || ch.Timeout.D() != DefaultCheckTimeout || ch.Rise != 2 || ch.Fall != 2 {
		t.Errorf("check defaults not applied: %+v", ch)
	}
	if string(ch.SettingsJSON) != "{}" {
		t.Errorf("settings = %s, want {}", ch.SettingsJSON)
	}
	if c.Control.Socket != DefaultSocket || c.RIP != nil || c.BGP != nil {
		t.Errorf("top-level defaults wrong: %+v", c)
	}
}

func TestValidFull(t *testing.T) {
	c, err := Load("testdata/valid-full.yml", testOptions)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ConfigureChecks(context.Background(), testConfigure); err != nil {
		t.Fatal(err)
	}
	s := c.Services[0]
	if s.Metric != 3 || s.FailbackDelay.String() != "1m0s" || s.Require != "any" {
		t.Errorf("service: %+v", s)
	}
	if n, _ := s.RequireN(); n != 1 {
		t.Errorf("RequireN = %d, want 1", n)
	}
	if got := string(s.Checks[0].SettingsJSON); got != `{"bind_dn":"cn=svc,dc=example,dc=com","min_entries":1,"password_file":"testdata/secret.txt"}` {
		t.Errorf("settings json = %s", got)
	}
	if c.RIP.UpdateInterval.String() != "10s" || c.RIP.ReadvertiseOnPoison || c.RIP.Auth.KeyID != 3 || c.RIP.Interfaces[0].Neighbors[0].String() != "10.0.1.1" {
		t.Errorf("rip: %+v", c.RIP)
	}
	if s.Assist == nil || s.Assist.Metric != 2 || s.Assist.Delay.String() != "300ms" || s.Assist.Peers[0].Interval.D() != DefaultCheckInterval {
		t.Errorf("assist: %+v", s.Assist)
	}
	if b := c.BGP; b.ASN != 65010 || b.Priority != "prepend" || b.HoldTime.String() != "9s" || b.Peers[0].Port != 1179 || b.Peers[0].PasswordFile != "testdata/secret.txt" {
		t.Errorf("bgp: %+v", b)
	}
	if s.Checks[0].FastInterval.String() != "100ms" || s.Checks[1].FastInterval.D() != DefaultFastInterval {
		t.Errorf("fast_interval: %s, %s", s.Checks[0].FastInterval, s.Checks[1].FastInterval)
	}
	r := s.Relay
	if c.RelayAddress.String() != "10.0.1.10" || r == nil || fmt.Sprint(r.ParsedPorts) != "[tcp/389 tcp/636 udp/1812]" || r.Metric != 12 ||
		r.Quiet.String() != "1.5s" || r.Max.String() != "20s" || r.Fallback || !r.OnDrain {
		t.Errorf("relay: %+v", r)
	}
	// The peer defaults to the assist peer's host, watched by its check.
	if fmt.Sprint(r.Peers, r.PeerChecks) != "[10.0.2.10] [sb]" {
		t.Errorf("relay peers = %v checks %v", r.Peers, r.PeerChecks)
	}
	if len(c.AllChecks()) != 3 {
		t.Errorf("AllChecks = %d, want 3", len(c.AllChecks()))
	}
}

func TestValidDualStack(t *testing.T) {
	o := testOptions
	o.Portable = true // lo has no link-local address for ripng
	c, err := Load("testdata/valid-dual-stack.yml", o)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(c.Services[0].VIPs(), c.Services[1].VIPs()); got != "[192.0.2.10/32 2001:db8::10/128] [fd00:10::80/128]" {
		t.Errorf("VIPs = %s", got)
	}
	r := c.RIPng
	if r == nil || r.UpdateInterval.String() != "5s" || !r.ReadvertiseOnPoison || r.Interfaces[0].Neighbors[0].String() != "fe80::1" {
		t.Errorf("ripng: %+v", r)
	}
	if p := c.BGP.Peers[1].Address; p.String() != "2001:db8:1::1" {
		t.Errorf("bgp peer = %s", p)
	}
	if w := c.Warnings(); len(w) != 0 {
		t.Errorf("warnings: %q", w)
	}
}

// A secret placed inline in a check's settings by mistake (instead of in a
// *_file) must not be echoed: errors name the key, never its value. Each
// case gets as far as the checker's own validation of the settings (the
// real built-in checker's Configure), and its error must be about them.
func TestSecretsNeverInConfigErrors(t *testing.T) {
	realConfigure := builtinConfigure(t)
	n := 0
	check := func(checker, target, settings string) string {
		n++
		return fmt.Sprintf("      - {name: c%d, checker: %s, target: %q, settings: %s}\n", n, checker, target, settings)
	}
	for _, tc := range []struct {
		name, checks, wantKey string
	}{
		{"ldap password", check("ldap", "ldap://h", "{bind_dn: cn=x, password: hunter2}"), "settings.password"},
		{"ldap password as a list", check("ldap", "ldap://h", "{password: [hunter2, x]}"), "settings.password"},
		{"http login password", check("http", "http://h/", "{login: {url: /l, username: u, password: hunter2}}"), "password"},
		{"radius secret", check("radius", "h:1812", "{secret: hunter2}"), "settings.secret"},
		{"another check's bad setting", check("ldap", "ldap://h", "{password: hunter2}") +
			check("ldap", "ldap://h", "{scope: bogus}"), "checks[1].settings.scope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			yml := "services:\n  - name: a\n    vip: 192.0.2.1\n    checks:\n" + tc.checks
			c, err := Parse("x.yml", []byte(yml), testOptions)
			if err == nil {
				err = c.ConfigureChecks(context.Background(), realConfigure)
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantKey) {
				t.Fatalf("err = %v, want an error about %s", err, tc.wantKey)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("the error shows the secret: %v", err)
			}
		})
	}
}

func TestAliasBombIsAnError(t *testing.T) {
	// 300 services, each aliasing a list of 400 aliased checks: 120,000
	// checks to decode from a 20 KB file.
	var b strings.Builder
	b.WriteString("services:\n  - {name: s0, vip: 192.0.2.1, checks: &cs [&c {name: c, checker: http, target: t}")
	for range 399 {
		b.WriteString(", *c")
	}
	b.WriteString("]}\n")
	for i := 1; i < 300; i++ {
		fmt.Fprintf(&b, "  - {name: s%d, vip: 192.0.2.%d, checks: *cs}\n", i, i%250+1)
	}
	done := make(chan error, 1)
	go func() {
		_, err := Parse("a.yml", []byte(b.String()), testOptions)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "too large") {
			t.Fatalf("err = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("an alias bomb keeps the parser busy")
	}
}

func TestRIPDefaults(t *testing.T) {
	c, err := Parse("r.yml", []byte("rip: {interfaces: [{name: lo}]}\nservices:\n  - {name: a, vip: 192.0.2.1, checks: [{name: c, checker: http, target: t}]}\n"), testOptions)
	if err != nil {
		t.Fatal(err)
	}
	if r := c.RIP; !r.ReadvertiseOnPoison || r.UpdateInterval.D() != DefaultRIPInterval || r.Auth.Mode != "none" {
		t.Fatalf("rip defaults: %+v", r)
	}
}

// A relay may carry a service's vip6 alone, with no warning.
func TestRelayVIP6(t *testing.T) {
	o := testOptions
	o.Portable = true
	c, err := Parse("f.yml", []byte("ripng: {interfaces: [{name: lo}]}\nservices:\n  - {name: a, vip6: \"2001:db8::1\", checks: [{name: c, checker: http, target: t}], assist: {peers: [{name: p, checker: peer, target: \"http://10.0.0.2:9473\"}]}, relay: {ports: [tcp/80]}}\n"), o)
	if err != nil {
		t.Fatal(err)
	}
	if c.Services[0].Relay == nil {
		t.Fatal("no relay")
	}
	for _, w := range c.Warnings() {
		if strings.Contains(w, "relay") {
			t.Errorf("warning %q", w)
		}
	}
}

// A family whose addresses reach no router is a warning, as is a ripng
// section with nothing to announce.
func TestFamilyWarnings(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"rip: {interfaces: [{name: lo}]}\nservices:\n  - {name: a, vip6: \"2001:db8::1\", checks: [{name: c, checker: http, target: t}]}\n",
			"services have a vip6 but there is no ripng or bgp section: the IPv6 addresses are announced to no router"},
		{"ripng: {interfaces: [{name: lo}]}\nservices:\n  - {name: a, vip: 192.0.2.1, checks: [{name: c, checker: http, target: t}]}\n",
			"services have a vip but there is no rip or bgp section: the IPv4 addresses are announced to no router"},
		{"bgp: {asn: 1, router_id: 10.0.0.1, peers: [{address: 10.0.0.2, asn: 2}]}\nservices:\n  - {name: a, vip6: \"2001:db8::1\", checks: [{name: c, checker: http, target: t}]}\n",
			"services have a vip6 but bgp has only IPv4 peers and no next_hop6: BGP announces no IPv6 address"},
	} {
		o := testOptions
		o.Portable = true
		c, err := Parse("f.yml", []byte(tc.text), o)
		if err != nil {
			t.Fatal(err)
		}
		if w := c.Warnings(); !slices.Contains(w, tc.want) {
			t.Errorf("warnings = %q, want %q among them", w, tc.want)
		}
	}
}

func TestWarnings(t *testing.T) {
	c, err := Load("testdata/valid-minimal.yml", testOptions)
	if err != nil {
		t.Fatal(err)
	}
	if w := c.Warnings(); len(w) != 1 || !strings.Contains(w[0], "announced to no router") {
		t.Fatalf("warnings = %q", w)
	}
	// valid-full names its secret relative to its own directory; a copy
	// elsewhere, with the secret only its owner can read, warns of nothing.
	dir := t.TempDir()
	full, _ := os.ReadFile("testdata/valid-full.yml")
	os.WriteFile(filepath.Join(dir, "full.yml"), full, 0o600)
	os.WriteFile(filepath.Join(dir, "secret.txt"), []byte("s3cret\n"), 0o600)
	c, err = Load(filepath.Join(dir, "full.yml"), testOptions)
	if err != nil {
		t.Fatal(err)
	}
	if w := c.Warnings(); len(w) != 0 {
		t.Fatalf("warnings for a complete config: %q", w)
	}
	os.Chmod(filepath.Join(dir, "secret.txt"), 0o640)
	if w := c.Warnings(); len(w) != 3 || w[0] != "rip.auth.key_file: "+dir+"/secret.txt is readable by group or others (mode 0640): chmod 600 it" ||
		!strings.HasPrefix(w[1], "bgp.peers[0].password_file: "+dir+"/secret.txt is readable") ||
		!strings.HasPrefix(w[2], "services[0].checks[0].settings.password_file: "+dir+"/secret.txt is readable") {
		t.Fatalf("warnings for group-readable secrets: %q", w)
	}
	c, err = Parse("p.yml", []byte(`
rip: {interfaces: [{name: lo}]}
services:
  - name: a
    vip: 192.0.2.1
    failback_delay: 1s
    checks: [{name: c, checker: http, target: t}]
    assist: {peers: [{name: b, checker: peer, target: "http://10.0.0.2:9473"}]}
`), testOptions)
	if err != nil {
		t.Fatal(err)
	}
	if w := c.Warnings(); len(w) != 2 || !strings.Contains(w[0], "metrics_listen") || !strings.Contains(w[1], "failback_delay 1s is short") {
		t.Fatalf("warnings = %q", w)
	}
}

// TestFilesAreReadSafely: a named pipe as a secret or as the config fails at
// once instead of blocking, a huge config is refused before it is parsed, and
// relative *_file paths start at the config's directory, not the working one.
func TestFilesAreReadSafely(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "pw"), []byte("pw\n"), 0o600)
	cfg := func(pwFile string) string {
		p := filepath.Join(dir, "c.yml")
		os.WriteFile(p, []byte("services:\n  - name: a\n    vip: 192.0.2.1\n    checks:\n      - {name: c, checker: ldap, target: t, settings: {password_file: "+pwFile+"}}\n"), 0o600)
		return p
	}
	load := func(path string) error {
		done := make(chan error, 1)
		go func() { _, err := Load(path, testOptions); done <- err }()
		select {
		case err := <-done:
			return err
		case <-time.After(5 * time.Second):
			t.Fatalf("Load(%s) blocks", path)
			return nil
		}
	}
	if err := load(cfg("fifo")); err == nil || err.Error() != dir+"/c.yml:5:71: services[0].checks[0].settings.password_file: "+dir+"/fifo is a named pipe (FIFO), not a regular file" {
		t.Errorf("fifo secret: %v", err)
	}
	if err := load(fifo); err == nil || !strings.Contains(err.Error(), "named pipe (FIFO), not a regular file") {
		t.Errorf("fifo config: %v", err)
	}
	t.Chdir(t.TempDir()) // "pw" is not in the working directory
	if err := load(cfg("pw")); err != nil {
		t.Errorf("relative secret next to the config: %v", err)
	}
	huge := filepath.Join(dir, "huge.yml")
	os.WriteFile(huge, []byte("services: []\n"+strings.Repeat("# padding\n", MaxConfigSize/10)), 0o600)
	if err := load(huge); err == nil || err.Error() != huge+":1:1: (file): larger than 1 MiB (a ripcord config is a few KiB): not parsed" {
		t.Errorf("huge config: %v", err)
	}
	if _, err := Parse("x.yml", make([]byte, MaxConfigSize+1), testOptions); err == nil || !strings.Contains(err.Error(), "larger than 1 MiB") {
		t.Errorf("huge config text: %v", err)
	}
}

func TestNotRoutable(t *testing.T) {
	for a, want := range map[string]string{
		"0.0.0.0":           "is in 0.0.0.0/8 (this host on this network)",
		"0.1.2.3":           "is in 0.0.0.0/8 (this host on this network)",
		"127.0.0.1":         "is a loopback address (127.0.0.0/8)",
		"169.254.10.1":      "is link-local (169.254.0.0/16, never forwarded by routers)",
		"239.1.1.1":         "is a multicast address (224.0.0.0/4)",
		"255.255.255.255":   "is the broadcast address",
		"240.0.0.1":         "is reserved (240.0.0.0/4)",
		"10.77.100.1":       "",
		"192.0.2.10":        "",
		"223.255.255.254":   "",
		"::":                "is the unspecified address (::)",
		"::1":               "is the loopback address (::1)",
		"fe80::1":           "is link-local (fe80::/10, never forwarded by routers)",
		"ff02::9":           "is a multicast address (ff00::/8)",
		"::ffff:10.0.0.1":   "is IPv4-mapped (::ffff:0:0/96; an IPv4 address goes in vip)",
		"::10.0.0.1":        "is in ::/96 (IPv4-compatible, deprecated)",
		"100::1":            "is in the discard prefix (100::/64)",
		"fec0::1":           "is site-local (fec0::/10, deprecated)",
		"2001:db8::10":      "",
		"fd00:10::80":       "",
		"2a00:1450:4001::1": "",
	} {
		if got := notRoutable(netip.MustParseAddr(a)); got != want {
			t.Errorf("%s: %q, want %q", a, got, want)
		}
	}
}

func TestQuotedBoolRefused(t *testing.T) {
	_, err := Parse("q.yml", []byte("rip: {interfaces: [{name: lo}], readvertise_on_poison: \"false\"}\nservices:\n  - {name: a, vip: 192.0.2.1, checks: [{name: c, checker: http, target: t}]}\n"), testOptions)
	if err == nil || err.Error() != `q.yml:1:56: rip.readvertise_on_poison: expected true or false, got the string "false" (remove the quotes)` {
		t.Fatalf("err = %v", err)
	}
}

func TestRelayDefaults(t *testing.T) {
	c, err := Parse("r.yml", []byte(`
services:
  - name: a
    vip: 192.0.2.1
    drain_metric: 9
    checks: [{name: c, checker: http, target: t, interval: 300ms, timeout: 200ms}]
    assist:
      peers:
        - {name: b, checker: peer, target: "http://10.0.0.2:9473"}
        - {name: c, checker: peer, target: "10.0.0.3:9473"}
        - {name: d, checker: peer, target: "peer.example:9473"}
    relay: {ports: [udp/1812]}
`), testOptions)
	if err != nil {
		t.Fatal(err)
	}
	s := c.Services[0]
	r := s.Relay
	if r.Metric != 9 || r.Quiet.D() != DefaultRelayQuiet || r.Max.D() != DefaultRelayMax || !r.Fallback || r.OnDrain {
		t.Errorf("relay defaults: %+v", r)
	}
	if fmt.Sprint(r.Peers, r.PeerChecks) != "[10.0.0.2 10.0.0.3] [b c]" {
		t.Errorf("relay peers = %v checks %v", r.Peers, r.PeerChecks)
	}
	if s.Checks[0].FastInterval.D() != 300*time.Millisecond {
		t.Errorf("fast_interval defaults to %s, want the shorter interval", s.Checks[0].FastInterval)
	}
}

// Each field error is reported at its own key, or at the list entry it
// names, in block and in flow style; several errors are all reported.
func TestSettingsErrorsAtTheirKey(t *testing.T) {
	const block = `services:
  - name: a
    vip: 192.0.2.1
    checks:
      - name: dns
        checker: ldap
        target: ldap://h
        settings:
          name: 42
          expect:
            - 192.0.2.10
            - 192.0.2.300
          nested:
            inner:
              deep: x
          expetc: y
`
	const flow = `services:
  - name: a
    vip: 192.0.2.1
    checks:
      - {name: dns, checker: ldap, target: "ldap://h", settings: {name: 42, expect: [192.0.2.10, 192.0.2.300], nested: {inner: {deep: x}}, expetc: y}}
`
	const none = `services:
  - name: a
    vip: 192.0.2.1
    checks:
      - name: dns
        checker: ldap
        target: ldap://h
`
	const key = "services[0].checks[0].settings"
	for _, tc := range []struct {
		name, yml string
		fes       []checkapi.FieldError
		want      []string
	}{
		{"block: each key at its line", block,
			[]checkapi.FieldError{{Field: "name", Message: "m1"}, {Field: "expetc", Message: "m2"}},
			[]string{"x.yml:9:11: " + key + ".name: m1", "x.yml:16:11: " + key + ".expetc: m2"}},
		{"block: a list entry", block, []checkapi.FieldError{{Field: "expect[1]", Message: "m"}},
			[]string{"x.yml:12:15: " + key + ".expect[1]: m"}},
		{"block: nested keys", block, []checkapi.FieldError{{Field: "nested.inner.deep", Message: "m"}},
			[]string{"x.yml:15:15: " + key + ".nested.inner.deep: m"}},
		{"block: a missing nested key at its parent", block, []checkapi.FieldError{{Field: "nested.inner.gone", Message: "required"}},
			[]string{"x.yml:14:13: " + key + ".nested.inner.gone: required"}},
		{"block: a missing key at settings", block, []checkapi.FieldError{{Field: "service", Message: "required"}},
			[]string{"x.yml:8:9: " + key + ".service: required"}},
		{"block: an entry past the list's end at the list's key", block, []checkapi.FieldError{{Field: "expect[7]", Message: "m"}},
			[]string{"x.yml:10:11: " + key + ".expect[7]: m"}},
		{"block: the whole settings", block, []checkapi.FieldError{{Message: "m"}}, []string{"x.yml:8:9: " + key + ": m"}},
		{"flow: each key at its column", flow,
			[]checkapi.FieldError{{Field: "name", Message: "m1"}, {Field: "expect[1]", Message: "m2"}, {Field: "nested.inner.deep", Message: "m3"}, {Field: "expetc", Message: "m4"}},
			[]string{"x.yml:5:67: " + key + ".name: m1", "x.yml:5:98: " + key + ".expect[1]: m2",
				"x.yml:5:129: " + key + ".nested.inner.deep: m3", "x.yml:5:140: " + key + ".expetc: m4"}},
		{"no settings: at the check's name", none, []checkapi.FieldError{{Field: "service", Message: "required"}},
			[]string{"x.yml:5:9: " + key + ".service: required"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantConfigureErrors(t, tc.yml, func(context.Context, string, *checkapi.Request) (string, []checkapi.FieldError, error) {
				return "", tc.fes, nil
			}, tc.want)
		})
	}
}

// The built-in http checker's own errors, through Configure, at their keys:
// a typo on the third key of a block mapping, and every type error of a
// flow mapping.
func TestBuiltinSettingsErrorsAtTheirKey(t *testing.T) {
	const yml = `services:
  - name: a
    vip: 192.0.2.1
    checks:
      - name: page
        checker: http
        target: http://127.0.0.1/
        settings:
          method: GET
          expect_status: [200, 204]
          bodycontains: Welcome
      - {name: page2, checker: http, target: "http://127.0.0.1/", settings: {method: 42, expect_status: [200, x], max_body: big}}
`
	want := []string{
		"x.yml:11:11: services[0].checks[0].settings.bodycontains: unknown setting (known: body_contains, body_regex, ca_file, cert_warn_days, expect_status, follow_redirects, headers, host, login, max_body, method, server_name)",
		"x.yml:12:78: services[0].checks[1].settings.method: cannot use the number 42 as string",
		"x.yml:12:111: services[0].checks[1].settings.expect_status[1]: cannot use a string as int",
		"x.yml:12:115: services[0].checks[1].settings.max_body: cannot use a string as int",
	}
	wantConfigureErrors(t, yml, builtinConfigure(t), want)
}

// A target the checker refuses is reported at the target, in block and flow
// style, together with the check's bad settings.
func TestTargetErrorsAtTheTarget(t *testing.T) {
	const yml = `services:
  - name: a
    vip: 192.0.2.1
    checks:
      - name: page
        checker: http
        target: ftp://127.0.0.1/
        settings: {method: 1}
      - {name: radius, checker: radius, target: "127.0.0.1", settings: {secret_file: testdata/secret.txt, mode: status_server}}
      - {name: ldap, checker: ldap, target: "ldap://h/dc=example"}
      - {name: peer, checker: peer, target: "h:9473", settings: {service: a}}
`
	want := []string{
		`x.yml:7:17: services[0].checks[0].target: "ftp://127.0.0.1/": want an http:// or https:// URL`,
		`x.yml:8:20: services[0].checks[0].settings.method: cannot use the number 1 as string`,
		`x.yml:9:49: services[0].checks[1].target: "127.0.0.1": want host:port: address 127.0.0.1: missing port in address`,
		`x.yml:10:45: services[0].checks[2].target: "ldap://h/dc=example": base, scope and filter are settings, not URL parts`,
		`x.yml:11:45: services[0].checks[3].target: "h:9473" is not an http:// URL of the peer's control.metrics_listen`,
	}
	wantConfigureErrors(t, yml, builtinConfigure(t), want)
}

// wantConfigureErrors fails the test unless configuring the checks of yml
// gives exactly the errors want, one per line.
func wantConfigureErrors(t *testing.T, yml string, configure Configurer, want []string) {
	t.Helper()
	c, err := Parse("x.yml", []byte(yml), testOptions)
	if err != nil {
		t.Fatal(err)
	}
	err = c.ConfigureChecks(context.Background(), configure)
	if err == nil || !slices.Equal(strings.Split(err.Error(), "\n"), want) {
		t.Errorf("got\n%v\nwant\n%s", err, strings.Join(want, "\n"))
	}
}
