package sdk

import (
	"context"
	"errors"
	"fmt"
	"time"

	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/ripcord/ripcord/internal/checkerpb"
	"github.com/ripcord/ripcord/internal/checkpipe"
	"github.com/ripcord/ripcord/plugins/checkapi"
)

// RegisterGRPC registers c as the Checker gRPC service on s. Serve does this
// for you; RegisterGRPC exists for hosts and tests that run a checker
// in-process.
func RegisterGRPC(s *grpc.Server, c Checker) {
	checkerpb.RegisterCheckerServer(s, newServer(c))
}

// goPlugin is the plugin side of the go-plugin contract.
type goPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	c Checker
}

func (p *goPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	RegisterGRPC(s, p.c)
	return nil
}

func (p *goPlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, fmt.Errorf("sdk: a checker plugin is not a plugin host")
}

// server adapts a Checker to the generated gRPC service.
type server struct {
	checkerpb.UnimplementedCheckerServer
	c      Checker
	filled *checkapi.FilledSettings
}

func newServer(c Checker) *server {
	return &server{c: c, filled: checkapi.NewFilledSettings(c)}
}

func (s *server) Describe(context.Context, *checkerpb.DescribeRequest) (*checkerpb.DescribeResponse, error) {
	d, errText := checkpipe.DescribeChecker(s.c)
	if errText != "" {
		return nil, errors.New(errText)
	}
	resp := &checkerpb.DescribeResponse{Name: d.Name, Version: d.Version, Summary: d.Summary}
	for _, f := range d.Settings {
		resp.Settings = append(resp.Settings, &checkerpb.Field{Name: f.Name, Type: f.Type, Required: f.Required, Default: f.Default, Help: f.Help})
	}
	return resp, nil
}

func (s *server) Configure(ctx context.Context, req *checkerpb.ConfigureRequest) (*checkerpb.ConfigureResponse, error) {
	targetErr, fieldErrs, errText := checkpipe.ConfigureChecker(ctx, s.c, req.GetTarget(), Settings(req.GetSettings()))
	resp := &checkerpb.ConfigureResponse{Error: errText, TargetError: targetErr}
	for _, fe := range fieldErrs {
		resp.FieldErrors = append(resp.FieldErrors, &checkerpb.FieldError{Field: fe.Field, Message: fe.Message})
	}
	return resp, nil
}

func (s *server) Check(ctx context.Context, req *checkerpb.CheckRequest) (*checkerpb.CheckResponse, error) {
	// gRPC's own deadline includes the host's grace period: the check's
	// deadline is the one in the request.
	if ns := req.GetDeadlineUnixNano(); ns != 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, time.Unix(0, ns))
		defer cancel()
	}
	w, errText := checkpipe.RunCheck(ctx, s.c, s.filled, req.GetTarget(), req.GetSettings())
	if errText != "" {
		return &checkerpb.CheckResponse{Error: errText}, nil
	}
	return resultToPB(w), nil
}

// resultToPB converts w as it is: the host, not the plugin, rejects invalid
// results, so that a plugin built without this SDK gets the same treatment.
func resultToPB(w checkpipe.Result) *checkerpb.CheckResponse {
	resp := &checkerpb.CheckResponse{Status: checkerpb.Status(w.Status), Reason: w.Reason, Message: w.Message,
		Observations: w.Observations}
	for _, p := range w.Phases {
		resp.Phases = append(resp.Phases, &checkerpb.Phase{Name: p.Name, Seconds: p.Seconds})
	}
	return resp
}
