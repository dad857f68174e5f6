package telemetry

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestDashboardUsesExportedMetrics fails when the shipped Grafana dashboard
// queries a metric Switchyard does not export (a renamed metric would
// otherwise leave an empty panel in production).
func TestDashboardUsesExportedMetrics(t *testing.T) {
	b, err := os.ReadFile("../../envoy/grafana/switchyard-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	m := NewMetrics()
	// Touch every vector so Gather lists it.
	m.Requests.WithLabelValues("t", "fast", "m", "routed", "default").Inc()
	m.DecisionDuration.WithLabelValues("total").Observe(1)
	m.ClassifierSource.WithLabelValues("embedded").Inc()
	m.PolicyErrors.WithLabelValues("error").Inc()
	m.Rejections.WithLabelValues("x").Inc()
	m.Reloads.WithLabelValues("config", "success").Inc()
	m.Tokens.WithLabelValues("input", "m", "false").Inc()
	m.CostUSD.WithLabelValues("m", "t").Inc()
	m.BaselineCostUSD.WithLabelValues("t").Inc()
	m.Escalations.WithLabelValues("t", "r").Inc()
	m.UpstreamStatus.WithLabelValues("t", "m", "2xx").Inc()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, mf := range mfs {
		known[mf.GetName()] = true
	}
	re := regexp.MustCompile(`\b(switchyard_[a-z0-9_]+|gen_ai_[a-z0-9_]+)`)
	n := 0
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			for _, name := range re.FindAllString(tg.Expr, -1) {
				n++
				base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
				if !known[base] {
					t.Errorf("panel %q queries %s, which is not exported", p.Title, name)
				}
			}
		}
	}
	if n < 10 {
		t.Errorf("dashboard references only %d metrics", n)
	}
}
