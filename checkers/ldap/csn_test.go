package ldap

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseCSN(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want CSN
	}{
		{
			name: "slapd 2.5 provider without serverID",
			in:   "20261125193523.292941Z#000000#000#000000",
			want: CSN{Time: time.Date(2026, 11, 25, 19, 35, 23, 292941000, time.UTC)},
		},
		{
			name: "hex count, sid and mod",
			in:   "20261126090411.000001Z#00000a#0ff#00001f",
			want: CSN{Time: time.Date(2026, 11, 26, 9, 4, 11, 1000, time.UTC), Count: 10, SID: 0xff, Mod: 31},
		},
		{
			name: "upper-case hex is accepted",
			in:   "20000101000000.000000Z#00000A#FFF#000000",
			want: CSN{Time: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), Count: 10, SID: 0xfff},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCSN(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseCSN(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestParseCSNInvalid(t *testing.T) {
	for _, in := range []string{
		"",
		"20261125193523.292941Z",            // no counters
		"20261125193523.292941Z#000000#000", // three fields
		"20261125193523.292941Z#000000#000#000000#00", // five fields
		"20261125193523Z#000000#000#000000",           // no microseconds (the 2.3 syntax)
		"20261125193523.29294Z#000000#000#000000",     // five fraction digits
		"20261125193523.292941#000000#000#000000",     // no Z
		"2026112519352+.292941Z#000000#000#000000",    // sign in the time
		"20261325193523.292941Z#000000#000#000000",    // month 13
		"20261125193523.292941Z#00000g#000#000000",    // not hex
		"20261125193523.292941Z#0000000#000#000000",   // count too long
		"20261125193523.292941Z#000000#1#000000",      // short SID
		"20261125193523.292941Z#000000#-01#000000",    // signed SID
	} {
		if got, err := ParseCSN(in); !errors.Is(err, ErrInvalidCSN) {
			t.Errorf("ParseCSN(%q) = %v, %v; want ErrInvalidCSN", in, got, err)
		}
	}
}

func TestCSNString(t *testing.T) {
	const in = "20261126090411.000001Z#00000a#0ff#00001f"
	c, err := ParseCSN(in)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.String(); got != in {
		t.Errorf("String() = %q, want %q", got, in)
	}
}

func csnAt(t *testing.T, s string) CSN {
	t.Helper()
	c, err := ParseCSN(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestParseContextCSNsKeepsNewestPerSID(t *testing.T) {
	got, err := ParseContextCSNs([]string{
		"20261126090000.000000Z#000000#001#000000",
		"20261126090005.000000Z#000000#001#000000",
		"20261126090003.000000Z#000000#002#000000",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]CSN{
		1: csnAt(t, "20261126090005.000000Z#000000#001#000000"),
		2: csnAt(t, "20261126090003.000000Z#000000#002#000000"),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if _, err := ParseContextCSNs([]string{"garbage"}); !errors.Is(err, ErrInvalidCSN) {
		t.Errorf("garbage: err = %v, want ErrInvalidCSN", err)
	}
}

func TestCompareCSNs(t *testing.T) {
	at := func(s string) CSN { return csnAt(t, s) }
	tests := []struct {
		name               string
		replica, reference map[int]CSN
		want               Freshness
	}{
		{
			name:      "in sync",
			replica:   map[int]CSN{1: at("20261126090000.000000Z#000000#001#000000")},
			reference: map[int]CSN{1: at("20261126090000.000000Z#000000#001#000000")},
			want:      Freshness{},
		},
		{
			name:      "behind by 5.03 s",
			replica:   map[int]CSN{1: at("20261126090000.000000Z#000000#001#000000")},
			reference: map[int]CSN{1: at("20261126090005.030000Z#000000#001#000000")},
			want:      Freshness{Lag: 5030 * time.Millisecond, LagSID: 1},
		},
		{
			name:      "replica read before a later change is not negative lag",
			replica:   map[int]CSN{1: at("20261126090009.000000Z#000000#001#000000")},
			reference: map[int]CSN{1: at("20261126090005.000000Z#000000#001#000000")},
			want:      Freshness{},
		},
		{
			name: "largest lag over SIDs wins",
			replica: map[int]CSN{
				1: at("20261126090000.000000Z#000000#001#000000"),
				2: at("20261126090000.000000Z#000000#002#000000"),
			},
			reference: map[int]CSN{
				1: at("20261126090001.000000Z#000000#001#000000"),
				2: at("20261126090007.000000Z#000000#002#000000"),
			},
			want: Freshness{Lag: 7 * time.Second, LagSID: 2},
		},
		{
			name:      "SID missing on the replica never synced",
			replica:   map[int]CSN{1: at("20261126090000.000000Z#000000#001#000000")},
			reference: map[int]CSN{1: at("20261126090000.000000Z#000000#001#000000"), 3: at("20261126090000.000000Z#000000#003#000000")},
			want:      Freshness{Missing: []int{3}},
		},
		{
			name:      "empty replica misses every SID",
			replica:   map[int]CSN{},
			reference: map[int]CSN{2: at("20261126090000.000000Z#000000#002#000000"), 1: at("20261126090000.000000Z#000000#001#000000")},
			want:      Freshness{Missing: []int{1, 2}},
		},
		{
			name:      "SIDs only the replica has are ignored",
			replica:   map[int]CSN{1: at("20261126090000.000000Z#000000#001#000000"), 9: at("20261126090000.000000Z#000000#009#000000")},
			reference: map[int]CSN{1: at("20261126090000.000000Z#000000#001#000000")},
			want:      Freshness{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, CompareCSNs(tt.replica, tt.reference)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzParseCSN(f *testing.F) {
	f.Add("20261125193523.292941Z#000000#000#000000") // slapd provider without serverID
	f.Add("20261126090411.000001Z#00000a#0ff#00001f") // hex fields
	f.Add("20261125193523Z#000000#000#000000")        // 2.3-style time
	f.Add("20261125193523.292941Z#000000#000")        // missing field
	f.Add("########")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCSN(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidCSN) {
				t.Fatalf("ParseCSN(%q) error %v does not wrap ErrInvalidCSN", s, err)
			}
			return
		}
		// Anything accepted formats back to a CSN that parses to the same value.
		again, err := ParseCSN(c.String())
		if err != nil {
			t.Fatalf("ParseCSN(%q).String() = %q does not parse: %v", s, c.String(), err)
		}
		if !again.Time.Equal(c.Time) || again.Count != c.Count || again.SID != c.SID || again.Mod != c.Mod {
			t.Fatalf("round trip of %q: %+v != %+v", s, again, c)
		}
	})
}
