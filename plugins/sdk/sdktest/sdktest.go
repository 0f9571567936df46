// Package sdktest helps checker authors test a checker against real
// servers: in process (Check, Want, ConfigureFields), and built as a plugin
// and run through ripcord's own plugin host (Build), as the daemon runs it.
package sdktest

import (
	"context"
	"encoding/json"
	"net"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ripcord/ripcord/plugins"
	"github.com/ripcord/ripcord/plugins/checkapi"
)

// Settings encodes a settings map the way the daemon hands it to a checker.
func Settings(t testing.TB, m map[string]any) checkapi.Settings {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Check runs one check of target with the given timeout as its deadline and
// returns the result and how long it took. Like the daemon, it holds the
// settings to the checker's schema first (defaults filled in). A returned
// error (the checker broke) and settings the schema refuses fail the test.
func Check(t testing.TB, c checkapi.Checker, timeout time.Duration, target string, s checkapi.Settings) (*checkapi.Result, time.Duration) {
	t.Helper()
	s = applySchema(t, c, s)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	res, err := c.Check(ctx, &checkapi.Request{Target: target, Settings: s})
	took := time.Since(start)
	if err != nil {
		t.Fatalf("Check(%s): %v", target, err)
	}
	return res, took
}

// Want fails the test unless res has the given status and reason. It logs
// the whole result, which is what one wants to see when it does fail.
func Want(t testing.TB, res *checkapi.Result, status checkapi.Status, reason string) {
	t.Helper()
	t.Logf("%s/%s: %s phases=%v observations=%v", res.Status, res.Reason, res.Message, res.Phases, res.Observations)
	if res.Status != status || res.Reason != reason {
		t.Fatalf("got %s/%s (%s), want %s/%s", res.Status, res.Reason, res.Message, status, reason)
	}
}

// DescribeMatches fails the test unless c.Describe() has name and a version,
// documents exactly the JSON keys of the settings struct config (a value of
// it), and its schema holds together: every Default is of its Type and
// decodes into config. The settings schema users read must never drift from
// what the checker accepts.
func DescribeMatches(t testing.TB, c checkapi.Checker, name string, config any) {
	t.Helper()
	d := c.Describe()
	if d.Name != name || d.Version == "" {
		t.Fatalf("Describe() = name %q version %q, want name %q and a version", d.Name, d.Version, name)
	}
	var described []string
	for _, f := range d.Settings {
		described = append(described, f.Name)
	}
	var fields []string
	typ := reflect.TypeOf(config)
	for i := range typ.NumField() {
		if tag, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ","); tag != "" && tag != "-" {
			fields = append(fields, tag)
		}
	}
	slices.Sort(described)
	slices.Sort(fields)
	if !slices.Equal(described, fields) {
		t.Fatalf("Describe lists %v, the settings struct has %v", described, fields)
	}
	defaults, _, err := checkapi.ApplySchema(d.Settings, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := defaults.Decode(reflect.New(typ).Interface()); err != nil {
		t.Fatalf("the defaults %s do not decode into %s: %v", defaults, typ, err)
	}
}

// applySchema holds s to c's schema, as the daemon's plugin does.
func applySchema(t testing.TB, c checkapi.Checker, s checkapi.Settings) checkapi.Settings {
	t.Helper()
	out, fes, err := checkapi.ApplySchema(c.Describe().Settings, s)
	if err != nil || fes != nil {
		t.Fatalf("settings %s: %v %v", s, err, fes)
	}
	return out
}

// PhaseNames lists the names of a result's phases, in order.
func PhaseNames(res *checkapi.Result) []string {
	var names []string
	for _, p := range res.Phases {
		names = append(names, p.Name)
	}
	return names
}

// ConfigureFields validates settings (JSON) as the daemon does
// (checkapi.ValidateSettings: the schema, then c.Configure) and returns the names
// of the fields rejected, sorted, and the errors.
func ConfigureFields(t testing.TB, c checkapi.Checker, settings string) ([]string, []checkapi.FieldError) {
	t.Helper()
	errs, err := checkapi.ValidateSettings(context.Background(), c, checkapi.Settings(settings))
	if err != nil {
		t.Fatalf("Configure(%s): %v", settings, err)
	}
	var fields []string
	for _, e := range errs {
		fields = append(fields, e.Field)
	}
	slices.Sort(fields)
	return fields, errs
}

// Plugin is a checker plugin built from source and run through ripcord's
// own plugin host, exactly as the daemon runs it: its own process, gRPC,
// the sha256 pin, the schema, the deadline.
type Plugin struct {
	Name   string // the checker's name
	Path   string // the executable, ripcord-checker-NAME in a temporary plugin directory
	SHA256 string // its pin, as plugins.sha256 holds it
	Host   *plugins.Host
}

// Build builds the Go package in directory pkg ("." for the package under
// test) as the plugin of checker name, pins it and starts a plugin host for
// it; the host is closed when the test ends. It fails the test if the build
// fails.
func Build(t testing.TB, name, pkg string) *Plugin {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	dir := t.TempDir()
	p := &Plugin{Name: name, Path: filepath.Join(dir, plugins.FilePrefix+name)}
	build := exec.Command(gobin, "build", "-o", p.Path, ".")
	build.Dir = pkg
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	if p.SHA256, err = plugins.FileSHA256(p.Path); err != nil {
		t.Fatal(err)
	}
	p.Host = plugins.NewHost(plugins.Options{Dir: dir, SHA256: map[string]string{name: p.SHA256}})
	t.Cleanup(p.Host.Close)
	return p
}

// Check runs one check through the plugin with the given timeout as its
// deadline. A checker that broke gives reason checker_error, as in the
// daemon.
func (p *Plugin) Check(t testing.TB, timeout time.Duration, target string, s checkapi.Settings) *checkapi.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return p.Host.Check(ctx, p.Name, &checkapi.Request{Target: target, Settings: s})
}

// Configure validates a check's target and settings through the plugin, as
// `ripcord validate` does: why the target is wrong ("" if it is not) and
// the settings' field errors. A plugin that breaks fails the test.
func (p *Plugin) Configure(t testing.TB, target string, s checkapi.Settings) (string, []checkapi.FieldError) {
	t.Helper()
	targetErr, fes, err := p.Host.Configure(context.Background(), p.Name, &checkapi.Request{Target: target, Settings: s})
	if err != nil {
		t.Fatal(err)
	}
	return targetErr, fes
}

// Serve listens on 127.0.0.1:0 until the test ends, runs handle for each
// connection (closing it after), and returns the address: a real server
// for a test, in a few lines.
func Serve(t testing.TB, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// ClosedPort returns a 127.0.0.1 address nothing listens on: a connection
// to it is refused.
func ClosedPort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
