package lab

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// Event is a mark on the timeline: a fault injected or repaired.
type Event struct {
	At   time.Time
	Kind string // "fault", "repair" or "note"
	Text string
}

// Trial is one fault and its repair, as seen by the clients.
type Trial struct {
	Service       string    // the broken service
	Failed        string    // the replica it broke on
	Fault, Repair time.Time // when the fault was injected, when the repair finished
	End           time.Time // end of the observation
}

// ClientResult is what one client saw of one trial.
type ClientResult struct {
	Client  string `json:"client"`
	Service string `json:"service"`
	Home    string `json:"home"`     // who answered before the fault
	During  string `json:"during"`   // who answered most between fault and repair
	Affect  bool   `json:"affected"` // the client's home was the broken replica
	// FailoverSeconds: fault until the first answer from another replica
	// (null when unaffected, or when it never came).
	FailoverSeconds *float64 `json:"failover_seconds"`
	// FailbackSeconds: repair until the first answer from home again (null
	// when unaffected, or when it never came).
	FailbackSeconds *float64 `json:"failback_seconds"`
	// FailedRequests counts requests without an answer from the fault to
	// the end of the observation.
	FailedRequests int `json:"failed_requests"`
	Requests       int `json:"requests"`
	// Failures are those requests: when, from the fault, and why.
	Failures []Failure `json:"failures,omitempty"`
}

// Failure is one request that got no answer.
type Failure struct {
	Seconds float64 `json:"seconds"` // since the fault
	Err     string  `json:"error"`
}

// Analyze measures a trial from the samples of every client for the broken
// service.
func Analyze(samples []Sample, tr Trial, clients []string) []ClientResult {
	var out []ClientResult
	for _, c := range clients {
		res := ClientResult{Client: c, Service: tr.Service}
		var mine []Sample
		for _, s := range samples {
			if s.Client == c && s.Service == tr.Service {
				mine = append(mine, s)
			}
		}
		sort.Slice(mine, func(i, j int) bool { return mine[i].At.Before(mine[j].At) })
		during := map[string]int{}
		for _, s := range mine {
			switch {
			case s.At.Before(tr.Fault):
				if s.Replica != "" {
					res.Home = s.Replica
				}
			case tr.End.IsZero() || s.At.Before(tr.End):
				res.Requests++
				if s.Replica == "" {
					res.FailedRequests++
					res.Failures = append(res.Failures, Failure{*seconds(s.At.Sub(tr.Fault)), s.Err})
				}
				if s.At.Before(tr.Repair) {
					during[orErr(s.Replica)]++
				}
			}
		}
		res.During = mostCommon(during)
		res.Affect = res.Home == tr.Failed
		if res.Affect {
			for _, s := range mine {
				if !s.At.Before(tr.Fault) && s.Replica != "" && s.Replica != tr.Failed {
					res.FailoverSeconds = seconds(s.At.Sub(tr.Fault))
					res.During = s.Replica
					break
				}
			}
			for _, s := range mine {
				if !s.At.Before(tr.Repair) && s.Replica == res.Home {
					res.FailbackSeconds = seconds(s.At.Sub(tr.Repair))
					break
				}
			}
		}
		out = append(out, res)
	}
	return out
}

func orErr(r string) string {
	if r == "" {
		return "error"
	}
	return r
}

func mostCommon(m map[string]int) string {
	// Ties go to an answer over "error", then to the smaller name, so the
	// result does not depend on map order.
	best, n := "", -1
	for k, v := range m {
		better := k < best
		if k == "error" || best == "error" {
			better = best == "error"
		}
		if v > n || (v == n && better) {
			best, n = k, v
		}
	}
	return best
}

func seconds(d time.Duration) *float64 {
	s := float64(d.Round(time.Millisecond)) / float64(time.Second)
	return &s
}

// Segment is a stretch of time during which a client got the same answer
// for a service.
type Segment struct {
	Client, Service string
	Replica         string // "" for failed requests
	From, To        time.Time
	Requests        int
}

// Segments merges consecutive samples with the same answer.
func Segments(samples []Sample) []Segment {
	by := map[Key][]Sample{}
	for _, s := range samples {
		k := Key{s.Client, s.Service}
		by[k] = append(by[k], s)
	}
	var out []Segment
	keys := make([]Key, 0, len(by))
	for k := range by {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].Client != keys[j].Client {
			return keys[i].Client < keys[j].Client
		}
		return serviceIndex(keys[i].Service) < serviceIndex(keys[j].Service)
	})
	for _, k := range keys {
		ss := by[k]
		sort.Slice(ss, func(i, j int) bool { return ss[i].At.Before(ss[j].At) })
		var cur *Segment
		for _, s := range ss {
			if cur != nil && cur.Replica == s.Replica {
				cur.To = s.At.Add(ProbeInterval)
				cur.Requests++
				continue
			}
			if cur != nil {
				cur.To = s.At
				out = append(out, *cur)
			}
			cur = &Segment{Client: k.Client, Service: k.Service, Replica: s.Replica, From: s.At, To: s.At.Add(ProbeInterval), Requests: 1}
		}
		if cur != nil {
			out = append(out, *cur)
		}
	}
	return out
}

func serviceIndex(s string) int {
	for i, x := range Services {
		if x == s {
			return i
		}
	}
	return len(Services)
}

// WriteTimeline prints the segments and events in time order, relative to
// start, one line each.
func WriteTimeline(w io.Writer, start time.Time, samples []Sample, events []Event) {
	type line struct {
		at   time.Time
		text string
	}
	var lines []line
	for _, seg := range Segments(samples) {
		who := seg.Replica
		if who == "" {
			who = "NO ANSWER"
		}
		lines = append(lines, line{seg.From, fmt.Sprintf("%-3s %-8s %-10s for %5.1fs (%d requests)",
			seg.Client, seg.Service, who, seg.To.Sub(seg.From).Seconds(), seg.Requests)})
	}
	for _, e := range events {
		lines = append(lines, line{e.At, fmt.Sprintf("*** %s: %s", strings.ToUpper(e.Kind), e.Text)})
	}
	sort.SliceStable(lines, func(i, j int) bool { return lines[i].at.Before(lines[j].at) })
	for _, l := range lines {
		fmt.Fprintf(w, "  %+7.2fs  %s\n", l.at.Sub(start).Seconds(), l.text)
	}
}
