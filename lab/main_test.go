package lab

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// The ripcord binary the lab tests run on the replicas, built once on first
// use (the unit tests and fuzzing need none).
var (
	ripcordOnce sync.Once
	ripcordDir  string
	ripcordPath string
	ripcordErr  error
)

func ripcordBinary(t *testing.T) string {
	t.Helper()
	ripcordOnce.Do(func() {
		if ripcordDir, ripcordErr = os.MkdirTemp("", "ripcord-lab-bin-"); ripcordErr != nil {
			return
		}
		// Traversable by everyone: the daemon re-executes itself as checker.
		_ = os.Chmod(ripcordDir, 0o755)
		ripcordPath = filepath.Join(ripcordDir, "ripcord")
		out, err := exec.Command("go", "build", "-o", ripcordPath, "github.com/ripcord/ripcord/cmd/ripcord").CombinedOutput()
		if err != nil {
			ripcordErr = err
			t.Logf("go build: %s", out)
		}
	})
	if ripcordErr != nil {
		t.Fatalf("building ripcord: %v", ripcordErr)
	}
	return ripcordPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if ripcordDir != "" {
		os.RemoveAll(ripcordDir)
	}
	os.Exit(code)
}
