package lab

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// ConnLoss is the end of a long-lived LDAP connection (one that had
// answered) other than by Stop.
type ConnLoss struct {
	At      time.Time
	Client  string
	Replica string // who answered on it last
	Err     string
}

// HeldLDAP keeps one LDAP connection per client open to the VIP and
// searches on it every ProbeInterval, as a connection-pooling LDAP client
// does; a connection that fails is counted as lost and opened again at once.
type HeldLDAP struct {
	mu     sync.Mutex
	losses []ConnLoss
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// HoldLDAP starts the held connections of every client.
func (l *Lab) HoldLDAP(ctx context.Context) *HeldLDAP {
	ctx, cancel := context.WithCancel(ctx)
	h := &HeldLDAP{cancel: cancel}
	for _, c := range l.Clients() {
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			h.loop(ctx, c)
		}()
	}
	return h
}

func (h *HeldLDAP) loop(ctx context.Context, c *Client) {
	addr := netip.AddrPortFrom(VIP(ServiceLDAP).Addr(), portLDAP)
	tick := time.NewTicker(ProbeInterval)
	defer tick.Stop()
	var conn *ldap.Conn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	last, served := "", false
	for ctx.Err() == nil {
		if conn == nil {
			nc, err := dialIn(ctx, c.NS, "tcp", addr.String(), RequestTimeout)
			if err == nil {
				conn = ldap.NewConn(nc, false)
				conn.Start()
				conn.SetTimeout(RequestTimeout)
				served = false
			}
		}
		if conn != nil {
			res, err := conn.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
				"(objectClass=*)", []string{"description"}, nil))
			var who string
			if err == nil && len(res.Entries) == 1 {
				who, err = replicaOf(res.Entries[0].GetAttributeValue("description"))
			}
			switch {
			case ctx.Err() != nil:
			case err != nil:
				if served { // one that never answered is a failed request, not a lost connection
					h.mu.Lock()
					h.losses = append(h.losses, ConnLoss{At: time.Now(), Client: c.Name, Replica: last, Err: shortErr(err)})
					h.mu.Unlock()
				}
				conn.Close()
				conn = nil
				continue // open the next one at once
			default:
				last, served = who, true
			}
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
}

// Stop closes the connections and waits for the loops.
func (h *HeldLDAP) Stop() {
	h.cancel()
	h.wg.Wait()
}

// Losses returns the connections lost so far.
func (h *HeldLDAP) Losses() []ConnLoss {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]ConnLoss(nil), h.losses...)
}
