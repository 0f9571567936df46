package routers

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ripcord/ripcord/lab/netns"
)

func TestParseFRRShowIPRIP(t *testing.T) {
	// Captured from FRR 8.4.4 ripd.
	out := `Codes: R - RIP, C - connected, S - Static, O - OSPF, B - BGP
Sub-codes:
      (n) - normal, (s) - static, (d) - default, (r) - redistribute,
      (i) - interface

     Network            Next Hop         Metric From            Tag Time
C(i) 10.200.0.0/24      0.0.0.0               1 self              0
R(n) 10.255.0.1/32      10.200.0.2            2 10.200.0.2        0 02:58
R(n) 10.255.0.2/32      10.200.0.3           16 10.200.0.3        0 01:57
`
	tests := []struct {
		prefix string
		want   Route
	}{
		{"10.255.0.1/32", Route{Present: true, Metric: 2, NextHop: netip.MustParseAddr("10.200.0.2")}},
		{"10.255.0.2/32", Route{Present: false, Metric: 16, NextHop: netip.MustParseAddr("10.200.0.3")}},
		{"10.200.0.0/24", Route{Present: true, Metric: 1, NextHop: netip.MustParseAddr("0.0.0.0")}},
		{"10.255.0.9/32", Route{Metric: 16}},
	}
	for _, tt := range tests {
		got, err := parseFRRShowIPRIP(out, netip.MustParsePrefix(tt.prefix))
		if err != nil || got != tt.want {
			t.Errorf("%s: got %+v, %v; want %+v", tt.prefix, got, err, tt.want)
		}
	}
}

func TestParseFRRBadPackets(t *testing.T) {
	// Captured from FRR 8.4.4 ripd (trimmed).
	out := `Routing Protocol is "rip"
  Default version control: send version 2, receive version 2
    Interface        Send  Recv   Key-chain
    sr0              2     2      ripcord
  Routing for Networks:
    sr0
  Routing Information Sources:
    Gateway          BadPackets BadRoutes  Distance Last Update
    10.200.0.2               6         0       120   00:00:01
    10.200.0.3               1         0       120   00:00:04
  Distance: (default is 120)
`
	if n, err := parseFRRBadPackets(out); err != nil || n != 7 {
		t.Fatalf("got %d, %v; want 7", n, err)
	}
}

func TestParseBIRDShowRoute(t *testing.T) {
	// Captured from BIRD 2.0.12.
	present := "BIRD 2.0.12 ready.\nTable master4:\n" +
		"10.202.0.0/24        unicast [rip1 09:04:41.911] * (120/2)\n" +
		"\tvia 10.201.0.1 on bf\n\tType: RIP univ\n\tRIP.metric: 2\n\tRIP.tag: 0000\n"
	got, err := parseBIRDShowRoute(present)
	want := Route{Present: true, Metric: 2, NextHop: netip.MustParseAddr("10.201.0.1")}
	if err != nil || got != want {
		t.Errorf("present: got %+v, %v; want %+v", got, err, want)
	}
	got, err = parseBIRDShowRoute("BIRD 2.0.12 ready.\nNetwork not found\n")
	if err != nil || got != (Route{Metric: 16}) {
		t.Errorf("absent: got %+v, %v", got, err)
	}
	if _, err := parseBIRDShowRoute(strings.Replace(present, "RIP.metric: 2", "RIP.metric: x", 1)); err == nil {
		t.Error("bad metric parsed without error")
	}
}

// TestFRRTeachesBIRD runs both routers for real: FRR advertises its stub
// link to BIRD, and BIRD installs the route in its kernel table.
func TestFRRTeachesBIRD(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	ctx := context.Background()
	mk := func() *netns.NS {
		ns, err := netns.New("rcr")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ns.Delete() })
		return ns
	}
	frrNS, birdNS, stubNS := mk(), mk(), mk()
	if err := netns.Veth(
		netns.End{NS: frrNS, Dev: "fb", Addr: netip.MustParsePrefix("10.201.0.1/24")},
		netns.End{NS: birdNS, Dev: "bf", Addr: netip.MustParsePrefix("10.201.0.2/24")},
	); err != nil {
		t.Fatal(err)
	}
	if err := netns.Veth(
		netns.End{NS: frrNS, Dev: "fs", Addr: netip.MustParsePrefix("10.202.0.1/24")},
		netns.End{NS: stubNS, Dev: "sf", Addr: netip.MustParsePrefix("10.202.0.2/24")},
	); err != nil {
		t.Fatal(err)
	}
	// A short update timer: FRR joins the group only after BIRD's start-up
	// Request has gone by, so BIRD learns from FRR's next periodic update.
	frr, err := StartFRR(ctx, Config{NS: frrNS, Interfaces: []string{"fb", "fs"},
		Timers: Timers{Update: 5 * time.Second, Timeout: 30 * time.Second, Garbage: 20 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := frr.Stop(); err != nil {
			t.Error(err)
		}
	})
	bird, err := StartBIRD(ctx, Config{NS: birdNS, Interfaces: []string{"bf"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := bird.Stop(); err != nil {
			t.Error(err)
		}
	})
	stub := netip.MustParsePrefix("10.202.0.0/24")
	fr, err := frr.Route(ctx, stub)
	if err != nil || !fr.Present || fr.Metric != 1 {
		t.Fatalf("frr's own connected route: %+v %v", fr, err)
	}
	// BIRD asks for the table at start-up and FRR answers at once; allow
	// for FRR joining the group late.
	var br Route
	var kr KernelRoute
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if br, err = bird.Route(ctx, stub); err != nil {
			t.Fatal(err)
		}
		if kr, err = bird.Kernel(ctx, stub); err != nil {
			t.Fatal(err)
		}
		if br.Present && kr.Present {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	wantNH := netip.MustParseAddr("10.201.0.1")
	if !br.Present || br.Metric != 2 || br.NextHop != wantNH {
		t.Fatalf("bird's RIP route: %+v, want metric 2 via %v", br, wantNH)
	}
	if !kr.Present || kr.Gateway != wantNH || kr.Protocol != "bird" || kr.Dev != "bf" {
		t.Fatalf("bird's kernel route: %+v", kr)
	}
}

func TestFRRConfig(t *testing.T) {
	got := frrRipdConf(Config{Interfaces: []string{"sr0"}, Auth: Auth{Mode: AuthMD5, KeyID: 3, Key: "k3y"},
		Timers: Timers{Update: 5 * time.Second}})
	want := `hostname ripd
!
key chain ripcord
 key 3
  key-string k3y
!
interface sr0
 ip rip authentication mode md5
 ip rip authentication key-chain ripcord
!
router rip
 version 2
 network sr0
 timers basic 5 180 120
!
`
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestBIRDConfig(t *testing.T) {
	got := birdConf(Config{Interfaces: []string{"sr0"}, Auth: Auth{Mode: AuthHMACSHA256, KeyID: 7, Key: "s"}}, "/d")
	want := `log "/d/bird.log" all;
protocol device { scan time 10; }
protocol kernel { ipv4 { import none; export all; }; }
protocol rip rip1 {
  ipv4 { import all; export all; };
  interface "sr0" {
    version 2;
    update time 30; timeout time 180; garbage time 120;
    authentication cryptographic;
    password "s" { id 7; algorithm hmac sha256; };
  };
}
`
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestMissingBinaryNamesPackage(t *testing.T) {
	err := needBinary("/nonexistent/ripd", "frr")
	if !errors.Is(err, ErrMissingBinary) || !strings.Contains(err.Error(), "Debian package frr") {
		t.Fatalf("got %v", err)
	}
	if err := needBinary("ip", "iproute2"); err != nil {
		t.Fatalf("ip: %v", err)
	}
}

// The import filter on replica links: the configs the README's router-side
// snippets show.
func TestConfigAcceptOnlyServicePrefixes(t *testing.T) {
	accept := map[string][]netip.Prefix{"sr0": {netip.MustParsePrefix("10.255.0.1/32"), netip.MustParsePrefix("10.255.0.2/32")}}
	frr := frrRipdConf(Config{Interfaces: []string{"sr0", "rr0"}, Accept: accept})
	wantFRR := `hostname ripd
!
interface sr0
!
interface rr0
!
ip prefix-list ripcord-sr0 seq 5 permit 10.255.0.1/32
ip prefix-list ripcord-sr0 seq 10 permit 10.255.0.2/32
!
router rip
 version 2
 network sr0
 network rr0
 distribute-list prefix ripcord-sr0 in sr0
 timers basic 30 180 120
!
`
	if frr != wantFRR {
		t.Errorf("FRR got:\n%s\nwant:\n%s", frr, wantFRR)
	}
	bird := birdConf(Config{Interfaces: []string{"sr0"}, Accept: accept}, "/d")
	wantBIRD := `log "/d/bird.log" all;
protocol device { scan time 10; }
protocol kernel { ipv4 { import none; export all; }; }
protocol rip rip1 {
  ipv4 {
    import filter {
      if ifname = "sr0" && !(net ~ [ 10.255.0.1/32, 10.255.0.2/32 ]) then reject;
      accept;
    };
    export all;
  };
  interface "sr0" {
    version 2;
    update time 30; timeout time 180; garbage time 120;
  };
}
`
	if bird != wantBIRD {
		t.Errorf("BIRD got:\n%s\nwant:\n%s", bird, wantBIRD)
	}
}
