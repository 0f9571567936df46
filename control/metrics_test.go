package control

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"testing"
)

// TestMetricsAllow: with an allow list, only those addresses get answers;
// the rest get 403 Forbidden. Requests come from 127.0.0.1 (loopback).
func TestMetricsAllow(t *testing.T) {
	for _, tt := range []struct {
		allow []string
		want  int
	}{
		{nil, http.StatusOK},
		{[]string{"127.0.0.1/32"}, http.StatusOK},
		{[]string{"10.0.0.0/8", "127.0.0.0/8"}, http.StatusOK},
		{[]string{"127.0.0.2/32"}, http.StatusForbidden},
		{[]string{"::1/128"}, http.StatusForbidden},
	} {
		var allow []netip.Prefix
		for _, a := range tt.allow {
			allow = append(allow, netip.MustParsePrefix(a))
		}
		srv, err := NewMetrics("test").ServeMetrics("127.0.0.1:0", allow, func() Report { return Report{Node: "sa"} }, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		addr := srv.Addr
		for _, path := range []string{"/metrics", "/v1/status"} {
			resp, err := http.Get("http://" + addr + path)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("allow %v: GET %s: %s, want %d", tt.allow, path, resp.Status, tt.want)
			}
		}
		srv.Shutdown(context.Background())
	}
}
