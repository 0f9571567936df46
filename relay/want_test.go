package relay

import "testing"

func TestParsePort(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Port
		err  string
	}{
		{in: "tcp/389", want: Port{"tcp", 389}},
		{in: "udp/1812", want: Port{"udp", 1812}},
		{in: "udp/65535", want: Port{"udp", 65535}},
		{in: "sctp/1", err: `port "sctp/1": want tcp/N or udp/N`},
		{in: "389", err: `port "389": want tcp/N or udp/N`},
		{in: "tcp/0", err: `port "tcp/0": "0" is not a port number 1-65535`},
		{in: "tcp/65536", err: `port "tcp/65536": "65536" is not a port number 1-65535`},
		{in: "tcp/x", err: `port "tcp/x": "x" is not a port number 1-65535`},
	} {
		got, err := ParsePort(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("ParsePort(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParsePort(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
		if got.String() != tc.in {
			t.Errorf("%v.String() = %q, want %q", got, got.String(), tc.in)
		}
	}
}

// FuzzParsePort: whatever ParsePort accepts prints back as the canonical
// form, which parses to the same port.
func FuzzParsePort(f *testing.F) {
	for _, s := range []string{"tcp/389", "udp/1812", "tcp/0", "tcp/65536", "tcp/+1", "tcp/0389", "udp/", "/1", "TCP/1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePort(s)
		if err != nil {
			return
		}
		if p.Num == 0 || (p.Proto != "tcp" && p.Proto != "udp") {
			t.Fatalf("ParsePort(%q) = %v: accepted a bad port", s, p)
		}
		again, err := ParsePort(p.String())
		if err != nil || again != p {
			t.Fatalf("ParsePort(%q) = %v, but ParsePort(%q) = %v, %v", s, p, p.String(), again, err)
		}
	})
}
