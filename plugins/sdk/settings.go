package sdk

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// DecodeFields is Decode for Configure: a problem comes back as a FieldError
// that names the offending key where there is one, so that the daemon reports
// it at that key's line. Field is empty when the settings as a whole are
// wrong.
func (s Settings) DecodeFields(v any) []FieldError {
	err := s.Decode(v)
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return []FieldError{{Field: te.Field, Message: fmt.Sprintf("cannot use a %s as %s", te.Value, te.Type)}}
	}
	// encoding/json has no type for this one.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if key, err := strconv.Unquote(name); err == nil {
			return []FieldError{{Field: key, Message: "unknown setting"}}
		}
	}
	return []FieldError{{Message: err.Error()}}
}
