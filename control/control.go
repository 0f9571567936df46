// Package control is ripcord's local API: HTTP over a unix socket (mode
// 0600, so only root and the daemon's user can drain a service), and the
// client the CLI uses.
package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/ripcord/ripcord/core"
	"github.com/ripcord/ripcord/internal/regfile"
)

// Report is what `ripcord status` shows.
type Report struct {
	Node     string          `json:"node"`
	Version  string          `json:"version"`
	Started  time.Time       `json:"started"`
	Services []ServiceReport `json:"services"`
	// Reload is the outcome of the last reload, if there was one.
	Reload *ReloadResult `json:"reload,omitempty"`
	// BGP lists the BGP sessions, if BGP is configured.
	BGP []BGPSession `json:"bgp,omitempty"`
}

// ReloadResult is the outcome of one reload (SIGHUP or `ripcord reload`).
type ReloadResult struct {
	At time.Time `json:"at"`
	OK bool      `json:"ok"`
	// Error is why the new file was refused (FILE:LINE:COL: key: message);
	// nothing was changed then.
	Error string `json:"error,omitempty"`
	// Summary says what changed, e.g. "added web; removed old; restarted
	// ldap/bind; unchanged radius".
	Summary string `json:"summary,omitempty"`
}

// BGPSession is one BGP peer's session.
type BGPSession struct {
	Peer       string    `json:"peer"`
	PeerASN    uint32    `json:"peer_asn"`
	State      string    `json:"state"`          // established, active, connect, idle, ...
	Since      time.Time `json:"since,omitzero"` // up since, or down since
	Advertised uint64    `json:"advertised"`     // our prefixes sent to the peer
	Received   uint64    `json:"received"`       // prefixes the peer sends (ripcord imports none)
}

// ServiceReport is one service with what each advertiser last announced.
type ServiceReport struct {
	core.Status
	// Announced maps an advertiser (rip, bgp) to the metric it last sent
	// successfully; absent if it has not converged yet.
	Announced map[string]int `json:"announced"`
	// LastError is the advertiser's last error, if any.
	LastError map[string]string `json:"last_error,omitempty"`
	// Routers is what each router on a RIP link holds for the VIP, as of
	// the last look (every few seconds).
	Routers []RouterView `json:"routers,omitempty"`
}

// RouterView is what one router holds for a service's VIP.
type RouterView struct {
	Interface string    `json:"interface"`
	Router    string    `json:"router"`
	Known     bool      `json:"known"`              // false: the router said nothing about the VIP
	Metric    int       `json:"metric"`             // 16: no route
	ViaUs     bool      `json:"via_us"`             // its route goes through this replica
	Source    string    `json:"source"`             // query (a specific Request, FRR) or update (its updates, BIRD)
	Inferred  bool      `json:"inferred,omitempty"` // via us because the router leaves the VIP out of its updates (split horizon)
	At        time.Time `json:"at"`
	// Disagreement says how the router's choice contradicts our
	// announcement, e.g. "we announce 1 but 10.0.0.1 holds 3 via another
	// path"; empty when it does not.
	Disagreement string `json:"disagreement,omitempty"`
}

// Holds says in words what the router holds.
func (v RouterView) Holds() string {
	switch {
	case !v.Known:
		return "nothing heard"
	case v.Metric >= 16:
		return "no route"
	case v.ViaUs && v.Inferred:
		return fmt.Sprintf("%d via this replica (split horizon)", v.Metric)
	case v.ViaUs:
		return fmt.Sprintf("%d via this replica", v.Metric)
	}
	return fmt.Sprintf("%d via another path", v.Metric)
}

// Backend is what the server exposes; the daemon implements it.
type Backend interface {
	Report() Report
	SetDrained(service string, on bool) error
	CheckNow(service string) error
	// Reload reads the config file again and applies the difference; an
	// invalid file changes nothing.
	Reload() ReloadResult
}

// Server serves the control API on a unix socket.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	path string
}

// maxSocketPath is what fits in sockaddr_un.sun_path with its NUL.
const maxSocketPath = 107

// CheckSocketPath reports whether Listen may use path: nothing is there yet,
// or a socket is (a stale one is replaced). Anything else is refused, never
// removed, and so is a path too long for a unix socket. config's validation
// calls it too.
func CheckSocketPath(path string) error {
	if len(path) > maxSocketPath {
		return fmt.Errorf("%s is %d bytes long; a unix socket path has at most %d", path, len(path), maxSocketPath)
	}
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case fi.Mode().Type() != fs.ModeSocket:
		return fmt.Errorf("%s exists and is %s, not a socket: ripcord replaces only a stale socket of its own", path, regfile.Describe(fi.Mode()))
	}
	return nil
}

// CheckSocketFree fails if path is not usable (CheckSocketPath) or a daemon
// answers on it, without changing anything.
func CheckSocketFree(path string) error {
	if err := CheckSocketPath(path); err != nil {
		return fmt.Errorf("control: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
		c.Close()
		return fmt.Errorf("control: %s is in use: is another ripcord running?", path)
	}
	return nil
}

// Listen creates the socket (replacing a stale one) with mode 0600.
func Listen(path string, b Backend, log *slog.Logger) (*Server, error) {
	if err := CheckSocketFree(path); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("control: removing the stale socket: %w", err)
	}
	old := umask(0o177)
	ln, err := net.Listen("unix", path)
	umask(old)
	if err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, b.Report())
	})
	act := func(f func(string) error) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if err := f(r.PathValue("name")); err != nil {
				writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
				return
			}
			writeJSON(w, http.StatusOK, map[string]string{"result": "ok"})
		}
	}
	mux.HandleFunc("POST /v1/services/{name}/drain", act(func(n string) error { return b.SetDrained(n, true) }))
	mux.HandleFunc("POST /v1/services/{name}/undrain", act(func(n string) error { return b.SetDrained(n, false) }))
	mux.HandleFunc("POST /v1/services/{name}/check", act(b.CheckNow))
	mux.HandleFunc("POST /v1/reload", func(w http.ResponseWriter, r *http.Request) {
		res := b.Reload()
		if !res.OK {
			writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"error": res.Error})
			return
		}
		writeJSON(w, http.StatusOK, res)
	})
	s := &Server{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}, ln: ln, path: path}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("control socket stopped", "err", err)
		}
	}()
	return s, nil
}

// Close stops serving and removes the socket.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	_ = os.Remove(s.path)
	return err
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// Client talks to a running daemon.
type Client struct {
	Socket string
	hc     *http.Client
}

// NewClient returns a client for the daemon listening on socket.
func NewClient(socket string) *Client {
	return &Client{Socket: socket, hc: &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		}},
	}}
}

func (c *Client) do(method, path string, out any) error {
	req, err := http.NewRequest(method, "http://ripcord"+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach ripcord at %s (is the daemon running?): %w", c.Socket, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		return fmt.Errorf("ripcord answered %s", resp.Status)
	}
	if out != nil {
		return json.Unmarshal(body, out)
	}
	return nil
}

// Status fetches the daemon's report.
func (c *Client) Status() (Report, error) {
	var r Report
	err := c.do(http.MethodGet, "/v1/status", &r)
	return r, err
}

// Drain moves traffic away from a service; it persists across restarts.
func (c *Client) Drain(service string) error {
	return c.do(http.MethodPost, "/v1/services/"+service+"/drain", nil)
}

// Undrain restores a drained service.
func (c *Client) Undrain(service string) error {
	return c.do(http.MethodPost, "/v1/services/"+service+"/undrain", nil)
}

// Reload makes the daemon read its config file again; the error is the
// reason the new file was refused (nothing changed then).
func (c *Client) Reload() (ReloadResult, error) {
	var r ReloadResult
	err := c.do(http.MethodPost, "/v1/reload", &r)
	return r, err
}

// CheckNow runs a service's checks at once.
func (c *Client) CheckNow(service string) error {
	return c.do(http.MethodPost, "/v1/services/"+service+"/check", nil)
}
