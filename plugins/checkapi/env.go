package checkapi

import "os"

// EnvLogLevel is set by the daemon to its own log level (slog syntax: DEBUG,
// INFO, WARN, ERROR) so that a plugin logs no less than the daemon shows.
const EnvLogLevel = "RIPCORD_PLUGIN_LOG_LEVEL"

// EnvStateDir is set by the daemon to a directory of the checker's own
// (state_dir/checkers/NAME) that outlives the plugin process and the daemon.
// It may not exist yet: a checker creates it, mode 0700, when it first
// writes there.
const EnvStateDir = "RIPCORD_STATE_DIR"

// StateDir returns the checker's state directory, or "" when the host gave
// none (a checker run directly, in a test): state is then kept in memory.
func StateDir() string { return os.Getenv(EnvStateDir) }
