package envoyconf

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	previouspriv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/priority/previous_priorities/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	upstreamsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"

	"github.com/switchyard-llm/switchyard/internal/config"
)

// snapFrom compiles a config file given as YAML text.
func snapFrom(t testing.TB, yamlText string) *config.Snapshot {
	t.Helper()
	cfg, err := config.Parse([]byte(yamlText), "test.yaml")
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	s, err := config.Compile(cfg, "test.yaml")
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return s
}

func defaultSnap(t testing.TB) *config.Snapshot {
	t.Helper()
	cfg, err := config.Load("")
	if err != nil {
		t.Fatal(err)
	}
	s, err := config.Compile(cfg, config.DefaultName)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const singleModelYAML = `
version: 1
server: {max_body_bytes: 1048576, grpc_max_message_bytes: 2097152}
providers:
  local: {address: "10.0.0.7:8000", onprem: true}
models:
  - {name: m1, tier: fast, provider: local, upstream_model: llama}
targets:
  only: {models: [m1], slo: 3s}
routing: {default_target: only}
envoy: {listener_port: 8081, admin_port: 9902, switchyard_addr: "switchyard.svc:50051", message_timeout: 350ms, retriable_status_codes: [429, 409]}
`

const tlsMixYAML = `
version: 1
providers:
  a: {address: "api.a.example:443", tls: true}
  b: {address: "api.b.example:8443", tls: true, host: "gw.b.example"}
  plain: {address: "llm.internal:80"}
models:
  - {name: a1, tier: fast, provider: a}
  - {name: b1, tier: fast, provider: b, upstream_model: b-small}
  - {name: p1, tier: specialist, provider: plain}
  - {name: a2, tier: reasoning, provider: a, address: "eu.api.a.example:443"}
targets:
  mix: {models: [a1, b1, p1], slo: 2s, retries: 4}
  eu: {models: [a2, a1], slo: 9s, timeout: 10m, judge: {json: true}}
routing: {default_target: mix}
`

func manyTargetsYAML(n int) string {
	var b strings.Builder
	b.WriteString("version: 1\nproviders:\n  p: {address: \"p.example:80\"}\nmodels:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - {name: m%d, tier: fast, provider: p}\n", i)
	}
	b.WriteString("targets:\n")
	for i := range n {
		fmt.Fprintf(&b, "  t%02d: {models: [m%d, m%d], slo: %ds}\n", i, i, (i+1)%n, i+1)
	}
	b.WriteString("routing: {default_target: t00}\n")
	return b.String()
}

// parts pulls the typed pieces out of a bootstrap.
type parts struct {
	hcm      *hcmv3.HttpConnectionManager
	routes   []*routev3.Route
	clusters map[string]*clusterv3.Cluster
	order    []string
}

func split(t *testing.T, b *bootstrapv3.Bootstrap) parts {
	t.Helper()
	var p parts
	ls := b.GetStaticResources().GetListeners()
	if len(ls) != 1 {
		t.Fatalf("listeners = %d, want 1", len(ls))
	}
	p.hcm = &hcmv3.HttpConnectionManager{}
	if err := ls[0].GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(p.hcm); err != nil {
		t.Fatal(err)
	}
	p.routes = p.hcm.GetRouteConfig().GetVirtualHosts()[0].GetRoutes()
	p.clusters = map[string]*clusterv3.Cluster{}
	for _, c := range b.GetStaticResources().GetClusters() {
		p.clusters[c.GetName()] = c
		p.order = append(p.order, c.GetName())
	}
	return p
}

func httpOptions(t *testing.T, c *clusterv3.Cluster) *upstreamsv3.HttpProtocolOptions {
	t.Helper()
	var h upstreamsv3.HttpProtocolOptions
	if err := c.GetTypedExtensionProtocolOptions()[httpOptionsKey].UnmarshalTo(&h); err != nil {
		t.Fatalf("%s: %v", c.GetName(), err)
	}
	return &h
}

func extProc(t *testing.T, f *hcmv3.HttpFilter) *extprocv3.ExternalProcessor {
	t.Helper()
	var ep extprocv3.ExternalProcessor
	if err := f.GetTypedConfig().UnmarshalTo(&ep); err != nil {
		t.Fatalf("%s: %v", f.GetName(), err)
	}
	return &ep
}

// TestGeneratedConfigs checks, for several configs, that the bootstrap
// encodes each target the way the design says, and that it validates,
// renders deterministically and round-trips through strict decoding.
func TestGeneratedConfigs(t *testing.T) {
	cases := []struct {
		name string
		snap func(t *testing.T) *config.Snapshot
	}{
		{"default", func(t *testing.T) *config.Snapshot { return defaultSnap(t) }},
		{"single model target", func(t *testing.T) *config.Snapshot { return snapFrom(t, singleModelYAML) }},
		{"tls and plaintext mixed", func(t *testing.T) *config.Snapshot { return snapFrom(t, tlsMixYAML) }},
		{"many targets", func(t *testing.T) *config.Snapshot { return snapFrom(t, manyTargetsYAML(12)) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			snap := tc.snap(t)
			b, err := Bootstrap(snap)
			if err != nil {
				t.Fatal(err)
			}
			if err := Validate(b); err != nil {
				t.Fatal(err)
			}
			checkBootstrap(t, snap, b)
			for _, format := range []string{"yaml", "json"} {
				out, err := Render(b, format)
				if err != nil {
					t.Fatal(err)
				}
				again, _ := Render(b, format)
				if !bytes.Equal(out, again) {
					t.Fatalf("%s rendering is not deterministic", format)
				}
				back, err := Parse(out)
				if err != nil {
					t.Fatalf("%s does not re-decode strictly: %v", format, err)
				}
				// Any holds bytes whose map order is not stable, so compare
				// the canonical JSON rather than proto.Equal.
				j1, _ := canonicalJSON(b)
				j2, _ := canonicalJSON(back)
				if !bytes.Equal(j1, j2) {
					t.Fatalf("%s round trip changed the bootstrap", format)
				}
			}
			gen, err := Generate(snap, "yaml")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(gen, []byte(GeneratedHeader)) {
				t.Fatalf("yaml lacks the generated header")
			}
		})
	}
}

func checkBootstrap(t *testing.T, snap *config.Snapshot, b *bootstrapv3.Bootstrap) {
	t.Helper()
	cfg := snap.Config
	p := split(t, b)
	if got := b.GetAdmin().GetAddress().GetSocketAddress(); got.GetAddress() != "127.0.0.1" || int(got.GetPortValue()) != cfg.Envoy.AdminPort {
		t.Errorf("admin = %v, want 127.0.0.1:%d", got, cfg.Envoy.AdminPort)
	}
	l := b.GetStaticResources().GetListeners()[0]
	if sa := l.GetAddress().GetSocketAddress(); sa.GetAddress() != "0.0.0.0" || int(sa.GetPortValue()) != cfg.Envoy.ListenerPort {
		t.Errorf("listener = %v, want 0.0.0.0:%d", sa, cfg.Envoy.ListenerPort)
	}
	if got := int64(l.GetPerConnectionBufferLimitBytes().GetValue()); got != cfg.Server.MaxBodyBytes {
		t.Errorf("per_connection_buffer_limit_bytes = %d, want server.max_body_bytes %d", got, cfg.Server.MaxBodyBytes)
	}

	// Downstream filters: router-role ext_proc then router.
	fs := p.hcm.GetHttpFilters()
	if len(fs) != 2 || fs[0].GetName() != ExtProcFilterName || fs[1].GetName() != routerName {
		t.Fatalf("http_filters = %v", fs)
	}
	rr := extProc(t, fs[0])
	if len(rr.GetRequestAttributes()) != 0 {
		t.Errorf("router-role ext_proc requests attributes %v", rr.GetRequestAttributes())
	}
	checkExtProcCommon(t, cfg, rr, "router")

	// Routes: one per target in TargetNames order, then the catch-all.
	if len(p.routes) != len(snap.TargetNames)+1 {
		t.Fatalf("routes = %d, want %d", len(p.routes), len(snap.TargetNames)+1)
	}
	for i, name := range snap.TargetNames {
		ti, _ := snap.Target(name)
		checkRoute(t, cfg, ti, p.routes[i])
	}
	last := p.routes[len(p.routes)-1]
	if last.GetMatch().GetPrefix() != "/v1/" || len(last.GetMatch().GetHeaders()) != 0 ||
		last.GetDirectResponse().GetStatus() != 503 ||
		!strings.Contains(last.GetDirectResponse().GetBody().GetInlineString(), `"code":"no_target"`) {
		t.Errorf("catch-all route = %v", last)
	}

	// Clusters: switchyard then one per target.
	if len(p.order) != len(snap.TargetNames)+1 || p.order[0] != SwitchyardCluster {
		t.Fatalf("clusters = %v", p.order)
	}
	sy := p.clusters[SwitchyardCluster]
	if !(httpOptions(t, sy).GetExplicitHttpConfig().GetHttp2ProtocolOptions() != nil) {
		t.Errorf("switchyard cluster is not HTTP/2")
	}
	sa := sy.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
	if fmt.Sprintf("%s:%d", sa.GetAddress(), sa.GetPortValue()) != cfg.Envoy.SwitchyardAddr {
		t.Errorf("switchyard endpoint = %v, want %s", sa, cfg.Envoy.SwitchyardAddr)
	}
	for _, name := range snap.TargetNames {
		ti, _ := snap.Target(name)
		checkCluster(t, cfg, ti, p.clusters[TargetCluster(name)])
	}
}

func checkExtProcCommon(t *testing.T, cfg *config.Config, ep *extprocv3.ExternalProcessor, role string) {
	t.Helper()
	pm := ep.GetProcessingMode()
	if pm.GetRequestHeaderMode() != extprocv3.ProcessingMode_SEND || pm.GetRequestBodyMode() != extprocv3.ProcessingMode_BUFFERED ||
		pm.GetResponseHeaderMode() != extprocv3.ProcessingMode_SEND || pm.GetResponseBodyMode() != extprocv3.ProcessingMode_NONE {
		t.Errorf("%s processing_mode = %v", role, pm)
	}
	if !ep.GetAllowModeOverride() || ep.GetFailureModeAllow() {
		t.Errorf("%s: allow_mode_override=%v failure_mode_allow=%v", role, ep.GetAllowModeOverride(), ep.GetFailureModeAllow())
	}
	if got := ep.GetMessageTimeout().AsDuration(); got != cfg.Envoy.MessageTimeout.D() {
		t.Errorf("%s message_timeout = %v, want %v", role, got, cfg.Envoy.MessageTimeout)
	}
	if got := ep.GetMetadataOptions().GetReceivingNamespaces().GetUntyped(); len(got) != 1 || got[0] != MetadataNamespace {
		t.Errorf("%s receiving_namespaces = %v", role, got)
	}
	if ep.GetGrpcService().GetEnvoyGrpc().GetClusterName() != SwitchyardCluster {
		t.Errorf("%s grpc cluster = %q", role, ep.GetGrpcService().GetEnvoyGrpc().GetClusterName())
	}
}

func checkRoute(t *testing.T, cfg *config.Config, ti *config.TargetInfo, r *routev3.Route) {
	t.Helper()
	m := r.GetMatch()
	h := m.GetHeaders()
	if m.GetPrefix() != "/v1/" || len(h) != 1 || h[0].GetName() != TargetHeader || h[0].GetStringMatch().GetExact() != ti.Name {
		t.Errorf("route %s match = %v", ti.Name, m)
	}
	ra := r.GetRoute()
	if ra.GetCluster() != TargetCluster(ti.Name) {
		t.Errorf("route %s cluster = %q", ti.Name, ra.GetCluster())
	}
	if ra.GetTimeout().AsDuration() != ti.Target.Timeout.D() {
		t.Errorf("route %s timeout = %v, want %v", ti.Name, ra.GetTimeout().AsDuration(), ti.Target.Timeout)
	}
	rp := ra.GetRetryPolicy()
	if rp.GetPerTryTimeout().AsDuration() != ti.Target.SLO.D() {
		t.Errorf("route %s per_try_timeout = %v, want SLO %v", ti.Name, rp.GetPerTryTimeout().AsDuration(), ti.Target.SLO)
	}
	want := uint32(max(len(ti.Models)-1, 1))
	if ti.Target.Retries != nil {
		want = uint32(*ti.Target.Retries)
	}
	if rp.GetNumRetries().GetValue() != want {
		t.Errorf("route %s num_retries = %d, want %d", ti.Name, rp.GetNumRetries().GetValue(), want)
	}
	for _, cond := range []string{"5xx", "reset", "connect-failure", "retriable-status-codes"} {
		if !strings.Contains(","+rp.GetRetryOn()+",", ","+cond+",") {
			t.Errorf("route %s retry_on %q lacks %s", ti.Name, rp.GetRetryOn(), cond)
		}
	}
	if fmt.Sprint(rp.GetRetriableStatusCodes()) != fmt.Sprint(cfg.Envoy.RetriableStatus) {
		t.Errorf("route %s retriable_status_codes = %v, want %v", ti.Name, rp.GetRetriableStatusCodes(), cfg.Envoy.RetriableStatus)
	}
	if rp.GetRetryBackOff().GetBaseInterval() == nil {
		t.Errorf("route %s has no retry_back_off", ti.Name)
	}
	if len(ti.Models) > 1 {
		var pp previouspriv3.PreviousPrioritiesConfig
		if rp.GetRetryPriority().GetName() != "envoy.retry_priorities.previous_priorities" ||
			rp.GetRetryPriority().GetTypedConfig().UnmarshalTo(&pp) != nil || pp.GetUpdateFrequency() != 1 {
			t.Errorf("route %s retry_priority = %v", ti.Name, rp.GetRetryPriority())
		}
	} else if rp.GetRetryPriority() != nil {
		t.Errorf("single-model route %s has a retry_priority", ti.Name)
	}
	hasEsc := len(rp.GetRetriableHeaders()) == 1 && rp.GetRetriableHeaders()[0].GetName() == EscalatedHeader
	if hasEsc != ti.Cascade || strings.Contains(rp.GetRetryOn(), "retriable-headers") != ti.Cascade {
		t.Errorf("route %s: cascade=%v but retriable headers %v / retry_on %q", ti.Name, ti.Cascade, rp.GetRetriableHeaders(), rp.GetRetryOn())
	}
	if !ra.GetAutoHostRewrite().GetValue() {
		t.Errorf("route %s lacks auto_host_rewrite", ti.Name)
	}
}

func checkCluster(t *testing.T, cfg *config.Config, ti *config.TargetInfo, c *clusterv3.Cluster) {
	t.Helper()
	if c == nil {
		t.Fatalf("no cluster for target %s", ti.Name)
	}
	if c.GetType() != clusterv3.Cluster_STRICT_DNS {
		t.Errorf("%s type = %v", c.GetName(), c.GetType())
	}
	eps := c.GetLoadAssignment().GetEndpoints()
	if len(eps) != len(ti.Models) {
		t.Fatalf("%s has %d priority levels, want %d", c.GetName(), len(eps), len(ti.Models))
	}
	matches := map[string]*clusterv3.Cluster_TransportSocketMatch{}
	for _, m := range c.GetTransportSocketMatches() {
		matches[m.GetMatch().GetFields()[TransportSocketMatchKey].GetStringValue()] = m
	}
	for i, lle := range eps {
		m := ti.Models[i]
		if int(lle.GetPriority()) != i || len(lle.GetLbEndpoints()) != 1 {
			t.Fatalf("%s endpoints[%d] priority %d with %d endpoints", c.GetName(), i, lle.GetPriority(), len(lle.GetLbEndpoints()))
		}
		lbe := lle.GetLbEndpoints()[0]
		sa := lbe.GetEndpoint().GetAddress().GetSocketAddress()
		if fmt.Sprintf("%s:%d", sa.GetAddress(), sa.GetPortValue()) != strings.Trim(m.Addr, "[]") && !strings.HasSuffix(m.Addr, fmt.Sprintf(":%d", sa.GetPortValue())) {
			t.Errorf("%s p%d address %v, want %s", c.GetName(), i, sa, m.Addr)
		}
		md := lbe.GetMetadata().GetFilterMetadata()[MetadataNamespace].AsMap()
		want := map[string]any{
			MetaModel: m.Name, MetaUpstreamModel: m.UpstreamModel, MetaProvider: m.ProviderName,
			MetaTier: m.Tier, MetaTarget: ti.Name, MetaPriority: float64(i),
			MetaLast: i == len(ti.Models)-1, MetaCascade: ti.Cascade, MetaHost: UpstreamHost(m),
		}
		for k, v := range want {
			if md[k] != v {
				t.Errorf("%s p%d metadata %s = %v, want %v", c.GetName(), i, k, md[k], v)
			}
		}
		sel := lbe.GetMetadata().GetFilterMetadata()[transportSocketMatchNS]
		if !m.Provider.TLS {
			if sel != nil {
				t.Errorf("%s p%d: plaintext model %s selects TLS %v", c.GetName(), i, m.Name, sel.AsMap())
			}
			continue
		}
		sni := sel.GetFields()[TransportSocketMatchKey].GetStringValue()
		tm := matches[sni]
		if tm == nil {
			t.Fatalf("%s p%d: TLS model %s selects %q, no such match", c.GetName(), i, m.Name, sni)
		}
		var tc tlsv3.UpstreamTlsContext
		if err := tm.GetTransportSocket().GetTypedConfig().UnmarshalTo(&tc); err != nil {
			t.Fatal(err)
		}
		host := strings.Split(UpstreamHost(m), ":")[0]
		vc := tc.GetCommonTlsContext().GetValidationContext()
		if tc.GetSni() != host || vc.GetTrustedCa().GetFilename() == "" ||
			vc.GetMatchTypedSubjectAltNames()[0].GetMatcher().GetExact() != host {
			t.Errorf("%s p%d TLS = sni %q, validation %v; want %q verified", c.GetName(), i, tc.GetSni(), vc, host)
		}
	}
	od := c.GetOutlierDetection()
	o := cfg.Envoy.Outlier
	if int(od.GetConsecutive_5Xx().GetValue()) != o.Consecutive5xx ||
		int(od.GetConsecutiveGatewayFailure().GetValue()) != o.ConsecutiveGatewayFailure ||
		od.GetEnforcingConsecutiveGatewayFailure().GetValue() != 100 ||
		od.GetBaseEjectionTime().AsDuration() != o.BaseEjectionTime.D() ||
		od.GetInterval().AsDuration() != o.Interval.D() ||
		int(od.GetMaxEjectionPercent().GetValue()) != o.MaxEjectionPercent {
		t.Errorf("%s outlier_detection = %v, want %+v", c.GetName(), od, o)
	}
	if c.GetCircuitBreakers().GetThresholds()[0].GetMaxRetries().GetValue() < 100 {
		t.Errorf("%s leaves retries at Envoy's default circuit breaker of 3", c.GetName())
	}
	fs := httpOptions(t, c).GetHttpFilters()
	if len(fs) != 2 || fs[0].GetName() != ExtProcFilterName || fs[1].GetName() != upstreamCodecName {
		t.Fatalf("%s http_filters = %v", c.GetName(), fs)
	}
	up := extProc(t, fs[0])
	if fmt.Sprint(up.GetRequestAttributes()) != fmt.Sprint(UpstreamRequestAttributes) {
		t.Errorf("%s upstream request_attributes = %v", c.GetName(), up.GetRequestAttributes())
	}
	if !up.GetMutationRules().GetAllowAllRouting().GetValue() || up.GetMutationRules().GetAllowEnvoy().GetValue() {
		t.Errorf("%s upstream mutation_rules = %v", c.GetName(), up.GetMutationRules())
	}
	checkExtProcCommon(t, cfg, up, "upstream "+c.GetName())
}

func TestUpstreamHost(t *testing.T) {
	mi := func(addr string, tls bool, host string) *config.ModelInfo {
		return &config.ModelInfo{Addr: addr, Provider: config.Provider{TLS: tls, Host: host}}
	}
	cases := []struct {
		name string
		m    *config.ModelInfo
		want string
		sni  string
	}{
		{"tls default port", mi("api.x.example:443", true, ""), "api.x.example", "api.x.example"},
		{"tls other port", mi("api.x.example:8443", true, ""), "api.x.example:8443", "api.x.example"},
		{"plain default port", mi("llm.local:80", false, ""), "llm.local", "llm.local"},
		{"plain other port", mi("vllm.svc:8000", false, ""), "vllm.svc:8000", "vllm.svc"},
		{"tls on port 80 keeps it", mi("odd.example:80", true, ""), "odd.example:80", "odd.example"},
		{"host override", mi("10.1.2.3:443", true, "api.y.example"), "api.y.example", "api.y.example"},
		{"ipv6", mi("[fd00::1]:8000", false, ""), "[fd00::1]:8000", "fd00::1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := UpstreamHost(tc.m); got != tc.want {
				t.Errorf("UpstreamHost = %q, want %q", got, tc.want)
			}
			if got := tlsServerName(tc.m); got != tc.sni {
				t.Errorf("tlsServerName = %q, want %q", got, tc.sni)
			}
		})
	}
}

func TestSettingsFollowConfig(t *testing.T) {
	b, err := Bootstrap(snapFrom(t, singleModelYAML))
	if err != nil {
		t.Fatal(err)
	}
	p := split(t, b)
	if v := b.GetStaticResources().GetListeners()[0].GetPerConnectionBufferLimitBytes().GetValue(); v != 1048576 {
		t.Errorf("buffer limit = %d, want 1048576", v)
	}
	sy := p.clusters[SwitchyardCluster]
	if sy.GetType() != clusterv3.Cluster_STRICT_DNS {
		t.Errorf("a host name switchyard_addr gives %v, want STRICT_DNS", sy.GetType())
	}
	rp := p.routes[0].GetRoute().GetRetryPolicy()
	if rp.GetNumRetries().GetValue() != 1 || fmt.Sprint(rp.GetRetriableStatusCodes()) != "[429 409]" {
		t.Errorf("single model retries = %v, codes %v", rp.GetNumRetries(), rp.GetRetriableStatusCodes())
	}
	if p.hcm.GetStreamIdleTimeout() != nil {
		t.Errorf("short targets set stream_idle_timeout %v", p.hcm.GetStreamIdleTimeout())
	}

	// A target timeout above Envoy's 5 min stream idle default raises it.
	b, err = Bootstrap(snapFrom(t, tlsMixYAML))
	if err != nil {
		t.Fatal(err)
	}
	if got := split(t, b).hcm.GetStreamIdleTimeout().AsDuration(); got <= 10*time.Minute {
		t.Errorf("stream_idle_timeout = %v, want above the 10m target timeout", got)
	}
	if got := split(t, b).routes[1].GetRoute().GetRetryPolicy().GetNumRetries().GetValue(); got != 4 {
		t.Errorf("explicit retries: num_retries = %d, want 4", got)
	}
}

func TestGenerateErrors(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(s *config.Snapshot)
		want   string
	}{
		{"no host in switchyard_addr", func(s *config.Snapshot) { s.Config.Envoy.SwitchyardAddr = ":50051" }, "no host"},
		{"bad switchyard port", func(s *config.Snapshot) { s.Config.Envoy.SwitchyardAddr = "h:0" }, "invalid port"},
		{"listener port", func(s *config.Snapshot) { s.Config.Envoy.ListenerPort = 70000 }, "listener_port"},
		{"admin port", func(s *config.Snapshot) { s.Config.Envoy.AdminPort = -1 }, "admin_port"},
		{"body limit beyond 32 bits", func(s *config.Snapshot) { s.Config.Server.MaxBodyBytes = 1 << 33 }, "max_body_bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := snapFrom(t, singleModelYAML)
			tc.mutate(s)
			_, err := Generate(s, "yaml")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
	if _, err := Generate(nil, "yaml"); err == nil {
		t.Error("nil snapshot: no error")
	}
	if _, err := Generate(snapFrom(t, singleModelYAML), "toml"); err == nil {
		t.Error("unknown format: no error")
	}
}

func BenchmarkGenerate(b *testing.B) {
	snap := defaultSnap(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Generate(snap, "yaml"); err != nil {
			b.Fatal(err)
		}
	}
}

// TestAccessLogHasNoSecrets: the access log must never print a header that
// can carry a credential, nor a query string (some vendors take keys there).
func TestAccessLogHasNoSecrets(t *testing.T) {
	b, err := Bootstrap(defaultSnap(t))
	if err != nil {
		t.Fatal(err)
	}
	out, err := Render(b, "json")
	if err != nil {
		t.Fatal(err)
	}
	p := split(t, b)
	if len(p.hcm.GetAccessLog()) != 1 {
		t.Fatalf("access logs = %d, want 1", len(p.hcm.GetAccessLog()))
	}
	lower := strings.ToLower(string(out))
	for _, bad := range []string{"authorization", "api-key", "x-api-key", "cookie", "%req(:path)%", "%downstream_peer"} {
		if strings.Contains(lower, bad) {
			t.Errorf("generated config mentions %q", bad)
		}
	}
	if !strings.Contains(string(out), "%REQ_WITHOUT_QUERY(:PATH)%") {
		t.Error("access log does not log the path without its query")
	}
}
