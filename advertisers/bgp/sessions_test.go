package bgp

import (
	"context"
	"testing"
	"time"
)

func TestSessions(t *testing.T) {
	r := startRouter(t, "127.0.0.1", routerASN, "")
	start := time.Now()
	sp := newSpeaker(t, Config{}, r)
	sessions := func() []Session {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return sp.Sessions(ctx)
	}
	waitFor(t, "session established", func() bool {
		s := sessions()
		return len(s) == 1 && s[0].State == "established"
	})
	set(t, sp, ann("10.77.0.1/32", 1, false), ann("10.77.0.2/32", 3, false))
	waitFor(t, "two prefixes advertised", func() bool { return sessions()[0].Advertised == 2 })
	s := sessions()[0]
	if s.Peer.String() != "127.0.0.1" || s.PeerASN != routerASN {
		t.Errorf("session %+v: want peer 127.0.0.1 AS %d", s, routerASN)
	}
	if s.Since.Before(start.Add(-time.Second)) || s.Since.After(time.Now()) {
		t.Errorf("established since %v, want after the speaker started at %v", s.Since, start)
	}
	set(t, sp, ann("10.77.0.1/32", 1, false))
	waitFor(t, "one prefix advertised after a withdrawal", func() bool { return sessions()[0].Advertised == 1 })
}
