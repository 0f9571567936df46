package rip

import (
	"net/netip"
	"testing"
)

func TestRouterViewDisagreement(t *testing.T) {
	r := netip.MustParseAddr("10.0.0.1")
	p := netip.MustParsePrefix("10.255.0.1/32")
	v := func(announced int, known bool, metric int, viaUs bool) RouterView {
		return RouterView{Interface: "eth0", Router: r, Prefix: p, Announced: announced, Known: known, Metric: metric, ViaUs: viaUs}
	}
	for _, tc := range []struct {
		name string
		v    RouterView
		want string
	}{
		{"uses our route", v(1, true, 2, true), ""},
		{"standby: the other path is better", v(3, true, 2, false), ""},
		{"the other path is as good", v(1, true, 2, false), ""},
		{"ignores our better route", v(1, true, 3, false), "we announce 1 but 10.0.0.1 holds 3 via another path"},
		{"has not heard our change", v(3, true, 2, true), "we announce 3 but 10.0.0.1 holds 2 via this replica"},
		{"no route although we announce", v(1, true, 16, false), "we announce 1 but 10.0.0.1 has no route"},
		{"silent", v(1, false, 16, false), "we announce 1 but 10.0.0.1 has said nothing about it"},
		{"poisoned and gone", v(16, true, 16, false), ""},
		{"poisoned, the other replica took over", v(16, true, 3, false), ""},
		{"poisoned but still used", v(16, true, 2, true), "we poisoned 10.255.0.1/32 but 10.0.0.1 still holds 2 via this replica"},
	} {
		if got := tc.v.Disagreement(); got != tc.want {
			t.Errorf("%s: Disagreement() = %q, want %q", tc.name, got, tc.want)
		}
	}
}
