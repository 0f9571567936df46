package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/ripcord/ripcord/control"
	"github.com/ripcord/ripcord/lab/netns"
	"github.com/ripcord/ripcord/lab/services"
)

var lookPath = exec.LookPath

// Service ports on every replica; the services listen on all addresses so
// that the VIP (clients), 127.0.0.1 (own checks) and the replica's own
// address (the peer's checks) all reach them.
const (
	portLDAP   = 389
	portRADIUS = 1812
	portHTTP   = 80
	portStatus = 9473 // ripcord's metrics_listen: /metrics and /v1/status
	// radiusSecret is the shared secret of the lab's RADIUS clients.
	radiusSecret = "lab-secret"
	// drainMetric is below 15 so that a drained replica's route survives the
	// first router hop (15 + 1 would be infinity there).
	drainMetric = 10
	// ripcordStopGrace bounds a ripcord's SIGTERM shutdown (it poisons,
	// repeats the poison once, and exits).
	ripcordStopGrace = 5 * time.Second
)

// Marker is what a replica's services put in their answers.
func Marker(replica string) string { return "replica-" + replica }

// Replica is one of the two servers: slapd, FreeRADIUS, nginx and ripcord in
// one namespace.
type Replica struct {
	Name    string // "sa" or "sb"
	NS      *netns.NS
	Addr    netip.Addr // the replica's own address (peers check it)
	Gateway netip.Addr // its router
	// Gateway6 is its router's IPv6 address in a dual-stack lab.
	Gateway6 netip.Addr
	Dir      string
	Config   string // ripcord config file
	Socket   string // ripcord control socket

	lab     *Lab
	peer    *Replica
	slapd   proc
	slapdN  int // restarts, for fresh log names
	radius  *services.FreeRADIUS
	nginx   *services.Nginx
	ripcord *netns.Process
}

// proc is a service process we can break and stop by pid.
type proc interface {
	Pid() int
	Stop() error
	Suspend() error
	Resume() error
	Exited() <-chan struct{}
}

func (r *Replica) start(ctx context.Context) error {
	var err error
	if r.Dir, err = r.lab.labDir(r.Name); err != nil {
		return err
	}
	if err := r.startSlapd(ctx); err != nil {
		return err
	}
	if err := r.startRADIUS(ctx); err != nil {
		return err
	}
	if err := r.startNginx(ctx); err != nil {
		return err
	}
	if r.Name == "sb" {
		// The consumer's own check finds nothing until it has replicated;
		// starting ripcord before would begin with a down and a hold-down.
		sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		if err := r.slapd.(*services.Slapd).WaitSynced(sctx, r.peer.slapd.(*services.Slapd)); err != nil {
			return fmt.Errorf("lab: slapd on sb not in sync with sa: %w", err)
		}
	}
	if err := r.writeConfig(); err != nil {
		return err
	}
	return r.StartRipcord()
}

func (r *Replica) startSlapd(ctx context.Context) error {
	opts := services.SlapdOptions{
		Dir:    filepath.Join(r.Dir, "slapd"),
		Netns:  r.NS.Name,
		Listen: netip.AddrPortFrom(netip.IPv4Unspecified(), portLDAP),
		Marker: Marker(r.Name),
	}
	if r.lab.Opts.IPv6 {
		opts.Listen6 = netip.AddrPortFrom(netip.IPv6Unspecified(), portLDAP)
	}
	if r.Name == "sb" {
		opts.Provider = fmt.Sprintf("ldap://%s:%d", r.peer.Addr, portLDAP)
		opts.ServerID = 2
	} else {
		opts.ServerID = 1
	}
	s, err := services.StartSlapd(ctx, opts)
	if err != nil {
		return err
	}
	r.slapd = s
	return nil
}

func (r *Replica) startRADIUS(ctx context.Context) error {
	opts := services.RadiusOptions{
		Dir:     filepath.Join(r.Dir, "radius"),
		Netns:   r.NS.Name,
		Listen:  netip.AddrPortFrom(netip.IPv4Unspecified(), portRADIUS),
		Secret:  radiusSecret,
		Clients: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), labNet},
		Marker:  Marker(r.Name),
	}
	if r.lab.Opts.IPv6 {
		opts.Listen6 = netip.AddrPortFrom(netip.IPv6Unspecified(), portRADIUS)
		opts.Clients = append(opts.Clients, labNet6)
	}
	f, err := services.StartFreeRADIUS(ctx, opts)
	if err != nil {
		return err
	}
	r.radius = f
	return nil
}

func (r *Replica) startNginx(ctx context.Context) error {
	opts := services.NginxOptions{
		Dir:    filepath.Join(r.Dir, "nginx"),
		Netns:  r.NS.Name,
		Listen: netip.AddrPortFrom(netip.IPv4Unspecified(), portHTTP),
		Marker: Marker(r.Name),
	}
	if r.lab.Opts.IPv6 {
		opts.Listen6 = netip.AddrPortFrom(netip.IPv6Unspecified(), portHTTP)
	}
	n, err := services.StartNginx(ctx, opts)
	if err != nil {
		return err
	}
	r.nginx = n
	return nil
}

// restartSlapd runs slapd again on its existing configuration and database
// (StartSlapd would seed a fresh database), and waits until it answers.
func (r *Replica) restartSlapd(ctx context.Context) error {
	dir := filepath.Join(r.Dir, "slapd")
	r.slapdN++
	p, err := r.NS.Start(filepath.Join(dir, "slapd-"+strconv.Itoa(r.slapdN)+".log"), "slapd", "-d", "0",
		"-f", filepath.Join(dir, "slapd.conf"), "-h", r.slapdURLs())
	if err != nil {
		return err
	}
	r.slapd = &nsProc{p: p}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for {
		if _, err := probeLDAPAt(ctx, r.NS, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), portLDAP), time.Second); err == nil {
			return nil
		}
		select {
		case <-p.Done():
			return fmt.Errorf("lab: slapd on %s exited during restart (log in %s)", r.Name, dir)
		case <-ctx.Done():
			return fmt.Errorf("lab: slapd on %s not answering after restart: %w", r.Name, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// slapdURLs are the listeners slapd is started with.
func (r *Replica) slapdURLs() string {
	urls := fmt.Sprintf("ldap://0.0.0.0:%d/", portLDAP)
	if r.lab.Opts.IPv6 {
		urls += fmt.Sprintf(" ldap://[::]:%d/", portLDAP)
	}
	return urls
}

// nsProc adapts a netns.Process to proc.
type nsProc struct{ p *netns.Process }

func (n *nsProc) Pid() int                { return n.p.Pid() }
func (n *nsProc) Exited() <-chan struct{} { return n.p.Done() }
func (n *nsProc) Resume() error           { return n.signal(syscall.SIGCONT) }
func (n *nsProc) signal(sig syscall.Signal) error {
	if n.p.Exited() {
		return fmt.Errorf("lab: %s (pid %d) has exited", n.p.Name, n.p.Pid())
	}
	return n.p.Cmd.Process.Signal(sig)
}
func (n *nsProc) Suspend() error {
	if err := n.signal(syscall.SIGSTOP); err != nil {
		return err
	}
	return services.WaitStopped(5*time.Second, n.Pid())
}
func (n *nsProc) Stop() error {
	_ = n.signal(syscall.SIGCONT)
	return n.p.Stop(2 * time.Second)
}

func (r *Replica) service(name string) (proc, error) {
	switch name {
	case ServiceLDAP:
		return r.slapd, nil
	case ServiceRADIUS:
		return r.radius, nil
	case ServiceWebAuth:
		return r.nginx, nil
	}
	return nil, fmt.Errorf("lab: no service %q", name)
}

// KillService kills a service's daemon with SIGKILL (a crash) and waits
// until it is gone.
func (r *Replica) KillService(name string) error {
	p, err := r.service(name)
	if err != nil {
		return err
	}
	if name == ServiceWebAuth {
		// nginx workers outlive a killed master and keep serving.
		return p.Stop()
	}
	if err := syscall.Kill(p.Pid(), syscall.SIGKILL); err != nil {
		return fmt.Errorf("lab: kill %s on %s: %w", name, r.Name, err)
	}
	select {
	case <-p.Exited():
		return nil
	case <-time.After(5 * time.Second):
		return fmt.Errorf("lab: %s on %s (pid %d) still running after SIGKILL", name, r.Name, p.Pid())
	}
}

// RestartService starts a killed service again and waits until it answers
// locally.
func (r *Replica) RestartService(ctx context.Context, name string) error {
	switch name {
	case ServiceLDAP:
		return r.restartSlapd(ctx)
	case ServiceRADIUS:
		return r.startRADIUS(ctx)
	case ServiceWebAuth:
		return r.startNginx(ctx)
	}
	return fmt.Errorf("lab: no service %q", name)
}

// SuspendService hangs a service with SIGSTOP: connections are still
// accepted by the kernel, nothing answers.
func (r *Replica) SuspendService(name string) error {
	p, err := r.service(name)
	if err != nil {
		return err
	}
	return p.Suspend()
}

// ResumeService continues a suspended service.
func (r *Replica) ResumeService(name string) error {
	p, err := r.service(name)
	if err != nil {
		return err
	}
	return p.Resume()
}

// LinkDown takes the replica's link to its router down (on the replica's
// side, like a broken NIC or cable).
func (r *Replica) LinkDown() error { return r.NS.LinkDown("eth0") }

// LinkUp brings the link back and restores the default route, which the
// kernel dropped with the link.
func (r *Replica) LinkUp() error {
	if err := r.NS.LinkUp("eth0"); err != nil {
		return err
	}
	if _, err := r.NS.IP("route", "replace", "default", "via", r.Gateway.String()); err != nil {
		return err
	}
	if r.Gateway6.IsValid() {
		if _, err := r.NS.IP("-6", "route", "replace", "default", "via", r.Gateway6.String()); err != nil {
			return err
		}
	}
	return nil
}

// StartRipcord starts `ripcord run` inside the replica's namespace.
func (r *Replica) StartRipcord() error {
	if r.ripcord != nil && !r.ripcord.Exited() {
		return fmt.Errorf("lab: ripcord on %s is already running", r.Name)
	}
	p, err := r.NS.Start(filepath.Join(r.Dir, "ripcord.log"), r.lab.Opts.Ripcord, "run", "-c", r.Config)
	if err != nil {
		return err
	}
	r.ripcord = p
	// Ready once the control socket answers; a bad config ends it at once.
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if p.Exited() {
			return fmt.Errorf("lab: ripcord on %s exited at start:\n%s", r.Name, r.lab.LogTail(20))
		}
		if c, err := net.Dial("unix", r.Socket); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("lab: ripcord on %s: no control socket after 20s", r.Name)
}

// StopRipcord sends ripcord SIGTERM (it poisons its routes, then exits) and
// waits for it.
func (r *Replica) StopRipcord() error {
	if r.ripcord == nil {
		return nil
	}
	if err := r.ripcord.Stop(ripcordStopGrace); err != nil {
		return err
	}
	if !r.ripcord.Exited() {
		return fmt.Errorf("lab: ripcord on %s did not exit", r.Name)
	}
	return nil
}

// KillRipcord kills ripcord with SIGKILL: no poison, the routers only notice
// when their route times out.
func (r *Replica) KillRipcord() error {
	if r.ripcord == nil || r.ripcord.Exited() {
		return fmt.Errorf("lab: ripcord on %s is not running", r.Name)
	}
	// Its checker processes would outlive it as orphans: they go too.
	kids := childPids(r.ripcord.Pid())
	if err := r.ripcord.Cmd.Process.Kill(); err != nil {
		return err
	}
	for _, pid := range kids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	select {
	case <-r.ripcord.Done():
		return nil
	case <-time.After(5 * time.Second):
		return fmt.Errorf("lab: ripcord on %s survived SIGKILL", r.Name)
	}
}

// childPids lists the processes whose parent is pid.
func childPids(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var kids []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The command name in parentheses may hold spaces: the fields
		// after the last ')' are state, ppid, ...
		i := strings.LastIndexByte(string(stat), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			kids = append(kids, child)
		}
	}
	return kids
}

// Status reads ripcord's status through its control socket.
func (r *Replica) Status() (control.Report, error) {
	return control.NewClient(r.Socket).Status()
}

// Drain drains (or undrains) a service through the control socket.
func (r *Replica) Drain(service string, on bool) error {
	c := control.NewClient(r.Socket)
	if on {
		return c.Drain(service)
	}
	return c.Undrain(service)
}

// RipcordRunning reports whether ripcord runs on the replica.
func (r *Replica) RipcordRunning() bool { return r.ripcord != nil && !r.ripcord.Exited() }

// Ctl runs a ripcord control command (status, drain, undrain) against the
// replica's control socket and returns its output.
func (r *Replica) Ctl(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	full := append([]string{args[0], "-s", r.Socket}, args[1:]...)
	out, err := exec.CommandContext(ctx, r.lab.Opts.Ripcord, full...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("lab: ripcord %s on %s: %w: %s", strings.Join(args, " "), r.Name, err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

func (r *Replica) stopAll() error {
	var errs []error
	if r.ripcord != nil {
		errs = append(errs, r.StopRipcord())
	}
	// Typed nils (a service that never started) must not reach the
	// interface.
	var procs []proc
	if r.slapd != nil {
		procs = append(procs, r.slapd)
	}
	if r.radius != nil {
		procs = append(procs, r.radius)
	}
	if r.nginx != nil {
		procs = append(procs, r.nginx)
	}
	for _, p := range procs {
		errs = append(errs, p.Stop())
	}
	return errors.Join(errs...)
}

// metric is the replica's base metric in the lab's shape.
func (r *Replica) metric() int {
	if r.lab.Opts.Shape == ShapeFailover && r.Name == "sb" {
		return 3
	}
	return 1
}

// writeConfig writes ripcord's configuration and the secret files it names.
func (r *Replica) writeConfig() error {
	o := r.lab.Opts
	secrets := map[string]string{
		"ldap.pw":       services.SlapdServicePassword,
		"radius.secret": radiusSecret,
		"radius.pw":     services.RadiusAcceptPassword,
		"rip.key":       ripKey,
		"bgp.pw":        bgpPassword,
	}
	for name, v := range secrets {
		if err := os.WriteFile(filepath.Join(r.Dir, name), []byte(v+"\n"), 0o600); err != nil {
			return fmt.Errorf("lab: %w", err)
		}
	}
	r.Config = filepath.Join(r.Dir, "ripcord.yaml")
	r.Socket = filepath.Join(r.Dir, "ripcord.sock")
	checks := func(host string) map[string]string {
		return map[string]string{
			ServiceLDAP: fmt.Sprintf(`checker: ldap
        target: ldap://%s:%d
        settings:
          bind_dn: %s
          password_file: %s
          base: %s
          filter: (uid=alice)`, host, portLDAP, services.SlapdServiceDN, filepath.Join(r.Dir, "ldap.pw"), services.SlapdSuffix),
			ServiceRADIUS: fmt.Sprintf(`checker: radius
        target: %s:%d
        settings:
          secret_file: %s
          user: %s
          password_file: %s
          retransmit: 2`, host, portRADIUS, filepath.Join(r.Dir, "radius.secret"), services.RadiusAcceptUser, filepath.Join(r.Dir, "radius.pw")),
			ServiceWebAuth: fmt.Sprintf(`checker: http
        target: http://%s:%d/login
        settings:
          body_contains: 'name="password"'`, host, portHTTP),
		}
	}
	own := checks("127.0.0.1")
	var b strings.Builder
	fmt.Fprintf(&b, `# ripcord on replica %s of the lab (%s shape)
node: %s
state_dir: %s
log:
  level: info
control:
  socket: %s
  metrics_listen: %s:%d   # also the status the peer's assist check reads
%sservices:
`, r.Name, o.Shape, r.Name, filepath.Join(r.Dir, "state"), r.Socket, r.Addr, portStatus, r.routingSection())
	for _, svc := range Services {
		// Two failures in a row (fall 2 by default) so that one slow check on a busy
		// machine does not move traffic. rise 1: failback_delay, not rise,
		// is what guards against flapping, and a second passing check would
		// only add an interval to every failback. Assistance watches the
		// peer's own ripcord (checker peer): it fails once the peer has sent
		// its poison, so this replica's metric change always reaches the
		// routers after they dropped the peer's route.
		optional := "" // keys some labs set
		if o.IPv6 {
			optional = "\n    vip6: " + VIP6(svc).String()
		}
		if o.LastResortMetric > 0 {
			optional += fmt.Sprintf("\n    last_resort_metric: %d", o.LastResortMetric)
		}
		fmt.Fprintf(&b, `  - name: %s
    vip: %s%s
    metric: %d
    drain_metric: %d
    failback_delay: %s
    checks:
      - name: %s
        interval: %s
        fast_interval: %s
        timeout: %s
        rise: 1
        fall: %d
        %s
`, svc, VIP(svc), optional, r.metric(), drainMetric, o.FailbackDelay, svc, o.CheckInterval, o.FastInterval, o.CheckTimeout, o.Fall, own[svc])
		if !o.NoAssist {
			fmt.Fprintf(&b, `    assist:
      metric: 2
      delay: %s
      peers:
        - name: %s
          checker: peer
          target: http://%s:%d
          interval: 200ms
          timeout: 150ms
          rise: 1
          fall: 1
          settings: {service: %s, advertiser: %s}
`, o.AssistDelay, r.peer.Name, r.peer.Addr, portStatus, svc, o.Protocol)
		}
		if o.Relay {
			// The peer defaults to the assist peer's address. quiet 1s:
			// the clients send every 100ms, so a second without a new
			// flow means the routers moved.
			fmt.Fprintf(&b, `    relay:
      ports: [%s]
      quiet: 1s
`, fmt.Sprintf("%s/%d", servicePorts[svc].proto, servicePorts[svc].port))
		}
	}
	return os.WriteFile(r.Config, []byte(b.String()), 0o600)
}

// routingSection is the rip: or bgp: section of ripcord's configuration.
func (r *Replica) routingSection() string {
	if r.lab.Opts.Protocol == "bgp" {
		return r.bgpSection()
	}
	s := fmt.Sprintf(`rip:
  readvertise_on_poison: %v
  interfaces:
    - name: eth0
  auth: {mode: md5, key_id: 1, key_file: %s}
`, !r.lab.Opts.NoReadvertise, filepath.Join(r.Dir, "rip.key"))
	if r.lab.Opts.IPv6 {
		// RIPng has no authentication: the routers accept only the vip6s
		// from this link (routers.Config.Accept).
		s += fmt.Sprintf("ripng:\n  readvertise_on_poison: %v\n  interfaces:\n    - name: eth0\n", !r.lab.Opts.NoReadvertise)
	}
	return s
}

func indent(s string, n int) string {
	return strings.ReplaceAll(s, "\n", "\n"+strings.Repeat(" ", n))
}

// probeLDAPAt reads the root DSE's description (the replica marker) from
// addr, dialing from inside ns.
func probeLDAPAt(ctx context.Context, ns *netns.NS, addr netip.AddrPort, timeout time.Duration) (string, error) {
	conn, err := dialIn(ctx, ns, "tcp", addr.String(), timeout)
	if err != nil {
		return "", err
	}
	// One deadline for the whole exchange: go-ldap's own timeouts are per
	// request.
	_ = conn.SetDeadline(time.Now().Add(timeout))
	c := ldap.NewConn(conn, false)
	c.Start()
	defer c.Close()
	c.SetTimeout(timeout)
	res, err := c.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"description"}, nil))
	if err != nil {
		return "", err
	}
	if len(res.Entries) != 1 {
		return "", fmt.Errorf("root DSE: %d entries", len(res.Entries))
	}
	return res.Entries[0].GetAttributeValue("description"), nil
}

// dialIn dials from inside ns: the socket is created on a thread switched
// into the namespace and keeps that namespace for life.
func dialIn(ctx context.Context, ns *netns.NS, network, addr string, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	var conn net.Conn
	err := ns.Do(func() error {
		var err error
		conn, err = d.DialContext(ctx, network, addr)
		return err
	})
	return conn, err
}
