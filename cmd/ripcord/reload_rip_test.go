package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ripcord/ripcord/lab/netns"
	"github.com/ripcord/ripcord/lab/netns/netnstest"
	"github.com/ripcord/ripcord/lab/routers"
)

// TestReloadRIPSectionWithFRR: `ripcord run` in a namespace with two links
// to a real FRR ripd. A reload after the key file changed gets the VIP
// into the router (the speaker started with a key the router rejects); a
// reload that moves the rip section from one link to the other moves the
// router's route at once, with the periodic update an hour away. The
// service is unchanged throughout.
func TestReloadRIPSectionWithFRR(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces and port 520")
	}
	vip := netip.MustParsePrefix("10.255.0.1/32")
	srv, rtr := netnstest.New(t, "rcs"), netnstest.New(t, "rcr")
	for _, link := range []struct{ srv, rtr, srvAddr, rtrAddr string }{
		{"rs0", "sr0", "10.200.0.2/24", "10.200.0.1/24"},
		{"rs1", "sr1", "10.200.1.2/24", "10.200.1.1/24"},
	} {
		if err := netns.Veth(netns.End{NS: srv, Dev: link.srv, Addr: netip.MustParsePrefix(link.srvAddr)},
			netns.End{NS: rtr, Dev: link.rtr, Addr: netip.MustParsePrefix(link.rtrAddr)}); err != nil {
			t.Fatal(err)
		}
	}
	frr, err := routers.StartFRR(context.Background(), routers.Config{NS: rtr, Interfaces: []string{"sr0", "sr1"},
		Auth: routers.Auth{Mode: routers.AuthMD5, KeyID: 1, Key: "new-key"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { frr.Stop() })

	// The service's page, inside the replica's namespace.
	page := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") }))
	if err := srv.Do(func() (err error) { page.Listener, err = net.Listen("tcp", "127.0.0.1:0"); return err }); err != nil {
		t.Fatal(err)
	}
	page.Start()
	t.Cleanup(page.Close)

	dir := t.TempDir()
	keyFile, sock := filepath.Join(dir, "rip.key"), filepath.Join(dir, "ripcord.sock")
	os.WriteFile(keyFile, []byte("old-key\n"), 0o600)
	config := func(ifc string) string {
		return fmt.Sprintf(`state_dir: %s/state
control: {socket: %s}
rip:
  update_interval: 1h
  interfaces: [{name: %s}]
  auth: {mode: md5, key_id: 1, key_file: %s}
services:
  - name: web
    vip: %s
    checks:
      - {name: page, checker: http, target: "%s/", interval: 100ms, timeout: 90ms, rise: 1, fall: 1000}
`, dir, sock, ifc, keyFile, vip, page.URL)
	}
	cfg := writeConfig(t, config("rs0"))
	d, err := srv.Start(filepath.Join(dir, "ripcord.log"), bin, "run", "-no-vip", "-c", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Stop(5 * time.Second) })
	route := func(via string, within time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		var r routers.Route
		for deadline := start.Add(within); ; time.Sleep(20 * time.Millisecond) {
			if r, err = frr.Route(context.Background(), vip); err == nil && r.Present == (via != "") &&
				(via == "" || r.NextHop.String() == via && r.Metric == 2) {
				return time.Since(start)
			}
			if time.Now().After(deadline) {
				log, _ := os.ReadFile(filepath.Join(dir, "ripcord.log"))
				t.Fatalf("after %v FRR holds %+v (%v), want via %q\nripcord log:\n%s", within, r, err, via, log)
			}
		}
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if out, _ := run(t, "status", "-s", sock, "-json"); strings.Contains(out, `"state": "up"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("web never came up")
		}
	}
	time.Sleep(300 * time.Millisecond)
	route("", 0) // the router rejected the old key
	reload := func(want string) {
		t.Helper()
		if out, code := run(t, "reload", "-s", sock); code != 0 || !strings.Contains(out, "reloaded: "+want) {
			t.Fatalf("reload: exit %d\n%s", code, out)
		}
	}

	os.WriteFile(keyFile, []byte("new-key\n"), 0o600)
	reload("unchanged web; rip: authentication md5 key-id 1 (key hidden)")
	t.Logf("FRR learned the VIP %v after the reload with the new key", route("10.200.0.2", time.Second))

	os.WriteFile(cfg, []byte(config("rs1")), 0o644)
	reload("unchanged web; rip: removed interface rs0; rip: added interface rs1")
	t.Logf("FRR moved to the other link %v after the reload", route("10.200.1.2", 2*time.Second))
}
