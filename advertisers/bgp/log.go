package bgp

import (
	"context"
	"log/slog"
	"slices"
	"strings"

	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
)

// goBGPLogger routes GoBGP's log lines into slog. GoBGP reports routine
// events (peer configured, session up) at Info; they go to Debug here, since
// the speaker logs what matters itself.
type goBGPLogger struct{ l *slog.Logger }

func newGoBGPLogger(l *slog.Logger) gobgplog.Logger {
	return goBGPLogger{l: l.With("component", "gobgp")}
}

// attrs turns GoBGP fields into sorted slog attributes, leaving out anything
// that looks like a secret.
func attrs(f gobgplog.Fields) []any {
	keys := make([]string, 0, len(f))
	for k := range f {
		if strings.Contains(strings.ToLower(k), "password") {
			continue
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		out = append(out, k, f[k])
	}
	return out
}

// Panic logs and panics, as GoBGP expects.
func (g goBGPLogger) Panic(msg string, f gobgplog.Fields) {
	g.l.Error(msg, attrs(f)...)
	panic("gobgp: " + msg)
}

// Fatal logs and panics: GoBGP calls it only for its gRPC listener, which the
// speaker never starts, and a library must not exit the process.
func (g goBGPLogger) Fatal(msg string, f gobgplog.Fields) {
	g.l.Error(msg, attrs(f)...)
	panic("gobgp: " + msg)
}

func (g goBGPLogger) Error(msg string, f gobgplog.Fields) { g.l.Error(msg, attrs(f)...) }
func (g goBGPLogger) Warn(msg string, f gobgplog.Fields)  { g.l.Warn(msg, attrs(f)...) }
func (g goBGPLogger) Info(msg string, f gobgplog.Fields)  { g.l.Debug(msg, attrs(f)...) }
func (g goBGPLogger) Debug(msg string, f gobgplog.Fields) { g.l.Debug(msg, attrs(f)...) }

// SetLevel is ignored: the slog handler decides.
func (g goBGPLogger) SetLevel(gobgplog.LogLevel) {}

// GetLevel lets GoBGP skip building debug messages nobody reads.
func (g goBGPLogger) GetLevel() gobgplog.LogLevel {
	if g.l.Enabled(context.Background(), slog.LevelDebug) {
		return gobgplog.DebugLevel
	}
	return gobgplog.InfoLevel
}
