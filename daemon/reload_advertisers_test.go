package daemon

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ripcord/ripcord/advertisers"
	"github.com/ripcord/ripcord/advertisers/rip"
	"github.com/ripcord/ripcord/control"
	"github.com/ripcord/ripcord/core/config"
	"github.com/ripcord/ripcord/internal/memconn"
)

// TestReloadBGPPeers: a reload that adds a BGP peer and one that removes it
// again touch that peer's session only: the router that stays in the
// config receives no UPDATE. Adding a rip section needs a restart.
func TestReloadBGPPeers(t *testing.T) {
	r1, r2 := startBGPRouter(t), startBGPRouterAt(t, "127.0.0.2")
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "ripcord.yaml")
	page := pageServer(t)
	write := func(head string) {
		t.Helper()
		if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf("state_dir: %[1]s/state\ncontrol: {socket: %[1]s/ripcord.sock}\n%[2]sservices:\n"+
			"  - name: web\n    vip: 192.0.2.50\n    checks:\n      - {name: page, checker: http, target: \"http://%[3]s/\", interval: 100ms, timeout: 90ms, rise: 1, fall: 1000}\n",
			dir, head, page)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(bgpHead(r1))
	runDaemon(t, cfgPath)
	client := control.NewClient(filepath.Join(dir, "ripcord.sock"))
	waitUntil(t, "r1 holds the VIP", func() bool { return r1.prefixes() == 1 })
	time.Sleep(300 * time.Millisecond)
	before := r1.updates()

	reload := func(want string) {
		t.Helper()
		res, err := client.Reload()
		if err != nil || res.Summary != want {
			t.Fatalf("reload: %+v, %v; want summary %q", res, err, want)
		}
	}
	write(bgpHead(r1, r2))
	reload("unchanged web; bgp: added peer 127.0.0.2")
	waitUntil(t, "r2 holds the VIP", func() bool { return r2.prefixes() == 1 })
	write(bgpHead(r1))
	reload("unchanged web; bgp: removed peer 127.0.0.2")
	waitUntil(t, "r2 dropped the VIP with the session", func() bool { return r2.prefixes() == 0 })
	time.Sleep(300 * time.Millisecond)
	if n := r1.updates() - before; n != 0 || r1.prefixes() != 1 {
		t.Errorf("the unchanged router received %d UPDATEs and holds %d prefixes; want 0 and 1", n, r1.prefixes())
	}

	write("rip: {interfaces: [{name: lo}]}\n" + bgpHead(r1))
	if _, err := client.Reload(); err == nil || !strings.Contains(err.Error(), "the rip section was added or removed: that needs a restart") {
		t.Fatalf("adding rip: %v", err)
	}
}

// TestReloadRIPKey: a reload after the RIP key file changed (the config
// file did not) re-sends the table signed with the new key; a reload that
// changes nothing sends nothing. The speaker is real, on an in-memory
// socket: the routers' side is TestInteropReconfigure's.
func TestReloadRIPKey(t *testing.T) {
	dir := t.TempDir()
	keyFile, cfgPath := filepath.Join(dir, "rip.key"), filepath.Join(dir, "ripcord.yaml")
	os.WriteFile(keyFile, []byte("old-key\n"), 0o600)
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`state_dir: %[1]s/state
control: {socket: %[1]s/ripcord.sock}
rip:
  update_interval: 1h
  interfaces: [{name: lo}]
  auth: {mode: md5, key_id: 1, key_file: %[2]s}
services:
  - name: web
    vip: 192.0.2.51
    checks:
      - {name: page, checker: http, target: "http://%[3]s/", interval: 100ms, timeout: 90ms, rise: 1, fall: 1000}
`, dir, keyFile, pageServer(t))), 0o644)
	conn := memconn.New(&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: rip.Port})
	sent := &responses{c: conn}
	runDaemonWith(t, cfgPath, func(cfg *config.Config) map[string]advertisers.Advertiser {
		rc, err := ripConfig(cfg.RIP, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		sp, err := rip.NewWithConns(rc, map[string]net.PacketConn{"lo": conn})
		if err != nil {
			t.Fatal(err)
		}
		return map[string]advertisers.Advertiser{"rip": sp}
	})
	oldKey := rip.Auth{Type: rip.AuthMD5, KeyID: 1, Key: []byte("old-key")}
	newKey := rip.Auth{Type: rip.AuthMD5, KeyID: 1, Key: []byte("new-key")}
	waitUntil(t, "the VIP announced", func() bool { return sent.count(oldKey) > 0 })
	client := control.NewClient(filepath.Join(dir, "ripcord.sock"))
	waitUntil(t, "the control socket", func() bool { _, err := client.Status(); return err == nil })
	time.Sleep(200 * time.Millisecond)
	before := sent.count(oldKey)

	if res, err := client.Reload(); err != nil || res.Summary != "unchanged web" {
		t.Fatalf("unchanged reload: %+v, %v", res, err)
	}
	time.Sleep(200 * time.Millisecond)
	os.WriteFile(keyFile, []byte("new-key\n"), 0o600)
	if res, err := client.Reload(); err != nil || res.Summary != "unchanged web; rip: authentication md5 key-id 1 (key hidden)" {
		t.Fatalf("new key: %+v, %v", res, err)
	}
	waitUntil(t, "the table signed with the new key", func() bool { return sent.count(newKey) == 1 })
	time.Sleep(200 * time.Millisecond)
	if n, m := sent.count(oldKey)-before, sent.count(newKey); n != 0 || m != 1 {
		t.Errorf("the reloads sent %d Responses with the old key and %d with the new one, want 0 and 1", n, m)
	}
}

// responses counts, of what the speaker sent on c so far, the RIP
// Responses that auth verifies.
type responses struct {
	c    *memconn.Conn
	sent [][]byte
}

func (r *responses) count(auth rip.Auth) int {
	for drained := false; !drained; {
		select {
		case p := <-r.c.Out:
			r.sent = append(r.sent, p.Data)
		default:
			drained = true
		}
	}
	n := 0
	for _, wire := range r.sent {
		var p rip.Packet
		if plain, _, err := auth.Verify(wire); err == nil && p.UnmarshalBinary(plain) == nil && p.Command == rip.CommandResponse {
			n++
		}
	}
	return n
}
