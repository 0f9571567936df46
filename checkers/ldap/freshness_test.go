package ldap

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/ripcord/ripcord/lab/netns"
	"github.com/ripcord/ripcord/lab/services"
	"github.com/ripcord/ripcord/plugins/checkapi"
)

// The tests below assert what the README's "Replica freshness" section
// promises for each situation: status, reason, observations, and when.

// freshSettings compare the consumer with provider with a short max_lag.
func freshSettings(t *testing.T, provider string, maxLag time.Duration) map[string]any {
	return with(serviceSettings(t), "reference", provider, "max_lag", maxLag.String())
}

// makeStale cuts the consumer's replication and changes the provider after
// more than maxLag, so the consumer is maxLag+ behind.
func makeStale(t *testing.T, provider, consumer *services.Slapd, maxLag time.Duration) {
	t.Helper()
	ctx := context.Background()
	if err := consumer.SetSyncProvider(ctx, "ldap://127.0.0.1:9"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(maxLag + 100*time.Millisecond)
	if err := provider.Modify(ctx, services.SlapdTestEntryDN, "mail", fmt.Sprintf("alice-%d@example.com", time.Now().UnixNano())); err != nil {
		t.Fatal(err)
	}
}

func wantObservation(t *testing.T, res *checkapi.Result, name string, ok func(v float64) bool) {
	t.Helper()
	v, has := res.Observations[name]
	if !has || !ok(v) {
		t.Fatalf("observation %s = %v (present %v) is not as expected; all: %v", name, v, has, res.Observations)
	}
}

// A replica in sync whose provider dies: ok with reason freshness_unknown
// while (lag at the last read + time since) is within max_lag, then
// degraded (never failed, whatever lag_action says). A restarted checker
// remembers the last read through its state directory; without one, it
// knows nothing and says so at once.
func TestFreshnessProviderKilled(t *testing.T) {
	provider, consumer := startReplicaPair(t)
	const maxLag = 1500 * time.Millisecond // slack for a busy machine between the read and the next check
	settings := with(freshSettings(t, provider.URL(), maxLag), "lag_action", LagFailed)
	dir := t.TempDir()
	c := newChecker(dir)
	res, _ := runCheck(t, c, consumer.URL(), settings, checkTimeout)
	assertResult(t, res, checkapi.StatusOK, checkapi.ReasonOK)
	read := time.Now()

	if err := provider.Stop(); err != nil {
		t.Fatal(err)
	}
	res, _ = runCheck(t, c, consumer.URL(), settings, checkTimeout)
	assertResult(t, res, checkapi.StatusOK, ReasonFreshnessUnknown)
	wantObservation(t, res, "reference_up", func(v float64) bool { return v == 0 })
	wantObservation(t, res, "replication_lag_seconds", func(v float64) bool { return v == 0 })
	wantObservation(t, res, "reference_age_seconds", func(v float64) bool { return v > 0 && v < maxLag.Seconds() })
	if !strings.Contains(res.Message, "within max_lag for") {
		t.Errorf("message %q does not say how long the replica stays ok", res.Message)
	}

	time.Sleep(time.Until(read.Add(maxLag + 50*time.Millisecond)))
	res, _ = runCheck(t, c, consumer.URL(), settings, checkTimeout)
	assertResult(t, res, checkapi.StatusDegraded, ReasonFreshnessUnknown)
	wantObservation(t, res, "reference_age_seconds", func(v float64) bool { return v > maxLag.Seconds() })

	// The plugin restarts: the reading comes back from the state directory.
	res, _ = runCheck(t, newChecker(dir), consumer.URL(), settings, checkTimeout)
	assertResult(t, res, checkapi.StatusDegraded, ReasonFreshnessUnknown)
	wantObservation(t, res, "reference_age_seconds", func(v float64) bool { return v > maxLag.Seconds() })
	// No state directory and no reading: unknown from the start.
	res, _ = runCheck(t, newChecker(""), consumer.URL(), settings, checkTimeout)
	assertResult(t, res, checkapi.StatusDegraded, ReasonFreshnessUnknown)
	if !strings.Contains(res.Message, "never read") {
		t.Errorf("message %q", res.Message)
	}
}

// A replica known to be behind stays stale_replica when its provider dies,
// across a restart of the checker, with the status lag_action asks for.
func TestFreshnessStaleThenProviderDies(t *testing.T) {
	for _, action := range []struct {
		lagAction string
		status    checkapi.Status
	}{{LagDegraded, checkapi.StatusDegraded}, {LagFailed, checkapi.StatusFailed}} {
		t.Run(action.lagAction, func(t *testing.T) {
			provider, consumer := startReplicaPair(t)
			const maxLag = 300 * time.Millisecond
			settings := with(freshSettings(t, provider.URL(), maxLag), "lag_action", action.lagAction)
			dir := t.TempDir()
			c := newChecker(dir)
			makeStale(t, provider, consumer, maxLag)
			res, _ := runCheck(t, c, consumer.URL(), settings, checkTimeout)
			assertResult(t, res, action.status, ReasonStaleReplica)
			lag := res.Observations["replication_lag_seconds"]

			if err := provider.Stop(); err != nil {
				t.Fatal(err)
			}
			for _, c := range []*Checker{c, newChecker(dir)} {
				res, _ = runCheck(t, c, consumer.URL(), settings, checkTimeout)
				assertResult(t, res, action.status, ReasonStaleReplica)
				wantObservation(t, res, "reference_up", func(v float64) bool { return v == 0 })
				wantObservation(t, res, "replication_lag_seconds", func(v float64) bool { return v == lag })
				wantObservation(t, res, "reference_age_seconds", func(v float64) bool { return v > 0 })
				if !strings.Contains(res.Message, "as last read") {
					t.Errorf("message %q does not say the lag is from the last read", res.Message)
				}
			}
		})
	}
}

// Stale stays stale until the replica is shown to have caught up with the
// last reading, even while the reference cannot be read: here the checker
// cannot bind to the reference (wrong password) while replication heals.
func TestFreshnessCaughtUpWhileReferenceUnreadable(t *testing.T) {
	provider, consumer := startReplicaPair(t)
	const maxLag = 300 * time.Millisecond
	settings := freshSettings(t, provider.URL(), maxLag)
	blind := with(settings, "reference_bind_dn", services.SlapdServiceDN, "reference_password_file", secretFile(t, "wrong"))
	c := newChecker(t.TempDir())
	makeStale(t, provider, consumer, maxLag)
	res, _ := runCheck(t, c, consumer.URL(), settings, checkTimeout)
	assertResult(t, res, checkapi.StatusDegraded, ReasonStaleReplica)

	res, _ = runCheck(t, c, consumer.URL(), blind, checkTimeout)
	assertResult(t, res, checkapi.StatusDegraded, ReasonStaleReplica)
	if err := consumer.SetSyncProvider(context.Background(), provider.URL()); err != nil {
		t.Fatal(err)
	}
	res = pollCheck(t, c, consumer.URL(), blind, 10*time.Second, func(r *checkapi.Result) bool { return r.Reason != ReasonStaleReplica })
	// Judged as freshness_unknown is, and named misconfigured: the blind
	// reference refuses the bind.
	assertResult(t, res, checkapi.StatusOK, checkapi.ReasonMisconfigured)
	wantObservation(t, res, "replication_lag_seconds", func(v float64) bool { return v == 0 })
}

// A hung provider (SIGSTOP: it accepts TCP, answers nothing) costs the
// check its deadline, in the reference phase, and is freshness_unknown like
// a dead one; the replica's own timeout stays reason timeout.
func TestFreshnessProviderHung(t *testing.T) {
	provider, consumer := startReplicaPair(t)
	const maxLag, timeout = 1500 * time.Millisecond, 400 * time.Millisecond
	settings := freshSettings(t, provider.URL(), maxLag)
	c := newChecker(t.TempDir())
	res, _ := runCheck(t, c, consumer.URL(), settings, checkTimeout)
	assertResult(t, res, checkapi.StatusOK, checkapi.ReasonOK)
	read := time.Now()

	if err := provider.Suspend(); err != nil {
		t.Fatal(err)
	}
	defer provider.Resume()
	res, took := runCheck(t, c, consumer.URL(), settings, timeout)
	assertResult(t, res, checkapi.StatusOK, ReasonFreshnessUnknown)
	if took > timeout+250*time.Millisecond {
		t.Errorf("check took %s with a %s deadline", took, timeout)
	}
	if !strings.Contains(res.Message, "no answer within the check's deadline") {
		t.Errorf("message %q does not say the reference timed out", res.Message)
	}
	time.Sleep(time.Until(read.Add(maxLag + 50*time.Millisecond)))
	res, _ = runCheck(t, c, consumer.URL(), settings, timeout)
	assertResult(t, res, checkapi.StatusDegraded, ReasonFreshnessUnknown)

	if err := provider.Resume(); err != nil {
		t.Fatal(err)
	}
	res, _ = runCheck(t, c, consumer.URL(), settings, checkTimeout)
	assertResult(t, res, checkapi.StatusOK, checkapi.ReasonOK)
}

// A network partition between the replica and its provider, made with
// nftables inside a namespace of the test's own: replication and the
// checker's reads of the reference both stop while the provider takes
// writes. The replica is freshness_unknown, degraded once it may be more
// than max_lag behind, and ok again once the partition heals.
func TestFreshnessPartition(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace and nftables")
	}
	ns, err := netns.New("rcfr")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Delete() })
	start := func(opts services.SlapdOptions) *services.Slapd {
		opts.Netns = ns.Name
		return startSlapd(t, opts)
	}
	// The provider listens on every address: the partition cuts 127.0.0.1
	// only, so the test can still write through 127.0.0.2.
	provider := start(services.SlapdOptions{ServerID: 1, Listen: netip.MustParseAddrPort("0.0.0.0:389")})
	consumer := start(services.SlapdOptions{ServerID: 2, Listen: netip.MustParseAddrPort("127.0.0.1:390"), Provider: provider.URL()})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := consumer.WaitSynced(ctx, provider); err != nil {
		t.Fatal(err)
	}
	const maxLag, timeout = 2 * time.Second, 300 * time.Millisecond
	settings := freshSettings(t, provider.URL(), maxLag)
	c := newChecker(t.TempDir())
	check := func() *checkapi.Result {
		var res *checkapi.Result
		if err := ns.Do(func() error { res, _ = runCheck(t, c, consumer.URL(), settings, timeout); return nil }); err != nil {
			t.Fatal(err)
		}
		return res
	}
	res := check()
	assertResult(t, res, checkapi.StatusOK, checkapi.ReasonOK)
	read := time.Now()

	rules := filepath.Join(t.TempDir(), "partition.nft")
	os.WriteFile(rules, []byte(`table inet ripcord_partition {
	chain out {
		type filter hook output priority 0; policy accept;
		ip daddr 127.0.0.1 tcp dport 389 drop
		ip saddr 127.0.0.1 tcp sport 389 drop
	}
}
`), 0o600)
	if _, err := ns.Exec(ctx, "nft", "-f", rules); err != nil {
		t.Fatal(err)
	}
	healed := false
	heal := func() {
		if !healed {
			healed = true
			if _, err := ns.Exec(context.Background(), "nft", "delete", "table", "inet", "ripcord_partition"); err != nil {
				t.Error(err)
			}
		}
	}
	defer heal()
	writeBehindPartition(t, ns)

	res = check()
	assertResult(t, res, checkapi.StatusOK, ReasonFreshnessUnknown)
	wantObservation(t, res, "reference_up", func(v float64) bool { return v == 0 })
	time.Sleep(time.Until(read.Add(maxLag + 50*time.Millisecond)))
	res = check()
	assertResult(t, res, checkapi.StatusDegraded, ReasonFreshnessUnknown)
	if got := readMail(t, consumer); got == partitionedMail {
		t.Fatal("the consumer got the provider's write through the partition")
	}

	heal()
	var within time.Duration
	healedAt := time.Now()
	for deadline := healedAt.Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		// ok alone may come sooner: the write is less than max_lag newer
		// than the consumer's last change.
		if res = check(); res.Status == checkapi.StatusOK && res.Observations["replication_lag_seconds"] == 0 || time.Now().After(deadline) {
			within = time.Since(healedAt)
			break
		}
	}
	assertResult(t, res, checkapi.StatusOK, checkapi.ReasonOK)
	if got := readMail(t, consumer); got != partitionedMail {
		t.Fatalf("consumer mail %q after the partition healed, want %q", got, partitionedMail)
	}
	t.Logf("caught up %s after the partition healed", within.Round(time.Millisecond))
}

const partitionedMail = "alice-partitioned@example.com"

func readMail(t *testing.T, s *services.Slapd) string {
	t.Helper()
	conn, err := s.Conn(context.Background(), services.SlapdServiceDN, services.SlapdServicePassword)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	res, err := conn.Search(goldap.NewSearchRequest(services.SlapdTestEntryDN, goldap.ScopeBaseObject, goldap.NeverDerefAliases,
		0, 0, false, "(objectClass=*)", []string{"mail"}, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("read mail: %v", err)
	}
	return res.Entries[0].GetAttributeValue("mail")
}

// writeBehindPartition changes the provider through 127.0.0.2, which the
// partition leaves open.
func writeBehindPartition(t *testing.T, ns *netns.NS) {
	t.Helper()
	var raw net.Conn
	if err := ns.Do(func() (err error) {
		raw, err = net.DialTimeout("tcp", "127.0.0.2:389", 5*time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	conn := goldap.NewConn(raw, false)
	conn.Start()
	defer conn.Close()
	conn.SetTimeout(5 * time.Second)
	if err := conn.Bind(services.SlapdAdminDN, services.SlapdAdminPassword); err != nil {
		t.Fatal(err)
	}
	m := goldap.NewModifyRequest(services.SlapdTestEntryDN, nil)
	m.Replace("mail", []string{partitionedMail})
	if err := conn.Modify(m); err != nil {
		t.Fatal(err)
	}
}

// heartbeat_dn must exist on the provider and be writable by the bind DN.
// When it is not, the check says so at every check (reason misconfigured,
// status unchanged) until the write works.
func TestHeartbeatMisconfigured(t *testing.T) {
	provider, consumer := startReplicaPair(t)
	ctx := context.Background()
	base := with(freshSettings(t, provider.URL(), 5*time.Second), "heartbeat_interval", "1h")

	t.Run("entry missing", func(t *testing.T) {
		if err := provider.Delete(ctx, services.SlapdHeartbeatDN); err != nil {
			t.Fatal(err)
		}
		settings := with(base, "heartbeat_dn", services.SlapdHeartbeatDN)
		c := newChecker("")
		for i := 0; i < 2; i++ { // not only the first write: every check until fixed
			res, _ := runCheck(t, c, consumer.URL(), settings, checkTimeout)
			assertResult(t, res, checkapi.StatusOK, checkapi.ReasonMisconfigured)
			if !strings.Contains(res.Message, "does not exist on reference") {
				t.Errorf("message %q", res.Message)
			}
			if _, ok := res.Observations["heartbeat_written"]; ok {
				t.Errorf("heartbeat_written reported for a failed write")
			}
		}
		conn, err := provider.Conn(ctx, services.SlapdAdminDN, services.SlapdAdminPassword)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		add := goldap.NewAddRequest(services.SlapdHeartbeatDN, nil)
		add.Attribute("objectClass", []string{"applicationProcess"})
		add.Attribute("cn", []string{"heartbeat"})
		if err := conn.Add(add); err != nil {
			t.Fatal(err)
		}
		res, _ := runCheck(t, c, consumer.URL(), settings, checkTimeout)
		assertResult(t, res, checkapi.StatusOK, checkapi.ReasonOK)
		wantObservation(t, res, "heartbeat_written", func(v float64) bool { return v == 1 })
	})
	t.Run("no write access", func(t *testing.T) {
		// The ACL lets the service account write the heartbeat entry only.
		res, _ := runCheck(t, newChecker(""), consumer.URL(), with(base, "heartbeat_dn", services.SlapdTestEntryDN), checkTimeout)
		assertResult(t, res, checkapi.StatusOK, checkapi.ReasonMisconfigured)
		if !strings.Contains(res.Message, "Insufficient Access") {
			t.Errorf("message %q", res.Message)
		}
	})
	t.Run("a stale replica stays stale", func(t *testing.T) {
		makeStale(t, provider, consumer, 300*time.Millisecond)
		settings := with(base, "max_lag", "300ms", "heartbeat_dn", "cn=nowhere,"+services.SlapdSuffix)
		res, _ := runCheck(t, newChecker(""), consumer.URL(), settings, checkTimeout)
		assertResult(t, res, checkapi.StatusDegraded, ReasonStaleReplica)
		if !strings.Contains(res.Message, "does not exist on reference") {
			t.Errorf("message %q", res.Message)
		}
	})
}

// A reference that refuses the check's bind is a setting to fix, not a
// provider that is down: misconfigured (still degraded or ok as the last
// reading says), so RipcordCheckMisconfigured fires.
func TestFreshnessReferenceRefusesBind(t *testing.T) {
	provider, consumer := startReplicaPair(t)
	settings := with(freshSettings(t, provider.URL(), time.Minute),
		"reference_bind_dn", services.SlapdServiceDN, "reference_password_file", secretFile(t, "wrong"))
	dir := t.TempDir()
	res, _ := runCheck(t, newChecker(dir), consumer.URL(), settings, checkTimeout)
	assertResult(t, res, checkapi.StatusDegraded, checkapi.ReasonMisconfigured) // never read
	if !strings.Contains(res.Message, "auth_failed") || !strings.Contains(res.Message, "reference_password_file") {
		t.Errorf("message %q does not say which setting", res.Message)
	}
	// Read once with the right password: within max_lag it stays ok.
	good := with(settings, "reference_password_file", secretFile(t, services.SlapdServicePassword))
	res, _ = runCheck(t, newChecker(dir), consumer.URL(), good, checkTimeout)
	assertResult(t, res, checkapi.StatusOK, checkapi.ReasonOK)
	res, _ = runCheck(t, newChecker(dir), consumer.URL(), settings, checkTimeout)
	assertResult(t, res, checkapi.StatusOK, checkapi.ReasonMisconfigured)
	if checkapi.IsMisconfiguration(ReasonFreshnessUnknown) {
		t.Error("freshness_unknown itself counts as a misconfiguration")
	}
}
