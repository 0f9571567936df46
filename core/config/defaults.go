package config

import (
	"os"
	"time"
)

// Every default lives here; docs/configuration.md lists the same values.
const (
	DefaultSocket         = "/run/ripcord/ripcord.sock"
	DefaultStateDir       = "/var/lib/ripcord"
	DefaultRIPInterval    = 30 * time.Second
	DefaultBGPHoldTime    = 90 * time.Second
	minBGPHoldTime        = 3 * time.Second
	minRIPInterval        = time.Second
	DefaultCheckInterval  = 5 * time.Second
	DefaultCheckTimeout   = 2 * time.Second
	DefaultRise           = 2
	DefaultFall           = 2
	DefaultMetric         = 1
	DefaultDegradedAdd    = 2
	DefaultDownMetric     = 16
	DefaultDrainMetric    = 10
	maxReachable          = 14 // announced + 1 per router hop must stay below 16
	DefaultFailbackDelay  = 30 * time.Second
	DefaultAssistDelay    = 200 * time.Millisecond
	DefaultAssistMetricLB = 2
	DefaultFastInterval   = time.Second
	DefaultRelayQuiet     = 2 * time.Second
	DefaultRelayMax       = 30 * time.Second
)

// applyDefaults fills a freshly allocated value with its defaults before the
// YAML is decoded over it, so whatever the file omits keeps the default.
func applyDefaults(v any) {
	switch t := v.(type) {
	case *Config:
		host, _ := os.Hostname()
		*t = Config{
			Node:     host,
			StateDir: DefaultStateDir,
			Log:      Log{Level: "info", Format: "text"},
			Control:  Control{Socket: DefaultSocket},
		}
	case *RIP:
		*t = RIP{UpdateInterval: Duration(DefaultRIPInterval), Auth: RIPAuth{Mode: "none", KeyID: 1}, ReadvertiseOnPoison: true}
	case *RIPng:
		*t = RIPng{UpdateInterval: Duration(DefaultRIPInterval), ReadvertiseOnPoison: true}
	case *BGP:
		*t = BGP{Priority: "med", HoldTime: Duration(DefaultBGPHoldTime)}
	case *Service:
		*t = Service{
			Interface:       "lo",
			Metric:          DefaultMetric,
			DegradedPenalty: DefaultDegradedAdd,
			DownMetric:      DefaultDownMetric,
			DrainMetric:     DefaultDrainMetric,
			FailbackDelay:   Duration(DefaultFailbackDelay),
			Require:         "all",
		}
	case *Assist:
		*t = Assist{Metric: DefaultAssistMetricLB, Delay: Duration(DefaultAssistDelay)}
	case *Relay:
		*t = Relay{Quiet: Duration(DefaultRelayQuiet), Max: Duration(DefaultRelayMax), Fallback: true, OnHang: true}
	case *Check:
		*t = Check{
			Interval: Duration(DefaultCheckInterval),
			Timeout:  Duration(DefaultCheckTimeout),
			Rise:     DefaultRise,
			Fall:     DefaultFall,
		}
	}
}

// Floors and bounds that validation enforces.
const (
	// Below 50ms a check detects nothing sooner that matters next to RIP's
	// timers, and a timeout below 10ms is within the plugin round trip's own
	// jitter.
	minCheckInterval = 50 * time.Millisecond
	minCheckTimeout  = 10 * time.Millisecond
	maxServiceName   = 64 // a file name under state_dir/drained, and a label everywhere
)
