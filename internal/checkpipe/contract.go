package checkpipe

import (
	"context"

	"github.com/ripcord/ripcord/plugins/checkapi"
)

// The checker's side of the contract, the same over both transports: the
// checkpipe server here and the SDK's gRPC server. Each call turns a panic
// into the checker's error (errText) and mends text that protobuf could not
// carry.

// DescribeChecker is c's description.
func DescribeChecker(c checkapi.Checker) (d checkapi.Description, errText string) {
	defer Recover("Describe", func(msg string) { d, errText = checkapi.Description{}, msg })
	cd := c.Describe()
	d = checkapi.Description{Name: ValidUTF8(cd.Name), Version: ValidUTF8(cd.Version), Summary: ValidUTF8(cd.Summary)}
	for _, f := range cd.Settings {
		d.Settings = append(d.Settings, checkapi.Field{Name: ValidUTF8(f.Name), Type: ValidUTF8(f.Type),
			Required: f.Required, Default: ValidUTF8(f.Default), Help: ValidUTF8(f.Help)})
	}
	return d, ""
}

// ConfigureChecker validates a check's settings: the schema, then c's
// Configure, then the target if c can tell (checkapi.TargetValidator).
func ConfigureChecker(ctx context.Context, c checkapi.Checker, target string, settings checkapi.Settings) (targetErr string, fieldErrs []checkapi.FieldError, errText string) {
	defer Recover("Configure", func(msg string) { targetErr, fieldErrs, errText = "", nil, msg })
	errs, err := checkapi.ValidateSettings(ctx, c, settings)
	if err != nil {
		return "", nil, ErrorText(err)
	}
	if tv, ok := c.(checkapi.TargetValidator); ok && target != "" {
		if err := tv.ValidateTarget(target); err != nil {
			targetErr = ErrorText(err)
		}
	}
	for _, fe := range errs {
		fieldErrs = append(fieldErrs, checkapi.FieldError{Field: ValidUTF8(fe.Field), Message: ValidUTF8(fe.Message)})
	}
	return targetErr, fieldErrs, ""
}

// RunCheck runs one check of c on its settings held to the schema
// (defaults filled in by filled).
func RunCheck(ctx context.Context, c checkapi.Checker, filled *checkapi.FilledSettings, target string, settings []byte) (r Result, errText string) {
	defer Recover("Check", func(msg string) { r, errText = Result{}, msg })
	s, err := filled.Apply(settings)
	var res *checkapi.Result
	if err == nil {
		res, err = c.Check(ctx, &checkapi.Request{Target: target, Settings: s})
	}
	switch {
	case err != nil:
		return Result{}, ErrorText(err)
	case res == nil:
		return Result{}, "Check returned neither a result nor an error"
	}
	return WireResult(res), ""
}
