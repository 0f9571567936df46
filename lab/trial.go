package lab

import (
	"context"
	"fmt"
	"time"
)

// Fault is a way to break a service on a replica.
type Fault string

const (
	FaultKill Fault = "kill" // SIGKILL the daemon; repair: start it again
	FaultHang Fault = "hang" // SIGSTOP; repair: SIGCONT
)

// TrialOptions bound one fault-and-repair cycle.
type TrialOptions struct {
	Service string
	Replica *Replica
	Fault   Fault
	// FailoverTimeout bounds the wait for every affected client to be
	// answered by another replica (default 60s: the routers' periodic
	// update is the slowest path without help).
	FailoverTimeout time.Duration
	// Hold is how long the fault stays after the failover (default 2s).
	Hold time.Duration
	// FailbackTimeout bounds the wait for every client to be back home
	// after the repair (default failback_delay + 60s).
	FailbackTimeout time.Duration
	// OnEvent, when set, is told of the fault and the repair as they
	// happen.
	OnEvent func(Event)
}

// RunTrial breaks a service, waits until the clients whose home it was are
// served elsewhere, repairs it, and waits until every client is back home.
// The recorder must be running; the returned trial is ready for Analyze.
// A timeout is returned as an error along with the trial so far.
func (l *Lab) RunTrial(ctx context.Context, rec *Recorder, o TrialOptions) (Trial, []Event, error) {
	if o.FailoverTimeout <= 0 {
		o.FailoverTimeout = 60 * time.Second
	}
	if o.Hold <= 0 {
		o.Hold = 2 * time.Second
	}
	if o.FailbackTimeout <= 0 {
		o.FailbackTimeout = l.Opts.FailbackDelay + 60*time.Second
	}
	if o.OnEvent == nil {
		o.OnEvent = func(Event) {}
	}
	tr := Trial{Service: o.Service, Failed: o.Replica.Name}
	var events []Event
	other := o.Replica.peer.Name
	homes, during := map[Key]string{}, map[Key]string{}
	probed := []string{o.Service}
	if l.Opts.IPv6 {
		probed = append(probed, Over6(o.Service)) // one service, both addresses
	}
	for _, c := range l.Clients() {
		for _, svc := range probed {
			k := Key{c.Name, svc}
			homes[k] = l.Home(c.Name)
			during[k] = other
		}
	}

	what := map[Fault][2]string{
		FaultKill: {"%s killed on %s (SIGKILL)", "%s restarted on %s"},
		FaultHang: {"%s hung on %s (SIGSTOP)", "%s continued on %s (SIGCONT)"},
	}[o.Fault]
	daemon := map[string]string{ServiceLDAP: "slapd", ServiceRADIUS: "freeradius", ServiceWebAuth: "nginx"}[o.Service]

	tr.Fault = time.Now()
	var err error
	switch o.Fault {
	case FaultKill:
		err = o.Replica.KillService(o.Service)
	case FaultHang:
		err = o.Replica.SuspendService(o.Service)
	default:
		err = fmt.Errorf("lab: unknown fault %q", o.Fault)
	}
	if err != nil {
		return tr, events, err
	}
	e := Event{At: tr.Fault, Kind: "fault", Text: fmt.Sprintf(what[0], daemon, o.Replica.Name)}
	events = append(events, e)
	o.OnEvent(e)

	wctx, cancel := context.WithTimeout(ctx, o.FailoverTimeout)
	failoverErr := rec.WaitFor(wctx, during)
	cancel()
	if failoverErr == nil {
		select {
		case <-ctx.Done():
		case <-time.After(o.Hold):
		}
	}

	switch o.Fault {
	case FaultKill:
		err = o.Replica.RestartService(ctx, o.Service)
	case FaultHang:
		err = o.Replica.ResumeService(o.Service)
	}
	tr.Repair = time.Now()
	if err != nil {
		return tr, events, err
	}
	e = Event{At: tr.Repair, Kind: "repair", Text: fmt.Sprintf(what[1], daemon, o.Replica.Name)}
	events = append(events, e)
	o.OnEvent(e)
	if failoverErr != nil {
		return tr, events, fmt.Errorf("lab: no failover within %v: %w", o.FailoverTimeout, failoverErr)
	}

	wctx, cancel = context.WithTimeout(ctx, o.FailbackTimeout)
	err = rec.WaitFor(wctx, homes)
	cancel()
	tr.End = time.Now().Add(time.Second)
	select {
	case <-ctx.Done():
	case <-time.After(time.Second):
	}
	if err != nil {
		return tr, events, fmt.Errorf("lab: no failback within %v: %w", o.FailbackTimeout, err)
	}
	return tr, events, nil
}

// HomeState is where every client is served while both replicas are
// healthy.
func (l *Lab) HomeState() map[Key]string {
	want := map[Key]string{}
	for _, c := range l.Clients() {
		for _, svc := range l.Probed() {
			want[Key{c.Name, svc}] = l.Home(c.Name)
		}
	}
	return want
}

// WaitConverged waits (at most 90 s) until every ripcord reports its services
// healthy and every client is served by its home replica.
func (l *Lab) WaitConverged(ctx context.Context, rec *Recorder) error {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if err := l.WaitHealthy(ctx); err != nil {
		return err
	}
	return rec.WaitFor(ctx, l.HomeState())
}
