package main

import (
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// metricsHandler serves the orchestrator's and the drivers' OpenTelemetry
// metrics in the Prometheus exposition format, through the OpenTelemetry
// Prometheus exporter on a registry of this server's own (never the
// process-wide default registry).
type metricsHandler struct{ h http.Handler }

func newMetrics() (*metricsHandler, *sdkmetric.MeterProvider, error) {
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, nil, err
	}
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	return &metricsHandler{h: h}, sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp)), nil
}

func (m *metricsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) { m.h.ServeHTTP(w, r) }

// scrapeToken reports whether r carries the configured scrape token as
// "Authorization: Bearer <token>" (compared in constant time). An empty
// token accepts nothing.
func scrapeToken(r *http.Request, token string) bool {
	if token == "" {
		return false
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}
