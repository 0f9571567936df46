package daemon

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ripcord/ripcord/core/config"
	"github.com/ripcord/ripcord/plugins"
)

// TestExamplesValidate keeps examples/*.yaml valid, settings included (each
// checker validates its own settings through the plugin protocol).
func TestExamplesValidate(t *testing.T) {
	t.Setenv("RIPCORD_DAEMON_TEST_CHECKER", "1")
	self, err := filepath.Abs(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	// The examples name their secret files relative to themselves.
	files, _ := filepath.Glob("../examples/*.yaml")
	if len(files) < 3 {
		t.Fatalf("found %d example configs, want at least 3 (ldap, radius, webauth)", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			// They name eth0 and the replica's own address: another host's.
			_, h, err := LoadPortable(context.Background(), f, func(c *config.Config) *plugins.Host {
				return NewHost(c, []string{self}, slog.New(slog.DiscardHandler))
			})
			if err != nil {
				t.Fatal(err)
			}
			h.Close()
		})
	}
}

// TestExampleAlertRules runs the shipped alert rules through promtool: their
// syntax, and the unit tests beside them (examples/prometheus/alerts_test.yaml).
func TestExampleAlertRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (scripts/setup installs prometheus)")
	}
	for _, args := range [][]string{{"check", "rules", "alerts.yaml"}, {"test", "rules", "alerts_test.yaml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = "../examples/prometheus"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
