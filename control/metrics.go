package control

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are ripcord's Prometheus metrics.
type Metrics struct {
	Registry         *prometheus.Registry
	CheckSuccess     *prometheus.GaugeVec
	CheckMisconfig   *prometheus.GaugeVec
	CheckDuration    *prometheus.HistogramVec
	CheckLate        prometheus.Histogram
	CheckPhase       *prometheus.GaugeVec
	CheckObservation *prometheus.GaugeVec
	AnnouncedMetric  *prometheus.GaugeVec
	ServiceState     *prometheus.GaugeVec
	Transitions      *prometheus.CounterVec
	AdvertiseErrors  *prometheus.CounterVec
	RouterDisagrees  *prometheus.GaugeVec
	ReloadOK         prometheus.Gauge
	ReloadTime       prometheus.Gauge
}

// NewMetrics registers every metric on a fresh registry, with the standard
// process and Go runtime collectors and ripcord_build_info.
func NewMetrics(version string) *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		CheckSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ripcord_check_success",
			Help: "1 if the last run of the check passed (ok or degraded), else 0."}, []string{"service", "check", "reason"}),
		CheckMisconfig: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ripcord_check_misconfigured",
			Help: "1 if the last run says the check itself is wrong (auth_failed, rejected, tls_invalid, misconfigured): it hits every replica alike."},
			[]string{"service", "check"}),
		CheckDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ripcord_check_duration_seconds",
			Help: "Time one check took, through the plugin.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)},
			[]string{"service", "check"}),
		CheckLate: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ripcord_check_schedule_delay_seconds",
			Help:    "How much later than planned each scheduled check started (a busy machine, or a daemon short of CPU).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 14)}),
		CheckPhase: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ripcord_check_phase_seconds",
			Help: "Time of each phase of the last run of a check."}, []string{"service", "check", "phase"}),
		CheckObservation: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ripcord_check_observation",
			Help: "Numbers a checker reported, e.g. replication_lag_seconds."}, []string{"service", "check", "name"}),
		AnnouncedMetric: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ripcord_announced_metric",
			Help: "Metric last announced for the VIP by each advertiser (16 = poisoned)."}, []string{"vip", "advertiser"}),
		ServiceState: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ripcord_service_state",
			Help: "1 for the service's current state."}, []string{"service", "state"}),
		Transitions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ripcord_transitions_total",
			Help: "Service state changes."}, []string{"service", "from", "to"}),
		AdvertiseErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ripcord_advertise_errors_total",
			Help: "Failed attempts to apply the desired set."}, []string{"advertiser"}),
		ReloadOK: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ripcord_config_last_reload_successful",
			Help: "1 if the last reload applied the config file (or there was none), 0 if it was refused: the old config runs."}),
		ReloadTime: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ripcord_config_last_reload_success_timestamp_seconds",
			Help: "When the config was last loaded successfully (at start or by a reload), Unix seconds."}),
		RouterDisagrees: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ripcord_router_disagrees",
			Help: "1 if the router on a RIP link holds something for the service's VIP that contradicts what this replica announces (ripcord status says what)."},
			[]string{"service", "interface", "router"}),
	}
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{Name: "ripcord_build_info",
		Help:        "Always 1; the labels say which ripcord is running.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()}})
	buildInfo.Set(1)
	m.Registry.MustRegister(buildInfo, collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector())
	m.Registry.MustRegister(m.CheckSuccess, m.CheckMisconfig, m.CheckDuration, m.CheckLate, m.CheckPhase, m.CheckObservation, m.AnnouncedMetric,
		m.ServiceState, m.Transitions, m.AdvertiseErrors, m.RouterDisagrees, m.ReloadOK, m.ReloadTime)
	m.ReloadOK.Set(1)
	m.ReloadTime.SetToCurrentTime()
	return m
}

// ServeMetrics serves /metrics on addr, and the read-only status report at
// /v1/status, which peer replicas read (checker "peer") to learn at once that
// this replica has withdrawn a service. Drain and check-now stay on the unix
// socket.
//
// allow, when not empty, lists who may ask: others get 403 Forbidden.
func (m *Metrics) ServeMetrics(addr string, allow []netip.Prefix, report func() Report, log *slog.Logger) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, report())
	})
	srv := &http.Server{Addr: ln.Addr().String(), Handler: allowed(allow, mux), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener stopped", "err", err)
		}
	}()
	return srv, nil
}

// allowed passes on the requests from an address in allow (all when allow
// is empty) and refuses the others.
func allowed(allow []netip.Prefix, h http.Handler) http.Handler {
	if len(allow) == 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ap, err := netip.ParseAddrPort(r.RemoteAddr)
		if err != nil || !slices.ContainsFunc(allow, func(p netip.Prefix) bool { return p.Contains(ap.Addr().Unmap()) }) {
			http.Error(w, "forbidden: not in control.metrics_allow", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}
