package envoyconf

import (
	"fmt"
	"net"
	"sort"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	upstreamcodecv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/upstream_codec/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	upstreamsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/switchyard-llm/switchyard/internal/config"
)

const (
	httpOptionsKey         = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
	upstreamCodecName      = "envoy.filters.http.upstream_codec"
	tlsSocketName          = "envoy.transport_sockets.tls"
	transportSocketMatchNS = "envoy.transport_socket_match"
)

// switchyardCluster is the ext_proc gRPC cluster: HTTP/2, STATIC for an IP
// address, STRICT_DNS for a name (a headless Kubernetes Service or a compose
// service name resolves to every replica, and Envoy balances streams across
// them).
func (g *generator) switchyardCluster() (*clusterv3.Cluster, error) {
	host, port, err := splitAddr("envoy.switchyard_addr", g.cfg.Envoy.SwitchyardAddr)
	if err != nil {
		return nil, err
	}
	h2, err := anypb.New(&upstreamsv3.HttpProtocolOptions{
		UpstreamProtocolOptions: &upstreamsv3.HttpProtocolOptions_ExplicitHttpConfig_{
			ExplicitHttpConfig: &upstreamsv3.HttpProtocolOptions_ExplicitHttpConfig{
				ProtocolConfig: &upstreamsv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{
					Http2ProtocolOptions: &corev3.Http2ProtocolOptions{},
				},
			},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("pack switchyard protocol options: %w", err)
	}
	c := &clusterv3.Cluster{
		Name:                          SwitchyardCluster,
		ClusterDiscoveryType:          &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
		ConnectTimeout:                durationpb.New(switchyardConnectTimeout),
		TypedExtensionProtocolOptions: map[string]*anypb.Any{httpOptionsKey: h2},
		LoadAssignment: &endpointv3.ClusterLoadAssignment{
			ClusterName: SwitchyardCluster,
			Endpoints: []*endpointv3.LocalityLbEndpoints{{
				LbEndpoints: []*endpointv3.LbEndpoint{{
					HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
						Address: socketAddress(host, port),
					}},
				}},
			}},
		},
	}
	if net.ParseIP(host) == nil {
		c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STRICT_DNS}
		c.DnsLookupFamily = clusterv3.Cluster_V4_PREFERRED
	}
	return c, nil
}

// targetCluster builds one target's cluster: a priority level per model in
// target order, each endpoint carrying the metadata the upstream role
// reads, TLS per endpoint, the upstream ext_proc filter, outlier detection.
//
// STRICT_DNS, not LOGICAL_DNS: LOGICAL_DNS allows exactly one endpoint per
// cluster and a target has one per priority. (A LOGICAL_DNS cluster per model
// under an aggregate cluster would work for DNS but which cluster's
// upstream http_filters apply under an aggregate is unconfirmed,
// envoy-ext-proc.md §6.) With STRICT_DNS every resolved address of a
// provider becomes a host of that priority carrying the endpoint's metadata,
// and outlier detection ejects addresses one by one.
func (g *generator) targetCluster(t *config.TargetInfo) (*clusterv3.Cluster, error) {
	name := TargetCluster(t.Name)
	hpo, err := g.upstreamHTTPOptions()
	if err != nil {
		return nil, err
	}
	la := &endpointv3.ClusterLoadAssignment{ClusterName: name}
	tlsNames := map[string]bool{}
	for i, m := range t.Models {
		host, port, err := splitAddr(fmt.Sprintf("target %q model %q address", t.Name, m.Name), m.Addr)
		if err != nil {
			return nil, err
		}
		md, err := endpointMetadata(t, i, m)
		if err != nil {
			return nil, err
		}
		if m.Provider.TLS {
			sni := tlsServerName(m)
			tlsNames[sni] = true
			mm, err := structpb.NewStruct(map[string]any{TransportSocketMatchKey: sni})
			if err != nil {
				return nil, fmt.Errorf("transport socket match metadata: %w", err)
			}
			md.FilterMetadata[transportSocketMatchNS] = mm
		}
		la.Endpoints = append(la.Endpoints, &endpointv3.LocalityLbEndpoints{
			Priority: uint32(i),
			LbEndpoints: []*endpointv3.LbEndpoint{{
				HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
					Address:  socketAddress(host, port),
					Hostname: UpstreamHost(m),
				}},
				Metadata: md,
			}},
		})
	}
	matches, err := g.tlsMatches(tlsNames)
	if err != nil {
		return nil, err
	}
	cmd, err := structpb.NewStruct(map[string]any{
		MetaTarget: t.Name, MetaTier: t.Tier, MetaCascade: t.Cascade,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster metadata: %w", err)
	}
	return &clusterv3.Cluster{
		Name:                          name,
		ClusterDiscoveryType:          &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STRICT_DNS},
		DnsLookupFamily:               clusterv3.Cluster_V4_PREFERRED,
		ConnectTimeout:                durationpb.New(targetConnectTimeout),
		OutlierDetection:              g.outlierDetection(),
		CircuitBreakers:               circuitBreakers(),
		TransportSocketMatches:        matches,
		TypedExtensionProtocolOptions: map[string]*anypb.Any{httpOptionsKey: hpo},
		Metadata:                      &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{MetadataNamespace: cmd}},
		LoadAssignment:                la,
	}, nil
}

func endpointMetadata(t *config.TargetInfo, i int, m *config.ModelInfo) (*corev3.Metadata, error) {
	st, err := structpb.NewStruct(map[string]any{
		MetaModel:         m.Name,
		MetaUpstreamModel: m.UpstreamModel,
		MetaProvider:      m.ProviderName,
		MetaTier:          m.Tier,
		MetaTarget:        t.Name,
		MetaPriority:      i,
		MetaLast:          i == len(t.Models)-1,
		MetaCascade:       t.Cascade,
		MetaHost:          UpstreamHost(m),
	})
	if err != nil {
		return nil, fmt.Errorf("endpoint metadata for model %q: %w", m.Name, err)
	}
	return &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{MetadataNamespace: st}}, nil
}

// tlsMatches builds one transport socket per TLS server name in the target.
// A cluster-wide transport_socket cannot serve a target whose priorities are
// different vendors (different SNI and certificate names) or mix TLS and
// plaintext (an on-prem server); an endpoint without match metadata gets
// the cluster default, which is plaintext.
func (g *generator) tlsMatches(names map[string]bool) ([]*clusterv3.Cluster_TransportSocketMatch, error) {
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	out := make([]*clusterv3.Cluster_TransportSocketMatch, 0, len(sorted))
	for _, sni := range sorted {
		ts, err := g.upstreamTLS(sni)
		if err != nil {
			return nil, err
		}
		match, err := structpb.NewStruct(map[string]any{TransportSocketMatchKey: sni})
		if err != nil {
			return nil, fmt.Errorf("transport socket match: %w", err)
		}
		out = append(out, &clusterv3.Cluster_TransportSocketMatch{
			Name:            "tls-" + sni,
			Match:           match,
			TransportSocket: ts,
		})
	}
	return out, nil
}

// upstreamTLS originates TLS with SNI and verifies the provider's
// certificate chain and name: without a validation context Envoy accepts
// any certificate, and these connections carry API keys.
func (g *generator) upstreamTLS(sni string) (*corev3.TransportSocket, error) {
	ctx, err := anypb.New(&tlsv3.UpstreamTlsContext{
		Sni: sni,
		CommonTlsContext: &tlsv3.CommonTlsContext{
			AlpnProtocols: []string{"http/1.1"},
			ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
				TrustedCa: &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: g.opts.CAFile}},
				MatchTypedSubjectAltNames: []*tlsv3.SubjectAltNameMatcher{{
					SanType: tlsv3.SubjectAltNameMatcher_DNS,
					Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: sni}},
				}},
			}},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("pack upstream tls context: %w", err)
	}
	return &corev3.TransportSocket{
		Name:       tlsSocketName,
		ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: ctx},
	}, nil
}

// upstreamHTTPOptions is HTTP/1.1 to providers (every OpenAI-compatible
// server speaks it, SSE included) with the upstream ext_proc filter, which
// runs once per attempt, then the codec.
func (g *generator) upstreamHTTPOptions() (*anypb.Any, error) {
	ep, err := anypb.New(g.extProcFilter(true))
	if err != nil {
		return nil, fmt.Errorf("pack upstream ext_proc: %w", err)
	}
	codec, err := anypb.New(&upstreamcodecv3.UpstreamCodec{})
	if err != nil {
		return nil, fmt.Errorf("pack upstream_codec: %w", err)
	}
	hpo, err := anypb.New(&upstreamsv3.HttpProtocolOptions{
		UpstreamProtocolOptions: &upstreamsv3.HttpProtocolOptions_ExplicitHttpConfig_{
			ExplicitHttpConfig: &upstreamsv3.HttpProtocolOptions_ExplicitHttpConfig{
				ProtocolConfig: &upstreamsv3.HttpProtocolOptions_ExplicitHttpConfig_HttpProtocolOptions{
					HttpProtocolOptions: &corev3.Http1ProtocolOptions{},
				},
			},
		},
		HttpFilters: []*hcmv3.HttpFilter{
			{Name: ExtProcFilterName, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: ep}},
			{Name: upstreamCodecName, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: codec}},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("pack upstream http protocol options: %w", err)
	}
	return hpo, nil
}

// outlierDetection ejects a host after consecutive 5xx or gateway failures
// (502/503/504 and connect errors). Gateway-failure ejection is off in Envoy
// unless enforcing_consecutive_gateway_failure is set, so it is set to 100.
func (g *generator) outlierDetection() *clusterv3.OutlierDetection {
	o := g.cfg.Envoy.Outlier
	return &clusterv3.OutlierDetection{
		Consecutive_5Xx:                    u32(uint32(max(o.Consecutive5xx, 0))),
		EnforcingConsecutive_5Xx:           u32(100),
		ConsecutiveGatewayFailure:          u32(uint32(max(o.ConsecutiveGatewayFailure, 0))),
		EnforcingConsecutiveGatewayFailure: u32(100),
		Interval:                           durationpb.New(o.Interval.D()),
		BaseEjectionTime:                   durationpb.New(o.BaseEjectionTime.D()),
		MaxEjectionPercent:                 u32(uint32(min(max(o.MaxEjectionPercent, 0), 100))),
	}
}

func circuitBreakers() *clusterv3.CircuitBreakers {
	return &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{{
		Priority:   corev3.RoutingPriority_DEFAULT,
		MaxRetries: u32(retryCircuitBreaker),
	}}}
}
