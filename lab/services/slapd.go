package services

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/template"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/vishvananda/netns"
)

// Names and secrets every slapd started by StartSlapd knows.
const (
	SlapdSuffix          = "dc=example,dc=com"
	SlapdAdminDN         = "cn=admin,dc=example,dc=com" // rootdn of the data
	SlapdAdminPassword   = "admin-secret"
	SlapdConfigDN        = "cn=config" // rootdn of cn=config
	SlapdConfigPassword  = "config-secret"
	SlapdServiceDN       = "cn=svc-health,ou=svc,dc=example,dc=com" // read everywhere, write on the heartbeat entry
	SlapdServicePassword = "health-secret"
	SlapdTestEntryDN     = "uid=alice,ou=people,dc=example,dc=com"
	SlapdHeartbeatDN     = "cn=heartbeat,dc=example,dc=com"
	// SlapdDatabaseDN is the mdb database in cn=config (the config
	// database itself is {0}).
	SlapdDatabaseDN = "olcDatabase={1}mdb,cn=config"
)

// SlapdOptions describe one OpenLDAP slapd 2.5 instance.
type SlapdOptions struct {
	// Dir holds the generated configuration, database and logs. Required.
	Dir string
	// Netns, when set, runs slapd inside that network namespace
	// (ip netns exec).
	Netns string
	// Listen is the ldap:// listener. The zero value means 127.0.0.1 with a
	// free port; port 0 picks a free port (only meaningful without Netns).
	Listen netip.AddrPort
	// Listen6, when valid, adds a second ldap:// listener, for IPv6 beside
	// an IPv4 Listen (a dual-stack replica). Its port must be set.
	Listen6 netip.AddrPort
	// LDAPSListen, when valid, adds an ldaps:// listener (needs TLSCertFile).
	// Port 0 picks a free port.
	LDAPSListen netip.AddrPort
	// TLSCertFile and TLSKeyFile (PEM) enable StartTLS on the ldap://
	// listener and serve the ldaps:// listener.
	TLSCertFile, TLSKeyFile string
	// Provider is "" for a provider (seeded, with the syncprov overlay) or
	// the ldap:// URL of the provider this server replicates from with
	// syncrepl refreshAndPersist.
	Provider string
	// ServerID is slapd's serverID (the SID in CSNs it writes); 0 leaves it
	// unset, which slapd writes as SID 000.
	ServerID int
	// ProxyTo, when set, serves the suffix with back-ldap from this LDAP
	// URL instead of a local database (nothing is seeded). A dead URL gives
	// the "backend unavailable" case: binds and searches answer 52.
	ProxyTo string
	// Marker is published as the root DSE's description, so clients can tell
	// replicas apart (replicated entries are the same everywhere):
	// ldapsearch -x -H URL -s base -b "" description
	Marker string
}

// Slapd is a running slapd.
type Slapd struct {
	// Addr is the ldap:// listener.
	Addr netip.AddrPort
	// LDAPSAddr is the ldaps:// listener, if one was asked for.
	LDAPSAddr netip.AddrPort

	opts    SlapdOptions
	cmd     *exec.Cmd
	done    chan struct{}
	stopped sync.Once
	stopErr error
}

// Pid is slapd's process id.
func (s *Slapd) Pid() int { return s.cmd.Process.Pid }

// URL is the ldap:// URL of the server (0.0.0.0 is reported as 127.0.0.1).
func (s *Slapd) URL() string { return "ldap://" + slapdDialable(s.Addr).String() }

// LDAPSURL is the ldaps:// URL, or "" without an ldaps listener.
func (s *Slapd) LDAPSURL() string {
	if !s.LDAPSAddr.IsValid() {
		return ""
	}
	return "ldaps://" + slapdDialable(s.LDAPSAddr).String()
}

// Suspend stops the process with SIGSTOP: TCP connects still succeed (the
// kernel completes them) but nothing answers.
func (s *Slapd) Suspend() error {
	if err := s.signal(syscall.SIGSTOP); err != nil {
		return err
	}
	return WaitStopped(stopWait, s.Pid())
}

// Resume continues a suspended process.
func (s *Slapd) Resume() error { return s.signal(syscall.SIGCONT) }

// Exited is closed when the process has exited.
func (s *Slapd) Exited() <-chan struct{} { return s.done }

// Stop terminates slapd and reaps it: SIGTERM, then SIGKILL after 250 ms
// (a consumer's syncrepl thread holds a clean shutdown for its network
// timeout; mdb is crash-safe, so the kill loses nothing). It is safe to call
// more than once and on a suspended process.
func (s *Slapd) Stop() error {
	s.stopped.Do(func() {
		_ = s.signal(syscall.SIGTERM)
		_ = s.signal(syscall.SIGCONT) // a stopped process cannot act on SIGTERM
		select {
		case <-s.done:
		case <-time.After(250 * time.Millisecond):
			_ = s.signal(syscall.SIGKILL)
			select {
			case <-s.done:
			case <-time.After(5 * time.Second):
				s.stopErr = fmt.Errorf("services: slapd pid %d did not exit", s.Pid())
			}
		}
	})
	return s.stopErr
}

func (s *Slapd) signal(sig syscall.Signal) error {
	select {
	case <-s.done:
		return nil
	default:
	}
	return syscall.Kill(s.cmd.Process.Pid, sig)
}

// Dial opens a TCP connection to the ldap:// listener, from inside the
// namespace when the server runs in one.
func (s *Slapd) Dial(ctx context.Context) (net.Conn, error) {
	return slapdDial(ctx, s.opts.Netns, slapdDialable(s.Addr))
}

// Conn returns a connection bound as dn (anonymous when dn is ""). The
// caller closes it.
func (s *Slapd) Conn(ctx context.Context, dn, password string) (*ldap.Conn, error) {
	raw, err := s.Dial(ctx)
	if err != nil {
		return nil, err
	}
	c := ldap.NewConn(raw, false)
	c.Start()
	c.SetTimeout(10 * time.Second)
	if dn != "" {
		if err := c.Bind(dn, password); err != nil {
			c.Close()
			return nil, fmt.Errorf("services: slapd bind as %s: %w", dn, err)
		}
	}
	return c, nil
}

// Modify replaces attr of dn with values as the data's rootdn (no values
// deletes the attribute).
func (s *Slapd) Modify(ctx context.Context, dn, attr string, values ...string) error {
	return s.modifyAs(ctx, SlapdAdminDN, SlapdAdminPassword, dn, attr, values)
}

// Delete removes dn as the data's rootdn.
func (s *Slapd) Delete(ctx context.Context, dn string) error {
	c, err := s.Conn(ctx, SlapdAdminDN, SlapdAdminPassword)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Del(ldap.NewDelRequest(dn, nil))
}

// ConfigModify replaces attr of dn in cn=config at runtime (no values
// deletes the attribute).
func (s *Slapd) ConfigModify(ctx context.Context, dn, attr string, values ...string) error {
	return s.modifyAs(ctx, SlapdConfigDN, SlapdConfigPassword, dn, attr, values)
}

// SetReadRestricted makes the data refuse (true) or allow (false) reads with
// olcRestrict: read, so searches fail with 53 "Unwilling To Perform".
func (s *Slapd) SetReadRestricted(ctx context.Context, restricted bool) error {
	if restricted {
		return s.ConfigModify(ctx, SlapdDatabaseDN, "olcRestrict", "read")
	}
	return s.ConfigModify(ctx, SlapdDatabaseDN, "olcRestrict")
}

// SetSyncProvider repoints a consumer's syncrepl at provider (an ldap URL).
// Pointing it at a dead port cuts replication; pointing it back heals it.
// Cutting it pauses the consumer for about 0.7 s (slapd waits for the
// syncrepl task to stop): checks with a shorter deadline fail meanwhile.
// daemon/freshness_test.go cuts a TCP relay instead.
func (s *Slapd) SetSyncProvider(ctx context.Context, provider string) error {
	if s.opts.Provider == "" {
		return errors.New("services: slapd is a provider, it has no syncrepl")
	}
	return s.ConfigModify(ctx, SlapdDatabaseDN, "olcSyncrepl", slapdSyncrepl(provider))
}

// ContextCSNs reads the contextCSN values of the suffix.
func (s *Slapd) ContextCSNs(ctx context.Context) ([]string, error) {
	c, err := s.Conn(ctx, SlapdServiceDN, SlapdServicePassword)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	res, err := c.Search(ldap.NewSearchRequest(SlapdSuffix, ldap.ScopeBaseObject, ldap.NeverDerefAliases,
		0, 0, false, "(objectClass=*)", []string{"contextCSN"}, nil))
	if err != nil {
		return nil, fmt.Errorf("services: slapd read contextCSN: %w", err)
	}
	if len(res.Entries) != 1 {
		return nil, fmt.Errorf("services: slapd read contextCSN: %d entries", len(res.Entries))
	}
	return res.Entries[0].GetAttributeValues("contextCSN"), nil
}

// WaitSynced waits until this consumer's contextCSN equals the provider's
// (bounded by ctx).
func (s *Slapd) WaitSynced(ctx context.Context, provider *Slapd) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		want, err := provider.ContextCSNs(ctx)
		if err == nil {
			var got []string
			got, err = s.ContextCSNs(ctx)
			if err == nil && len(want) > 0 && strings.Join(got, ",") == strings.Join(want, ",") {
				return nil
			}
			if err == nil {
				err = fmt.Errorf("contextCSN %v, provider has %v", got, want)
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("services: slapd not in sync: %v", last)
		case <-tick.C:
		}
	}
}

func (s *Slapd) modifyAs(ctx context.Context, bindDN, password, dn, attr string, values []string) error {
	c, err := s.Conn(ctx, bindDN, password)
	if err != nil {
		return err
	}
	defer c.Close()
	m := ldap.NewModifyRequest(dn, nil)
	if len(values) == 0 {
		m.Delete(attr, nil)
	} else {
		m.Replace(attr, values)
	}
	if err := c.Modify(m); err != nil {
		return fmt.Errorf("services: slapd modify %s %s: %w", dn, attr, err)
	}
	return nil
}

// StartSlapd writes a configuration into opts.Dir, seeds a provider with
// slapadd, starts slapd in the foreground and waits until it answers LDAP
// (bounded by ctx). A consumer starts empty and fills itself from its
// provider; use WaitSynced to wait for that.
func StartSlapd(ctx context.Context, opts SlapdOptions) (*Slapd, error) {
	if opts.Dir == "" {
		return nil, errors.New("services: slapd needs a Dir")
	}
	if opts.Provider != "" && opts.ProxyTo != "" {
		return nil, errors.New("services: slapd is either a consumer or a proxy")
	}
	if (opts.LDAPSListen.IsValid() || opts.TLSKeyFile != "") && opts.TLSCertFile == "" {
		return nil, errors.New("services: slapd ldaps needs TLSCertFile and TLSKeyFile")
	}
	for _, bin := range []string{"slapd", "slapadd"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("services: %s not found (install the Debian package slapd): %w", bin, err)
		}
	}
	if !opts.Listen.IsValid() {
		opts.Listen = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 0)
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("services: slapd: %w", err)
	}
	opts.Dir = dir
	if err := os.MkdirAll(filepath.Join(dir, "db"), 0o700); err != nil {
		return nil, fmt.Errorf("services: slapd: %w", err)
	}

	conf := filepath.Join(opts.Dir, "slapd.conf")
	if err := slapdWriteFiles(opts); err != nil {
		return nil, err
	}
	if opts.Provider == "" && opts.ProxyTo == "" {
		// slapadd -w also writes the contextCSN, so a fresh provider and
		// its consumers agree from the first search on.
		out, err := exec.CommandContext(ctx, "slapadd", "-q", "-w", "-S", strconv.Itoa(opts.ServerID),
			"-f", conf, "-l", filepath.Join(opts.Dir, "seed.ldif")).CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("services: slapadd: %v: %s", err, bytes.TrimSpace(out))
		}
	}

	// A free port picked here may be taken by someone else before slapd
	// binds it; retry a few times with fresh ports when we picked them.
	picked := opts.Listen.Port() == 0 || (opts.LDAPSListen.IsValid() && opts.LDAPSListen.Port() == 0)
	var last error
	for attempt := 0; attempt < 3; attempt++ {
		s, err := slapdTryStart(ctx, opts, conf)
		if err == nil {
			return s, nil
		}
		last = err
		if ctx.Err() != nil || !picked {
			break
		}
	}
	return nil, last
}

func slapdTryStart(ctx context.Context, opts SlapdOptions, conf string) (*Slapd, error) {
	s := &Slapd{opts: opts, done: make(chan struct{})}
	var err error
	if s.Addr, err = pickPort("tcp", opts.Listen); err != nil {
		return nil, err
	}
	if opts.LDAPSListen.IsValid() {
		if s.LDAPSAddr, err = pickPort("tcp", opts.LDAPSListen); err != nil {
			return nil, err
		}
	}

	urls := "ldap://" + s.Addr.String() + "/"
	if opts.Listen6.IsValid() {
		urls += " ldap://" + opts.Listen6.String() + "/"
	}
	if s.LDAPSAddr.IsValid() {
		urls += " ldaps://" + s.LDAPSAddr.String() + "/"
	}
	// -d 0 keeps slapd in the foreground (no debug output), so its pid is
	// ours to signal and to reap.
	args := []string{"slapd", "-d", "0", "-f", conf, "-h", urls}
	if opts.Netns != "" {
		args = append([]string{"ip", "netns", "exec", opts.Netns}, args...)
	}
	logFile, err := os.Create(filepath.Join(opts.Dir, "slapd.log"))
	if err != nil {
		return nil, fmt.Errorf("services: slapd: %w", err)
	}
	defer logFile.Close()
	s.cmd = exec.Command(args[0], args[1:]...)
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("services: start slapd: %w", err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()

	if err := s.waitReady(ctx); err != nil {
		_ = s.Stop()
		log, _ := os.ReadFile(filepath.Join(opts.Dir, "slapd.log"))
		return nil, fmt.Errorf("services: slapd on %s: %w: %s", s.Addr, err, bytes.TrimSpace(log))
	}
	return s, nil
}

// waitReady polls a root DSE read until it answers, the process exits, or
// ctx ends; every try is short so the loop stays bounded.
func (s *Slapd) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		tryCtx, tryCancel := context.WithTimeout(ctx, time.Second)
		last = s.readRootDSE(tryCtx)
		tryCancel()
		if last == nil {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("exited: %v", s.cmd.ProcessState)
		case <-ctx.Done():
			return fmt.Errorf("not ready: %v", last)
		case <-tick.C:
		}
	}
}

func (s *Slapd) readRootDSE(ctx context.Context) error {
	c, err := s.Conn(ctx, "", "")
	if err != nil {
		return err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetTimeout(time.Until(dl))
	}
	_, err = c.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases,
		0, 0, false, "(objectClass=*)", []string{"namingContexts"}, nil))
	return err
}

func slapdDialable(ap netip.AddrPort) netip.AddrPort {
	if ap.Addr().IsUnspecified() {
		return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), ap.Port())
	}
	return ap
}

// slapdDial connects to addr from inside netnsName ("" = this namespace).
// The socket is created on a locked thread switched into the namespace; the
// thread's namespace is restored before it is unlocked.
func slapdDial(ctx context.Context, netnsName string, addr netip.AddrPort) (net.Conn, error) {
	var d net.Dialer
	if netnsName == "" {
		return d.DialContext(ctx, "tcp", addr.String())
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("services: slapd netns: %w", err)
	}
	defer orig.Close()
	target, err := netns.GetFromName(netnsName)
	if err != nil {
		return nil, fmt.Errorf("services: slapd netns %s: %w", netnsName, err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		return nil, fmt.Errorf("services: slapd netns %s: %w", netnsName, err)
	}
	conn, dialErr := d.DialContext(ctx, "tcp", addr.String())
	if err := netns.Set(orig); err != nil {
		// The thread is in the wrong namespace: keep it locked so the
		// runtime discards it when this goroutine ends.
		runtime.LockOSThread()
		if conn != nil {
			conn.Close()
		}
		return nil, fmt.Errorf("services: slapd netns restore: %w", err)
	}
	return conn, dialErr
}

func slapdSyncrepl(provider string) string {
	return `rid=001 provider=` + provider + ` type=refreshAndPersist retry="1 +"` +
		` searchbase="` + SlapdSuffix + `" bindmethod=simple binddn="` + SlapdAdminDN + `"` +
		` credentials=` + SlapdAdminPassword + ` schemachecking=off timeout=1 network-timeout=1`
}

// slapdSSHA hashes a password the way slappasswd does ({SSHA}, 8-byte salt).
func slapdSSHA(password string) string {
	salt := make([]byte, 8)
	_, _ = rand.Read(salt)
	h := sha1.Sum(append([]byte(password), salt...))
	return "{SSHA}" + base64.StdEncoding.EncodeToString(append(h[:], salt...))
}

var slapdConfTemplate = template.Must(template.New("slapd.conf").Parse(`# generated by ripcord lab/services
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload back_ldap
moduleload syncprov
pidfile {{.Dir}}/slapd.pid
rootDSE {{.Dir}}/rootdse.ldif
{{if .ServerID}}serverID {{.ServerID}}
{{end}}{{if .TLSCertFile}}TLSCertificateFile {{.TLSCertFile}}
TLSCertificateKeyFile {{.TLSKeyFile}}
{{end}}
access to dn.base="" by * read
access to dn.base="cn=Subschema" by * read

database config
rootpw {{.ConfigPassword}}

{{if .ProxyTo}}database ldap
suffix "{{.Suffix}}"
uri "{{.ProxyTo}}"
{{else}}database mdb
suffix "{{.Suffix}}"
rootdn "{{.AdminDN}}"
rootpw {{.AdminPassword}}
directory {{.Dir}}/db
maxsize 104857600
index objectClass,uid eq
index entryCSN,entryUUID eq
access to attrs=userPassword by self read by anonymous auth by * none
access to dn.base="{{.HeartbeatDN}}" by dn.exact="{{.ServiceDN}}" write by * read
access to * by * read
{{if .Syncrepl}}syncrepl {{.Syncrepl}}
{{else}}overlay syncprov
syncprov-checkpoint 10 1
syncprov-sessionlog 100
{{end}}{{end}}`))

func slapdWriteFiles(opts SlapdOptions) error {
	var conf bytes.Buffer
	data := map[string]any{
		"Dir": opts.Dir, "ServerID": opts.ServerID, "TLSCertFile": opts.TLSCertFile, "TLSKeyFile": opts.TLSKeyFile,
		"ConfigPassword": SlapdConfigPassword, "Suffix": SlapdSuffix, "AdminDN": SlapdAdminDN,
		"AdminPassword": SlapdAdminPassword, "HeartbeatDN": SlapdHeartbeatDN, "ServiceDN": SlapdServiceDN,
		"Syncrepl": "", "ProxyTo": opts.ProxyTo,
	}
	if opts.Provider != "" {
		data["Syncrepl"] = slapdSyncrepl(opts.Provider)
	}
	if err := slapdConfTemplate.Execute(&conf, data); err != nil {
		return fmt.Errorf("services: slapd.conf: %w", err)
	}
	rootDSE := "dn:\n"
	if opts.Marker != "" {
		rootDSE += "description: " + opts.Marker + "\n"
	}
	seed := `dn: ` + SlapdSuffix + `
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: ou=svc,` + SlapdSuffix + `
objectClass: organizationalUnit
ou: svc

dn: ou=people,` + SlapdSuffix + `
objectClass: organizationalUnit
ou: people

dn: ` + SlapdServiceDN + `
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: svc-health
userPassword: ` + slapdSSHA(SlapdServicePassword) + `

dn: ` + SlapdTestEntryDN + `
objectClass: inetOrgPerson
uid: alice
cn: Alice Example
sn: Example
mail: alice@example.com

dn: ` + SlapdHeartbeatDN + `
objectClass: applicationProcess
cn: heartbeat
description: ` + strconv.FormatInt(time.Now().Unix(), 10) + `
`
	for name, content := range map[string]string{"slapd.conf": conf.String(), "rootdse.ldif": rootDSE, "seed.ldif": seed} {
		if err := os.WriteFile(filepath.Join(opts.Dir, name), []byte(content), 0o600); err != nil {
			return fmt.Errorf("services: slapd: %w", err)
		}
	}
	return nil
}
