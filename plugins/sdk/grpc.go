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

func (s *server) Describe(context.Context, *checkerpb.DescribeRequest) (resp *checkerpb.DescribeResponse, err error) {
	defer checkpipe.Recover("Describe", func(msg string) { err = errors.New(msg) })
	d := s.c.Describe()
	resp = &checkerpb.DescribeResponse{Name: checkpipe.ValidUTF8(d.Name), Version: checkpipe.ValidUTF8(d.Version), Summary: checkpipe.ValidUTF8(d.Summary)}
	for _, f := range d.Settings {
		resp.Settings = append(resp.Settings, &checkerpb.Field{
			Name: checkpipe.ValidUTF8(f.Name), Type: checkpipe.ValidUTF8(f.Type), Required: f.Required, Default: checkpipe.ValidUTF8(f.Default), Help: checkpipe.ValidUTF8(f.Help),
		})
	}
	return resp, nil
}

func (s *server) Configure(ctx context.Context, req *checkerpb.ConfigureRequest) (resp *checkerpb.ConfigureResponse, _ error) {
	resp = &checkerpb.ConfigureResponse{}
	defer checkpipe.Recover("Configure", func(msg string) { resp = &checkerpb.ConfigureResponse{Error: msg} })
	errs, err := ValidateSettings(ctx, s.c, Settings(req.GetSettings()))
	if err != nil {
		resp.Error = checkpipe.ErrorText(err)
		return resp, nil
	}
	if tv, ok := s.c.(TargetValidator); ok && req.GetTarget() != "" {
		if err := tv.ValidateTarget(req.GetTarget()); err != nil {
			resp.TargetError = checkpipe.ErrorText(err)
		}
	}
	for _, fe := range errs {
		resp.FieldErrors = append(resp.FieldErrors, &checkerpb.FieldError{Field: checkpipe.ValidUTF8(fe.Field), Message: checkpipe.ValidUTF8(fe.Message)})
	}
	return resp, nil
}

func (s *server) Check(ctx context.Context, req *checkerpb.CheckRequest) (resp *checkerpb.CheckResponse, _ error) {
	defer checkpipe.Recover("Check", func(msg string) { resp = &checkerpb.CheckResponse{Error: msg} })
	// gRPC's own deadline includes the host's grace period: the check's
	// deadline is the one in the request.
	if ns := req.GetDeadlineUnixNano(); ns != 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, time.Unix(0, ns))
		defer cancel()
	}
	settings, err := s.filled.Apply(req.GetSettings())
	var res *Result
	if err == nil {
		res, err = s.c.Check(ctx, &Request{Target: req.GetTarget(), Settings: settings})
	}
	switch {
	case err != nil:
		return &checkerpb.CheckResponse{Error: checkpipe.ErrorText(err)}, nil
	case res == nil:
		return &checkerpb.CheckResponse{Error: "Check returned neither a result nor an error"}, nil
	}
	return resultToPB(res), nil
}

// resultToPB converts r as it is: the host, not the plugin, rejects invalid
// results, so that a plugin built without this SDK gets the same treatment.
func resultToPB(r *Result) *checkerpb.CheckResponse {
	w := checkpipe.WireResult(r)
	resp := &checkerpb.CheckResponse{Status: checkerpb.Status(w.Status), Reason: w.Reason, Message: w.Message,
		Observations: w.Observations}
	for _, p := range w.Phases {
		resp.Phases = append(resp.Phases, &checkerpb.Phase{Name: p.Name, Seconds: p.Seconds})
	}
	return resp
}
