package services

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// radclient proves the helper's server answers as documented, independently
// of our own checker code.
func TestFreeRADIUSAnswersRadclient(t *testing.T) {
	if _, err := exec.LookPath("radclient"); err != nil {
		t.Fatal("radclient not found: install the Debian package freeradius-utils")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv, err := StartFreeRADIUS(ctx, RadiusOptions{Dir: t.TempDir(), Secret: "s3cret", RequireMA: true, Marker: "replica-a"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })

	run := func(attrs string) string {
		cmd := exec.CommandContext(ctx, "radclient", "-x", "-r", "1", "-t", "2", srv.Addr.String(), "auth", "s3cret")
		cmd.Stdin = strings.NewReader(attrs)
		out, _ := cmd.CombinedOutput()
		return string(out)
	}
	if out := run("User-Name = alice\nUser-Password = alice-pw\nMessage-Authenticator = 0x00\n"); !strings.Contains(out, "Access-Accept") || !strings.Contains(out, "replica-a") {
		t.Fatalf("alice: want Access-Accept naming replica-a, got:\n%s", out)
	}
	if out := run("User-Name = bob\nUser-Password = x\nMessage-Authenticator = 0x00\n"); !strings.Contains(out, "Access-Reject") {
		t.Fatalf("bob: want Access-Reject, got:\n%s", out)
	}
	if out := run("User-Name = alice\nUser-Password = alice-pw\n"); strings.Contains(out, "Received Access") {
		t.Fatalf("no Message-Authenticator: want the request dropped, got:\n%s", out)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-srv.Exited():
	default:
		t.Fatal("Stop returned before the daemon exited")
	}
}
