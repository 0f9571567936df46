package services

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

func startSlapdForTest(t *testing.T, opts SlapdOptions) *Slapd {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := StartSlapd(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func slapdReadMarker(t *testing.T, s *Slapd) string {
	t.Helper()
	c, err := s.Conn(context.Background(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"description"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	return res.Entries[0].GetAttributeValue("description")
}

func slapdReadMail(t *testing.T, s *Slapd) string {
	t.Helper()
	c, err := s.Conn(context.Background(), SlapdServiceDN, SlapdServicePassword)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.Search(ldap.NewSearchRequest(SlapdTestEntryDN, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"mail"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	return res.Entries[0].GetAttributeValue("mail")
}

func TestSlapdProviderAndConsumerReplicate(t *testing.T) {
	provider := startSlapdForTest(t, SlapdOptions{ServerID: 1, Marker: "replica-a"})
	consumer := startSlapdForTest(t, SlapdOptions{Provider: provider.URL(), ServerID: 2, Marker: "replica-b"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := consumer.WaitSynced(ctx, provider); err != nil {
		t.Fatal(err)
	}
	if got, want := slapdReadMarker(t, provider), "replica-a"; got != want {
		t.Errorf("provider marker = %q, want %q", got, want)
	}
	if got, want := slapdReadMarker(t, consumer), "replica-b"; got != want {
		t.Errorf("consumer marker = %q, want %q", got, want)
	}
	csns, err := provider.ContextCSNs(ctx)
	if err != nil || len(csns) != 1 || strings.Count(csns[0], "#") != 3 || !strings.Contains(csns[0], "#001#") {
		t.Fatalf("provider contextCSN = %v, %v", csns, err)
	}

	if err := provider.Modify(ctx, SlapdTestEntryDN, "mail", "alice@new.example.com"); err != nil {
		t.Fatal(err)
	}
	if err := consumer.WaitSynced(ctx, provider); err != nil {
		t.Fatal(err)
	}
	if got := slapdReadMail(t, consumer); got != "alice@new.example.com" {
		t.Errorf("consumer mail = %q after the provider's write", got)
	}

	// The service account may write the heartbeat entry and nothing else.
	c, err := provider.Conn(ctx, SlapdServiceDN, SlapdServicePassword)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	hb := ldap.NewModifyRequest(SlapdHeartbeatDN, nil)
	hb.Replace("description", []string{"beat"})
	if err := c.Modify(hb); err != nil {
		t.Errorf("heartbeat write as service account: %v", err)
	}
	other := ldap.NewModifyRequest(SlapdTestEntryDN, nil)
	other.Replace("mail", []string{"x@example.com"})
	if err := c.Modify(other); !ldap.IsErrorWithCode(err, ldap.LDAPResultInsufficientAccessRights) {
		t.Errorf("write on the test entry as service account: %v, want insufficient access", err)
	}
}

func TestSlapdStopReapsSuspendedProcess(t *testing.T) {
	s := startSlapdForTest(t, SlapdOptions{})
	if err := s.Suspend(); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Exited():
	default:
		t.Fatal("slapd still running after Stop")
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(s.Pid())); err == nil {
		t.Errorf("pid %d still exists after Stop", s.Pid())
	}
}

func TestSlapdInNetns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for ip netns")
	}
	suffix := make([]byte, 3)
	_, _ = rand.Read(suffix)
	ns := "rcsl" + hex.EncodeToString(suffix)
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	if out, err := exec.Command("ip", "-n", ns, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up: %v: %s", err, out)
	}
	s := startSlapdForTest(t, SlapdOptions{Netns: ns, Listen: netip.MustParseAddrPort("0.0.0.0:389"), Marker: "in-" + ns})
	if got := s.URL(); got != "ldap://127.0.0.1:389" {
		t.Errorf("URL() = %q", got)
	}
	if got := slapdReadMarker(t, s); got != "in-"+ns {
		t.Errorf("marker = %q", got)
	}
	// The daemon really lives in the namespace: the pid we signal is
	// slapd's own, and its network namespace differs from ours.
	exe, _ := os.Readlink("/proc/" + strconv.Itoa(s.Pid()) + "/exe")
	if filepath.Base(exe) != "slapd" {
		t.Errorf("pid %d is %q, want slapd", s.Pid(), exe)
	}
	mine, _ := os.Readlink("/proc/self/ns/net")
	theirs, _ := os.Readlink("/proc/" + strconv.Itoa(s.Pid()) + "/ns/net")
	if mine == theirs {
		t.Errorf("slapd runs in our namespace %s", mine)
	}
}
