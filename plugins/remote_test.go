package plugins

import (
	"context"
	"errors"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/ripcord/ripcord/internal/checkpipe"
	"github.com/ripcord/ripcord/plugins/checkapi"
	"github.com/ripcord/ripcord/plugins/sdk"
)

// bothSides serves c in-process (sdk side) and talks to it through the host's
// client (this package's side).
type bothSides struct {
	goPlugin
	c checkapi.Checker
}

func (p bothSides) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	sdk.RegisterGRPC(s, p.c)
	return nil
}

// inProcess returns the host's view of c over a real gRPC connection.
func inProcess(t *testing.T, c checkapi.Checker) remote {
	t.Helper()
	client, _ := plugin.TestPluginGRPCConn(t, false, plugin.PluginSet{"checker": bothSides{c: c}})
	// Close stops the server too (go-plugin's controller Shutdown); stopping
	// it again here would race with that.
	t.Cleanup(func() { client.Close() })
	raw, err := client.Dispense("checker")
	if err != nil {
		t.Fatal(err)
	}
	return raw.(remote)
}

// inPipe returns the host's view of c served by checkpipe over a socket
// pair, in process.
func inPipe(t *testing.T, c checkapi.Checker) conn {
	t.Helper()
	ours, theirs := net.Pipe()
	served := make(chan error, 1)
	go func() { served <- checkpipe.ServeConn(theirs, c) }()
	client, err := checkpipe.NewClient(ours, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		client.Close()
		if err := <-served; err != nil {
			t.Errorf("ServeConn: %v", err)
		}
	})
	return pipeConn{client}
}

// fixedChecker answers each target with a canned result and records what it got.
type fixedChecker struct {
	testChecker
	results map[string]*checkapi.Result
	got     chan gotCheck
}

type gotCheck struct {
	req      checkapi.Request
	deadline time.Time
}

func (c fixedChecker) Check(ctx context.Context, req *checkapi.Request) (*checkapi.Result, error) {
	d, _ := ctx.Deadline()
	c.got <- gotCheck{*req, d}
	if res, ok := c.results[req.Target]; ok {
		return res, nil
	}
	return c.testChecker.Check(ctx, req)
}

func TestRoundTrip(t *testing.T) {
	full := &checkapi.Result{
		Status: checkapi.StatusDegraded, Reason: "stale_replica", Message: "lag 12.5s, ünïcode",
		Phases: []checkapi.Phase{
			{Name: "connect", Duration: 1234567 * time.Nanosecond},
			{Name: "bind", Duration: 2 * time.Second},
			{Name: "search", Duration: 0},
		},
		Observations: map[string]float64{"replication_lag_seconds": 12.5, "cert_days_left": -3, "zero": 0},
	}
	results := map[string]*checkapi.Result{
		"full":         full,
		"failed":       checkapi.Failed(checkapi.ReasonRefused, "connection refused"),
		"ok-no-reason": {Status: checkapi.StatusOK},
		"status-7":     {Status: checkapi.Status(7), Reason: "ok"},
		"status-minus": {Status: checkapi.Status(-1), Reason: "x"},
		"no-reason":    {Status: checkapi.StatusFailed},
		"bad-reason":   {Status: checkapi.StatusFailed, Reason: "Connection Refused"},
		"ok-reason":    {Status: checkapi.StatusDegraded, Reason: checkapi.ReasonOK},
		"reserved":     {Status: checkapi.StatusFailed, Reason: checkapi.ReasonCheckerError},
		"neg-phase":    checkapi.OK("").AddPhase("connect", -time.Second),
		"unnamed":      checkapi.OK("").AddPhase("", time.Second),
		"nan":          checkapi.OK("").Observe("x", math.NaN()),
		"inf":          checkapi.OK("").Observe("x", math.Inf(1)),
		"nil":          nil,
		"binary":       checkapi.Failed(checkapi.ReasonUnexpectedResponse, "got \xff\xfe\x00banner"),
	}
	c := fixedChecker{testChecker: testChecker{name: "fixed"}, results: results, got: make(chan gotCheck, 1)}
	for name, r := range map[string]conn{"grpc": inProcess(t, c), "pipe": inPipe(t, c)} {
		t.Run(name, func(t *testing.T) { testRoundTrip(t, c, r) })
	}
}

func testRoundTrip(t *testing.T, c fixedChecker, r conn) {
	results := c.results
	full := results["full"]
	ctx := context.Background()
	deadline := time.Now().Add(time.Minute)

	t.Run("describe", func(t *testing.T) {
		got, err := r.describe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(c.Describe(), got); diff != "" {
			t.Errorf("Describe (-want +got):\n%s", diff)
		}
	})

	t.Run("configure", func(t *testing.T) {
		for _, tc := range []struct {
			settings string
			want     []checkapi.FieldError
			err      string
		}{
			{settings: `{"port": 389}`},
			{settings: `{"port": 0}`, want: []checkapi.FieldError{{Field: "port", Message: "must be positive"}}},
			// The SDK holds settings to the schema before Configure sees them.
			{settings: `{"prot": 1, "port": "389", "broken": 1}`, want: []checkapi.FieldError{
				{Field: "prot", Message: "unknown setting (known: broken, port)"},
				{Field: "port", Message: "cannot use a string as int"},
				{Field: "broken", Message: "cannot use the number 1 as bool"}}},
			{settings: `{"port": 0, "prot": 1}`, want: []checkapi.FieldError{
				{Field: "prot", Message: "unknown setting (known: broken, port)"},
				{Field: "port", Message: "must be positive"}}},
			{settings: `{"broken": true}`, err: "checker error: configure broke"},
		} {
			_, got, err := r.configure(ctx, &checkapi.Request{Settings: checkapi.Settings(tc.settings)})
			if tc.err != "" {
				var fault *checkerFault
				if !errors.As(err, &fault) || err.Error() != tc.err {
					t.Errorf("Configure(%s): error %v, want checker fault %q", tc.settings, err, tc.err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("Configure(%s): %v", tc.settings, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Configure(%s) (-want +got):\n%s", tc.settings, diff)
			}
		}
	})

	t.Run("check", func(t *testing.T) {
		for _, tc := range []struct {
			target   string
			want     *checkapi.Result
			deadline time.Time
		}{
			{target: "full", want: full, deadline: deadline},
			{target: "failed", want: results["failed"], deadline: deadline},
			{target: "ok-no-reason", want: &checkapi.Result{Status: checkapi.StatusOK, Reason: checkapi.ReasonOK}},
			{target: "binary", want: checkapi.Failed(checkapi.ReasonUnexpectedResponse, "got \uFFFD\x00banner")},
			{target: "error", want: &checkapi.Result{Status: checkapi.StatusFailed, Reason: checkapi.ReasonCheckerError, Message: "broken on purpose"}},
			{target: "panic", want: &checkapi.Result{Status: checkapi.StatusFailed, Reason: checkapi.ReasonCheckerError, Message: "Check panicked: boom"}},
			{target: "nil", want: &checkapi.Result{Status: checkapi.StatusFailed, Reason: checkapi.ReasonCheckerError, Message: "Check returned neither a result nor an error"}},
		} {
			req := &checkapi.Request{Target: tc.target, Settings: checkapi.Settings(`{"port":1}`)}
			got, err := r.check(ctx, req, tc.deadline)
			if err != nil {
				t.Fatalf("check %s: %v", tc.target, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("check %s (-want +got):\n%s", tc.target, diff)
			}
			seen := <-c.got
			// The checker sees the settings with the schema's defaults.
			if diff := cmp.Diff(checkapi.Request{Target: tc.target, Settings: checkapi.Settings(`{"broken":false,"port":1}`)}, seen.req); diff != "" {
				t.Errorf("check %s: request (-sent +seen):\n%s", tc.target, diff)
			}
			if !seen.deadline.Equal(tc.deadline) {
				t.Errorf("check %s: checker saw deadline %v, want %v", tc.target, seen.deadline, tc.deadline)
			}
		}
	})

	t.Run("invalid", func(t *testing.T) {
		for target, want := range map[string]string{
			"status-7":     "status 8 is none of ok, degraded, failed",
			"status-minus": "status 0 is none of ok, degraded, failed",
			"no-reason":    "failed result without a reason",
			"bad-reason":   `reason "Connection Refused" is not a short lower_snake_case word`,
			"ok-reason":    "degraded result with reason ok",
			"reserved":     "reason checker_error is the daemon's",
			"neg-phase":    `phase "connect" lasted -1 seconds`,
			"unnamed":      `phase "" lasted 1 seconds`,
			"nan":          `observation "x" = NaN`,
			"inf":          `observation "x" = +Inf`,
		} {
			_, err := r.check(ctx, &checkapi.Request{Target: target}, time.Time{})
			<-c.got
			var inv *invalidError
			if !errors.As(err, &inv) || !strings.Contains(err.Error(), want) {
				t.Errorf("check %s: error %v, want invalid answer containing %q", target, err, want)
			}
		}
	})
}
