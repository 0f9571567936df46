package vip

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/ripcord/ripcord/advertisers"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// testNS is a network namespace created for one test and deleted after it.
type testNS struct {
	name   string
	handle netns.NsHandle
}

func newTestNS(t *testing.T) *testNS {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("vip: needs root for network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatalf("vip: the ip command is missing (install package iproute2): %v", err)
	}
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	name := "rcvip" + hex.EncodeToString(b)
	run(t, "ip", "netns", "add", name)
	// lo comes up with 127.0.0.1/8 and ::1/128, as on a real host.
	defer run(t, "ip", "-n", name, "link", "set", "lo", "up")
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("delete netns %s: %v: %s", name, err, out)
		}
	})
	h, err := netns.GetFromName(name)
	if err != nil {
		t.Fatalf("open netns %s: %v", name, err)
	}
	t.Cleanup(func() { h.Close() })
	return &testNS{name: name, handle: h}
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// addrs lists the addresses on dev inside the namespace, as "a.b.c.d/n".
func (ns *testNS) addrs(t *testing.T, dev string) []string {
	t.Helper()
	out := run(t, "ip", "-n", ns.name, "-o", "addr", "show", "dev", dev)
	var list []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "inet" || f[i] == "inet6" {
				list = append(list, f[i+1])
			}
		}
	}
	slices.Sort(list)
	return list
}

// listen binds a TCP listener on addr inside the namespace, and closes it.
func (ns *testNS) listen(t *testing.T, addr string) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	if err := netns.Set(ns.handle); err != nil {
		t.Fatal(err)
	}
	defer netns.Set(orig)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s in %s: %v", addr, ns.name, err)
	}
	ln.Close()
}

func (ns *testNS) has(t *testing.T, dev, cidr string) bool {
	return slices.Contains(ns.addrs(t, dev), cidr)
}

// logRecorder keeps every log record for assertions.
type logRecorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec.Clone())
	return nil
}
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *logRecorder) WithGroup(string) slog.Handler      { return r }

// find returns the records at level whose message contains msg, as
// "address interface" strings.
func (r *logRecorder) find(level slog.Level, msg string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, rec := range r.records {
		if rec.Level != level || !strings.Contains(rec.Message, msg) {
			continue
		}
		var addr, dev string
		rec.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case "address":
				addr = a.Value.String()
			case "interface":
				dev = a.Value.String()
			}
			return true
		})
		out = append(out, addr+" "+dev)
	}
	return out
}

func newManager(t *testing.T, ns *testNS, cfg Config) (*Manager, *logRecorder) {
	t.Helper()
	rec := &logRecorder{}
	cfg.Logger = slog.New(rec)
	cfg.Namespace = &ns.handle
	m, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m, rec
}

func addr(s, dev string) Address { return Address{Prefix: netip.MustParsePrefix(s), Interface: dev} }

// waitFor polls cond every 20 ms until it holds or the bound passes.
func waitFor(t *testing.T, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, bound)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestEnsureAddsAndIsIdempotent(t *testing.T) {
	ns := newTestNS(t)
	m, rec := newManager(t, ns, Config{})
	ctx := context.Background()
	want := []Address{addr("10.77.0.1/32", ""), addr("10.77.0.2/32", "lo")}
	for i := range 3 {
		if err := m.Ensure(ctx, want); err != nil {
			t.Fatalf("Ensure #%d: %v", i, err)
		}
	}
	if diff := cmp.Diff([]string{"10.77.0.1/32", "10.77.0.2/32", "127.0.0.1/8", "::1/128"}, ns.addrs(t, "lo")); diff != "" {
		t.Errorf("addresses on lo (-want +got):\n%s", diff)
	}
	if got, wantLog := rec.find(slog.LevelInfo, "added address"), []string{"10.77.0.1/32 lo", "10.77.0.2/32 lo"}; !cmp.Equal(got, wantLog) {
		t.Errorf("added-address logs = %q, want %q (one per address, none on re-ensure)", got, wantLog)
	}
	if diff := cmp.Diff([]Address{addr("10.77.0.1/32", "lo"), addr("10.77.0.2/32", "lo")}, m.Wanted(), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("Wanted (-want +got):\n%s", diff)
	}
}

func TestCloseRemovesExactlyWhatItAdded(t *testing.T) {
	ns := newTestNS(t)
	run(t, "ip", "-n", ns.name, "addr", "add", "10.77.0.9/32", "dev", "lo")
	before := ns.addrs(t, "lo")
	m, rec := newManager(t, ns, Config{})
	if err := m.Ensure(context.Background(), []Address{addr("10.77.0.1/32", ""), addr("10.77.0.9/32", "")}); err != nil {
		t.Fatal(err)
	}
	if !ns.has(t, "lo", "10.77.0.1/32") || !ns.has(t, "lo", "10.77.0.9/32") {
		t.Fatalf("after Ensure: %v", ns.addrs(t, "lo"))
	}
	if got := rec.find(slog.LevelInfo, "already present"); !cmp.Equal(got, []string{"10.77.0.9/32 lo"}) {
		t.Errorf("already-present logs = %q", got)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if diff := cmp.Diff(before, ns.addrs(t, "lo")); diff != "" {
		t.Errorf("lo after Close differs from before New (-before +after):\n%s", diff)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := m.Ensure(context.Background(), nil); err == nil {
		t.Error("Ensure after Close: want error")
	}
}

func TestRemovesOnlyOwnAddressesNoLongerWanted(t *testing.T) {
	ns := newTestNS(t)
	run(t, "ip", "-n", ns.name, "addr", "add", "10.77.0.9/32", "dev", "lo")
	m, _ := newManager(t, ns, Config{})
	ctx := context.Background()
	if err := m.Ensure(ctx, []Address{addr("10.77.0.1/32", ""), addr("10.77.0.2/32", ""), addr("10.77.0.9/32", "")}); err != nil {
		t.Fatal(err)
	}
	if err := m.Ensure(ctx, []Address{addr("10.77.0.1/32", "")}); err != nil {
		t.Fatal(err)
	}
	// 10.77.0.2 was ours and goes; 10.77.0.9 was there before and stays.
	if diff := cmp.Diff([]string{"10.77.0.1/32", "10.77.0.9/32", "127.0.0.1/8", "::1/128"}, ns.addrs(t, "lo")); diff != "" {
		t.Errorf("lo (-want +got):\n%s", diff)
	}
}

func TestDeletedAddressIsRestored(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		// The subscription repairs at once; the hour-long re-check cannot help.
		{"subscription", Config{Check: time.Hour}},
		// Without notifications the periodic re-check repairs.
		{"recheck", Config{Check: 100 * time.Millisecond, noSubscription: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := newTestNS(t)
			m, rec := newManager(t, ns, tc.cfg)
			if err := m.Ensure(context.Background(), []Address{addr("10.77.0.1/32", "")}); err != nil {
				t.Fatal(err)
			}
			run(t, "ip", "-n", ns.name, "addr", "del", "10.77.0.1/32", "dev", "lo")
			waitFor(t, 2*time.Second, "address restored", func() bool { return ns.has(t, "lo", "10.77.0.1/32") })
			waitFor(t, 2*time.Second, "repair logged", func() bool { return len(rec.find(slog.LevelWarn, "restored")) > 0 })
			if got := rec.find(slog.LevelWarn, "restored"); !cmp.Equal(got, []string{"10.77.0.1/32 lo"}) {
				t.Errorf("warnings = %q", got)
			}
			if got := m.Repairs(); got != 1 {
				t.Errorf("Repairs = %d, want 1", got)
			}
			// A repaired address is still ours: Close removes it.
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			if ns.has(t, "lo", "10.77.0.1/32") {
				t.Error("address left after Close")
			}
		})
	}
}

func TestPreexistingAddressRestoredButNeverRemoved(t *testing.T) {
	ns := newTestNS(t)
	run(t, "ip", "-n", ns.name, "addr", "add", "10.77.0.9/32", "dev", "lo")
	m, _ := newManager(t, ns, Config{Check: time.Hour})
	if err := m.Ensure(context.Background(), []Address{addr("10.77.0.9/32", "")}); err != nil {
		t.Fatal(err)
	}
	run(t, "ip", "-n", ns.name, "addr", "del", "10.77.0.9/32", "dev", "lo")
	waitFor(t, 2*time.Second, "address restored", func() bool { return ns.has(t, "lo", "10.77.0.9/32") })
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if !ns.has(t, "lo", "10.77.0.9/32") {
		t.Error("Close removed an address that was there before the manager")
	}
}

func TestNamedInterfaceAndMove(t *testing.T) {
	ns := newTestNS(t)
	// No dummy links on this kernel: a veth pair stands in for a service NIC.
	run(t, "ip", "-n", ns.name, "link", "add", "rcv0", "type", "veth", "peer", "name", "rcv1")
	m, _ := newManager(t, ns, Config{})
	ctx := context.Background()
	if err := m.Ensure(ctx, []Address{addr("10.77.0.1/32", "rcv0"), addr("fd00:77::1/128", "rcv0")}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"10.77.0.1/32", "fd00:77::1/128"}, ns.addrs(t, "rcv0")); diff != "" {
		t.Errorf("rcv0 (-want +got):\n%s", diff)
	}
	// Moving the VIP to lo removes it from rcv0.
	if err := m.Ensure(ctx, []Address{addr("10.77.0.1/32", "lo")}); err != nil {
		t.Fatal(err)
	}
	if got := ns.addrs(t, "rcv0"); len(got) != 0 {
		t.Errorf("rcv0 after move = %v, want none", got)
	}
	if !ns.has(t, "lo", "10.77.0.1/32") {
		t.Errorf("lo after move = %v", ns.addrs(t, "lo"))
	}
}

func TestEnsureRejectsBadInput(t *testing.T) {
	ns := newTestNS(t)
	m, _ := newManager(t, ns, Config{})
	ctx := context.Background()
	if err := m.Ensure(ctx, []Address{addr("10.77.0.1/32", "")}); err != nil {
		t.Fatal(err)
	}
	err := m.Ensure(ctx, []Address{addr("10.77.0.0/24", "")})
	if err == nil || !strings.Contains(err.Error(), "vip: 10.77.0.0/24 is not a host prefix") {
		t.Errorf("non-host prefix: err = %v", err)
	}
	// Invalid input changes nothing.
	if !ns.has(t, "lo", "10.77.0.1/32") {
		t.Error("rejected Ensure removed an address")
	}
	err = m.Ensure(ctx, []Address{addr("10.77.0.1/32", ""), addr("10.77.0.2/32", "nosuch0")})
	if err == nil || !strings.Contains(err.Error(), "interface nosuch0") {
		t.Errorf("unknown interface: err = %v", err)
	}
	if !ns.has(t, "lo", "10.77.0.1/32") {
		t.Error("valid address lost because another failed")
	}
}

func TestAdvertiserKeepsVIPWhateverTheMetric(t *testing.T) {
	ns := newTestNS(t)
	m, _ := newManager(t, ns, Config{})
	a := &Advertiser{Manager: m}
	ctx := context.Background()
	p := netip.MustParsePrefix("10.77.0.1/32")
	for _, ann := range []advertisers.Announcement{
		{Prefix: p, Metric: 1},
		{Prefix: p, Metric: advertisers.MetricPoison},
		{Prefix: p, Metric: 3, Draining: true},
	} {
		if err := a.Set(ctx, []advertisers.Announcement{ann}); err != nil {
			t.Fatal(err)
		}
		if !ns.has(t, "lo", "10.77.0.1/32") {
			t.Errorf("%+v: VIP not on lo", ann)
		}
	}
	if err := a.Set(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if ns.has(t, "lo", "10.77.0.1/32") {
		t.Error("VIP left on lo after it left the set")
	}
	if err := a.Set(ctx, []advertisers.Announcement{{Prefix: p, Metric: 2}}); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if ns.has(t, "lo", "10.77.0.1/32") {
		t.Error("VIP left on lo after Close")
	}
}

func TestNormalize(t *testing.T) {
	for _, tc := range []struct {
		in      Address
		want    Address
		wantErr string
	}{
		{in: addr("10.0.0.1/32", ""), want: addr("10.0.0.1/32", "lo")},
		{in: addr("10.0.0.1/32", "eth0"), want: addr("10.0.0.1/32", "eth0")},
		{in: addr("fd00::1/128", ""), want: addr("fd00::1/128", "lo")},
		{in: addr("::ffff:10.0.0.1/128", ""), want: addr("10.0.0.1/32", "lo")},
		{in: addr("10.0.0.0/24", ""), wantErr: "vip: 10.0.0.0/24 is not a host prefix (want /32)"},
		{in: addr("fd00::/64", ""), wantErr: "vip: fd00::/64 is not a host prefix (want /128)"},
		{in: Address{}, wantErr: "vip: invalid prefix"},
	} {
		got, err := normalize(tc.in)
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("normalize(%v) err = %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("normalize(%v) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func FuzzNormalize(f *testing.F) {
	f.Add("10.0.0.1/32", "")          // plain VIP
	f.Add("::ffff:1.2.3.4/128", "lo") // mapped v4
	f.Add("10.0.0.0/8", "eth0")       // not a host prefix
	f.Fuzz(func(t *testing.T, prefix, dev string) {
		p, err := netip.ParsePrefix(prefix)
		if err != nil {
			return
		}
		got, err := normalize(Address{Prefix: p, Interface: dev})
		if err != nil {
			return
		}
		if got.Interface == "" || got.Prefix.Bits() != got.Prefix.Addr().BitLen() || got.Prefix.Addr().Is4In6() {
			t.Fatalf("normalize(%v, %q) = %v", p, dev, got)
		}
		if again, err := normalize(got); err != nil || again != got {
			t.Fatalf("normalize not idempotent: %v -> %v, %v", got, again, err)
		}
	})
}

// BenchmarkRepair measures the time from a deletion by someone else to the
// VIP being back, through the netlink subscription (the re-check is an hour).
func BenchmarkRepair(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("vip: needs root for network namespaces")
	}
	bns := make([]byte, 4)
	if _, err := rand.Read(bns); err != nil {
		b.Fatal(err)
	}
	name := "rcvipb" + hex.EncodeToString(bns)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		b.Fatalf("ip netns add: %v: %s", err, out)
	}
	defer exec.Command("ip", "netns", "del", name).Run()
	h, err := netns.GetFromName(name)
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	m, err := New(Config{Namespace: &h, Check: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	if err := m.Ensure(context.Background(), []Address{addr("10.77.0.1/32", "")}); err != nil {
		b.Fatal(err)
	}
	other, err := netlink.NewHandleAt(h)
	if err != nil {
		b.Fatal(err)
	}
	defer other.Close()
	lo, err := other.LinkByName("lo")
	if err != nil {
		b.Fatal(err)
	}
	prefix := netip.MustParsePrefix("10.77.0.1/32")
	vip := netlinkAddr(prefix)
	b.ResetTimer()
	for range b.N {
		if err := other.AddrDel(lo, vip); err != nil {
			b.Fatal(err)
		}
		for i := 0; ; i++ {
			list, err := other.AddrList(lo, netlink.FAMILY_V4)
			if err != nil {
				b.Fatal(err)
			}
			if slices.ContainsFunc(list, func(a netlink.Addr) bool { return sameHost(a.IPNet, prefix) }) {
				break
			}
			if i > 100000 {
				b.Fatal("not repaired")
			}
			time.Sleep(50 * time.Microsecond)
		}
	}
}

// A run that was killed leaves its address behind; the next run claims it
// (the daemon keeps the list) and so removes it on Close.
func TestClaimedLeftoverIsRemovedOnClose(t *testing.T) {
	ns := newTestNS(t)
	run(t, "ip", "-n", ns.name, "addr", "add", "10.77.0.5/32", "dev", "lo") // the killed run's VIP
	run(t, "ip", "-n", ns.name, "addr", "add", "10.77.0.6/32", "dev", "lo") // the operator's
	m, _ := newManager(t, ns, Config{Claim: []Address{addr("10.77.0.5/32", "")}})
	if err := m.Ensure(context.Background(), []Address{addr("10.77.0.5/32", ""), addr("10.77.0.6/32", "")}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Address{addr("10.77.0.5/32", "lo")}, m.Owned(), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("Owned (-want +got):\n%s", diff)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if ns.has(t, "lo", "10.77.0.5/32") || !ns.has(t, "lo", "10.77.0.6/32") {
		t.Fatalf("after Close: %v, want the claimed address gone and the operator's kept", ns.addrs(t, "lo"))
	}
}

// An IPv6 VIP is usable at once on a link where duplicate address detection
// runs (nodad: never "tentative", so a listener can bind it and answer), and
// follows the IPv4 ownership rules: a claimed leftover of a killed run is
// removed on Close, the operator's own address is kept.
func TestIPv6VIPIsUsableAtOnceAndOwnedLikeIPv4(t *testing.T) {
	ns := newTestNS(t)
	run(t, "ip", "-n", ns.name, "link", "add", "rcv0", "type", "veth", "peer", "name", "rcv1")
	run(t, "ip", "-n", ns.name, "link", "set", "rcv0", "up")
	run(t, "ip", "-n", ns.name, "link", "set", "rcv1", "up")
	run(t, "ip", "-n", ns.name, "addr", "add", "fd00:77::5/128", "dev", "rcv0", "nodad") // the killed run's
	run(t, "ip", "-n", ns.name, "addr", "add", "fd00:77::6/128", "dev", "rcv0", "nodad") // the operator's
	m, _ := newManager(t, ns, Config{Claim: []Address{addr("fd00:77::5/128", "rcv0")}})
	want := []Address{addr("fd00:77::1/128", "rcv0"), addr("fd00:77::5/128", "rcv0"), addr("fd00:77::6/128", "rcv0")}
	if err := m.Ensure(context.Background(), want); err != nil {
		t.Fatal(err)
	}
	out := run(t, "ip", "-n", ns.name, "-6", "-o", "addr", "show", "dev", "rcv0", "to", "fd00:77::1/128")
	if !strings.Contains(out, "fd00:77::1/128") || strings.Contains(out, "tentative") {
		t.Fatalf("fd00:77::1 on rcv0: %q, want present and not tentative", out)
	}
	// Bindable without IP_FREEBIND: the address is really usable.
	ns.listen(t, "[fd00:77::1]:0")
	if diff := cmp.Diff([]Address{addr("fd00:77::1/128", "rcv0"), addr("fd00:77::5/128", "rcv0")}, m.Owned(),
		cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("Owned (-want +got):\n%s", diff)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	var global []string
	for _, a := range ns.addrs(t, "rcv0") {
		if !strings.HasPrefix(a, "fe80:") {
			global = append(global, a)
		}
	}
	if diff := cmp.Diff([]string{"fd00:77::6/128"}, global); diff != "" {
		t.Errorf("after Close (-want +got):\n%s", diff)
	}
}
