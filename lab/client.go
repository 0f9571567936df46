package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/ripcord/ripcord/lab/services"
)

// RequestTimeout bounds every client request: a client whose VIP has no
// route gets ICMP unreachable at once, a hung server costs this much.
const RequestTimeout = 300 * time.Millisecond

// ProbeInterval is how often each client asks each service.
const ProbeInterval = 100 * time.Millisecond

var markerRE = regexp.MustCompile(`replica-([a-z0-9]+)`)

// replicaOf extracts the replica name from a marker-bearing answer.
func replicaOf(s string) (string, error) {
	m := markerRE.FindStringSubmatch(s)
	if m == nil {
		return "", fmt.Errorf("no replica marker in %q", truncate(s, 80))
	}
	return m[1], nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// Probe sends one real request for a service from a client to the
// service's VIP and returns which replica answered.
func (l *Lab) Probe(ctx context.Context, c *Client, service string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, RequestTimeout)
	defer cancel()
	service, vip := probeTarget(service)
	var answer string
	var err error
	switch service {
	case ServiceLDAP:
		answer, err = probeLDAPAt(ctx, c.NS, netip.AddrPortFrom(vip, portLDAP), RequestTimeout)
	case ServiceRADIUS:
		answer, err = l.probeRADIUS(ctx, c, netip.AddrPortFrom(vip, portRADIUS))
	case ServiceWebAuth:
		answer, err = l.probeHTTP(ctx, c, netip.AddrPortFrom(vip, portHTTP))
	default:
		return "", fmt.Errorf("lab: no service %q", service)
	}
	if err != nil {
		return "", err
	}
	return replicaOf(answer)
}

// probeRADIUS sends an Access-Request for the test user and returns the
// Reply-Message of the authentic Access-Accept.
func (l *Lab) probeRADIUS(ctx context.Context, c *Client, addr netip.AddrPort) (string, error) {
	conn, err := dialIn(ctx, c.NS, "udp", addr.String(), RequestTimeout)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	req := radius.New(radius.CodeAccessRequest, []byte(radiusSecret))
	if err := rfc2865.UserName_SetString(req, services.RadiusAcceptUser); err != nil {
		return "", err
	}
	if err := rfc2865.UserPassword_SetString(req, services.RadiusAcceptPassword); err != nil {
		return "", err
	}
	wire, err := req.Encode()
	if err != nil {
		return "", err
	}
	if _, err := conn.Write(wire); err != nil {
		return "", err
	}
	buf := make([]byte, 4096)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return "", err
		}
		if !radius.IsAuthenticResponse(buf[:n], wire, []byte(radiusSecret)) {
			continue // a stray or forged datagram: keep waiting until the deadline
		}
		resp, err := radius.Parse(buf[:n], []byte(radiusSecret))
		if err != nil {
			return "", err
		}
		if resp.Code != radius.CodeAccessAccept {
			return "", fmt.Errorf("radius: %v", resp.Code)
		}
		return rfc2865.ReplyMessage_GetString(resp), nil
	}
}

// probeHTTP GETs the login page and returns its body.
func (l *Lab) probeHTTP(ctx context.Context, c *Client, addr netip.AddrPort) (string, error) {
	tr := &http.Transport{
		DisableKeepAlives: true,
		Proxy:             nil,
		DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
			return dialIn(ctx, c.NS, network, a, RequestTimeout)
		},
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr.String()+"/login", nil)
	if err != nil {
		return "", err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `name="password"`) {
		return "", fmt.Errorf("http: status %d without the login form", resp.StatusCode)
	}
	return string(body), nil
}

// Sample is one client request and its outcome.
type Sample struct {
	At      time.Time
	Client  string // "ca" or "cb"
	Service string
	Replica string // who answered; "" when the request failed
	Err     string
}

// Key names a client's view of one service.
type Key struct{ Client, Service string }

// Recorder runs every client against every service each ProbeInterval and
// keeps the samples.
type Recorder struct {
	lab      *Lab
	mu       sync.Mutex
	samples  []Sample
	last     map[Key]string
	onChange func(Sample, string)
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// Record starts the client loops. onChange (optional) is called, from the
// loops, when the answer of a client for a service changes, with the
// sample and the previous answer ("" before the first, "error" after a
// failure). The loops end with ctx or Stop.
func (l *Lab) Record(ctx context.Context, onChange func(s Sample, prev string)) *Recorder {
	ctx, cancel := context.WithCancel(ctx)
	rec := &Recorder{lab: l, last: map[Key]string{}, onChange: onChange, cancel: cancel}
	for _, c := range l.Clients() {
		for _, svc := range l.Probed() {
			rec.wg.Add(1)
			go rec.loop(ctx, c, svc)
		}
	}
	return rec
}

func (rec *Recorder) loop(ctx context.Context, c *Client, svc string) {
	defer rec.wg.Done()
	tick := time.NewTicker(ProbeInterval)
	defer tick.Stop()
	for {
		at := time.Now()
		replica, err := rec.lab.Probe(ctx, c, svc)
		if ctx.Err() != nil {
			return // a request cut short by the end is not a failure
		}
		s := Sample{At: at, Client: c.Name, Service: svc, Replica: replica}
		if err != nil {
			s.Err = shortErr(err)
		}
		rec.add(s)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func shortErr(err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case strings.Contains(err.Error(), "no route to host"), strings.Contains(err.Error(), "network is unreachable"):
		return "unreachable"
	case strings.Contains(err.Error(), "connection refused"):
		return "refused"
	}
	return truncate(err.Error(), 120)
}

func (rec *Recorder) add(s Sample) {
	rec.mu.Lock()
	rec.samples = append(rec.samples, s)
	k := Key{s.Client, s.Service}
	now := s.Replica
	if now == "" {
		now = "error"
	}
	prev, seen := rec.last[k]
	rec.last[k] = now
	rec.mu.Unlock()
	if rec.onChange != nil && (!seen || prev != now) {
		rec.onChange(s, prev)
	}
}

// Stop ends the loops and waits for them.
func (rec *Recorder) Stop() {
	rec.cancel()
	rec.wg.Wait()
}

// Samples returns a copy of the samples so far, in the order they finished.
func (rec *Recorder) Samples() []Sample {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]Sample(nil), rec.samples...)
}

// Current returns the latest answer of a client for a service ("error"
// after a failed request, "" before any).
func (rec *Recorder) Current(client, service string) string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.last[Key{client, service}]
}

// WaitFor polls until every (client, service) in want is answered by the
// given replica in its latest sample, or ctx ends. The error names those
// that are not.
func (rec *Recorder) WaitFor(ctx context.Context, want map[Key]string) error {
	tick := time.NewTicker(ProbeInterval)
	defer tick.Stop()
	for {
		var wrong []string
		for k, r := range want {
			if got := rec.Current(k.Client, k.Service); got != r {
				wrong = append(wrong, fmt.Sprintf("%s/%s: %q (want %s)", k.Client, k.Service, got, r))
			}
		}
		if len(wrong) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("lab: clients not served as expected: %s", strings.Join(wrong, "; "))
		case <-tick.C:
		}
	}
}
