package ldap

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ripcord/ripcord/plugins/checkapi"
	"github.com/ripcord/ripcord/plugins/sdk/sdktest"
)

func TestParseConfigDefaults(t *testing.T) {
	cfg, errs := ParseConfig(checkapi.Settings(`{"base": "dc=example,dc=com"}`))
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	want := DefaultConfig
	want.Base = "dc=example,dc=com"
	if diff := cmp.Diff(want, cfg); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestParseConfigFull(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, errs := ParseConfig(checkapi.Settings(`{
		"bind_dn": "cn=svc,dc=example,dc=com", "password_file": "` + pw + `",
		"base": "dc=example,dc=com", "scope": "one", "filter": "(uid=alice)", "attributes": ["mail"],
		"min_entries": 0, "expect_attribute": "mail", "expect_value": "alice@example.com",
		"reference": "ldap://provider.example.com", "max_lag": "30s", "lag_action": "failed",
		"reference_bind_dn": "cn=hb,dc=example,dc=com", "reference_password_file": "` + pw + `",
		"heartbeat_dn": "cn=heartbeat,dc=example,dc=com", "heartbeat_interval": "10s"}`))
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	if cfg.MinEntries != 0 || time.Duration(cfg.MaxLag) != 30*time.Second || time.Duration(cfg.HeartbeatInterval) != 10*time.Second ||
		cfg.LagAction != LagFailed || cfg.HeartbeatAttribute != "description" || cfg.Scope != "one" {
		t.Errorf("unexpected config %+v", cfg)
	}
	if got, err := readPassword(pw); err != nil || got != "secret" {
		t.Errorf("readPassword = %q, %v; want the file without its newline", got, err)
	}
}

func TestParseConfigInvalid(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	empty := filepath.Join(dir, "empty")
	notPEM := filepath.Join(dir, "ca.txt")
	for name, content := range map[string]string{pw: "secret", empty: "\n", notPEM: "hello"} {
		if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name     string
		settings string
		want     []string
	}{
		{"unknown key", `{"bsae": "dc=x"}`, []string{`bsae: unknown setting`}},
		{"bad scope", `{"scope": "subtree"}`, []string{`scope: must be base, one or sub, not "subtree"`}},
		{"bad filter", `{"filter": "uid=alice"}`, []string{`filter: LDAP Result Code 201 "Filter Compile Error": ldap: filter does not start with an '('`}},
		{"bad base", `{"base": "dc"}`, []string{`base: DN ended with incomplete type, value pair`}},
		{"negative min", `{"min_entries": -1}`, []string{`min_entries: must not be negative`}},
		{"value without attribute", `{"expect_value": "x"}`, []string{`expect_value: needs expect_attribute`}},
		{"bind without password", `{"bind_dn": "cn=a"}`, []string{`password_file: required with bind_dn`}},
		{"password without bind", `{"password_file": "` + pw + `"}`, []string{`password_file: needs bind_dn`}},
		{"missing password file", `{"bind_dn": "cn=a", "password_file": "` + dir + `/nope"}`,
			[]string{`password_file: open ` + dir + `/nope: no such file or directory`}},
		{"empty password file", `{"bind_dn": "cn=a", "password_file": "` + empty + `"}`,
			[]string{`password_file: ` + empty + ` is empty (an empty password is an unauthenticated bind)`}},
		{"ca not PEM", `{"ca_file": "` + notPEM + `"}`, []string{`ca_file: ` + notPEM + ` holds no PEM certificate`}},
		{"freshness without reference", `{"max_lag": "1s", "heartbeat_dn": "cn=hb"}`,
			[]string{`max_lag: needs reference`, `heartbeat_dn: needs reference`, `heartbeat_interval: must be a positive duration when heartbeat_dn is set`, `heartbeat_dn: needs reference_bind_dn (or bind_dn) with write access`}},
		{"reference without max_lag", `{"reference": "ldap://p"}`, []string{`max_lag: must be a positive duration when reference is set`}},
		{"reference not ldap", `{"reference": "http://p", "max_lag": "1s"}`, []string{`reference: "http://p": scheme must be ldap or ldaps`}},
		{"bad duration", `{"max_lag": "soon"}`, []string{`max_lag: time: invalid duration "soon"`}},
		{"bad lag action", `{"lag_action": "panic"}`, []string{`lag_action: must be degraded or failed, not "panic"`}},
		{"interval without heartbeat", `{"heartbeat_interval": "1s"}`, []string{`heartbeat_interval: needs heartbeat_dn`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := ParseConfig(checkapi.Settings(tt.settings))
			got := make([]string, len(errs))
			for i, e := range errs {
				got[i] = e.Error()
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestDescribeDocumentsEverySetting(t *testing.T) {
	sdktest.DescribeMatches(t, New(), "ldap", Config{})
}

func TestConfigureReturnsFieldErrors(t *testing.T) {
	errs, err := New().Configure(context.Background(), checkapi.Settings(`{"scope": "all"}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(errs) != 1 || errs[0].Field != "scope" {
		t.Errorf("Configure = %v, want one scope error", errs)
	}
}

func TestCheckRejectsBadTarget(t *testing.T) {
	for _, target := range []string{"http://127.0.0.1", "ldap://", "ldap://h/dc=example,dc=com?cn"} {
		if _, err := New().Check(context.Background(), &checkapi.Request{Target: target}); err == nil ||
			!strings.HasPrefix(err.Error(), "checkers/ldap: target: ") {
			t.Errorf("target %q: err = %v, want a checkers/ldap target error", target, err)
		}
	}
}
