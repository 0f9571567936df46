package config

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Error is one problem in a config file, located at the offending key or value.
type Error struct {
	File   string
	Line   int
	Column int
	Key    string // dotted path, e.g. services[0].checks[1].timeout
	Msg    string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s: %s", e.File, e.Line, e.Column, e.Key, e.Msg)
}

// Duration is a time.Duration written as a Go duration string ("2s", "500ms").
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

var (
	durationType = reflect.TypeFor[Duration]()
	prefixType   = reflect.TypeFor[netip.Prefix]()
	addrType     = reflect.TypeFor[netip.Addr]()
	nodeType     = reflect.TypeFor[yaml.Node]()
)

// decoder fills Go values from yaml nodes strictly and remembers where each
// key was, so that validation can point at the line.
type decoder struct {
	depth int // current nesting, bounded: aliases can make the tree a cycle
	nodes int // nodes visited, bounded: aliases can make it explode
	file  string
	pos   map[string]*yaml.Node // path -> node of the value
	keys  map[string]*yaml.Node // path -> node of the key
	// resolved marks *_file values already made relative to the config's
	// directory (aliases share nodes).
	resolved map[*yaml.Node]bool
}

func (d *decoder) errAt(n *yaml.Node, path, format string, args ...any) *Error {
	e := &Error{File: d.file, Key: path, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	return e
}

// Limits on what aliases can do to the decoder; real configs are far below.
const (
	maxDepth = 32
	maxNodes = 100_000
)

// enter counts one more node, one level deeper; the caller leaves the level.
func (d *decoder) enter(n *yaml.Node, path string) error {
	d.depth++
	d.nodes++
	if d.depth > maxDepth || d.nodes > maxNodes {
		return d.errAt(n, path, "nested too deeply or too large (YAML aliases expanding without bound?)")
	}
	return nil
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) error {
	defer func() { d.depth-- }()
	if err := d.enter(n, path); err != nil {
		return err
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return nil
		}
		n = n.Content[0]
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	d.pos[path] = n
	if n.Tag == "!!null" && v.Kind() != reflect.Struct {
		return nil
	}
	switch v.Type() {
	case nodeType:
		v.Set(reflect.ValueOf(*n))
		return d.index(n, path)
	case durationType:
		s, err := d.scalar(n, path)
		if err != nil {
			return err
		}
		t, perr := time.ParseDuration(s)
		if perr != nil || t < 0 {
			return d.errAt(n, path, "invalid duration %q (examples: 500ms, 2s, 1m)", s)
		}
		v.Set(reflect.ValueOf(Duration(t)))
		return nil
	case prefixType:
		s, err := d.scalar(n, path)
		if err != nil {
			return err
		}
		p, perr := parsePrefix(s)
		if perr != nil {
			return d.errAt(n, path, "%v", perr)
		}
		v.Set(reflect.ValueOf(p))
		return nil
	case addrType:
		s, err := d.scalar(n, path)
		if err != nil {
			return err
		}
		a, perr := netip.ParseAddr(s)
		if perr != nil || a.Zone() != "" {
			return d.errAt(n, path, "invalid IP address %q", s)
		}
		v.Set(reflect.ValueOf(a))
		return nil
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
			applyDefaults(v.Interface())
		}
		return d.decode(n, v.Elem(), path)
	case reflect.Struct:
		return d.decodeStruct(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return d.errAt(n, path, "expected a list, got %s", kindName(n))
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			e := s.Index(i)
			if e.Kind() == reflect.Struct {
				applyDefaults(e.Addr().Interface())
			}
			if err := d.decode(c, e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return d.errAt(n, path, "expected a mapping, got %s", kindName(n))
		}
		m := reflect.MakeMap(v.Type())
		for i := 0; i < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			kp := path + "." + k.Value
			if m.MapIndex(reflect.ValueOf(k.Value)).IsValid() {
				return d.errAt(k, kp, "duplicate key")
			}
			d.keys[kp] = k
			e := reflect.New(v.Type().Elem()).Elem()
			if err := d.decode(val, e, kp); err != nil {
				return err
			}
			m.SetMapIndex(reflect.ValueOf(k.Value), e)
		}
		v.Set(m)
		return nil
	case reflect.String:
		s, err := d.scalar(n, path)
		if err != nil {
			return err
		}
		v.SetString(s)
		return nil
	case reflect.Int, reflect.Int64, reflect.Uint8, reflect.Uint16, reflect.Uint32:
		s, err := d.scalar(n, path)
		if err != nil {
			return err
		}
		if quoted(n) {
			return d.errAt(n, path, "expected an integer, got the string %q (remove the quotes)", s)
		}
		i, perr := strconv.ParseInt(s, 0, 64)
		if perr != nil {
			return d.errAt(n, path, "expected an integer, got %q", s)
		}
		if v.CanInt() && v.OverflowInt(i) || (!v.CanInt() && (i < 0 || v.OverflowUint(uint64(i)))) {
			return d.errAt(n, path, "%d is out of range", i)
		}
		if v.CanInt() {
			v.SetInt(i)
		} else {
			v.SetUint(uint64(i))
		}
		return nil
	case reflect.Bool:
		s, err := d.scalar(n, path)
		if err != nil {
			return err
		}
		if quoted(n) {
			return d.errAt(n, path, "expected true or false, got the string %q (remove the quotes)", s)
		}
		b, perr := strconv.ParseBool(s)
		if perr != nil || n.ShortTag() != "!!bool" {
			return d.errAt(n, path, "expected true or false, got %q", s)
		}
		v.SetBool(b)
		return nil
	}
	return d.errAt(n, path, "unsupported type %s", v.Type())
}

// index records where every key and list entry inside n is, as the checker
// names them in its field errors (settings.login.url, settings.expect[1]),
// so that they are reported at their own line, not at the mapping's.
func (d *decoder) index(n *yaml.Node, path string) error {
	defer func() { d.depth-- }()
	if err := d.enter(n, path); err != nil {
		return err
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	d.pos[path] = n
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			kp := path + "." + n.Content[i].Value
			d.keys[kp] = n.Content[i]
			if err := d.index(n.Content[i+1], kp); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if err := d.index(c, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// quoted reports a quoted scalar: "3" is a string, never the number 3.
func quoted(n *yaml.Node) bool {
	return n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0
}

func (d *decoder) scalar(n *yaml.Node, path string) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", d.errAt(n, path, "expected a single value, got %s", kindName(n))
	}
	return n.Value, nil
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) error {
	if n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return d.errAt(n, path, "expected a mapping, got %s", kindName(n))
	}
	fields := map[string]int{}
	var known []string
	t := v.Type()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		fields[name] = i
		known = append(known, name)
	}
	seen := map[string]bool{}
	for i := 0; i < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		kp := join(path, k.Value)
		idx, ok := fields[k.Value]
		if !ok {
			return d.errAt(k, kp, "unknown key (known keys: %s)", strings.Join(known, ", "))
		}
		if seen[k.Value] {
			return d.errAt(k, kp, "duplicate key")
		}
		seen[k.Value] = true
		d.keys[kp] = k
		if err := d.decode(val, v.Field(idx), kp); err != nil {
			return err
		}
	}
	return nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "nothing"
}

// parsePrefix accepts an address ("10.0.0.1" meaning /32, "2001:db8::10"
// meaning /128) or a CIDR prefix; it must be a single host route, because an
// anycast service address is one host. The key decides the family.
func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("invalid IP address %q", s)
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid IP prefix %q", s)
	}
	if p.Bits() != p.Addr().BitLen() {
		return netip.Prefix{}, fmt.Errorf("prefix %s is not a /%d: a service address is a single host", s, p.Addr().BitLen())
	}
	return p, nil
}

// nodeToJSON converts a settings mapping to JSON for the checker, keeping
// YAML's scalar types (ints, bools) where they parse.
func nodeToJSON(n *yaml.Node) ([]byte, error) {
	if n == nil || n.Kind == 0 {
		return []byte("{}"), nil
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, err
	}
	if v == nil {
		return []byte("{}"), nil
	}
	return json.Marshal(normalize(v))
}

// normalize turns yaml.v3's map[string]any / map[any]any into JSON-friendly maps.
func normalize(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			t[k] = normalize(e)
		}
		return t
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[fmt.Sprint(k)] = normalize(e)
		}
		return m
	case []any:
		for i, e := range t {
			t[i] = normalize(e)
		}
		return t
	}
	return v
}
