package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// lossTable is the nftables table of the packet-loss fault, inside a
// replica's namespace only.
const lossTable = "ripcord_lab_loss"

var servicePorts = map[string]struct {
	proto string
	port  int
}{
	ServiceLDAP:    {"tcp", portLDAP},
	ServiceRADIUS:  {"udp", portRADIUS},
	ServiceWebAuth: {"tcp", portHTTP},
}

// DropChecks makes the path between ripcord's own checks and the replica's
// services lossy: percent % of the packets sent to the services' ports on
// lo (where the checks go, 127.0.0.1), and with replies also of those the
// services send back, are dropped at random by an nftables rule in the
// replica's namespace. Clients and the peer's checks arrive on eth0 and are
// not touched. percent 0 removes the rule; 100 drops everything. It needs
// nft (Debian package nftables).
func (r *Replica) DropChecks(ctx context.Context, percent int, replies bool, services ...string) error {
	if percent < 0 || percent > 100 {
		return fmt.Errorf("lab: loss %d%% is not a percentage", percent)
	}
	// Creating the table first makes the delete succeed when it is absent.
	script := fmt.Sprintf("table inet %[1]s\ndelete table inet %[1]s\n", lossTable)
	if percent > 0 {
		var rules strings.Builder
		chance := ""
		if percent < 100 {
			chance = fmt.Sprintf("numgen random mod 100 < %d ", percent)
		}
		for _, svc := range services {
			sp, ok := servicePorts[svc]
			if !ok {
				return fmt.Errorf("lab: no service %q", svc)
			}
			dirs := []string{"dport"}
			if replies {
				dirs = append(dirs, "sport")
			}
			for _, dir := range dirs {
				fmt.Fprintf(&rules, "\t\tiifname \"lo\" %s %s %d %scounter drop\n", sp.proto, dir, sp.port, chance)
			}
		}
		// On input, as on a real path: dropped on output, a packet's
		// sender would get EPERM at once instead of a silent loss.
		script += fmt.Sprintf("table inet %s {\n\tchain input {\n\t\ttype filter hook input priority 0; policy accept;\n%s\t}\n}\n",
			lossTable, rules.String())
	}
	return r.nft(ctx, script)
}

var nftPackets = regexp.MustCompile(`counter packets (\d+)`)

// DroppedPackets counts the packets DropChecks has dropped since its rule
// was set.
func (r *Replica) DroppedPackets(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := r.NS.Exec(ctx, "nft", "list", "table", "inet", lossTable)
	if err != nil {
		return 0, fmt.Errorf("lab: nft list on %s: %w: %s", r.Name, err, strings.TrimSpace(out))
	}
	n := 0
	for _, m := range nftPackets.FindAllStringSubmatch(out, -1) {
		c, _ := strconv.Atoi(m[1])
		n += c
	}
	return n, nil
}

func (r *Replica) nft(ctx context.Context, script string) error {
	if _, err := lookPath("nft"); err != nil {
		return fmt.Errorf("lab: nft not found: install the Debian package nftables (or run scripts/setup)")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	file := filepath.Join(r.Dir, "loss.nft")
	if err := os.WriteFile(file, []byte(script), 0o600); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	if _, err := r.NS.Exec(ctx, "nft", "-f", file); err != nil {
		return fmt.Errorf("lab: nft on %s: %w", r.Name, err)
	}
	return nil
}
