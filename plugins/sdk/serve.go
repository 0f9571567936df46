package sdk

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"

	"github.com/ripcord/ripcord/internal/checkerpb"
)

// Serve runs c as a ripcord checker plugin and does not return. Call it from
// main; the daemon starts the executable and talks to it over gRPC.
//
// Logging: Serve points slog's default logger (and so the log package) at the
// daemon, which logs each record under the checker's name. Anything a plugin
// prints to stdout or stderr after Serve starts is logged too, line by line;
// before Serve starts, stdout belongs to the handshake: print nothing there.
//
// A panic inside Describe, Configure or Check is recovered and reported as the
// checker's error; a panic in a goroutine of your own still kills the plugin,
// which the daemon reports and restarts.
//
// Run by hand, without the daemon's handshake, Serve explains what the program
// is and exits with status 1.
func Serve(c Checker) {
	if os.Getenv(checkerpb.Handshake.MagicCookieKey) != checkerpb.Handshake.MagicCookieValue {
		explain(os.Stderr, c)
		os.Exit(1)
	}
	// go-plugin replaces os.Stderr with a pipe to the daemon's stdio stream;
	// structured logs go to the real stderr, which the daemon parses.
	stderr := os.Stderr
	level := slog.LevelInfo
	_ = level.UnmarshalText([]byte(os.Getenv(EnvLogLevel))) // keep Info if unset or invalid
	slog.SetDefault(slog.New(newLogHandler(stderr, level)))

	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: checkerpb.Handshake,
		Plugins:         plugin.PluginSet{checkerpb.PluginName: &goPlugin{c: c}},
		GRPCServer:      plugin.DefaultGRPCServer,
		Logger: hclog.New(&hclog.LoggerOptions{
			Output:     stderr,
			JSONFormat: true,
			Level:      hclog.LevelFromString(hclogLevel(level)),
		}),
	})
	os.Exit(0)
}

// explain tells a human who ran the plugin by hand what it is.
func explain(w io.Writer, c Checker) {
	d := c.Describe()
	fmt.Fprintf(w, "This program is a ripcord checker plugin: the ripcord daemon starts it and talks to it.\n"+
		"Run by hand it does nothing.\n\n")
	fmt.Fprintf(w, "checker %s %s", d.Name, d.Version)
	if d.Summary != "" {
		fmt.Fprintf(w, ": %s", d.Summary)
	}
	fmt.Fprintln(w)
	if len(d.Settings) > 0 {
		fmt.Fprintln(w, "\nsettings:")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, f := range d.Settings {
			var notes []string
			if f.Required {
				notes = append(notes, "required")
			}
			if f.Default != "" {
				notes = append(notes, "default "+f.Default)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", f.Name, f.Type, strings.Join(notes, ", "), f.Help)
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "\nTo use it, name it in a check of the ripcord configuration (checker: %s).\n"+
		"A third-party plugin is installed as ripcord-checker-%s in the directory named by plugins.dir,\n"+
		"and may be pinned by its sha256sum under plugins.sha256.\n", d.Name, d.Name)
}

// newLogHandler writes slog records as the JSON lines hashicorp/go-plugin
// parses on the daemon's side (hclog's format).
func newLogHandler(w io.Writer, level slog.Leveler) slog.Handler {
	return slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.TimeKey:
				return slog.String("@timestamp", a.Value.Time().Format("2006-01-02T15:04:05.000000Z07:00"))
			case slog.MessageKey:
				return slog.Attr{Key: "@message", Value: a.Value}
			case slog.LevelKey:
				return slog.String("@level", hclogLevel(a.Value.Any().(slog.Level)))
			}
			return a
		},
	})
}

func hclogLevel(l slog.Level) string {
	switch {
	case l < slog.LevelDebug:
		return "trace"
	case l < slog.LevelInfo:
		return "debug"
	case l < slog.LevelWarn:
		return "info"
	case l < slog.LevelError:
		return "warn"
	}
	return "error"
}
