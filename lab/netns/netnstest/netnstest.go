// Package netnstest gives tests network namespaces that are deleted when
// the test ends.
package netnstest

import (
	"testing"

	"github.com/ripcord/ripcord/lab/netns"
)

// New creates a namespace named prefix + random hex (netns.New) and
// deletes it when the test ends; stop the processes inside first (cleanups
// registered later run earlier).
func New(t testing.TB, prefix string) *netns.NS {
	t.Helper()
	ns, err := netns.New(prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ns.Delete(); err != nil {
			t.Error(err)
		}
	})
	return ns
}
