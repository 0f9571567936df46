package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ripcord/ripcord/advertisers/rip"
	"github.com/ripcord/ripcord/advertisers/ripng"
	"github.com/ripcord/ripcord/internal/regfile"
)

// checkMetricsListen checks control.metrics_listen's syntax: host:port with a
// numeric port (peers must know where to find it, so not 0).
func (c *Config) checkMetricsListen() error {
	for i, a := range c.Control.MetricsAllow {
		if _, err := parseNetwork(a); err != nil {
			return c.at(fmt.Sprintf("control.metrics_allow[%d]", i), "%v", err)
		}
	}
	addr := c.Control.MetricsListen
	if addr == "" {
		if len(c.Control.MetricsAllow) > 0 {
			return c.at("control.metrics_allow", "needs metrics_listen")
		}
		return nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return c.at("control.metrics_listen", "%q is not host:port (example: 10.0.1.10:9473)", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return c.at("control.metrics_listen", "port %q is not a number in 1-65535", port)
	}
	return nil
}

// checkHost makes the checks that depend on this machine and that run
// would otherwise make only at start, after validate said ok: interfaces,
// the metrics address, state_dir. Options.Portable skips them.
func (c *Config) checkHost() error {
	if c.RIP != nil {
		for i, ifc := range c.RIP.Interfaces {
			if err := rip.CheckInterface(ifc.Name); err != nil {
				return c.at(fmt.Sprintf("rip.interfaces[%d].name", i), "%s", strings.TrimPrefix(err.Error(), "advertisers/rip: "))
			}
		}
	}
	if c.RIPng != nil {
		for i, ifc := range c.RIPng.Interfaces {
			if err := ripng.CheckInterface(ifc.Name); err != nil {
				return c.at(fmt.Sprintf("ripng.interfaces[%d].name", i), "%s", strings.TrimPrefix(err.Error(), "advertisers/ripng: "))
			}
		}
	}
	for i, s := range c.Services {
		if _, err := net.InterfaceByName(s.Interface); err != nil {
			return c.at(fmt.Sprintf("services[%d].interface", i), "no interface %q on this host", s.Interface)
		}
	}
	if addr := c.Control.MetricsListen; addr != "" {
		// Port 0: whether the address is ours, without taking the port a
		// running daemon may hold.
		host, _, _ := net.SplitHostPort(addr)
		ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return c.at("control.metrics_listen", "cannot listen on %s: %v", host, errors.Unwrap(err))
		}
		ln.Close()
	}
	return c.checkStateDir()
}

// checkStateDir: state_dir and its drained/ must be directories, or not
// exist yet below a directory (run creates them).
func (c *Config) checkStateDir() error {
	for _, p := range []string{c.StateDir, filepath.Join(c.StateDir, "drained")} {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return c.at("state_dir", "%v", err)
		}
		if !fi.IsDir() {
			return c.at("state_dir", "%s is %s, not a directory", p, regfile.Describe(fi.Mode()))
		}
	}
	return nil
}
