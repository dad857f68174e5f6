package envoysim

import (
	"errors"
	"os"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/switchyard-llm/switchyard/test/fakeprovider"
)

func TestLoadRejectsWhatIsNotEmulated(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string
		want string
	}{
		{"unknown field", buildYAML(cfgParts{filters: extProcYAML("no_such_field: 1")}), "no_such_field"},
		{"observability_mode", buildYAML(cfgParts{filters: extProcYAML("observability_mode: true")}), "observability_mode"},
		{"BUFFERED_PARTIAL", buildYAML(cfgParts{filters: extProcYAML("processing_mode: {request_body_mode: BUFFERED_PARTIAL}")}), "BUFFERED_PARTIAL"},
		{"FULL_DUPLEX_STREAMED", buildYAML(cfgParts{filters: extProcYAML("processing_mode: {request_body_mode: FULL_DUPLEX_STREAMED, request_trailer_mode: SEND}")}), "FULL_DUPLEX_STREAMED"},
		{"trailers SEND", buildYAML(cfgParts{filters: extProcYAML("processing_mode: {response_trailer_mode: SEND}")}), "trailer mode SEND"},
		{"unsupported attribute", buildYAML(cfgParts{filters: extProcYAML("request_attributes: ['connection.mtls']")}), "connection.mtls"},
		{"hedge_policy", buildYAML(cfgParts{routes: "- match: {prefix: /}\n  route: {cluster: backend, hedge_policy: {hedge_on_per_try_timeout: true}}\n"}), "hedge_policy"},
		{"typed_per_filter_config", buildYAML(cfgParts{routes: "- match: {prefix: /}\n  route: {cluster: backend}\n  typed_per_filter_config: {envoy.filters.http.ext_proc: {\"@type\": type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExtProcPerRoute, disabled: true}}\n"}), "typed_per_filter_config"},
		{"lb_policy", buildYAML(cfgParts{backendExtra: "lb_policy: RANDOM"}), "lb_policy"},
		{"success rate detection", buildYAML(cfgParts{backendExtra: "outlier_detection: {enforcing_success_rate: 100}"}), "enforcing_success_rate"},
		{"retry_on unknown", buildYAML(cfgParts{routes: retryRoutes("retry_on: envoy-ratelimited")}), "envoy-ratelimited"},
		{"route to unknown cluster", buildYAML(cfgParts{routes: "- match: {prefix: /}\n  route: {cluster: nope}\n"}), "unknown cluster"},
		{"upstream filters without codec last", strings.Replace(buildYAML(cfgParts{upstreamProc: "message_timeout: 1s"}), "envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec", "envoy.extensions.filters.http.router.v3.Router", 1), "upstream http filter"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to name %q", err, tc.want)
			}
		})
	}
	t.Run("TLS needs PlaintextTLS", func(t *testing.T) {
		y := buildYAML(cfgParts{backendExtra: "transport_socket: {name: envoy.transport_sockets.tls}"})
		cfg, err := Load([]byte(y))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := New(cfg, Options{}); !errors.Is(err, ErrUnsupported) {
			t.Fatalf("New without PlaintextTLS: %v", err)
		}
		e, err := New(cfg, Options{PlaintextTLS: true})
		if err != nil {
			t.Fatal(err)
		}
		_ = e.Close()
	})
}

func TestShortDebugStringOfMetadata(t *testing.T) {
	s, _ := structpb.NewStruct(map[string]any{"b": 1.5, "a": "x\"y", "c": true, "d": map[string]any{"e": nil}, "f": []any{"g", 2.0}})
	md := &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"ns": s, "empty": {}}}
	want := `filter_metadata { key: "empty" value { } } filter_metadata { key: "ns" value { fields { key: "a" value { string_value: "x\"y" } } fields { key: "b" value { number_value: 1.5 } } fields { key: "c" value { bool_value: true } } fields { key: "d" value { struct_value { fields { key: "e" value { null_value: NULL_VALUE } } } } } fields { key: "f" value { list_value { values { string_value: "g" } values { number_value: 2 } } } } } }`
	if got := shortDebugMetadata(md); got != want {
		t.Fatalf("\n got %s\nwant %s", got, want)
	}
	x, err := parseAttr("xds.upstream_host_metadata.filter_metadata['ns']")
	if err != nil {
		t.Fatal(err)
	}
	v, ok := x.eval(&attrCtx{host: &endpointModel{metadata: md}})
	if !ok || toProtoValue(v).GetStringValue() != "CelMap value" {
		t.Fatalf("map attribute = %v", v)
	}
}

func FuzzLoad(f *testing.F) {
	sketch, err := os.ReadFile("testdata/envoy-sketch.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sketch)
	f.Add([]byte(buildYAML(cfgParts{filters: extProcYAML(bufferedMode), upstreamProc: upstreamMode})))
	f.Add([]byte("static_resources: {}"))
	f.Add([]byte("{"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = Load(b) // must not panic
	})
}

func FuzzParseAttr(f *testing.F) {
	for _, s := range []string{"request.path", "xds.upstream_host_metadata.filter_metadata['a']['b']", "request.headers[\"x\"]", "a[", "['x']"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		x, err := parseAttr(s)
		if err == nil {
			_, _ = x.eval(&attrCtx{req: &headerMap{}, host: &endpointModel{}, cluster: &clusterModel{}})
		}
	})
}

// TestSketchEndToEnd loads the shared sketch bootstrap, points its
// addresses at loopback servers and routes one request through a scripted
// router-role processor (BUFFERED body → x-switchyard-target + clear_route_cache)
// and the upstream-role processor to a fake provider.
func TestSketchEndToEnd(t *testing.T) {
	cfg, err := LoadFile("testdata/envoy-sketch.yaml")
	if err != nil {
		t.Fatal(err)
	}
	vendorA := fakeprovider.New("vendor-a", fakeprovider.Script{})
	vendorB := fakeprovider.New("vendor-b", fakeprovider.Script{})
	for _, s := range []*fakeprovider.Server{vendorA, vendorB} {
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
	}
	proc := startProc(t, func(_ *streamRec, _ int, req *extprocv3.ProcessingRequest) step {
		upstream := req.GetAttributes() != nil
		switch {
		case req.GetRequestBody() != nil && !upstream:
			cr := &extprocv3.CommonResponse{HeaderMutation: mut(setHdr("x-switchyard-target", "reasoning")), ClearRouteCache: true}
			r := answer(req, cr)
			r.DynamicMetadata = &structpb.Struct{Fields: map[string]*structpb.Value{"switchyard": structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{"target": structpb.NewStringValue("reasoning")}})}}
			return reply(r)
		case req.GetRequestHeaders() != nil && upstream:
			return reply(answer(req, &extprocv3.CommonResponse{HeaderMutation: mut(setHdr("authorization", "Bearer test-key"))}))
		}
		return continueAll(req)
	})
	var logs []AccessLogEntry
	env, err := New(cfg, Options{AddressOverrides: map[string]string{
		"127.0.0.1:50051":      proc.addr,
		"vendor-a.internal:80": vendorA.Addr(),
		"vendor-b.internal:80": vendorB.Addr(),
	}, AccessLog: func(e AccessLogEntry) { logs = append(logs, e) }})
	if err != nil {
		t.Fatal(err)
	}
	addr, err := env.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, env: env, url: "http://" + addr, client: newClient(t)}
	r := h.post(`{"model":"auto","messages":[{"role":"user","content":"hi"}]}`, nil)
	if err := env.Close(); err != nil {
		t.Fatal(err)
	}
	if r.status != 200 || !strings.Contains(r.body, "Hello from vendor-a.") {
		t.Fatalf("got %d %q", r.status, r.body)
	}
	reqs := vendorA.Requests()
	if len(reqs) != 1 || reqs[0].Header.Get("Authorization") != "Bearer test-key" || reqs[0].Model != "auto" {
		t.Fatalf("vendor-a saw %+v", reqs)
	}
	if len(logs) != 1 || logs[0].Cluster != "target-reasoning" || logs[0].DynamicMetadata["switchyard"]["target"] != "reasoning" {
		t.Fatalf("access log %+v", logs)
	}
}
