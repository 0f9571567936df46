package daemon

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/ripcord/ripcord/core"
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
