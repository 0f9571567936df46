package http

import (
	"context"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ripcord/ripcord/lab/services"
	"github.com/ripcord/ripcord/plugins/checkapi"
	"github.com/ripcord/ripcord/plugins/sdk/sdktest"
)

// tlsPortal is one nginx with a plain listener and four HTTPS listeners:
// valid, expired, expiring in 2 days, and signed by another CA.
type tlsPortal struct {
	nginx                                  *services.Nginx
	caFile                                 string
	plain, valid, expired, expiring, other string // base URLs
}

func startNginx(t testing.TB, opts services.NginxOptions) *services.Nginx {
	t.Helper()
	if _, err := exec.LookPath("nginx"); err != nil {
		t.Fatal("nginx not found: install the Debian package nginx")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	opts.Dir = t.TempDir()
	srv, err := services.StartNginx(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Error(err)
		}
	})
	return srv
}

func startTLSPortal(t testing.TB) *tlsPortal {
	t.Helper()
	ca, err := services.NewCA("ripcord test CA")
	if err != nil {
		t.Fatal(err)
	}
	otherCA, err := services.NewCA("somebody else's CA")
	if err != nil {
		t.Fatal(err)
	}
	names := services.LeafOptions{DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}}
	issue := func(ca *services.CA, notBefore, notAfter time.Time) *services.Leaf {
		o := names
		o.NotBefore, o.NotAfter = notBefore, notAfter
		leaf, err := ca.Issue(o)
		if err != nil {
			t.Fatal(err)
		}
		return leaf
	}
	now := time.Now()
	srv := startNginx(t, services.NginxOptions{Marker: "replica-a", TLS: []services.NginxTLS{
		{Cert: issue(ca, now.Add(-time.Hour), now.Add(90*24*time.Hour))},
		{Cert: issue(ca, now.Add(-30*24*time.Hour), now.Add(-24*time.Hour))},
		{Cert: issue(ca, now.Add(-time.Hour), now.Add(2*24*time.Hour))},
		{Cert: issue(otherCA, now.Add(-time.Hour), now.Add(90*24*time.Hour))},
	}})
	return &tlsPortal{
		nginx:    srv,
		caFile:   writeFile(t, "ca.pem", ca.CertPEM),
		plain:    "http://" + srv.Addr.String(),
		valid:    "https://" + srv.TLSAddrs[0].String(),
		expired:  "https://" + srv.TLSAddrs[1].String(),
		expiring: "https://" + srv.TLSAddrs[2].String(),
		other:    "https://" + srv.TLSAddrs[3].String(),
	}
}

func TestAgainstNginx(t *testing.T) {
	p := startTLSPortal(t)
	pw := writeFile(t, "pw", []byte(services.NginxLoginPassword+"\n"))
	badPW := writeFile(t, "badpw", []byte("not-the-password\n"))
	page := map[string]any{"ca_file": p.caFile, "body_contains": `name="password"`}
	with := func(extra map[string]any) map[string]any {
		m := map[string]any{}
		for k, v := range page {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	login := func(pwFile string) map[string]any {
		return map[string]any{"username": services.NginxLoginUser, "password_file": pwFile,
			"extra_fields":  map[string]string{"realm": "campus"},
			"expect_cookie": services.NginxSessionCookie, "expect_location": "/welcome"}
	}

	tests := []struct {
		name       string
		url        string
		settings   map[string]any
		wantStatus checkapi.Status
		wantReason string
		wantInMsg  string
		wantDays   float64 // approximate cert_days_left; 0: not checked
	}{
		{name: "healthy login page over http", url: p.plain + "/login", settings: page, wantStatus: checkapi.StatusOK, wantReason: checkapi.ReasonOK},
		{name: "healthy login page over https", url: p.valid + "/login", settings: page, wantStatus: checkapi.StatusOK, wantReason: checkapi.ReasonOK, wantDays: 90},
		{name: "service name via host and server_name", url: p.valid + "/login", settings: with(map[string]any{"host": "localhost", "server_name": "localhost"}), wantStatus: checkapi.StatusOK, wantReason: checkapi.ReasonOK},
		{name: "deep login", url: p.valid + "/login", settings: with(map[string]any{"login": login(pw)}), wantStatus: checkapi.StatusOK, wantReason: checkapi.ReasonOK, wantInMsg: "login ok"},
		{name: "deep login with the wrong password", url: p.valid + "/login", settings: with(map[string]any{"login": login(badPW)}), wantStatus: checkapi.StatusFailed, wantReason: ReasonLoginFailed, wantInMsg: "/login?error=1"},
		{name: "500", url: p.plain + "/err500", wantStatus: checkapi.StatusFailed, wantReason: ReasonUnexpectedStatus, wantInMsg: "500"},
		{name: "502 from a dead upstream", url: p.plain + "/err502", wantStatus: checkapi.StatusFailed, wantReason: ReasonUnexpectedStatus, wantInMsg: "502"},
		{name: "unexpected redirect", url: p.plain + "/", settings: page, wantStatus: checkapi.StatusFailed, wantReason: ReasonRedirect, wantInMsg: "/login"},
		{name: "redirect followed within the origin", url: p.valid + "/", settings: with(map[string]any{"follow_redirects": true}), wantStatus: checkapi.StatusOK, wantReason: checkapi.ReasonOK},
		{name: "redirect to another origin", url: p.plain + "/elsewhere", settings: map[string]any{"follow_redirects": true}, wantStatus: checkapi.StatusFailed, wantReason: ReasonRedirect, wantInMsg: "portal.invalid"},
		{name: "body mismatch", url: p.plain + "/maintenance", settings: page, wantStatus: checkapi.StatusFailed, wantReason: checkapi.ReasonUnexpectedResponse},
		{name: "expired", url: p.expired + "/login", settings: page, wantStatus: checkapi.StatusFailed, wantReason: checkapi.ReasonTLSInvalid, wantInMsg: "expired", wantDays: -1},
		{name: "expiring", url: p.expiring + "/login", settings: page, wantStatus: checkapi.StatusDegraded, wantReason: ReasonCertExpiring, wantInMsg: "14-day", wantDays: 2},
		{name: "expiring but under the threshold", url: p.expiring + "/login", settings: with(map[string]any{"cert_warn_days": 1}), wantStatus: checkapi.StatusOK, wantReason: checkapi.ReasonOK, wantDays: 2},
		{name: "untrusted", url: p.other + "/login", settings: page, wantStatus: checkapi.StatusFailed, wantReason: checkapi.ReasonTLSInvalid, wantInMsg: "untrusted"},
		{name: "wrong hostname", url: p.valid + "/login", settings: with(map[string]any{"server_name": "portal.example.com"}), wantStatus: checkapi.StatusFailed, wantReason: checkapi.ReasonTLSInvalid, wantInMsg: "hostname"},
		{name: "wrong hostname from host", url: p.valid + "/login", settings: with(map[string]any{"host": "portal.example.com"}), wantStatus: checkapi.StatusFailed, wantReason: checkapi.ReasonTLSInvalid, wantInMsg: "hostname"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, _ := runCheck(t, 3*time.Second, tt.url, settingsJSON(t, tt.settings))
			wantResult(t, res, tt.wantStatus, tt.wantReason)
			if !strings.Contains(res.Message, tt.wantInMsg) {
				t.Fatalf("message %q lacks %q", res.Message, tt.wantInMsg)
			}
			if tt.wantDays != 0 {
				days, ok := res.Observations["cert_days_left"]
				if !ok || days < tt.wantDays-0.5 || days > tt.wantDays+0.5 {
					t.Fatalf("cert_days_left = %v (present %v), want about %v", days, ok, tt.wantDays)
				}
			}
			if strings.HasPrefix(tt.url, "https") && tt.wantStatus != checkapi.StatusFailed && !slices.Contains(sdktest.PhaseNames(res), "tls") {
				t.Fatalf("phases %v lack tls", sdktest.PhaseNames(res))
			}
		})
	}
}

func TestNginxStopped(t *testing.T) {
	srv := startNginx(t, services.NginxOptions{Marker: "replica-a"})
	url := "http://" + srv.Addr.String() + "/login"
	s := settingsJSON(t, map[string]any{"body_contains": `name="password"`})
	res, _ := runCheck(t, 2*time.Second, url, s)
	wantResult(t, res, checkapi.StatusOK, checkapi.ReasonOK)
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	res, took := runCheck(t, 2*time.Second, url, s)
	wantResult(t, res, checkapi.StatusFailed, checkapi.ReasonRefused)
	if took > time.Second {
		t.Fatalf("refused after %v, want at once", took)
	}
}

func TestNginxHung(t *testing.T) {
	srv := startNginx(t, services.NginxOptions{Marker: "replica-a"})
	url := "http://" + srv.Addr.String() + "/login"
	s := settingsJSON(t, map[string]any{"body_contains": `name="password"`})
	if err := srv.Suspend(); err != nil {
		t.Fatal(err)
	}
	const deadline = 500 * time.Millisecond
	res, took := runCheck(t, deadline, url, s)
	wantResult(t, res, checkapi.StatusFailed, checkapi.ReasonTimeout)
	if took < deadline/2 || took > deadline+time.Second {
		t.Fatalf("timeout after %v, want about %v", took, deadline)
	}
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	res, _ = runCheck(t, 2*time.Second, url, s)
	wantResult(t, res, checkapi.StatusOK, checkapi.ReasonOK)
}

func BenchmarkHTTPCheck(b *testing.B) {
	p := startTLSPortal(b)
	pw := writeFile(b, "pw", []byte(services.NginxLoginPassword+"\n"))
	cases := []struct {
		name, url string
		settings  map[string]any
	}{
		{"http", p.plain + "/login", map[string]any{"body_contains": `name="password"`}},
		{"https", p.valid + "/login", map[string]any{"ca_file": p.caFile, "body_contains": `name="password"`}},
		{"https+login", p.valid + "/login", map[string]any{"ca_file": p.caFile, "body_contains": `name="password"`,
			"login": map[string]any{"username": services.NginxLoginUser, "password_file": pw, "expect_cookie": services.NginxSessionCookie}}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			s := settingsJSON(b, c.settings)
			var lat []time.Duration
			for b.Loop() {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				start := time.Now()
				res, err := New().Check(ctx, &checkapi.Request{Target: c.url, Settings: s})
				lat = append(lat, time.Since(start))
				cancel()
				if err != nil || res.Status != checkapi.StatusOK {
					b.Fatalf("%v %+v", err, res)
				}
			}
			slices.Sort(lat)
			q := func(f float64) float64 { return float64(lat[int(f*float64(len(lat)-1))].Microseconds()) / 1000 }
			b.ReportMetric(q(0.50), "p50-ms")
			b.ReportMetric(q(0.99), "p99-ms")
		})
	}
}

// IPv6 targets (http://[::1]:port, https://[::1]:port) reach an nginx that
// listens on ::1 only; over TLS the certificate is checked against the IPv6
// address, as a client of the service's AAAA address would.
func TestAgainstNginxOverIPv6(t *testing.T) {
	ca, err := services.NewCA("ripcord test CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(services.LeafOptions{IPs: []net.IP{net.IPv6loopback},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	loop6 := netip.MustParseAddrPort("[::1]:0")
	srv := startNginx(t, services.NginxOptions{Marker: "replica-a", Listen: loop6,
		TLS: []services.NginxTLS{{Listen: loop6, Cert: leaf}}})
	page := map[string]any{"ca_file": writeFile(t, "ca.pem", ca.CertPEM), "body_contains": `name="password"`}
	for _, url := range []string{"http://" + srv.Addr.String() + "/login", "https://" + srv.TLSAddrs[0].String() + "/login"} {
		if !strings.Contains(url, "//[::1]:") {
			t.Fatalf("url %s is not on [::1]", url)
		}
		res, _ := runCheck(t, 3*time.Second, url, settingsJSON(t, page))
		wantResult(t, res, checkapi.StatusOK, checkapi.ReasonOK)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	res, _ := runCheck(t, 3*time.Second, "http://"+srv.Addr.String()+"/login", settingsJSON(t, page))
	wantResult(t, res, checkapi.StatusFailed, checkapi.ReasonRefused)
}
