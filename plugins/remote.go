package plugins

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"time"

	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/ripcord/ripcord/internal/checkerpb"
	"github.com/ripcord/ripcord/plugins/sdk"
)

// goPlugin is the host side of the go-plugin contract.
type goPlugin struct {
	plugin.NetRPCUnsupportedPlugin
}

func (goPlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error {
	return errors.New("plugins: the host does not serve checkers")
}

func (goPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, cc *grpc.ClientConn) (any, error) {
	return remote{checkerpb.NewCheckerClient(cc)}, nil
}

// remote is the host's view of one plugin's Checker service. Its methods
// convert to and from the wire and reject answers that break the contract.
// A returned error means the plugin is broken; a checker that reports its own
// error is not (see checkerFault).
type remote struct {
	c checkerpb.CheckerClient
}

// invalidError is an answer that breaks the contract.
type invalidError struct{ msg string }

func (e *invalidError) Error() string { return "invalid answer: " + e.msg }

func invalid(format string, args ...any) error { return &invalidError{fmt.Sprintf(format, args...)} }

// checkerFault is an error the checker reported about itself.
type checkerFault struct{ msg string }

func (e *checkerFault) Error() string { return "checker error: " + e.msg }

func (r remote) describe(ctx context.Context) (sdk.Description, error) {
	resp, err := r.c.Describe(ctx, &checkerpb.DescribeRequest{})
	if err != nil {
		return sdk.Description{}, err
	}
	d := sdk.Description{Name: resp.GetName(), Version: resp.GetVersion(), Summary: resp.GetSummary()}
	if d.Name == "" {
		return sdk.Description{}, invalid("Describe returned no name")
	}
	for _, f := range resp.GetSettings() {
		d.Settings = append(d.Settings, sdk.Field{
			Name: f.GetName(), Type: f.GetType(), Required: f.GetRequired(), Default: f.GetDefault(), Help: f.GetHelp(),
		})
	}
	return d, nil
}

func (r remote) configure(ctx context.Context, req *sdk.Request) (string, []sdk.FieldError, error) {
	resp, err := r.c.Configure(ctx, &checkerpb.ConfigureRequest{Settings: req.Settings, Target: req.Target})
	if err != nil {
		return "", nil, err
	}
	if resp.GetError() != "" {
		return "", nil, &checkerFault{resp.GetError()}
	}
	var errs []sdk.FieldError
	for _, fe := range resp.GetFieldErrors() {
		errs = append(errs, sdk.FieldError{Field: fe.GetField(), Message: fe.GetMessage()})
	}
	return resp.GetTargetError(), errs, nil
}

// check runs one check; deadline is zero when the check has none. A checker
// error comes back as a checker_error result, not as an error.
func (r remote) check(ctx context.Context, req *sdk.Request, deadline time.Time) (*sdk.Result, error) {
	in := &checkerpb.CheckRequest{Target: req.Target, Settings: req.Settings}
	if !deadline.IsZero() {
		in.DeadlineUnixNano = deadline.UnixNano()
	}
	resp, err := r.c.Check(ctx, in)
	if err != nil {
		return nil, err
	}
	if resp.GetError() != "" {
		return checkerError(resp.GetError()), nil
	}
	return resultFromPB(resp)
}

// reasonRE is the shape of a reason: a short lower_snake_case word.
var reasonRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

func resultFromPB(resp *checkerpb.CheckResponse) (*sdk.Result, error) {
	res := &sdk.Result{Reason: resp.GetReason(), Message: resp.GetMessage()}
	switch resp.GetStatus() {
	case checkerpb.Status_STATUS_OK:
		res.Status = sdk.StatusOK
		if res.Reason == "" {
			res.Reason = sdk.ReasonOK
		}
	case checkerpb.Status_STATUS_DEGRADED:
		res.Status = sdk.StatusDegraded
	case checkerpb.Status_STATUS_FAILED:
		res.Status = sdk.StatusFailed
	default:
		return nil, invalid("status %d is none of ok, degraded, failed", int32(resp.GetStatus()))
	}
	switch {
	case res.Reason == "":
		return nil, invalid("%s result without a reason", res.Status)
	case !reasonRE.MatchString(res.Reason):
		return nil, invalid("reason %q is not a short lower_snake_case word", res.Reason)
	case res.Reason == sdk.ReasonOK && res.Status != sdk.StatusOK:
		return nil, invalid("%s result with reason ok", res.Status)
	case res.Reason == sdk.ReasonCheckerError:
		return nil, invalid("reason checker_error is the daemon's; a checker that breaks returns an error")
	}
	for _, p := range resp.GetPhases() {
		s := p.GetSeconds()
		if p.GetName() == "" || s < 0 || math.IsNaN(s) || math.IsInf(s, 0) {
			return nil, invalid("phase %q lasted %v seconds", p.GetName(), s)
		}
		res.Phases = append(res.Phases, sdk.Phase{Name: p.GetName(), Duration: time.Duration(math.Round(s * 1e9))})
	}
	for k, v := range resp.GetObservations() {
		if k == "" || math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, invalid("observation %q = %v", k, v)
		}
	}
	if len(resp.GetObservations()) > 0 {
		res.Observations = resp.GetObservations()
	}
	return res, nil
}

// checkerError is the result of a check whose checker broke.
func checkerError(msg string) *sdk.Result {
	return &sdk.Result{Status: sdk.StatusFailed, Reason: sdk.ReasonCheckerError, Message: msg}
}
