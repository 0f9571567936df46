package daemon

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
	"github.com/ripcord/ripcord/core"
)

// notifier speaks systemd's notify protocol (Type=notify): READY=1 once
// every service has had its first decision, STATUS= with a one-line summary,
// WATCHDOG=1 from the engine's own loop, and STOPPING=1 on shutdown. Without
// NOTIFY_SOCKET every call does nothing.
type notifier struct {
	log      *slog.Logger
	watchdog time.Duration // WatchdogSec from the unit; 0 if off

	mu     sync.Mutex
	ready  bool
	status string
}

func newNotifier(log *slog.Logger) *notifier {
	n := &notifier{log: log}
	if d, err := sd.SdWatchdogEnabled(false); err != nil {
		log.Warn("systemd watchdog settings ignored", "err", err)
	} else {
		n.watchdog = d
	}
	return n
}

func (n *notifier) send(state string) {
	if _, err := sd.SdNotify(false, state); err != nil {
		n.log.Warn("systemd notify", "err", err)
	}
}

// progress reports the services' states; the first time none is starting
// any more, it also says READY=1.
func (n *notifier) progress(sts []core.Status) {
	n.mu.Lock()
	defer n.mu.Unlock()
	line, decided := summary(sts)
	msg := ""
	if decided && !n.ready {
		n.ready = true
		msg = "READY=1\n"
	}
	if line != n.status {
		n.status = line
		msg += "STATUS=" + line
	}
	if msg != "" {
		n.send(msg)
	}
}

// alive is the engine's heartbeat.
func (n *notifier) alive() { n.send("WATCHDOG=1") }

func (n *notifier) stopping() { n.send("STOPPING=1\nSTATUS=withdrawing every announcement") }

// summary is the one-line STATUS: each service with its state, and the
// reason when it is not up. decided is false while any service is starting.
func summary(sts []core.Status) (line string, decided bool) {
	decided = true
	parts := make([]string, 0, len(sts))
	for _, st := range sts {
		p := st.Name + " " + st.State
		if st.State != core.Up.String() && st.Reason != "" {
			p += fmt.Sprintf(" (%s)", st.Reason)
		}
		parts = append(parts, p)
		if st.State == core.Starting.String() {
			decided = false
		}
	}
	return strings.Join(parts, ", "), decided
}
