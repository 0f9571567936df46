package checkapi

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// DecodeFields is Decode for Configure: it reports every bad key, not just
// the first, each as a FieldError naming it as the daemon locates it in the
// YAML file ("port", "login.url", "expect[1]"), so that each is reported at
// its own line. Field is empty when the settings as a whole are wrong.
func (s Settings) DecodeFields(v any) []FieldError {
	err := s.Decode(v)
	if err == nil {
		return nil
	}
	if t := reflect.TypeOf(v); t != nil && t.Kind() == reflect.Pointer {
		var raw any
		if json.Unmarshal(s, &raw) == nil {
			var fes []FieldError
			walkSettings(raw, t.Elem(), "", &fes)
			if len(fes) > 0 {
				return fes
			}
		}
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

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// walkSettings finds every value in raw (decoded JSON) that cannot be
// decoded into a t, as encoding/json would decode it, and reports it at
// path. encoding/json stops at the first and does not name list entries.
func walkSettings(raw any, t reflect.Type, path string, fes *[]FieldError) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if raw == nil {
		return // null leaves any value as it is
	}
	bad := func(msg string) { *fes = append(*fes, FieldError{Field: path, Message: msg}) }
	pt := reflect.PointerTo(t)
	if pt.Implements(jsonUnmarshaler) || pt.Implements(textUnmarshaler) {
		b, _ := json.Marshal(raw)
		d := json.NewDecoder(bytes.NewReader(b))
		d.DisallowUnknownFields()
		if err := d.Decode(reflect.New(t).Interface()); err != nil {
			// A list type of its own (one value or a list, say): name the
			// entry when an entry is what is wrong.
			n := len(*fes)
			if list, ok := raw.([]any); ok && t.Kind() == reflect.Slice {
				for i, e := range list {
					walkSettings(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i), fes)
				}
			}
			if len(*fes) == n {
				bad(decodeMessage(err, raw, t))
			}
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := raw.(map[string]any)
		if !ok {
			bad(cannotUse(raw, t))
			return
		}
		for _, k := range slices.Sorted(maps.Keys(obj)) {
			f, ok := jsonField(t, k)
			if !ok {
				*fes = append(*fes, FieldError{Field: joinField(path, k), Message: "unknown setting"})
				continue
			}
			walkSettings(obj[k], f.Type, joinField(path, k), fes)
		}
	case reflect.Map:
		obj, ok := raw.(map[string]any)
		if !ok {
			bad(cannotUse(raw, t))
			return
		}
		for _, k := range slices.Sorted(maps.Keys(obj)) {
			walkSettings(obj[k], t.Elem(), joinField(path, k), fes)
		}
	case reflect.Slice, reflect.Array:
		list, ok := raw.([]any)
		if !ok {
			if _, isString := raw.(string); !(isString && t.Elem().Kind() == reflect.Uint8) {
				bad(cannotUse(raw, t))
			}
			return
		}
		for i, e := range list {
			walkSettings(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i), fes)
		}
	case reflect.Interface:
	default:
		b, _ := json.Marshal(raw)
		if err := json.Unmarshal(b, reflect.New(t).Interface()); err != nil {
			bad(decodeMessage(err, raw, t))
		}
	}
}

// jsonField finds the field encoding/json decodes key into: the exact name
// first, then one that differs only in case.
func jsonField(t reflect.Type, key string) (reflect.StructField, bool) {
	var folded *reflect.StructField
	for _, f := range reflect.VisibleFields(t) {
		if !f.IsExported() || f.Anonymous {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-":
			continue
		case name == "":
			name = f.Name
		}
		if name == key {
			return f, true
		}
		if folded == nil && strings.EqualFold(name, key) {
			folded = &f
		}
	}
	if folded != nil {
		return *folded, true
	}
	return reflect.StructField{}, false
}

func joinField(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// cannotUse says that raw is the wrong kind of value for t, in
// encoding/json's words.
func cannotUse(raw any, t reflect.Type) string {
	return fmt.Sprintf("cannot use a%s as %s", jsonKind(raw), t)
}

func jsonKind(raw any) string {
	switch raw.(type) {
	case string:
		return " string"
	case float64:
		return " number"
	case bool:
		return " bool"
	case []any:
		return "n array"
	case map[string]any:
		return "n object"
	}
	return " null"
}

func decodeMessage(err error, raw any, t reflect.Type) string {
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &te) && te.Field != "":
		return fmt.Sprintf("%s: cannot use a %s as %s", te.Field, te.Value, te.Type)
	case errors.As(err, &te) && te.Type != nil:
		return fmt.Sprintf("cannot use a %s as %s", te.Value, te.Type)
	case errors.As(err, &te):
		return cannotUse(raw, t)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}
