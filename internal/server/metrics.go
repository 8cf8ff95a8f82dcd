package server

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the server's Prometheus metrics, on a registry of its own.
type metrics struct {
	reg           *prometheus.Registry
	requests      *prometheus.HistogramVec
	checkIns      prometheus.Counter
	held          prometheus.Gauge
	inventories   prometheus.Counter
	authFailures  *prometheus.CounterVec
	detectSeconds prometheus.Histogram
}

func newMetrics(s *Server) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "patchloop_http_request_duration_seconds", Help: "HTTP requests by route and status code.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
		}, []string{"route", "code"}),
		checkIns:     prometheus.NewCounter(prometheus.CounterOpts{Name: "patchloop_checkins_total", Help: "Agent check-ins accepted."}),
		held:         prometheus.NewGauge(prometheus.GaugeOpts{Name: "patchloop_checkins_held", Help: "Agent check-ins held until a job comes (long polls)."}),
		inventories:  prometheus.NewCounter(prometheus.CounterOpts{Name: "patchloop_inventories_total", Help: "Full inventories received."}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "patchloop_auth_failures_total", Help: "Refused credentials by API."}, []string{"api"}),
		detectSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "patchloop_detect_duration_seconds", Help: "Time to compute one host's updates.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}),
	}
	m.reg.MustRegister(m.requests, m.checkIns, m.held, m.inventories, m.authFailures, m.detectSeconds,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	gauge := func(name, help string, get func() float64) {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, get))
	}
	stat := func(pick func(hosts, revoked, inventories, queued int, size int64) float64) func() float64 {
		return func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			st, err := s.store.Stats(ctx)
			if err != nil {
				return -1
			}
			return pick(st.Hosts, st.RevokedHosts, st.Inventories, st.QueuedJobs, st.SizeBytes)
		}
	}
	gauge("patchloop_hosts", "Enrolled hosts, revoked ones included.", stat(func(h, _, _, _ int, _ int64) float64 { return float64(h) }))
	gauge("patchloop_hosts_revoked", "Revoked hosts.", stat(func(_, r, _, _ int, _ int64) float64 { return float64(r) }))
	gauge("patchloop_inventories", "Distinct inventories stored.", stat(func(_, _, i, _ int, _ int64) float64 { return float64(i) }))
	gauge("patchloop_jobs_queued", "Host jobs not done.", stat(func(_, _, _, q int, _ int64) float64 { return float64(q) }))
	gauge("patchloop_database_bytes", "Database size on disk.", stat(func(_, _, _, _ int, b int64) float64 { return float64(b) }))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// statusWriter records the status code a handler wrote, and whether it
// held the request (a check-in waiting for a job: timed apart, since its
// time is the wait, not the work).
type statusWriter struct {
	http.ResponseWriter
	code int
	held bool
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

// instrument times every request by its route pattern.
func (m *metrics) instrument(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		mux.ServeHTTP(sw, r)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		if sw.held {
			route += " (held)"
		}
		m.requests.WithLabelValues(route, strconv.Itoa(sw.code)).Observe(time.Since(start).Seconds())
	})
}
