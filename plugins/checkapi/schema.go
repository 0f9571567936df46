package checkapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// ApplySchema holds settings to the schema a checker describes, as Serve
// does before every Configure and Check: it reports each unknown key, each
// missing Required field and each value that is not of its field's Type,
// and fills in the Default of every field that is absent or null. It
// returns the settings the checker gets (a JSON object, keys sorted). With
// field errors, it also returns the settings without the keys in error, so
// that the checker can look for more. The error says that the schema itself is wrong: a Default that is not of its
// Type, or a field listed twice.
//
// A schema with no fields checks nothing: the settings pass as they are.
// A Type the SDK does not know (see Field) is documentation only.
func ApplySchema(fields []Field, s Settings) (Settings, []FieldError, error) {
	if len(fields) == 0 {
		return s, nil, nil
	}
	defaults := map[string]json.RawMessage{}
	for i, f := range fields {
		if slices.ContainsFunc(fields[:i], func(g Field) bool { return g.Name == f.Name }) {
			return nil, nil, fmt.Errorf("schema: setting %q is listed twice", f.Name)
		}
		if f.Default == "" {
			continue
		}
		def, ok, err := parseDefault(f)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			defaults[f.Name] = def
		}
	}
	obj := map[string]json.RawMessage{}
	if t := bytes.TrimSpace(s); len(t) > 0 && !bytes.Equal(t, []byte("null")) {
		if t[0] != '{' {
			return nil, []FieldError{{Message: "settings must be a mapping"}}, nil
		}
		if err := json.Unmarshal(t, &obj); err != nil {
			return nil, []FieldError{{Message: strings.TrimPrefix(err.Error(), "json: ")}}, nil
		}
	}
	var fes []FieldError
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		if !slices.ContainsFunc(fields, func(f Field) bool { return f.Name == k }) {
			fes = append(fes, FieldError{Field: k, Message: "unknown setting (known: " + fieldNames(fields) + ")"})
			delete(obj, k)
		}
	}
	for _, f := range fields {
		raw, set := obj[f.Name]
		if !set || bytes.Equal(raw, []byte("null")) {
			switch def, ok := defaults[f.Name]; {
			case f.Required:
				fes = append(fes, FieldError{Field: f.Name, Message: "required"})
			case ok:
				obj[f.Name] = def
			}
			continue
		}
		if t, known := parseType(f.Type); known {
			var v any
			d := json.NewDecoder(bytes.NewReader(raw))
			d.UseNumber()
			if err := d.Decode(&v); err != nil {
				return nil, nil, err // cannot happen: obj was just decoded
			}
			if where, msg := t.check(v); msg != "" {
				fes = append(fes, FieldError{Field: f.Name + where, Message: msg})
				delete(obj, f.Name)
			}
		}
	}
	out, err := json.Marshal(obj)
	return out, fes, err
}

// ValidateSettings validates settings as Serve does when the daemon loads
// its config: against c's schema (ApplySchema), then, on the settings with
// the defaults filled in, with c.Configure, which may find more (a value out
// of range, settings that do not go together). A key the schema found wrong
// is reported once, as the schema says. sdktest.ConfigureFields calls it.
func ValidateSettings(ctx context.Context, c Checker, s Settings) ([]FieldError, error) {
	filled, fes, err := ApplySchema(c.Describe().Settings, s)
	if err != nil || filled == nil {
		return fes, err
	}
	more, err := c.Configure(ctx, filled)
	if err != nil {
		return nil, err
	}
	for _, fe := range more {
		if !slices.ContainsFunc(fes, func(known FieldError) bool { return within(fe.Field, known.Field) }) {
			fes = append(fes, fe)
		}
	}
	return fes, nil
}

// within reports whether field is key or inside it (key.x, key[1]).
func within(field, key string) bool {
	rest, ok := strings.CutPrefix(field, key)
	return ok && key != "" && (rest == "" || rest[0] == '.' || rest[0] == '[')
}

func fieldNames(fields []Field) string {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.Name
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// parseDefault reads f.Default as a value of f.Type: JSON ("200", "[1, 2]",
// "true"), or the text itself where the type takes a string ("GET", "5s").
// ok is false for a type the SDK does not know.
func parseDefault(f Field) (json.RawMessage, bool, error) {
	t, known := parseType(f.Type)
	if !known {
		return nil, false, nil
	}
	var v any
	d := json.NewDecoder(strings.NewReader(f.Default))
	d.UseNumber()
	if err := d.Decode(&v); err == nil && !d.More() && accepts(t, v) {
		return json.RawMessage(f.Default), true, nil
	}
	if accepts(t, f.Default) {
		b, _ := json.Marshal(f.Default)
		return b, true, nil
	}
	return nil, false, fmt.Errorf("schema: setting %s: default %q is not a %s", f.Name, f.Default, f.Type)
}

func accepts(t *valueType, v any) bool { _, msg := t.check(v); return msg == "" }

// valueType is a settings type the SDK checks.
type valueType struct {
	name  string
	alts  []*valueType // "A or B"
	elem  *valueType   // []T, map[string]T
	isMap bool
}

// parseType reads a Field.Type: string, int, float, bool, duration, object,
// []T, map[string]T, and "A or B".
func parseType(s string) (*valueType, bool) {
	s = strings.TrimSpace(s)
	if parts := strings.Split(s, " or "); len(parts) > 1 {
		t := &valueType{name: s}
		for _, p := range parts {
			a, ok := parseType(p)
			if !ok {
				return nil, false
			}
			t.alts = append(t.alts, a)
		}
		return t, true
	}
	if e, ok := strings.CutPrefix(s, "[]"); ok {
		elem, ok := parseType(e)
		return &valueType{name: s, elem: elem}, ok
	}
	if e, ok := strings.CutPrefix(s, "map[string]"); ok {
		elem, ok := parseType(e)
		return &valueType{name: s, elem: elem, isMap: true}, ok
	}
	switch s {
	case "string", "int", "float", "bool", "duration", "object":
		return &valueType{name: s}, true
	}
	return nil, false
}

// check returns why v (decoded with UseNumber) is not a t, or "", and
// where in v the fault is ("[1]", ".name"; "" for v itself).
func (t *valueType) check(v any) (where, msg string) {
	wrong := func() (string, string) { return "", fmt.Sprintf("cannot use %s as %s", describeValue(v), t.name) }
	switch {
	case t.alts != nil:
		for _, a := range t.alts {
			if _, msg := a.check(v); msg == "" {
				return "", ""
			}
		}
		// A list (or mapping) is wrong as the alternative that takes one
		// says: at its entry.
		_, isList := v.([]any)
		_, isMap := v.(map[string]any)
		for _, a := range t.alts {
			if a.elem != nil && (isList && !a.isMap || isMap && a.isMap) {
				return a.check(v)
			}
		}
		return wrong()
	case t.isMap:
		m, ok := v.(map[string]any)
		if !ok {
			return wrong()
		}
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if w, msg := t.elem.check(m[k]); msg != "" {
				return "." + k + w, msg
			}
		}
		return "", ""
	case t.elem != nil:
		list, ok := v.([]any)
		if !ok {
			return wrong()
		}
		for i, e := range list {
			if w, msg := t.elem.check(e); msg != "" {
				return fmt.Sprintf("[%d]%s", i, w), msg
			}
		}
		return "", ""
	}
	ok := false
	switch t.name {
	case "string":
		_, ok = v.(string)
	case "int":
		n, isNum := v.(json.Number)
		_, err := n.Int64()
		ok = isNum && err == nil
	case "float":
		_, ok = v.(json.Number)
	case "bool":
		_, ok = v.(bool)
	case "object":
		_, ok = v.(map[string]any)
	case "duration":
		str, isString := v.(string)
		if !isString {
			break
		}
		if d, err := time.ParseDuration(str); err != nil || d < 0 {
			return "", fmt.Sprintf("invalid duration %q (examples: 500ms, 2s, 1m)", str)
		}
		return "", ""
	}
	if !ok {
		return wrong()
	}
	return "", ""
}

func describeValue(v any) string {
	switch v := v.(type) {
	case string:
		return "a string"
	case json.Number:
		return "the number " + v.String()
	case bool:
		return "a bool"
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	}
	return "null"
}

// SettingsError is the error of a check whose settings break the schema:
// the checker is not called.
func SettingsError(fes []FieldError) error {
	errs := make([]error, len(fes))
	for i, fe := range fes {
		errs[i] = fe
	}
	return fmt.Errorf("settings: %v", errors.Join(errs...))
}

// maxFilled bounds the settings a FilledSettings remembers: a config has a
// few dozen checks, and each reload may bring new settings.
const maxFilled = 1024

// FilledSettings holds each check's settings to a checker's schema, as a
// check's settings are held before Check sees them, and remembers the
// outcome: a check sends the same settings every time, and the schema costs
// about 40µs a check otherwise (BenchmarkApplySchema). Safe for concurrent
// use.
type FilledSettings struct {
	schema func() []Field // asked once

	mu     sync.Mutex
	filled map[string]Settings // settings as sent -> as the checker gets them
}

// NewFilledSettings returns the FilledSettings of c's schema.
func NewFilledSettings(c Checker) *FilledSettings {
	return &FilledSettings{schema: sync.OnceValue(func() []Field { return c.Describe().Settings }),
		filled: map[string]Settings{}}
}

// Apply returns in with the schema's defaults filled in, or the error of
// settings that break it (SettingsError).
func (f *FilledSettings) Apply(in Settings) (Settings, error) {
	f.mu.Lock()
	out, ok := f.filled[string(in)]
	f.mu.Unlock()
	if ok {
		return out, nil
	}
	out, errs, err := ApplySchema(f.schema(), in)
	if err == nil && errs != nil {
		err = SettingsError(errs)
	}
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	if len(f.filled) >= maxFilled {
		clear(f.filled)
	}
	f.filled[string(in)] = out
	f.mu.Unlock()
	return out, nil
}
