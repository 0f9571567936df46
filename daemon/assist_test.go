package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestAssistFollowsThePeersPoison runs two daemons: A checks a real TCP
// listener, B checks its own and watches A through the peer checker. When
// A's listener closes, A poisons (metric 16) and only then does B change to
// its assist metric; when A is back, B returns to its base metric.
func TestAssistFollowsThePeersPoison(t *testing.T) {
	pluginDir := buildTCPConnect(t)
	svcA := listenTCP(t, "127.0.0.1:0")
	svcB := listenTCP(t, "127.0.0.1:0")
	defer svcB.Close()
	metricsA := freePort(t)

	write := func(name, body string) string {
		dir := t.TempDir()
		p := filepath.Join(dir, name+".yaml")
		body = fmt.Sprintf("state_dir: %s/state\ncontrol: {socket: %s/s.sock, metrics_listen: %q}\nplugins: {dir: %s}\n",
			dir, dir, map[string]string{"a": metricsA, "b": ""}[name], pluginDir) + body
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a := write("a", fmt.Sprintf(`
services:
  - name: svc
    vip: 192.0.2.50
    failback_delay: 500ms
    checks:
      - {name: port, checker: tcpconnect, target: "%s", interval: 50ms, timeout: 40ms, rise: 1, fall: 1}
`, svcA.Addr()))
	b := write("b", fmt.Sprintf(`
services:
  - name: svc
    vip: 192.0.2.50
    checks:
      - {name: port, checker: tcpconnect, target: "%s", interval: 50ms, timeout: 40ms, rise: 1, fall: 1}
    assist:
      metric: 2
      delay: 100ms
      peers:
        - {name: a, checker: peer, target: "http://%s", interval: 50ms, timeout: 40ms, rise: 1, fall: 1, settings: {service: svc}}
`, svcB.Addr(), metricsA))

	advA, advB := &recordingAdvertiser{}, &recordingAdvertiser{}
	startDaemon(t, a, advA)
	advA.waitMetric(t, 1, "A up")
	startDaemon(t, b, advB)
	advB.waitMetric(t, 1, "B up, A announcing")

	svcA.Close()
	advA.waitMetric(t, 16, "A poisons")
	advB.waitMetric(t, 2, "B assists")
	poisoned, assisted := advA.firstAt(16), advB.firstAt(2)
	if gap := assisted.Sub(poisoned); gap < 100*time.Millisecond {
		t.Fatalf("B changed its metric %s after A's poison; it must wait at least assist.delay (100ms)", gap)
	}
	svcA = listenTCP(t, svcA.Addr().String())
	defer svcA.Close()
	advA.waitMetric(t, 1, "A back after its failback delay")
	advB.waitMetric(t, 1, "B back to its base metric")
	// B must step back while A is still in its hold-down: if both changed
	// together, routers would hear A's route at B's metric and keep B's.
	if back, returned := advB.changedTo(1), advA.changedTo(1); !back.Before(returned) {
		t.Fatalf("B left its assist metric at %s, A returned at %s: B must go first", back.Format(time.StampMilli), returned.Format(time.StampMilli))
	}
}
