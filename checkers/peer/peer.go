// Package peer checks a peer replica's own ripcord: it fails as soon as the
// peer relays the service's flows away (its service broke; it announces a
// worse metric and hands its clients over while routers move) or announces
// the service as unreachable (metric 16, or its down_metric while down),
// and passes again as soon as the peer's checks pass (it is then in its
// failback hold-down).
// Used in assist.peers, it makes the healthy replica's metric change reach
// the routers after the poison, and its return before the peer's return.
package peer

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/ripcord/ripcord/plugins/checkapi"
)

// report is the part of the peer's /v1/status (control.Report) this checker
// reads. It and the names below are declared here rather than imported so
// that the checker process links neither the daemon's control and metrics
// packages nor core (and with it the relay's nftables); the tests serve a
// real control.Report and check the names against core's and relay's.
type report struct {
	Node     string `json:"node"`
	Services []struct {
		Name       string         `json:"name"`
		State      string         `json:"state"`
		Reason     string         `json:"reason"`
		Metric     int            `json:"metric"`
		Recovering bool           `json:"recovering"`
		Announced  map[string]int `json:"announced"`
		Relay      *struct {
			Mode string `json:"mode"`
			Peer string `json:"peer"`
		} `json:"relay"`
	} `json:"services"`
}

// Names in the peer's status: its state (core.State) and relay mode
// (relay.Mode).
const (
	stateDown     = "down"
	stateStarting = "starting"
	relayAll      = "all"
)

// obsRecovering is 1 while the check passes only because the peer waits out
// its failback hold-down (core.PeerRecovering): assistance ends then, but the
// peer is no relay target for a replica that still serves.
const obsRecovering = "peer_recovering"

// Checker is the peer checker.
type Checker struct{}

// New returns the checker ("peer").
func New() checkapi.Checker { return Checker{} }

// Describe implements checkapi.Checker.
func (Checker) Describe() checkapi.Description {
	return checkapi.Description{Name: "peer", Version: "0.1.0",
		Summary: "a peer replica's ripcord: fails when the peer relays the service away or withdraws (poisons) it", Settings: fields}
}

// Configure implements checkapi.Checker.
func (Checker) Configure(_ context.Context, s checkapi.Settings) ([]checkapi.FieldError, error) {
	_, fes := parseConfig(s)
	return fes, nil
}

// Reasons beyond the shared ones.
const (
	ReasonWithdrawn    = "withdrawn"     // the peer announces metric 16, or is down and announces its down_metric
	ReasonRelaying     = "relaying"      // the peer hands every new flow of the service to a peer
	ReasonNotAnnounced = "not_announced" // the peer has not announced the service yet
	ReasonNoService    = "no_service"    // the peer has no such service
)

// Check implements checkapi.Checker. Target is the peer's metrics_listen URL,
// e.g. http://10.0.2.10:9473.
func (Checker) Check(ctx context.Context, req *checkapi.Request) (*checkapi.Result, error) {
	c, fes := parseConfig(req.Settings)
	if fes != nil {
		return nil, fmt.Errorf("checkers/peer: %v", fes[0])
	}
	u, err := parseTarget(req.Target)
	if err != nil {
		return nil, fmt.Errorf("checkers/peer: target %w", err)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/status"
	var t checkapi.Timer
	return t.Done(probe(ctx, u.String(), c, t.Start("request")))
}

// probe asks the peer for its status within span, the request phase.
func probe(ctx context.Context, status string, c Config, span checkapi.Span) (*checkapi.Result, error) {
	defer span.End()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, status, nil)
	if err != nil {
		return nil, err
	}
	// A fresh connection each time: a peer that died must not look alive
	// through a pooled one.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}
	resp, err := client.Do(hreq)
	if err != nil {
		return checkapi.NetFailure(ctx, err, "peer's ripcord"), nil
	}
	defer resp.Body.Close()
	var rep report
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err == nil && resp.StatusCode == http.StatusOK {
		err = json.Unmarshal(body, &rep)
	} else if err == nil {
		err = fmt.Errorf("status %s", resp.Status)
	}
	span.End()
	if err != nil {
		return checkapi.Failed(checkapi.ReasonUnexpectedResponse, "peer status: %v", err), nil
	}
	for _, s := range rep.Services {
		if s.Name != c.Service {
			continue
		}
		m, ok := s.Announced[c.Advertiser]
		// Withdrawn: poisoned, or down and what it announces while down
		// (a down_metric below 16 for routers with holddown timers, or its
		// last_resort_metric) already sent.
		down := s.State == stateDown || s.State == stateStarting
		withdrawn := m >= 16 || down && m == s.Metric
		var r *checkapi.Result
		switch {
		case !ok:
			r = checkapi.Failed(ReasonNotAnnounced, "%s has not announced %s over %s yet (%s: %s)", rep.Node, c.Service, c.Advertiser, s.State, s.Reason)
		case withdrawn && s.Recovering:
			// Its checks pass again and it returns when its failback
			// hold-down ends. Assistance must end now, before that: if it
			// ended when the peer returns, routers would hear the peer's
			// route at a metric equal to ours and keep ours (RIP prefers
			// the route it has) until a periodic update.
			r = checkapi.OK(fmt.Sprintf("%s recovers %s (%s)", rep.Node, c.Service, s.Reason))
		case s.Relay != nil && s.Relay.Mode == relayAll:
			// It moves its clients to a peer: the routers that still use it
			// must hear the healthy replicas now.
			r = checkapi.Failed(ReasonRelaying, "%s relays %s to %s (%s: %s)", rep.Node, c.Service, s.Relay.Peer, s.State, s.Reason)
		case withdrawn:
			r = checkapi.Failed(ReasonWithdrawn, "%s withdrew %s (%s: %s)", rep.Node, c.Service, s.State, s.Reason)
		default:
			r = checkapi.OK(fmt.Sprintf("%s announces %s with metric %d (%s)", rep.Node, c.Service, m, s.State))
		}
		if ok {
			recovering := 0.0
			if withdrawn && s.Recovering {
				recovering = 1
			}
			r.Observe("peer_metric", float64(m)).Observe(obsRecovering, recovering)
		}
		return r, nil
	}
	return checkapi.Failed(ReasonNoService, "%s has no service %q", rep.Node, c.Service), nil
}

// ValidateTarget implements checkapi.TargetValidator: the http:// URL of the
// peer's control.metrics_listen.
func (Checker) ValidateTarget(target string) error {
	_, err := parseTarget(target)
	return err
}

func parseTarget(target string) (*url.URL, error) {
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q is not an http:// URL of the peer's control.metrics_listen", target)
	}
	return u, nil
}
