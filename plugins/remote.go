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
	"github.com/ripcord/ripcord/internal/checkpipe"
	"github.com/ripcord/ripcord/plugins/checkapi"
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

func (r remote) describe(ctx context.Context) (checkapi.Description, error) {
	resp, err := r.c.Describe(ctx, &checkerpb.DescribeRequest{})
	if err != nil {
		return checkapi.Description{}, err
	}
	d := checkapi.Description{Name: resp.GetName(), Version: resp.GetVersion(), Summary: resp.GetSummary()}
	if d.Name == "" {
		return checkapi.Description{}, invalid("Describe returned no name")
	}
	for _, f := range resp.GetSettings() {
		d.Settings = append(d.Settings, checkapi.Field{
			Name: f.GetName(), Type: f.GetType(), Required: f.GetRequired(), Default: f.GetDefault(), Help: f.GetHelp(),
		})
	}
	return d, nil
}

func (r remote) configure(ctx context.Context, req *checkapi.Request) (string, []checkapi.FieldError, error) {
	resp, err := r.c.Configure(ctx, &checkerpb.ConfigureRequest{Settings: req.Settings, Target: req.Target})
	if err != nil {
		return "", nil, err
	}
	if resp.GetError() != "" {
		return "", nil, &checkerFault{resp.GetError()}
	}
	var errs []checkapi.FieldError
	for _, fe := range resp.GetFieldErrors() {
		errs = append(errs, checkapi.FieldError{Field: fe.GetField(), Message: fe.GetMessage()})
	}
	return resp.GetTargetError(), errs, nil
}

func (r remote) check(ctx context.Context, req *checkapi.Request, deadline time.Time) (*checkapi.Result, error) {
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

// conn is the host's view of one plugin process's checker: go-plugin's
// gRPC (remote) or a built-in checker's pipe (pipeConn).
type conn interface {
	describe(ctx context.Context) (checkapi.Description, error)
	// configure validates a check's settings and target: the target's
	// error ("" if none), one FieldError per bad setting.
	configure(ctx context.Context, req *checkapi.Request) (string, []checkapi.FieldError, error)
	// check runs one check; deadline is zero when the check has none. A
	// checker error comes back as a checker_error result, not as an error.
	check(ctx context.Context, req *checkapi.Request, deadline time.Time) (*checkapi.Result, error)
}

func resultFromPB(resp *checkerpb.CheckResponse) (*checkapi.Result, error) {
	res := checkpipe.Result{Status: int32(resp.GetStatus()), Reason: resp.GetReason(), Message: resp.GetMessage(),
		Observations: resp.GetObservations()}
	for _, p := range resp.GetPhases() {
		res.Phases = append(res.Phases, checkpipe.Phase{Name: p.GetName(), Seconds: p.GetSeconds()})
	}
	return judge(res)
}

// judge turns a check's answer into a Result, or rejects it when it breaks
// the contract. Status numbers are the wire's (1 failed, 2 ok, 3 degraded).
func judge(resp checkpipe.Result) (*checkapi.Result, error) {
	res := &checkapi.Result{Reason: resp.Reason, Message: resp.Message}
	switch resp.Status {
	case int32(checkerpb.Status_STATUS_OK):
		res.Status = checkapi.StatusOK
		if res.Reason == "" {
			res.Reason = checkapi.ReasonOK
		}
	case int32(checkerpb.Status_STATUS_DEGRADED):
		res.Status = checkapi.StatusDegraded
	case int32(checkerpb.Status_STATUS_FAILED):
		res.Status = checkapi.StatusFailed
	default:
		return nil, invalid("status %d is none of ok, degraded, failed", resp.Status)
	}
	switch {
	case res.Reason == "":
		return nil, invalid("%s result without a reason", res.Status)
	case !reasonRE.MatchString(res.Reason):
		return nil, invalid("reason %q is not a short lower_snake_case word", res.Reason)
	case res.Reason == checkapi.ReasonOK && res.Status != checkapi.StatusOK:
		return nil, invalid("%s result with reason ok", res.Status)
	case res.Reason == checkapi.ReasonCheckerError:
		return nil, invalid("reason checker_error is the daemon's; a checker that breaks returns an error")
	}
	for _, p := range resp.Phases {
		s := p.Seconds
		if p.Name == "" || s < 0 || math.IsNaN(s) || math.IsInf(s, 0) {
			return nil, invalid("phase %q lasted %v seconds", p.Name, s)
		}
		res.Phases = append(res.Phases, checkapi.Phase{Name: p.Name, Duration: time.Duration(math.Round(s * 1e9))})
	}
	for k, v := range resp.Observations {
		if k == "" || math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, invalid("observation %q = %v", k, v)
		}
	}
	if len(resp.Observations) > 0 {
		res.Observations = resp.Observations
	}
	return res, nil
}

// checkerError is the result of a check whose checker broke.
func checkerError(msg string) *checkapi.Result {
	return &checkapi.Result{Status: checkapi.StatusFailed, Reason: checkapi.ReasonCheckerError, Message: msg}
}
