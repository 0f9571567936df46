package ldap

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// CSN is an OpenLDAP change sequence number, the value of entryCSN and
// contextCSN: "20261125193523.292941Z#000000#001#000000" is
// time#count#sid#mod, the counts and SID in hex. The time is the clock of
// the server that made the change (SID), so CSNs of one SID compare across
// servers without any clock agreement between them.
type CSN struct {
	Time  time.Time // when server SID made the change, microseconds
	Count int       // orders changes within one microsecond
	SID   int       // serverID of the server that made the change
	Mod   int       // orders modifications within one change
}

// ErrInvalidCSN is wrapped by every ParseCSN error.
var ErrInvalidCSN = errors.New("invalid CSN")

const csnTimeLayout = "20060102150405.000000Z"

// ParseCSN parses the OpenLDAP 2.4+ CSN syntax.
func ParseCSN(s string) (CSN, error) {
	parts := strings.Split(s, "#")
	if len(parts) != 4 {
		return CSN{}, fmt.Errorf("%w %q: want 4 fields separated by #", ErrInvalidCSN, s)
	}
	// time.Parse accepts things a CSN never has (signs, spaces in some
	// fields), so check the shape first: 14 digits, '.', 6 digits, 'Z'.
	ts := parts[0]
	if len(ts) != len(csnTimeLayout) || ts[14] != '.' || ts[21] != 'Z' || !csnDigits(ts[:14], 10) || !csnDigits(ts[15:21], 10) {
		return CSN{}, fmt.Errorf("%w %q: time must be YYYYmmddHHMMSS.uuuuuuZ", ErrInvalidCSN, s)
	}
	t, err := time.Parse(csnTimeLayout, ts)
	if err != nil {
		return CSN{}, fmt.Errorf("%w %q: %v", ErrInvalidCSN, s, err)
	}
	var c CSN
	c.Time = t
	for _, f := range []struct {
		name  string
		text  string
		width int
		dst   *int
	}{
		{"count", parts[1], 6, &c.Count},
		{"sid", parts[2], 3, &c.SID},
		{"mod", parts[3], 6, &c.Mod},
	} {
		if len(f.text) != f.width || !csnDigits(f.text, 16) {
			return CSN{}, fmt.Errorf("%w %q: %s must be %d hex digits", ErrInvalidCSN, s, f.name, f.width)
		}
		v, _ := strconv.ParseUint(f.text, 16, 32) // shape checked above
		*f.dst = int(v)
	}
	return c, nil
}

// String formats c the way slapd does.
func (c CSN) String() string {
	return fmt.Sprintf("%s#%06x#%03x#%06x", c.Time.UTC().Format(csnTimeLayout), c.Count, c.SID, c.Mod)
}

func csnDigits(s string, base int) bool {
	for i := 0; i < len(s); i++ {
		b := s[i]
		switch {
		case b >= '0' && b <= '9':
		case base == 16 && (b >= 'a' && b <= 'f' || b >= 'A' && b <= 'F'):
		default:
			return false
		}
	}
	return true
}

// ParseContextCSNs parses every value of a contextCSN attribute and keeps
// the newest CSN per SID.
func ParseContextCSNs(values []string) (map[int]CSN, error) {
	out := make(map[int]CSN, len(values))
	for _, v := range values {
		c, err := ParseCSN(v)
		if err != nil {
			return nil, err
		}
		if old, ok := out[c.SID]; !ok || c.Time.After(old.Time) {
			out[c.SID] = c
		}
	}
	return out, nil
}

// Freshness compares a replica's contextCSN with its reference's, per SID.
type Freshness struct {
	// Lag is the largest reference−replica time over the SIDs both have;
	// never negative (the replica may be read a moment before a change).
	Lag time.Duration
	// LagSID is the SID with the largest lag.
	LagSID int
	// Missing are SIDs the reference has and the replica has never seen.
	Missing []int
}

// CompareCSNs computes the Freshness of replica against reference. SIDs only
// the replica has (its own writes, a provider the reference does not know)
// are not the reference's business and are ignored.
func CompareCSNs(replica, reference map[int]CSN) Freshness {
	var f Freshness
	sids := make([]int, 0, len(reference))
	for sid := range reference {
		sids = append(sids, sid)
	}
	sort.Ints(sids)
	for _, sid := range sids {
		rep, ok := replica[sid]
		if !ok {
			f.Missing = append(f.Missing, sid)
			continue
		}
		if d := reference[sid].Time.Sub(rep.Time); d > f.Lag {
			f.Lag, f.LagSID = d, sid
		}
	}
	return f
}
