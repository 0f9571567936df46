package radius

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ripcord/ripcord/lab/services"
	"github.com/ripcord/ripcord/plugins/checkapi"
	"github.com/ripcord/ripcord/plugins/sdk/sdktest"
)

const testSecret = "ripcord-test-secret"

func startRadius(t testing.TB, requireMA bool) *services.FreeRADIUS {
	return startRadiusOn(t, requireMA, netip.AddrPort{}, netip.MustParseAddrPort("127.0.0.1:0"), nil)
}

// startRadiusOn starts FreeRADIUS with its listeners on listen and status
// (zero: none) and the given clients (nil: 127.0.0.0/8).
func startRadiusOn(t testing.TB, requireMA bool, listen, status netip.AddrPort, clients []netip.Prefix) *services.FreeRADIUS {
	t.Helper()
	if _, err := exec.LookPath("freeradius"); err != nil {
		t.Fatal("freeradius not found: install the Debian package freeradius")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv, err := services.StartFreeRADIUS(ctx, services.RadiusOptions{
		Dir:          t.TempDir(),
		Secret:       testSecret,
		RequireMA:    requireMA,
		Marker:       "replica-a",
		Listen:       listen,
		StatusListen: status,
		Clients:      clients,
	})
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

// settings writes the secret and password files and returns the settings.
func settings(t testing.TB, secret, user, password string, extra map[string]any) checkapi.Settings {
	t.Helper()
	dir := t.TempDir()
	m := map[string]any{"secret_file": filepath.Join(dir, "secret")}
	if err := os.WriteFile(filepath.Join(dir, "secret"), []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if user != "" {
		m["user"] = user
		m["password_file"] = filepath.Join(dir, "password")
		if err := os.WriteFile(filepath.Join(dir, "password"), []byte(password+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for k, v := range extra {
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func runCheck(t testing.TB, timeout time.Duration, target string, s checkapi.Settings) (*checkapi.Result, time.Duration) {
	return sdktest.Check(t, New(), timeout, target, s)
}

func wantResult(t testing.TB, res *checkapi.Result, status checkapi.Status, reason string) {
	t.Helper()
	sdktest.Want(t, res, status, reason)
	if len(res.Phases) != 1 || res.Phases[0].Name != "request" {
		t.Fatalf("phases = %+v, want one named request", res.Phases)
	}
}

// An IPv6 target ([::1]:port) reaches a FreeRADIUS listening on ::1 only,
// which knows the checker as the client ::1.
func TestAgainstFreeRADIUSOverIPv6(t *testing.T) {
	srv := startRadiusOn(t, true, netip.MustParseAddrPort("[::1]:0"), netip.AddrPort{}, []netip.Prefix{netip.MustParsePrefix("::1/128")})
	target := srv.Addr.String()
	if !strings.HasPrefix(target, "[::1]:") {
		t.Fatalf("target %s, want [::1]:port", target)
	}
	res, _ := runCheck(t, 2*time.Second, target, settings(t, testSecret, "alice", "alice-pw", nil))
	wantResult(t, res, checkapi.StatusOK, checkapi.ReasonOK)
	res, _ = runCheck(t, 2*time.Second, target, settings(t, testSecret, "bob", "whatever", nil))
	wantResult(t, res, checkapi.StatusFailed, checkapi.ReasonRejected)
}

func TestAgainstFreeRADIUS(t *testing.T) {
	srv := startRadius(t, true)
	target := srv.Addr.String()

	t.Run("accept", func(t *testing.T) {
		res, _ := runCheck(t, 2*time.Second, target, settings(t, testSecret, "alice", "alice-pw", nil))
		wantResult(t, res, checkapi.StatusOK, checkapi.ReasonOK)
		if !strings.Contains(res.Message, "Hello alice from replica-a") {
			t.Fatalf("message %q lacks the Reply-Message", res.Message)
		}
		if res.Observations["retransmissions"] != 0 {
			t.Fatalf("retransmissions = %v on loopback", res.Observations["retransmissions"])
		}
	})
	t.Run("status_server on the auth port", func(t *testing.T) {
		res, _ := runCheck(t, 2*time.Second, target, settings(t, testSecret, "", "", map[string]any{"mode": "status_server"}))
		wantResult(t, res, checkapi.StatusOK, checkapi.ReasonOK)
	})
	t.Run("status_server on the status port", func(t *testing.T) {
		res, _ := runCheck(t, 2*time.Second, srv.StatusAddr.String(), settings(t, testSecret, "", "", map[string]any{"mode": "status_server"}))
		wantResult(t, res, checkapi.StatusOK, checkapi.ReasonOK)
	})
	t.Run("rejected user", func(t *testing.T) {
		res, _ := runCheck(t, 2*time.Second, target, settings(t, testSecret, "bob", "whatever", nil))
		wantResult(t, res, checkapi.StatusFailed, checkapi.ReasonRejected)
	})
	t.Run("wrong password", func(t *testing.T) {
		res, _ := runCheck(t, 2*time.Second, target, settings(t, testSecret, "alice", "not-alice-pw", nil))
		wantResult(t, res, checkapi.StatusFailed, checkapi.ReasonRejected)
	})
	t.Run("rejected user with accept_reject", func(t *testing.T) {
		res, _ := runCheck(t, 2*time.Second, target, settings(t, testSecret, "bob", "whatever", map[string]any{"accept_reject": true}))
		wantResult(t, res, checkapi.StatusOK, checkapi.ReasonOK)
		if !strings.Contains(res.Message, "Access-Reject") {
			t.Fatalf("message %q should say it was a reject", res.Message)
		}
	})
	t.Run("wrong shared secret is dropped", func(t *testing.T) {
		res, took := runCheck(t, 400*time.Millisecond, target, settings(t, "not-the-secret", "alice", "alice-pw", nil))
		wantResult(t, res, checkapi.StatusFailed, checkapi.ReasonTimeout)
		if res.Observations["retransmissions"] != 1 {
			t.Fatalf("retransmissions = %v, want 1", res.Observations["retransmissions"])
		}
		if took > 400*time.Millisecond+time.Second {
			t.Fatalf("took %v, far past the 400ms deadline", took)
		}
	})
	t.Run("missing Message-Authenticator is dropped", func(t *testing.T) {
		c, err := parseConfig(settings(t, testSecret, "alice", "alice-pw", nil))
		if err != nil {
			t.Fatal(err)
		}
		c.omitMessageAuthenticator = true
		ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
		defer cancel()
		res, err := check(ctx, target, c)
		if err != nil {
			t.Fatal(err)
		}
		wantResult(t, res, checkapi.StatusFailed, checkapi.ReasonTimeout)
	})
}

// With require_message_authenticator = no the server answers a request
// without MA even when the secret is wrong, signing the reply with its own
// secret: the checker must refuse to believe that reply.
func TestFreeRADIUSWrongSecretWithoutRequiredMA(t *testing.T) {
	srv := startRadius(t, false)
	c, err := parseConfig(settings(t, "not-the-secret", "alice", "alice-pw", nil))
	if err != nil {
		t.Fatal(err)
	}
	c.omitMessageAuthenticator = true
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	res, err := check(ctx, srv.Addr.String(), c)
	if err != nil {
		t.Fatal(err)
	}
	wantResult(t, res, checkapi.StatusFailed, ReasonBadAuthenticator)

	// The same request with the right secret is answered and verified.
	c2, err := parseConfig(settings(t, testSecret, "alice", "alice-pw", nil))
	if err != nil {
		t.Fatal(err)
	}
	c2.omitMessageAuthenticator = true
	res, err = check(ctx, srv.Addr.String(), c2)
	if err != nil {
		t.Fatal(err)
	}
	wantResult(t, res, checkapi.StatusOK, checkapi.ReasonOK)
}

func TestFreeRADIUSStopped(t *testing.T) {
	srv := startRadius(t, true)
	s := settings(t, testSecret, "alice", "alice-pw", nil)
	if res, _ := runCheck(t, 2*time.Second, srv.Addr.String(), s); res.Status != checkapi.StatusOK {
		t.Fatalf("before stop: %s/%s %s", res.Status, res.Reason, res.Message)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	res, took := runCheck(t, 2*time.Second, srv.Addr.String(), s)
	wantResult(t, res, checkapi.StatusFailed, checkapi.ReasonRefused)
	// Refused comes from ICMP at once, not from waiting out the deadline.
	if took >= time.Second {
		t.Fatalf("refused took %v, want well under the 2s deadline", took)
	}
}

func TestFreeRADIUSHung(t *testing.T) {
	srv := startRadius(t, true)
	s := settings(t, testSecret, "alice", "alice-pw", nil)
	if err := srv.Suspend(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Resume() })
	const deadline = 500 * time.Millisecond
	res, took := runCheck(t, deadline, srv.Addr.String(), s)
	wantResult(t, res, checkapi.StatusFailed, checkapi.ReasonTimeout)
	if took < deadline/2 || took > deadline+time.Second {
		t.Fatalf("timeout after %v, want about the %v deadline", took, deadline)
	}
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	// Resumed, it answers again (possibly the queued request first: the
	// checker skips stale IDs).
	res, _ = runCheck(t, 2*time.Second, srv.Addr.String(), s)
	wantResult(t, res, checkapi.StatusOK, checkapi.ReasonOK)
}

func TestConfigure(t *testing.T) {
	tests := []struct {
		name     string
		settings string
		want     []string // fields with errors
	}{
		{name: "access_request ok", settings: `{"secret_file":"/s","user":"u","password_file":"/p"}`},
		{name: "status_server ok", settings: `{"secret_file":"/s","mode":"status_server","retransmit":0}`},
		{name: "empty", settings: `{}`, want: []string{"password_file", "secret_file", "user"}},
		{name: "unknown key", settings: `{"secret":"x"}`, want: []string{"password_file", "secret", "secret_file", "user"}},
		{name: "wrong types", settings: `{"secret_file":1,"mode":"status_server","retransmit":"2"}`, want: []string{"retransmit", "secret_file"}},
		{name: "bad mode", settings: `{"secret_file":"/s","mode":"ping"}`, want: []string{"mode"}},
		{name: "status_server with user", settings: `{"secret_file":"/s","mode":"status_server","user":"u"}`, want: []string{"mode"}},
		{name: "retransmit range", settings: `{"secret_file":"/s","mode":"status_server","retransmit":11}`, want: []string{"retransmit"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, errs := sdktest.ConfigureFields(t, New(), tt.settings)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("error fields %v (%v), want %v", got, errs, tt.want)
			}
		})
	}
}

func TestCheckerBrokenSettingsAreErrors(t *testing.T) {
	_, err := New().Check(context.Background(), &checkapi.Request{Target: "127.0.0.1:1812",
		Settings: checkapi.Settings(`{"secret_file":"/nonexistent/secret","mode":"status_server"}`)})
	if err == nil || !strings.HasPrefix(err.Error(), "checkers/radius: secret_file") {
		t.Fatalf("err = %v, want a checkers/radius secret_file error", err)
	}
	_, err = New().Check(context.Background(), &checkapi.Request{Target: "no-port", Settings: settings(t, "s", "", "", map[string]any{"mode": "status_server"})})
	if err == nil || !strings.Contains(err.Error(), "host:port") {
		t.Fatalf("err = %v, want a target error", err)
	}
}

func BenchmarkRADIUSCheck(b *testing.B) {
	srv := startRadius(b, true)
	for _, mode := range []string{ModeAccessRequest, ModeStatusServer} {
		b.Run(mode, func(b *testing.B) {
			s := settings(b, testSecret, "alice", "alice-pw", nil)
			if mode == ModeStatusServer {
				s = settings(b, testSecret, "", "", map[string]any{"mode": mode})
			}
			var lat []time.Duration
			b.ResetTimer()
			for b.Loop() {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				start := time.Now()
				res, err := New().Check(ctx, &checkapi.Request{Target: srv.Addr.String(), Settings: s})
				lat = append(lat, time.Since(start))
				cancel()
				if err != nil || res.Status != checkapi.StatusOK {
					b.Fatalf("%v %+v", err, res)
				}
			}
			reportPercentiles(b, lat)
		})
	}
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	p := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(p(0.50), "p50-ms")
	b.ReportMetric(p(0.99), "p99-ms")
}

// Describe documents exactly the settings Config accepts.
func TestDescribeMatchesConfig(t *testing.T) { sdktest.DescribeMatches(t, New(), "radius", Config{}) }
