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
