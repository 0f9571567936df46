// Package checkers is the one registry of the checkers compiled into
// ripcord. They still run out of process: the daemon starts
// `ripcord-checker NAME` (or, without it, re-executes itself as
// `ripcord checker NAME`), which serves the checker found here.
package checkers

import (
	"slices"

	"github.com/ripcord/ripcord/checkers/http"
	"github.com/ripcord/ripcord/checkers/ldap"
	"github.com/ripcord/ripcord/checkers/peer"
	"github.com/ripcord/ripcord/checkers/radius"
	"github.com/ripcord/ripcord/plugins/checkapi"
)

var builtin = map[string]func() checkapi.Checker{
	"http":   http.New,
	"ldap":   ldap.New,
	"peer":   peer.New,
	"radius": radius.New,
}

// Get returns a new instance of the built-in checker name.
func Get(name string) (checkapi.Checker, bool) {
	f, ok := builtin[name]
	if !ok {
		return nil, false
	}
	return f(), true
}

// IsBuiltin reports whether name is compiled in.
func IsBuiltin(name string) bool { _, ok := builtin[name]; return ok }

// Names lists the built-in checkers in order.
func Names() []string {
	out := make([]string, 0, len(builtin))
	for n := range builtin {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}
