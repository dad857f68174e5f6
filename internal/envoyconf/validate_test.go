package envoyconf

import (
	"errors"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	previouspriv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/priority/previous_priorities/v3"
	upstreamsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// edit unpacks a, lets f change the message, and packs it back.
func edit[M proto.Message](t *testing.T, a *anypb.Any, m M, f func(M)) {
	t.Helper()
	if err := a.UnmarshalTo(m); err != nil {
		t.Fatal(err)
	}
	f(m)
	packed, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	proto.Reset(a)
	proto.Merge(a, packed)
}

// fixture gives mutators typed access to a fresh default bootstrap.
type fixture struct {
	t *testing.T
	b *bootstrapv3.Bootstrap
}

func (f fixture) hcm(fn func(*hcmv3.HttpConnectionManager)) {
	a := f.b.GetStaticResources().GetListeners()[0].GetFilterChains()[0].GetFilters()[0].GetTypedConfig()
	edit(f.t, a, &hcmv3.HttpConnectionManager{}, fn)
}

// route edits the first target route (target "cascade" in the default config).
func (f fixture) route(fn func(*routev3.Route)) {
	f.hcm(func(h *hcmv3.HttpConnectionManager) { fn(h.GetRouteConfig().GetVirtualHosts()[0].GetRoutes()[0]) })
}

// target returns the first target cluster ("target-cascade", two models of
// one TLS provider).
func (f fixture) target() *clusterv3.Cluster { return f.b.GetStaticResources().GetClusters()[1] }

func (f fixture) upstreamOptions(fn func(*upstreamsv3.HttpProtocolOptions)) {
	edit(f.t, f.target().GetTypedExtensionProtocolOptions()[httpOptionsKey], &upstreamsv3.HttpProtocolOptions{}, fn)
}

func (f fixture) upstreamExtProc(fn func(*extprocv3.ExternalProcessor)) {
	f.upstreamOptions(func(h *upstreamsv3.HttpProtocolOptions) {
		edit(f.t, h.GetHttpFilters()[0].GetTypedConfig(), &extprocv3.ExternalProcessor{}, fn)
	})
}

func (f fixture) routerExtProc(fn func(*extprocv3.ExternalProcessor)) {
	f.hcm(func(h *hcmv3.HttpConnectionManager) {
		edit(f.t, h.GetHttpFilters()[0].GetTypedConfig(), &extprocv3.ExternalProcessor{}, fn)
	})
}

// TestValidateRejectsBrokenConfigs breaks one thing at a time in a generated
// bootstrap and requires Validate to fail naming it: the validator is not a
// rubber stamp, and it looks inside typed_config where ValidateAll does not.
func TestValidateRejectsBrokenConfigs(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(f fixture)
		want   []string // all must appear in the error
		// pgvBlind marks breakages ValidateAll on the bootstrap alone misses.
		pgvBlind bool
	}{
		{
			name: "negative per_try_timeout",
			mutate: func(f fixture) {
				f.route(func(r *routev3.Route) { r.GetRoute().GetRetryPolicy().PerTryTimeout = durationpb.New(-1e9) })
			},
			want: []string{"retry_policy.per_try_timeout", "negative duration"}, pgvBlind: true,
		},
		{
			name: "negative route timeout",
			mutate: func(f fixture) {
				f.route(func(r *routev3.Route) { r.GetRoute().Timeout = &durationpb.Duration{Seconds: -5} })
			},
			want: []string{"route.timeout", "negative"}, pgvBlind: true,
		},
		{
			name:   "empty cluster name",
			mutate: func(f fixture) { f.target().Name = "" },
			want:   []string{"clusters[1].name", "empty cluster name", "routes[0].route.cluster", `unknown cluster "target-cascade"`},
		},
		{
			name: "retry priority without update_frequency",
			mutate: func(f fixture) {
				f.route(func(r *routev3.Route) {
					edit(f.t, r.GetRoute().GetRetryPolicy().GetRetryPriority().GetTypedConfig(),
						&previouspriv3.PreviousPrioritiesConfig{}, func(p *previouspriv3.PreviousPrioritiesConfig) { p.UpdateFrequency = 0 })
				})
			},
			want: []string{"retry_priority.typed_config(envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig)", "UpdateFrequency"}, pgvBlind: true,
		},
		{
			name: "http_filters missing upstream_codec",
			mutate: func(f fixture) {
				f.upstreamOptions(func(h *upstreamsv3.HttpProtocolOptions) { h.HttpFilters = h.HttpFilters[:1] })
			},
			want: []string{"clusters[1].typed_extension_protocol_options", "http_filters", "must be envoy.filters.http.upstream_codec"}, pgvBlind: true,
		},
		{
			name: "upstream_codec not last",
			mutate: func(f fixture) {
				f.upstreamOptions(func(h *upstreamsv3.HttpProtocolOptions) {
					h.HttpFilters[0], h.HttpFilters[1] = h.HttpFilters[1], h.HttpFilters[0]
				})
			},
			want: []string{"http_filters[0]", "upstream_codec must be the last"}, pgvBlind: true,
		},
		{
			name: "router not last",
			mutate: func(f fixture) {
				f.hcm(func(h *hcmv3.HttpConnectionManager) {
					h.HttpFilters[0], h.HttpFilters[1] = h.HttpFilters[1], h.HttpFilters[0]
				})
			},
			want: []string{"http_filters[0]", "router must be the last"}, pgvBlind: true,
		},
		{
			name:   "upstream role without attributes",
			mutate: func(f fixture) { f.upstreamExtProc(func(e *extprocv3.ExternalProcessor) { e.RequestAttributes = nil }) },
			want:   []string{"http_filters[0].request_attributes", "upstream-role ext_proc must request attributes"}, pgvBlind: true,
		},
		{
			name: "router role with attributes",
			mutate: func(f fixture) {
				f.routerExtProc(func(e *extprocv3.ExternalProcessor) { e.RequestAttributes = []string{"request.path"} })
			},
			want: []string{"router-role ext_proc must not request attributes"}, pgvBlind: true,
		},
		{
			name: "misspelled attribute",
			mutate: func(f fixture) {
				f.upstreamExtProc(func(e *extprocv3.ExternalProcessor) { e.RequestAttributes[0] = "xds.upstream_hosts_metadata" })
			},
			want: []string{"request_attributes[0]", `"xds.upstream_hosts_metadata" is not an Envoy attribute`}, pgvBlind: true,
		},
		{
			name: "ext_proc dials an unknown cluster",
			mutate: func(f fixture) {
				f.upstreamExtProc(func(e *extprocv3.ExternalProcessor) {
					e.GetGrpcService().GetEnvoyGrpc().ClusterName = "switchyrad"
				})
			},
			want: []string{"grpc_service.envoy_grpc.cluster_name", `unknown cluster "switchyrad"`}, pgvBlind: true,
		},
		{
			name: "invalid body mode inside Any",
			mutate: func(f fixture) {
				f.routerExtProc(func(e *extprocv3.ExternalProcessor) { e.ProcessingMode.RequestBodyMode = 42 })
			},
			want: []string{"ExternalProcessor", "RequestBodyMode"}, pgvBlind: true,
		},
		{
			name: "negative message_timeout",
			mutate: func(f fixture) {
				f.upstreamExtProc(func(e *extprocv3.ExternalProcessor) { e.MessageTimeout = durationpb.New(-2e6) })
			},
			want: []string{"message_timeout", "negative duration"}, pgvBlind: true,
		},
		{
			name:   "empty stat_prefix inside the HCM",
			mutate: func(f fixture) { f.hcm(func(h *hcmv3.HttpConnectionManager) { h.StatPrefix = "" }) },
			want:   []string{"HttpConnectionManager", "StatPrefix"}, pgvBlind: true,
		},
		{
			name: "TLS endpoint selecting no socket",
			mutate: func(f fixture) {
				md := f.target().GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetMetadata()
				md.FilterMetadata[transportSocketMatchNS] = &structpb.Struct{Fields: map[string]*structpb.Value{
					TransportSocketMatchKey: structpb.NewStringValue("api.vendor-a.exmaple"),
				}}
			},
			want: []string{"lb_endpoints[0].metadata", "fall back to plaintext"}, pgvBlind: true,
		},
		{
			name: "typed_config of an unknown type",
			mutate: func(f fixture) {
				f.hcm(func(h *hcmv3.HttpConnectionManager) {
					h.HttpFilters[0].GetTypedConfig().TypeUrl = "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcesor"
				})
			},
			want: []string{"http_filters[0].typed_config", "cannot be decoded"}, pgvBlind: true,
		},
		{
			name: "typed_config with corrupt bytes",
			mutate: func(f fixture) {
				f.target().GetTypedExtensionProtocolOptions()[httpOptionsKey].Value = []byte{0xff, 0xff, 0xff}
			},
			want: []string{"typed_extension_protocol_options", "cannot be decoded"}, pgvBlind: true,
		},
		{
			name: "duplicate cluster",
			mutate: func(f fixture) {
				sr := f.b.GetStaticResources()
				sr.Clusters = append(sr.Clusters, proto.Clone(sr.Clusters[1]).(*clusterv3.Cluster))
			},
			want: []string{"duplicate cluster \"target-cascade\""}, pgvBlind: true,
		},
		{
			name:   "load_assignment names another cluster",
			mutate: func(f fixture) { f.target().GetLoadAssignment().ClusterName = "target-fast" },
			want:   []string{"load_assignment.cluster_name", "differs"}, pgvBlind: true,
		},
		{
			name: "LOGICAL_DNS with several endpoints",
			mutate: func(f fixture) {
				f.target().ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_LOGICAL_DNS}
			},
			want: []string{"LOGICAL_DNS cluster must have exactly one endpoint (has 2)"}, pgvBlind: true,
		},
		{
			name:   "max_ejection_percent above 100",
			mutate: func(f fixture) { f.target().GetOutlierDetection().MaxEjectionPercent = wrapperspb.UInt32(101) },
			want:   []string{"MaxEjectionPercent"},
		},
		{
			name: "endpoint without address",
			mutate: func(f fixture) {
				f.target().GetLoadAssignment().GetEndpoints()[1].GetLbEndpoints()[0].HostIdentifier = &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
					Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{}}},
				}}
			},
			want: []string{"SocketAddress"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Bootstrap(defaultSnap(t))
			if err != nil {
				t.Fatal(err)
			}
			tc.mutate(fixture{t: t, b: b})
			err = Validate(b)
			if err == nil {
				t.Fatal("Validate accepted the broken bootstrap")
			}
			if !errors.Is(err, ErrValidation) {
				t.Errorf("error does not wrap ErrValidation: %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
			// Show what plain ValidateAll would have said, so the value of
			// each check is visible: PGV alone misses the pgvBlind ones.
			if pgv := b.ValidateAll(); (pgv == nil) != tc.pgvBlind {
				t.Errorf("pgvBlind=%v but bootstrap.ValidateAll() = %v", tc.pgvBlind, pgv)
			}
		})
	}
}

func TestValidateNil(t *testing.T) {
	if err := Validate(nil); !errors.Is(err, ErrValidation) {
		t.Fatalf("Validate(nil) = %v", err)
	}
}

func TestParseIsStrict(t *testing.T) {
	good, err := Generate(defaultSnap(t), "yaml")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, old, new, want string
	}{
		{"unknown top-level field", "static_resources:", "statik: 1\nstatic_resources:", "statik"},
		{"unknown field inside typed_config", "allow_mode_override: true", "allow_mode_overide: true", "allow_mode_overide"},
		{"wrong type", "port_value: 10000", "port_value: ten", "portValue"},
		{"semantic error after decoding", "update_frequency: 1", "update_frequency: 0", "UpdateFrequency"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bad := strings.Replace(string(good), tc.old, tc.new, 1)
			if bad == string(good) {
				t.Fatalf("fixture: %q not found", tc.old)
			}
			_, err := Parse([]byte(bad))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse err = %v, want one naming %q", err, tc.want)
			}
		})
	}
}
