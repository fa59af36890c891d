package main

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// metricsHandler serves the OpenTelemetry SDK's metrics as Prometheus
// text (exposition format 0.0.4), collected through a ManualReader at
// each scrape.
//
// Not the OpenTelemetry Prometheus exporter the issue names: that module
// (go.opentelemetry.io/otel/exporters/prometheus) is only published at
// v0.x versions, DESIGN.md pins none of them, and it brings in the
// Prometheus client library. This writes the same names the exporter
// would for counters, gauges and histograms (dots become underscores,
// counters end in _total, a unit of seconds adds _seconds).
type metricsHandler struct{ reader *sdkmetric.ManualReader }

func newMetrics() (*metricsHandler, *sdkmetric.MeterProvider, error) {
	r := sdkmetric.NewManualReader()
	return &metricsHandler{reader: r}, sdkmetric.NewMeterProvider(sdkmetric.WithReader(r)), nil
}

func (m *metricsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var rm metricdata.ResourceMetrics
	if err := m.reader.Collect(r.Context(), &rm); err != nil {
		http.Error(w, "collecting metrics failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	writePrometheus(w, rm)
}

func promName(name, unit string) string {
	var b strings.Builder
	for i, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '_', r >= '0' && r <= '9' && i > 0:
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	n := b.String()
	if unit == "s" && !strings.HasSuffix(n, "_seconds") {
		n += "_seconds"
	}
	return n
}

func promLabels(set attribute.Set, extra ...string) string {
	var parts []string
	for _, kv := range set.ToSlice() {
		parts = append(parts, fmt.Sprintf("%s=%s", promName(string(kv.Key), ""), strconv.Quote(kv.Value.String())))
	}
	for i := 0; i+1 < len(extra); i += 2 {
		parts = append(parts, fmt.Sprintf("%s=%s", extra[i], strconv.Quote(extra[i+1])))
	}
	if len(parts) == 0 {
		return ""
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func promFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

func writePrometheus(w io.Writer, rm metricdata.ResourceMetrics) {
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			name := promName(m.Name, m.Unit)
			help := strings.ReplaceAll(m.Description, "\n", " ")
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				writeSum(w, name, help, d.IsMonotonic, func(yield func(attribute.Set, float64)) {
					for _, p := range d.DataPoints {
						yield(p.Attributes, float64(p.Value))
					}
				})
			case metricdata.Sum[float64]:
				writeSum(w, name, help, d.IsMonotonic, func(yield func(attribute.Set, float64)) {
					for _, p := range d.DataPoints {
						yield(p.Attributes, p.Value)
					}
				})
			case metricdata.Gauge[int64]:
				fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name)
				for _, p := range d.DataPoints {
					fmt.Fprintf(w, "%s%s %d\n", name, promLabels(p.Attributes), p.Value)
				}
			case metricdata.Gauge[float64]:
				fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name)
				for _, p := range d.DataPoints {
					fmt.Fprintf(w, "%s%s %s\n", name, promLabels(p.Attributes), promFloat(p.Value))
				}
			case metricdata.Histogram[float64]:
				fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name)
				for _, p := range d.DataPoints {
					var cum uint64
					for i, b := range p.Bounds {
						cum += p.BucketCounts[i]
						fmt.Fprintf(w, "%s_bucket%s %d\n", name, promLabels(p.Attributes, "le", promFloat(b)), cum)
					}
					fmt.Fprintf(w, "%s_bucket%s %d\n", name, promLabels(p.Attributes, "le", "+Inf"), p.Count)
					fmt.Fprintf(w, "%s_sum%s %s\n%s_count%s %d\n", name, promLabels(p.Attributes), promFloat(p.Sum), name, promLabels(p.Attributes), p.Count)
				}
			}
		}
	}
}

func writeSum(w io.Writer, name, help string, monotonic bool, points func(func(attribute.Set, float64))) {
	typ := "gauge"
	if monotonic {
		typ = "counter"
		if !strings.HasSuffix(name, "_total") {
			name += "_total"
		}
	}
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	points(func(set attribute.Set, v float64) {
		fmt.Fprintf(w, "%s%s %s\n", name, promLabels(set), promFloat(v))
	})
}
