package telemetry

import (
	"testing"
	"time"
)

// gathered returns metric family name's series keyed by their label values
// in label-name order, each followed by "/", → value
// (counter value or histogram sample count).
func gathered(t *testing.T, m *Metrics, name string) map[string]float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, mt := range mf.GetMetric() {
			key := ""
			for _, l := range mt.GetLabel() {
				key += l.GetValue() + "/"
			}
			if h := mt.GetHistogram(); h != nil {
				out[key] = float64(h.GetSampleCount())
			} else {
				out[key] = mt.GetCounter().GetValue()
			}
		}
	}
	return out
}

// The pre-resolved series must be the same ones the label lookup reaches,
// and values outside the known sets must still be counted.
func TestPreResolvedSeries(t *testing.T) {
	m := NewMetrics()
	m.StreamEnded("router", "ok")
	m.StreamEnded("router", "ok")
	m.StreamEnded("upstream", "canceled")
	m.StreamEnded("router", "surprise")
	m.Streams.WithLabelValues("router", "ok").Inc() // the same series as StreamEnded's
	streams := gathered(t, m, "switchyard_streams_total")
	for key, want := range map[string]float64{"ok/router/": 3, "canceled/upstream/": 1, "surprise/router/": 1, "error/router/": 0} {
		if streams[key] != want {
			t.Errorf("streams %s = %v, want %v (all: %v)", key, streams[key], want, streams)
		}
	}

	m.ObservePhase(PhaseTotal, 3*time.Millisecond)
	m.ObservePhase(PhaseTotal, time.Millisecond)
	m.ObservePhase("custom", time.Millisecond)
	phases := gathered(t, m, "switchyard_decision_duration_seconds")
	for key, want := range map[string]float64{"total/": 2, "custom/": 1, "policy/": 0} {
		if phases[key] != want {
			t.Errorf("phase %s: %v samples, want %v (all: %v)", key, phases[key], want, phases)
		}
	}
}
