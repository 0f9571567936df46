package daemon

import (
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ripcord/ripcord/control"
	"github.com/ripcord/ripcord/core"
	"github.com/ripcord/ripcord/plugins/checkapi"
)

var (
	replicasUpDesc = prometheus.NewDesc("ripcord_service_replicas_up",
		"Replicas of the service that are up as this replica sees them: itself (up or degraded) plus the peers whose checks pass.",
		[]string{"service"}, nil)
	peersWatchedDesc = prometheus.NewDesc("ripcord_service_peers_watched",
		"Peer checks of the service (assist.peers): 0 means ripcord_service_replicas_up sees only this replica.",
		[]string{"service"}, nil)
)

// replicasCollector computes the replica counts from the engine's status at
// scrape time, so they can never disagree with it.
type replicasCollector struct{ d *Daemon }

func (c replicasCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- replicasUpDesc
	ch <- peersWatchedDesc
}

func (c replicasCollector) Collect(ch chan<- prometheus.Metric) {
	for _, st := range c.d.engine.Status() {
		up, peers := 0, 0
		if st.State == core.Up.String() || st.State == core.Degraded.String() {
			up++
		}
		for _, ck := range st.Checks {
			if ck.Peer {
				peers++
				if ck.State == "pass" {
					up++
				}
			}
		}
		ch <- prometheus.MustNewConstMetric(replicasUpDesc, prometheus.GaugeValue, float64(up), st.Name)
		ch <- prometheus.MustNewConstMetric(peersWatchedDesc, prometheus.GaugeValue, float64(peers), st.Name)
	}
}

// checkSeries remembers which labelled series each check's last result set,
// so that the next result deletes exactly those it does not set again: a
// phase or an observation it does not carry (the reference's lag while it is
// down) must not linger at its old value. Deleting by partial match instead
// scans every series of the metric, on every check.
type checkSeries struct {
	mu   sync.Mutex
	last map[[2]string]*lastSeries // by service, check
}

type lastSeries struct {
	reason       string
	phases, obse []string
}

// replace sets check's success, phase and observation series from r.
func (cs *checkSeries) replace(m *control.Metrics, svc, check string, r *checkapi.Result) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.last == nil {
		cs.last = map[[2]string]*lastSeries{}
	}
	key := [2]string{svc, check}
	last := cs.last[key]
	if last == nil {
		last = &lastSeries{}
		cs.last[key] = last
	}
	if last.reason != "" && last.reason != r.Reason {
		m.CheckSuccess.DeleteLabelValues(svc, check, last.reason)
	}
	last.reason = r.Reason
	ok := 0.0
	if r.Status != checkapi.StatusFailed {
		ok = 1
	}
	m.CheckSuccess.WithLabelValues(svc, check, r.Reason).Set(ok)

	phases := last.phases[:0:0]
	for _, p := range r.Phases {
		m.CheckPhase.WithLabelValues(svc, check, p.Name).Set(p.Duration.Seconds())
		phases = append(phases, p.Name)
	}
	for _, name := range last.phases {
		if !slices.Contains(phases, name) {
			m.CheckPhase.DeleteLabelValues(svc, check, name)
		}
	}
	last.phases = phases

	obse := last.obse[:0:0]
	for k, v := range r.Observations {
		m.CheckObservation.WithLabelValues(svc, check, k).Set(v)
		obse = append(obse, k)
	}
	for _, name := range last.obse {
		if !slices.Contains(obse, name) {
			m.CheckObservation.DeleteLabelValues(svc, check, name)
		}
	}
	last.obse = obse
}

// forget deletes every series of a check that is gone (reload), and what
// replace remembers of it: a check removed while failing must not look
// failing to an alert for ever.
func (cs *checkSeries) forget(m *control.Metrics, svc, check string) {
	cs.mu.Lock()
	delete(cs.last, [2]string{svc, check})
	cs.mu.Unlock()
	labels := prometheus.Labels{"service": svc, "check": check}
	for _, v := range []interface{ DeletePartialMatch(prometheus.Labels) int }{
		m.CheckSuccess, m.CheckMisconfig, m.CheckDuration, m.CheckPhase, m.CheckObservation,
	} {
		v.DeletePartialMatch(labels)
	}
}

// seriesCheck is the check label of a job's series.
func seriesCheck(j core.Job) string {
	if j.Peer {
		return "peer:" + j.Name
	}
	return j.Name
}

// forgetRemoved deletes the series of the checks and services that a reload
// from jobs and specs to newJobs and newSpecs removed.
func (d *Daemon) forgetRemoved(jobs, newJobs []core.Job, specs, newSpecs []core.ServiceSpec) {
	keep := map[[2]string]bool{}
	for _, j := range newJobs {
		keep[[2]string{j.Service, seriesCheck(j)}] = true
	}
	for _, j := range jobs {
		if k := [2]string{j.Service, seriesCheck(j)}; !keep[k] {
			d.series.forget(d.metrics, k[0], k[1])
		}
	}
	for _, s := range specs {
		if !slices.ContainsFunc(newSpecs, func(n core.ServiceSpec) bool { return n.Name == s.Name }) {
			labels := prometheus.Labels{"service": s.Name}
			d.metrics.ServiceState.DeletePartialMatch(labels)
			d.metrics.Transitions.DeletePartialMatch(labels)
		}
	}
}
