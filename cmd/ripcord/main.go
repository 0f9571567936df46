// Command ripcord keeps an anycast service address alive on replicated
// servers: health checks decide the metric with which each replica
// advertises the address to its routers.
package main

import (
	"fmt"
	"os"
)

const usage = `ripcord: anycast failover and failback for replicated servers

Every replica puts the same service address (VIP) on its loopback and
advertises it to the routers (RIPv2, optionally BGP). ripcord checks the
service itself (LDAP bind+search, RADIUS Access-Request, web page) and moves
traffic away when it breaks, and back when it has been healthy long enough.

Usage:
  ripcord run      -c FILE          run the daemon (SIGTERM withdraws routes and exits)
  ripcord check    -c FILE [-v]     run every check once and print a table (-v: phases, observations)
  ripcord validate -c FILE          check a config file and exit
  ripcord status   [-s SOCKET]      show each service's state and announced metrics
  ripcord drain    SERVICE          move traffic away from a service (persists across restarts)
  ripcord undrain  SERVICE          bring a drained service back
  ripcord reload   [-s SOCKET]      read the config file again and apply the difference (also SIGHUP)
  ripcord checkers [-c FILE]        list the built-in checkers and plugins.dir's plugins, with their settings
  ripcord lab      [flags]          the demo: two sites, real routers and services, failover and failback
  ripcord version                   print the version

Run 'ripcord COMMAND -h' for a command's flags. Documentation: docs/ in the
source tree (configuration.md, writing-a-checker.md).
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	cmd, args := os.Args[1], os.Args[2:]
	var err error
	switch cmd {
	case "run":
		err = cmdRun(args)
	case "check":
		err = cmdCheck(args)
	case "validate":
		err = cmdValidate(args)
	case "status":
		err = cmdStatus(args)
	case "drain", "undrain":
		err = cmdDrain(cmd, args)
	case "reload":
		err = cmdReload(args)
	case "checkers":
		err = cmdCheckers(args)
	case "checker":
		err = cmdChecker(args)
	case "lab":
		err = cmdLab(args)
	case "version", "--version", "-v":
		fmt.Println("ripcord", version())
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "ripcord: unknown command %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
	if err != nil {
		if e, ok := err.(exitError); ok {
			os.Exit(int(e))
		}
		fmt.Fprintln(os.Stderr, "ripcord:", err)
		os.Exit(1)
	}
}

// exitError exits with a status and no message (the command printed it).
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }
