package ldap

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/ripcord/ripcord/lab/services"
	"github.com/ripcord/ripcord/plugins/checkapi"
	"github.com/ripcord/ripcord/plugins/sdk/sdktest"
)

// checkTimeout is the check's deadline in tests: everything answers in a
// few ms on loopback, so this is slack for a busy machine.
const checkTimeout = 2 * time.Second

func startSlapd(t testing.TB, opts services.SlapdOptions) *services.Slapd {
	t.Helper()
	opts.Dir = t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := services.StartSlapd(ctx, opts)
	if err != nil {
		t.Fatalf("start slapd (Debian package slapd): %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func secretFile(t testing.TB, secret string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// serviceSettings are the settings of a typical check: bind as the service
// account and find the test entry.
func serviceSettings(t testing.TB) map[string]any {
	return map[string]any{
		"bind_dn":       services.SlapdServiceDN,
		"password_file": secretFile(t, services.SlapdServicePassword),
		"base":          services.SlapdSuffix,
		"filter":        "(uid=alice)",
	}
}

func with(base map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(base)+len(kv)/2)
	for k, v := range base {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

func runCheck(t testing.TB, c checkapi.Checker, target string, settings map[string]any, timeout time.Duration) (*checkapi.Result, time.Duration) {
	return sdktest.Check(t, c, timeout, target, sdktest.Settings(t, settings))
}

func assertResult(t testing.TB, res *checkapi.Result, status checkapi.Status, reason string) {
	t.Helper()
	sdktest.Want(t, res, status, reason)
}

// TestCheckAgainstSlapd covers the cases that leave the server as it is.
func TestCheckAgainstSlapd(t *testing.T) {
	s := startSlapd(t, services.SlapdOptions{})
	svc := serviceSettings(t)
	tests := []struct {
		name     string
		settings map[string]any
		status   checkapi.Status
		reason   string
		phases   []string
	}{
		{"healthy", svc, checkapi.StatusOK, checkapi.ReasonOK, []string{"connect", "bind", "search"}},
		{"healthy with expected value",
			with(svc, "expect_attribute", "mail", "expect_value", "alice@example.com"),
			checkapi.StatusOK, checkapi.ReasonOK, []string{"connect", "bind", "search"}},
		{"anonymous", map[string]any{"base": services.SlapdTestEntryDN, "scope": "base"},
			checkapi.StatusOK, checkapi.ReasonOK, []string{"connect", "search"}},
		{"whole tree has at least 6 entries", with(svc, "filter", "(objectClass=*)", "min_entries", 6),
			checkapi.StatusOK, checkapi.ReasonOK, nil},
		{"wrong bind password", with(svc, "password_file", secretFile(t, "nope")),
			checkapi.StatusFailed, checkapi.ReasonAuthFailed, []string{"connect", "bind"}},
		{"unknown bind DN", with(svc, "bind_dn", "cn=nobody,dc=example,dc=com"),
			checkapi.StatusFailed, checkapi.ReasonAuthFailed, nil},
		{"base DN gone", with(svc, "base", "dc=nope,dc=com"),
			checkapi.StatusFailed, ReasonNoSuchObject, []string{"connect", "bind", "search"}},
		{"filter matches nothing", with(svc, "filter", "(uid=nobody)"),
			checkapi.StatusFailed, ReasonNoEntry, nil},
		{"too few entries", with(svc, "filter", "(objectClass=organizationalUnit)", "min_entries", 3),
			checkapi.StatusFailed, ReasonNoEntry, nil},
		{"expected value differs", with(svc, "expect_attribute", "mail", "expect_value", "bob@example.com"),
			checkapi.StatusFailed, ReasonNoEntry, nil},
		{"expected attribute absent", with(svc, "expect_attribute", "telephoneNumber"),
			checkapi.StatusFailed, ReasonNoEntry, nil},
		{"StartTLS on a server without TLS", with(svc, "start_tls", true),
			checkapi.StatusFailed, checkapi.ReasonTLSInvalid, []string{"connect", "tls"}},
	}
	c := New()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, _ := runCheck(t, c, s.URL(), tt.settings, checkTimeout)
			assertResult(t, res, tt.status, tt.reason)
			if tt.phases != nil && !slices.Equal(sdktest.PhaseNames(res), tt.phases) {
				t.Errorf("phases %v, want %v", sdktest.PhaseNames(res), tt.phases)
			}
		})
	}
}

func TestCheckTestEntryDeleted(t *testing.T) {
	s := startSlapd(t, services.SlapdOptions{})
	settings := serviceSettings(t)
	res, _ := runCheck(t, New(), s.URL(), settings, checkTimeout)
	assertResult(t, res, checkapi.StatusOK, checkapi.ReasonOK)
	if err := s.Delete(context.Background(), services.SlapdTestEntryDN); err != nil {
		t.Fatal(err)
	}
	res, _ = runCheck(t, New(), s.URL(), settings, checkTimeout)
	assertResult(t, res, checkapi.StatusFailed, ReasonNoEntry)
	if res.Observations["entries"] != 0 {
		t.Errorf("entries = %v, want 0", res.Observations["entries"])
	}
}

func TestCheckProcessKilled(t *testing.T) {
	s := startSlapd(t, services.SlapdOptions{})
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	res, _ := runCheck(t, New(), s.URL(), serviceSettings(t), checkTimeout)
	assertResult(t, res, checkapi.StatusFailed, checkapi.ReasonRefused)
	if !slices.Equal(sdktest.PhaseNames(res), []string{"connect"}) {
		t.Errorf("phases %v, want [connect]", sdktest.PhaseNames(res))
	}
}

// A stopped slapd still completes TCP handshakes (the kernel does), so only
// the one overall deadline ends the check: it must return within it.
func TestCheckProcessHung(t *testing.T) {
	s := startSlapd(t, services.SlapdOptions{})
	if err := s.Suspend(); err != nil {
		t.Fatal(err)
	}
	const timeout = 500 * time.Millisecond
	for _, tc := range []struct {
		name     string
		settings map[string]any
		phase    string
	}{
		{"bind", serviceSettings(t), "bind"},
		{"anonymous search", map[string]any{"base": services.SlapdSuffix}, "search"},
		{"StartTLS", with(serviceSettings(t), "start_tls", true), "tls"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, elapsed := runCheck(t, New(), s.URL(), tc.settings, timeout)
			assertResult(t, res, checkapi.StatusFailed, checkapi.ReasonTimeout)
			if elapsed > timeout+250*time.Millisecond {
				t.Errorf("check took %s with a %s deadline", elapsed, timeout)
			}
			if got := sdktest.PhaseNames(res); got[len(got)-1] != tc.phase {
				t.Errorf("phases %v, want the last to be %s", got, tc.phase)
			}
		})
	}
	if err := s.Resume(); err != nil {
		t.Fatal(err)
	}
	res, _ := runCheck(t, New(), s.URL(), serviceSettings(t), checkTimeout)
	assertResult(t, res, checkapi.StatusOK, checkapi.ReasonOK)
}

func TestCheckReadRestricted(t *testing.T) {
	s := startSlapd(t, services.SlapdOptions{})
	ctx := context.Background()
	if err := s.SetReadRestricted(ctx, true); err != nil {
		t.Fatal(err)
	}
	res, _ := runCheck(t, New(), s.URL(), serviceSettings(t), checkTimeout)
	assertResult(t, res, checkapi.StatusFailed, ReasonUnwilling)
	if !strings.Contains(res.Message, "read operations restricted") {
		t.Errorf("message %q does not carry the server's diagnostic", res.Message)
	}
	if err := s.SetReadRestricted(ctx, false); err != nil {
		t.Fatal(err)
	}
	res, _ = runCheck(t, New(), s.URL(), serviceSettings(t), checkTimeout)
	assertResult(t, res, checkapi.StatusOK, checkapi.ReasonOK)
}

// startReplicaPair starts a provider and a syncrepl consumer in sync.
func startReplicaPair(t *testing.T) (provider, consumer *services.Slapd) {
	t.Helper()
	provider = startSlapd(t, services.SlapdOptions{ServerID: 1, Marker: "provider"})
	consumer = startSlapd(t, services.SlapdOptions{Provider: provider.URL(), ServerID: 2, Marker: "consumer"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := consumer.WaitSynced(ctx, provider); err != nil {
		t.Fatal(err)
	}
	return provider, consumer
}

// pollCheck runs the check every 50 ms until want(res) or the bound.
func pollCheck(t *testing.T, c checkapi.Checker, target string, settings map[string]any, within time.Duration, want func(*checkapi.Result) bool) *checkapi.Result {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		res, _ := runCheck(t, c, target, settings, checkTimeout)
		if want(res) || time.Now().After(deadline) {
			return res
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestCheckStaleReplica(t *testing.T) {
	provider, consumer := startReplicaPair(t)
	ctx := context.Background()
	for _, action := range []struct {
		lagAction string
		status    checkapi.Status
	}{{LagDegraded, checkapi.StatusDegraded}, {LagFailed, checkapi.StatusFailed}} {
		t.Run(action.lagAction, func(t *testing.T) {
			settings := with(serviceSettings(t), "reference", provider.URL(), "max_lag", "300ms", "lag_action", action.lagAction)
			c := New()
			res, _ := runCheck(t, c, consumer.URL(), settings, checkTimeout)
			assertResult(t, res, checkapi.StatusOK, checkapi.ReasonOK)
			if lag, ok := res.Observations["replication_lag_seconds"]; !ok || lag != 0 {
				t.Errorf("in sync: replication_lag_seconds = %v, %v; want 0", lag, ok)
			}
			if !slices.Equal(sdktest.PhaseNames(res), []string{"connect", "bind", "search", "reference"}) {
				t.Errorf("phases %v", sdktest.PhaseNames(res))
			}

			// Cut replication, let the replica's last change age past
			// max_lag, then change something on the provider.
			if err := consumer.SetSyncProvider(ctx, "ldap://127.0.0.1:9"); err != nil {
				t.Fatal(err)
			}
			time.Sleep(400 * time.Millisecond)
			if err := provider.Modify(ctx, services.SlapdTestEntryDN, "mail", "alice-"+action.lagAction+"@example.com"); err != nil {
				t.Fatal(err)
			}
			res, _ = runCheck(t, c, consumer.URL(), settings, checkTimeout)
			assertResult(t, res, action.status, ReasonStaleReplica)
			if lag := res.Observations["replication_lag_seconds"]; lag < 0.3 {
				t.Errorf("stale: replication_lag_seconds = %v, want > max_lag 0.3", lag)
			}

			// Heal: the consumer catches up within about a second.
			if err := consumer.SetSyncProvider(ctx, provider.URL()); err != nil {
				t.Fatal(err)
			}
			res = pollCheck(t, c, consumer.URL(), settings, 10*time.Second, func(r *checkapi.Result) bool { return r.Status == checkapi.StatusOK })
			assertResult(t, res, checkapi.StatusOK, checkapi.ReasonOK)
		})
	}
}

// Without writes on the provider its contextCSN stands still, so a replica
// that stopped replicating still compares equal: the blind spot. Heartbeat
// writes on the reference make the lag of a cut replica grow.
func TestCheckHeartbeatRevealsIdleProviderBlindSpot(t *testing.T) {
	provider, consumer := startReplicaPair(t)
	ctx := context.Background()
	base := with(serviceSettings(t), "reference", provider.URL(), "max_lag", "500ms")
	beating := with(base, "heartbeat_dn", services.SlapdHeartbeatDN, "heartbeat_interval", "200ms")

	// Healthy replica with heartbeats: several beats replicate, lag stays ok.
	c := New()
	var beats float64
	for i := 0; i < 8; i++ {
		res, _ := runCheck(t, c, consumer.URL(), beating, checkTimeout)
		assertResult(t, res, checkapi.StatusOK, checkapi.ReasonOK)
		beats += res.Observations["heartbeat_written"]
		time.Sleep(100 * time.Millisecond)
	}
	if beats < 2 || beats > 5 {
		t.Errorf("%v heartbeats in 8 checks 100 ms apart with a 200 ms interval, want 2..5", beats)
	}
	if err := consumer.SetSyncProvider(ctx, "ldap://127.0.0.1:9"); err != nil {
		t.Fatal(err)
	}

	// No heartbeat: the cut replica looks in sync for as long as we look.
	for i := 0; i < 3; i++ {
		time.Sleep(300 * time.Millisecond)
		res, _ := runCheck(t, New(), consumer.URL(), base, checkTimeout)
		assertResult(t, res, checkapi.StatusOK, checkapi.ReasonOK)
	}

	// Heartbeat: the first check writes (the provider is idle), the lag then
	// grows past max_lag.
	res := pollCheck(t, c, consumer.URL(), beating, 5*time.Second, func(r *checkapi.Result) bool { return r.Reason == ReasonStaleReplica })
	assertResult(t, res, checkapi.StatusDegraded, ReasonStaleReplica)

	conn, err := provider.Conn(ctx, services.SlapdServiceDN, services.SlapdServicePassword)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sr, err := conn.Search(goldap.NewSearchRequest(services.SlapdHeartbeatDN, goldap.ScopeBaseObject, goldap.NeverDerefAliases,
		0, 0, false, "(objectClass=*)", []string{"description"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := sr.Entries[0].GetAttributeValue("description"); !strings.HasPrefix(got, "ripcord heartbeat ") {
		t.Errorf("heartbeat entry description = %q", got)
	}
}

// A proxy whose backend is gone still accepts connections and answers every
// operation with 52 Unavailable.
func TestCheckBackendUnavailable(t *testing.T) {
	s := startSlapd(t, services.SlapdOptions{ProxyTo: "ldap://127.0.0.1:9"})
	for name, settings := range map[string]map[string]any{
		"bind":             serviceSettings(t),
		"anonymous search": {"base": services.SlapdSuffix},
	} {
		t.Run(name, func(t *testing.T) {
			res, _ := runCheck(t, New(), s.URL(), settings, checkTimeout)
			assertResult(t, res, checkapi.StatusFailed, checkapi.ReasonUnavailable)
		})
	}
}

// An IPv6 target (ldap://[::1]:port) reaches a slapd listening on ::1 only,
// and a refused connection there is "refused", as over IPv4.
func TestCheckIPv6Target(t *testing.T) {
	s := startSlapd(t, services.SlapdOptions{Listen: netip.MustParseAddrPort("[::1]:0")})
	if !strings.HasPrefix(s.URL(), "ldap://[::1]:") {
		t.Fatalf("URL %s, want ldap://[::1]:port", s.URL())
	}
	res, _ := runCheck(t, New(), s.URL(), serviceSettings(t), checkTimeout)
	assertResult(t, res, checkapi.StatusOK, checkapi.ReasonOK)
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	res, _ = runCheck(t, New(), s.URL(), serviceSettings(t), checkTimeout)
	assertResult(t, res, checkapi.StatusFailed, checkapi.ReasonRefused)
}
