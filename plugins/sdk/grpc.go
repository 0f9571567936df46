package sdk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/ripcord/ripcord/internal/checkerpb"
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
	schema func() []Field // the checker's settings schema, asked once

	mu     sync.Mutex
	filled map[string]Settings // settings as sent -> as the checker gets them
}

// maxFilled bounds the cache of filled-in settings: a config has a few
// dozen checks, and each reload may bring new settings.
const maxFilled = 1024

// checkSettings holds a check's settings to the schema. Each check sends the
// same settings every time, so the outcome is remembered: the schema costs
// about 40µs a check otherwise (BenchmarkApplySchema).
func (s *server) checkSettings(in []byte) (Settings, error) {
	s.mu.Lock()
	out, ok := s.filled[string(in)]
	s.mu.Unlock()
	if ok {
		return out, nil
	}
	out, errs, err := ApplySchema(s.schema(), Settings(in))
	if err == nil && errs != nil {
		err = fmt.Errorf("settings: %v", errors.Join(fieldErrors(errs)...))
	}
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if len(s.filled) >= maxFilled {
		clear(s.filled)
	}
	s.filled[string(in)] = out
	s.mu.Unlock()
	return out, nil
}

func newServer(c Checker) *server {
	return &server{c: c, schema: sync.OnceValue(func() []Field { return c.Describe().Settings }), filled: map[string]Settings{}}
}

func (s *server) Describe(context.Context, *checkerpb.DescribeRequest) (resp *checkerpb.DescribeResponse, err error) {
	defer recoverTo("Describe", func(msg string) { err = errors.New(msg) })
	d := s.c.Describe()
	resp = &checkerpb.DescribeResponse{Name: utf8(d.Name), Version: utf8(d.Version), Summary: utf8(d.Summary)}
	for _, f := range d.Settings {
		resp.Settings = append(resp.Settings, &checkerpb.Field{
			Name: utf8(f.Name), Type: utf8(f.Type), Required: f.Required, Default: utf8(f.Default), Help: utf8(f.Help),
		})
	}
	return resp, nil
}

func (s *server) Configure(ctx context.Context, req *checkerpb.ConfigureRequest) (resp *checkerpb.ConfigureResponse, _ error) {
	resp = &checkerpb.ConfigureResponse{}
	defer recoverTo("Configure", func(msg string) { resp = &checkerpb.ConfigureResponse{Error: msg} })
	errs, err := ValidateSettings(ctx, s.c, Settings(req.GetSettings()))
	if err != nil {
		resp.Error = errorText(err)
		return resp, nil
	}
	if tv, ok := s.c.(TargetValidator); ok && req.GetTarget() != "" {
		if err := tv.ValidateTarget(req.GetTarget()); err != nil {
			resp.TargetError = errorText(err)
		}
	}
	for _, fe := range errs {
		resp.FieldErrors = append(resp.FieldErrors, &checkerpb.FieldError{Field: utf8(fe.Field), Message: utf8(fe.Message)})
	}
	return resp, nil
}

func (s *server) Check(ctx context.Context, req *checkerpb.CheckRequest) (resp *checkerpb.CheckResponse, _ error) {
	defer recoverTo("Check", func(msg string) { resp = &checkerpb.CheckResponse{Error: msg} })
	// gRPC's own deadline includes the host's grace period: the check's
	// deadline is the one in the request.
	if ns := req.GetDeadlineUnixNano(); ns != 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, time.Unix(0, ns))
		defer cancel()
	}
	settings, err := s.checkSettings(req.GetSettings())
	var res *Result
	if err == nil {
		res, err = s.c.Check(ctx, &Request{Target: req.GetTarget(), Settings: settings})
	}
	switch {
	case err != nil:
		return &checkerpb.CheckResponse{Error: errorText(err)}, nil
	case res == nil:
		return &checkerpb.CheckResponse{Error: "Check returned neither a result nor an error"}, nil
	}
	return resultToPB(res), nil
}

// resultToPB converts r as it is: the host, not the plugin, rejects invalid
// results, so that a plugin built without this SDK gets the same treatment.
// Only text is mended: protobuf cannot carry a string that is not UTF-8.
func resultToPB(r *Result) *checkerpb.CheckResponse {
	resp := &checkerpb.CheckResponse{
		Status:  checkerpb.Status(int32(r.Status) + 1),
		Reason:  utf8(r.Reason),
		Message: utf8(r.Message), // may quote raw bytes from the server
	}
	for _, p := range r.Phases {
		resp.Phases = append(resp.Phases, &checkerpb.Phase{Name: utf8(p.Name), Seconds: p.Duration.Seconds()})
	}
	for k, v := range r.Observations {
		if resp.Observations == nil {
			resp.Observations = make(map[string]float64, len(r.Observations))
		}
		resp.Observations[utf8(k)] = v
	}
	return resp
}

func fieldErrors(fes []FieldError) []error {
	errs := make([]error, len(fes))
	for i, fe := range fes {
		errs[i] = fe
	}
	return errs
}

// utf8 replaces what is not UTF-8 in s, which protobuf refuses to send.
func utf8(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

func errorText(err error) string {
	if msg := err.Error(); msg != "" {
		return utf8(msg)
	}
	return fmt.Sprintf("%T with an empty message", err)
}

// recoverTo turns a panic in method into a checker error, so that one bad
// check does not take the plugin down; the stack goes to the log.
func recoverTo(method string, set func(msg string)) {
	v := recover()
	if v == nil {
		return
	}
	msg := utf8(fmt.Sprintf("%s panicked: %v", method, v))
	slog.Error(msg, "stack", string(debug.Stack()))
	set(msg)
}
