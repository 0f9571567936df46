package peer

import "github.com/ripcord/ripcord/plugins/checkapi"

// Config are the peer checker's settings.
type Config struct {
	// Service is the service name on the peer (usually the same as here).
	Service string `json:"service"`
	// Advertiser whose announcement counts (default rip).
	Advertiser string `json:"advertiser"`
}

// DefaultAdvertiser is the advertiser read when none is set.
const DefaultAdvertiser = "rip"

var fields = []checkapi.Field{
	{Name: "service", Type: "string", Required: true, Help: "service name in the peer's config"},
	{Name: "advertiser", Type: "string", Default: DefaultAdvertiser, Help: "whose announcement counts: rip, ripng (a service with only a vip6) or bgp"},
}

func parseConfig(s checkapi.Settings) (Config, []checkapi.FieldError) {
	c := Config{Advertiser: DefaultAdvertiser}
	if fes := s.DecodeFields(&c); fes != nil {
		return c, fes
	}
	var fes []checkapi.FieldError
	if c.Advertiser != "rip" && c.Advertiser != "ripng" && c.Advertiser != "bgp" {
		fes = append(fes, checkapi.FieldError{Field: "advertiser", Message: "must be rip, ripng or bgp"})
	}
	return c, fes
}
