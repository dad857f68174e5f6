package e2e

import (
	"testing"
)

// TestEndToEnd starts one Switchyard, its fake providers and envoysim on the
// checked-in envoy/envoy.yaml, and runs every scenario against them in
// order (building Switchyard trains the classifier and compiles the policy,
// which is the slow part under -race). Scenarios reset the provider scripts
// and, where they touch outlier state, heal it afterwards.
func TestEndToEnd(t *testing.T) {
	t.Setenv("VENDOR_A_API_KEY", vendorAKey)
	t.Setenv("VENDOR_B_API_KEY", vendorBKey)
	h := startHarness(t)

	t.Run("Issue3", func(t *testing.T) {
		t.Run("AutoLandsOnChosenProvider", func(t *testing.T) { testAutoLandsOnChosenProvider(t, h.with(t)) })
		t.Run("InvalidBodyIsOpenAIError", func(t *testing.T) { testInvalidBodyIsOpenAIError(t, h.with(t)) })
		t.Run("StreamingIsChunkByChunk", func(t *testing.T) { testStreamingIsChunkByChunk(t, h.with(t)) })
	})
	t.Run("Issue6", func(t *testing.T) {
		t.Run("OutageFailsOverToVendorB", func(t *testing.T) { testOutageFailsOver(t, h.with(t)) })
		t.Run("OutlierEjectionSkipsVendorA", func(t *testing.T) { testOutlierEjection(t, h.with(t)) })
		t.Run("LatencyGuardrail", func(t *testing.T) { testLatencyGuardrail(t, h.with(t)) })
		t.Run("CascadeEscalatesInvalidJSON", func(t *testing.T) { testCascadeEscalates(t, h.with(t)) })
		t.Run("CascadeKeepsValidCheapAnswer", func(t *testing.T) { testCascadeKeepsCheapAnswer(t, h.with(t)) })
		t.Run("PIIStaysOnPrem", func(t *testing.T) { testPIIStaysOnPrem(t, h.with(t)) })
		t.Run("SecretIsDenied", func(t *testing.T) { testSecretDenied(t, h.with(t)) })
		t.Run("PromptInjectionIsDenied", func(t *testing.T) { testInjectionDenied(t, h.with(t)) })
	})
	t.Run("Issue7", func(t *testing.T) {
		t.Run("StreamingUsageCountedOnce", func(t *testing.T) { testStreamingUsage(t, h.with(t)) })
		t.Run("NonStreamingUsageAndCost", func(t *testing.T) { testNonStreamingUsageAndCost(t, h.with(t)) })
		t.Run("MetricsMatchMixedRun", func(t *testing.T) { testMetricsMatchMixedRun(t, h.with(t)) })
	})
	t.Run("Savings", func(t *testing.T) { testSavings(t, h.with(t)) })
}
