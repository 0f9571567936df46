package sdk

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDecodeFields(t *testing.T) {
	type nested struct {
		Port int `json:"port"`
	}
	type settings struct {
		Host    string        `json:"host"`
		Port    int           `json:"port"`
		Timeout time.Duration `json:"timeout"`
		Tags    []string      `json:"tags"`
		Inner   nested        `json:"inner"`
	}
	for _, tc := range []struct {
		in   string
		want []FieldError
	}{
		{in: ``},
		{in: `{}`},
		{in: `{"host": "a", "port": 1, "tags": ["x"], "inner": {"port": 2}}`},
		{in: `{"hots": "a"}`, want: []FieldError{{Field: "hots", Message: "unknown setting"}}},
		{in: `{"port": "389"}`, want: []FieldError{{Field: "port", Message: "cannot use a string as int"}}},
		{in: `{"tags": "x"}`, want: []FieldError{{Field: "tags", Message: "cannot use a string as []string"}}},
		{in: `{"inner": {"port": true}}`, want: []FieldError{{Field: "inner.port", Message: "cannot use a bool as int"}}},
		{in: `["a"]`, want: []FieldError{{Message: "json: cannot unmarshal array into Go value of type sdk.settings"}}},
	} {
		var s settings
		if diff := cmp.Diff(tc.want, Settings(tc.in).DecodeFields(&s)); diff != "" {
			t.Errorf("DecodeFields(%s) (-want +got):\n%s", tc.in, diff)
		}
	}
}

func TestIsMisconfiguration(t *testing.T) {
	for reason, want := range map[string]bool{
		ReasonAuthFailed: true, ReasonRejected: true, ReasonTLSInvalid: true, ReasonMisconfigured: true,
		ReasonOK: false, ReasonRefused: false, ReasonTimeout: false, ReasonCheckerError: false, "stale_replica": false,
	} {
		if got := IsMisconfiguration(reason); got != want {
			t.Errorf("IsMisconfiguration(%q) = %v, want %v", reason, got, want)
		}
	}
}
