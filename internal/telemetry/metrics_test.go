package telemetry

import (
	"strconv"
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

func TestClassifiedAndCountRequest(t *testing.T) {
	m := NewMetrics()
	m.Classified("embedded")
	m.Classified("cache")
	m.Classified("cache")
	m.Classified("novel")
	m.ClassifierSource.WithLabelValues("cache").Inc() // the same series as Classified's
	src := gathered(t, m, "switchyard_classifier_requests_total")
	for key, want := range map[string]float64{"embedded/": 1, "cache/": 3, "novel/": 1, "llm/": 0} {
		if src[key] != want {
			t.Errorf("classifier source %s = %v, want %v (all: %v)", key, src[key], want, src)
		}
	}

	calls := 0
	labels := func(k RequestKey) [5]string {
		calls++
		reason := k.Reason
		if reason == "" {
			reason = "none"
		}
		return [5]string{k.Target, k.Tier, k.Model, k.Outcome, reason}
	}
	a := RequestKey{Target: "fast", Tier: "fast", Model: "m1", Outcome: "routed", Reason: "default"}
	b := RequestKey{Target: "fast", Tier: "fast", Model: "m1", Outcome: "routed"}
	for range 3 {
		m.CountRequest(a, labels)
	}
	m.CountRequest(b, labels)
	if calls != 2 {
		t.Errorf("labels resolved %d times for two keys, want 2", calls)
	}
	// Past the bound every new key is still counted, only not remembered.
	for i := range maxRequestSeries + 10 {
		m.CountRequest(RequestKey{Target: "t", Tier: "t", Model: "m", Outcome: "routed", Reason: "r" + strconv.Itoa(i)}, labels)
	}
	m.CountRequest(RequestKey{Target: "t", Tier: "t", Model: "m", Outcome: "routed", Reason: "r5"}, labels)
	if n := len(*m.requests.Load()); n != maxRequestSeries {
		t.Errorf("%d series remembered, want the bound %d", n, maxRequestSeries)
	}
	reqs := gathered(t, m, "switchyard_requests_total")
	// Label order is by name: model, outcome, reason, target, tier.
	for key, want := range map[string]float64{
		"m1/routed/default/fast/fast/": 3, "m1/routed/none/fast/fast/": 1,
		"m/routed/r5/t/t/": 2, "m/routed/r1030/t/t/": 1,
	} {
		if reqs[key] != want {
			t.Errorf("requests %s = %v, want %v", key, reqs[key], want)
		}
	}
}
