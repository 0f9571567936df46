// Command ripcord-checker serves one of ripcord's built-in checkers to the
// daemon, which starts `ripcord-checker NAME` for each checker a config uses.
// It links only the checkers and checkpipe, not the daemon (GoBGP,
// Prometheus, the lab) nor gRPC, so each checker process stays small
// (docs/benchmarks.md). Without it beside ripcord, the daemon runs
// `ripcord checker NAME` instead.
package main

import (
	"fmt"
	"os"

	"github.com/ripcord/ripcord/checkers"
	"github.com/ripcord/ripcord/internal/checkpipe"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: ripcord-checker NAME (started by the ripcord daemon, not by hand)")
		os.Exit(2)
	}
	c, ok := checkers.Get(os.Args[1])
	if !ok {
		fmt.Fprintf(os.Stderr, "ripcord-checker: no built-in checker %q\n", os.Args[1])
		os.Exit(1)
	}
	checkpipe.Serve(c)
}
