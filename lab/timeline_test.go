package lab

import (
	"bytes"
	"encoding/xml"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// These tests need neither root nor the lab: they check how samples become
// measurements, segments and pictures.

var t0 = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

// at is t0 plus some milliseconds.
func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func sample(ms int, client, service, replica string) Sample {
	s := Sample{At: at(ms), Client: client, Service: service, Replica: replica}
	if replica == "" {
		s.Err = "unreachable"
	}
	return s
}

func fp(v float64) *float64 { return &v }

func TestReplicaOf(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		err      bool
	}{
		{in: "replica-sa", want: "sa"},                                      // LDAP root DSE description
		{in: "Hello alice from replica-sb", want: "sb"},                     // RADIUS Reply-Message
		{in: `<p class="replica">replica-sa</p></body></html>`, want: "sa"}, // login page
		{in: "<title>Network login (replica-sb)</title>", want: "sb"},       // marker in the title
		{in: "Hello alice from replica-sb, see replica-sa", want: "sb"},     // the first marker wins
		{in: "replica-sb\r\n", want: "sb"},                                  // line ends
		{in: "replica-s a", want: "s"},                                      // a name stops at a space
		{in: "Hello alice", err: true},                                      // no marker
		{in: "", err: true},                                                 // nothing at all
		{in: "replica-", err: true},                                         // marker without a name
		{in: "REPLICA-SA", err: true},                                       // markers are lower case
		{in: "replica_sa", err: true},                                       // not the marker's form
		{in: "<b>replica-</b>sa", err: true},                                // split by markup
	} {
		got, err := replicaOf(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("replicaOf(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestAnalyze(t *testing.T) {
	// ca: home sa, no answer for 1.2 s after the fault at 1000 ms, then sb;
	// back to sa 300 ms after the repair at 5000 ms.
	// cb: home sb throughout (load-balancing shape), one timeout.
	samples := []Sample{
		sample(0, "ca", "ldap", "sa"),
		sample(500, "ca", "ldap", "sa"),
		sample(1000, "ca", "ldap", ""),
		sample(1500, "ca", "ldap", ""),
		sample(2200, "ca", "ldap", "sb"),
		sample(4000, "ca", "ldap", "sb"),
		sample(5100, "ca", "ldap", "sb"),
		sample(5300, "ca", "ldap", "sa"),
		sample(6000, "ca", "ldap", "sa"),
		sample(0, "cb", "ldap", "sb"),
		sample(1100, "cb", "ldap", "sb"),
		sample(3000, "cb", "ldap", ""),
		sample(5500, "cb", "ldap", "sb"),
		// Other services and a late sample after End do not count.
		sample(1200, "ca", "radius", ""),
		sample(9000, "ca", "ldap", ""),
	}
	tr := Trial{Service: "ldap", Failed: "sa", Fault: at(1000), Repair: at(5000), End: at(8000)}
	got := Analyze(samples, tr, []string{"ca", "cb"})
	want := []ClientResult{
		{Client: "ca", Service: "ldap", Home: "sa", During: "sb", Affect: true,
			FailoverSeconds: fp(1.2), FailbackSeconds: fp(0.3), FailedRequests: 2, Requests: 7,
			Failures: []Failure{{0, "unreachable"}, {0.5, "unreachable"}}},
		{Client: "cb", Service: "ldap", Home: "sb", During: "sb", FailedRequests: 1, Requests: 3,
			Failures: []Failure{{2, "unreachable"}}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Analyze (-want +got):\n%s", diff)
	}
}

func TestAnalyzeNeverRecovered(t *testing.T) {
	samples := []Sample{
		sample(0, "ca", "radius", "sa"),
		sample(1000, "ca", "radius", ""),
		sample(2000, "ca", "radius", ""),
	}
	tr := Trial{Service: "radius", Failed: "sa", Fault: at(500), Repair: at(1500), End: at(3000)}
	got := Analyze(samples, tr, []string{"ca"})
	want := []ClientResult{{Client: "ca", Service: "radius", Home: "sa", During: "error", Affect: true,
		FailedRequests: 2, Requests: 2, Failures: []Failure{{0.5, "unreachable"}, {1.5, "unreachable"}}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Analyze (-want +got):\n%s", diff)
	}
}

func TestSegments(t *testing.T) {
	samples := []Sample{
		sample(200, "ca", "ldap", "sa"), // out of order on purpose
		sample(0, "ca", "ldap", "sa"),
		sample(100, "ca", "ldap", "sa"),
		sample(300, "ca", "ldap", ""),
		sample(400, "ca", "ldap", "sb"),
		sample(0, "cb", "webauth", "sb"),
	}
	got := Segments(samples)
	want := []Segment{
		{Client: "ca", Service: "ldap", Replica: "sa", From: at(0), To: at(300), Requests: 3},
		{Client: "ca", Service: "ldap", Replica: "", From: at(300), To: at(400), Requests: 1},
		{Client: "ca", Service: "ldap", Replica: "sb", From: at(400), To: at(500), Requests: 1},
		{Client: "cb", Service: "webauth", Replica: "sb", From: at(0), To: at(100), Requests: 1},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Segments (-want +got):\n%s", diff)
	}
}

func TestWriteTimeline(t *testing.T) {
	samples := []Sample{sample(0, "ca", "ldap", "sa"), sample(100, "ca", "ldap", ""), sample(1300, "ca", "ldap", "sb")}
	events := []Event{{At: at(50), Kind: "fault", Text: "slapd killed on sa (SIGKILL)"}}
	var b bytes.Buffer
	WriteTimeline(&b, t0, samples, events)
	want := "" +
		"    +0.00s  ca  ldap     sa         for   0.1s (1 requests)\n" +
		"    +0.05s  *** FAULT: slapd killed on sa (SIGKILL)\n" +
		"    +0.10s  ca  ldap     NO ANSWER  for   1.2s (1 requests)\n" +
		"    +1.30s  ca  ldap     sb         for   0.1s (1 requests)\n"
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("WriteTimeline (-want +got):\n%s", diff)
	}
}

func TestWriteSVG(t *testing.T) {
	samples := []Sample{
		sample(0, "ca", "ldap", "sa"), sample(100, "ca", "ldap", ""), sample(1300, "ca", "ldap", "sb"),
		sample(0, "cb", "radius", "sb"),
	}
	events := []Event{{At: at(50), Kind: "fault", Text: "slapd <killed> & gone"}, {At: at(1000), Kind: "repair", Text: "restarted"}}
	var b bytes.Buffer
	if err := WriteSVG(&b, "demo", t0, at(2000), samples, events); err != nil {
		t.Fatal(err)
	}
	// Well-formed XML, with one rectangle per segment plus background and
	// legend, and the event text escaped.
	dec := xml.NewDecoder(bytes.NewReader(b.Bytes()))
	rects, texts := 0, []string{}
	inText := false
	for {
		tok, err := dec.Token()
		if err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("not well-formed: %v\n%s", err, b.String())
			}
			break
		}
		switch el := tok.(type) {
		case xml.StartElement:
			if el.Name.Local == "rect" {
				rects++
			}
			inText = el.Name.Local == "text"
		case xml.CharData:
			if inText {
				texts = append(texts, string(el))
			}
		case xml.EndElement:
			inText = false
		}
	}
	if want := 1 + 4 + 3; rects != want { // background, 4 segments, 3 legend boxes
		t.Errorf("%d rects, want %d", rects, want)
	}
	for _, w := range []string{"slapd <killed> & gone", "restarted", "client ca → ldap", "client cb → radius", "answered by sb"} {
		found := false
		for _, s := range texts {
			found = found || s == w
		}
		if !found {
			t.Errorf("no text %q in the picture; texts: %q", w, texts)
		}
	}
}

func TestPrerequisitesNamesMissingPackages(t *testing.T) {
	// An empty PATH hides every program looked up by name; FRR's daemons
	// have absolute paths and may still be found.
	t.Setenv("PATH", t.TempDir())
	err := Prerequisites("bird")
	if err == nil {
		t.Fatal("no error with an empty PATH")
	}
	for _, w := range []string{"slapd", "freeradius", "nginx", "bird2", "iproute2", "apt-get install -y", "scripts/setup"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}

func TestOptionsDefaults(t *testing.T) {
	o := Options{Ripcord: os.Args[0]}
	if err := o.defaults(); err != nil {
		t.Fatal(err)
	}
	if o.Shape != ShapeFailover || o.Routers != "frr" || o.FailbackDelay != 10*time.Second ||
		o.CheckInterval != 500*time.Millisecond || o.AssistDelay != 100*time.Millisecond {
		t.Errorf("defaults: %+v", o)
	}
	for _, bad := range []Options{
		{Ripcord: "x", Shape: "ring"},
		{Ripcord: "x", Routers: "quagga"},
		{},
	} {
		if err := bad.defaults(); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}

func FuzzAnalyze(f *testing.F) {
	// Each byte pair is one sample: time step and answer.
	f.Add([]byte{0, 1, 5, 0, 5, 2, 5, 1}, uint8(2), uint8(6))
	f.Add([]byte{}, uint8(0), uint8(0))
	f.Add([]byte{255, 2, 255, 2, 1, 0}, uint8(1), uint8(1))
	f.Fuzz(func(t *testing.T, seq []byte, fault, repair uint8) {
		var samples []Sample
		ms := 0
		for i := 0; i+1 < len(seq); i += 2 {
			ms += int(seq[i])
			who := []string{"", "sa", "sb"}[int(seq[i+1])%3]
			client := []string{"ca", "cb"}[int(seq[i+1]/3)%2]
			samples = append(samples, sample(ms, client, "ldap", who))
		}
		tr := Trial{Service: "ldap", Failed: "sa", Fault: at(int(fault) * 10), Repair: at(int(fault)*10 + int(repair)*10)}
		for _, r := range Analyze(samples, tr, []string{"ca", "cb"}) {
			if r.FailedRequests > r.Requests {
				t.Fatalf("%s: %d failed of %d", r.Client, r.FailedRequests, r.Requests)
			}
			if r.FailoverSeconds != nil && (*r.FailoverSeconds < 0 || !r.Affect) {
				t.Fatalf("%s: failover %v affected %v", r.Client, *r.FailoverSeconds, r.Affect)
			}
			if r.FailbackSeconds != nil && (*r.FailbackSeconds < 0 || !r.Affect) {
				t.Fatalf("%s: failback %v affected %v", r.Client, *r.FailbackSeconds, r.Affect)
			}
		}
		segs := Segments(samples)
		n := 0
		for _, s := range segs {
			if s.To.Before(s.From) {
				t.Fatalf("segment ends before it starts: %+v", s)
			}
			n += s.Requests
		}
		if n != len(samples) {
			t.Fatalf("segments hold %d requests, want %d", n, len(samples))
		}
	})
}

func TestDescribeFailures(t *testing.T) {
	for _, tt := range []struct {
		fs   []Failure
		want string
	}{
		{nil, ""},
		{[]Failure{{12.345, "timeout"}}, " (+12.35s timeout)"},
		{[]Failure{{1, "a"}, {2, "b"}, {3, "c"}, {4, "d"}, {5, "e"}}, " (+1.00s a, +2.00s b, +3.00s c, 2 more)"},
	} {
		if got := describeFailures(tt.fs); got != tt.want {
			t.Errorf("describeFailures(%v) = %q, want %q", tt.fs, got, tt.want)
		}
	}
}
