package envoyconf

import (
	"fmt"
	"time"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	mutationrulesv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	streamv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	reqwithoutqueryv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/formatter/req_without_query/v3"
	previouspriv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/priority/previous_priorities/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/switchyard-llm/switchyard/internal/config"
)

// Names of the generated listener objects.
const (
	listenerName    = "llm"
	routeConfigName = "llm"
	virtualHostName = "llm"
	statPrefix      = "llm"
	apiPrefix       = "/v1/"
	// EscalatedHeader is the response header the upstream role sets when the
	// judge rejects an answer; cascade routes retry on its presence.
	EscalatedHeader = "x-switchyard-escalated"
	// NoTargetBody is the catch-all /v1/ answer when the router role chose
	// no target (OpenAI error shape).
	NoTargetBody = `{"error":{"message":"no target selected","type":"server_error","param":null,"code":"no_target"}}`
	// retryOn is the retry condition of every target route.
	retryOn = "5xx,reset,connect-failure,retriable-status-codes"
)

const (
	typeHCM    = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
	routerName = "envoy.filters.http.router"
	hcmName    = "envoy.filters.network.http_connection_manager"
)

// listener builds the one HTTP listener.
//
// Buffer limit: ext_proc BUFFERED mode needs the whole request body inside
// the stream's buffer limit or Envoy answers 413 itself (the ai-gateway
// "413 above 32 KB" complaint was a 32 KiB per_connection_buffer_limit_bytes).
// The stream limit is inherited from the listener's
// per_connection_buffer_limit_bytes, and the upstream filter chain (the
// upstream ext_proc's BUFFERED request body and a cascade's BUFFERED
// response) and the router's retry buffer use the same downstream stream
// limit (source/common/router/upstream_request.cc passes
// callbacks()->bufferLimit() to the upstream filter manager). Route-level
// per_request_buffer_limit_bytes cannot raise it: it is deprecated and
// Envoy applies min(per_request, per_connection). request_body_buffer_limit
// (Envoy >= 1.36) could, but only on new Envoys and its interaction with the
// route refresh after ext_proc is not confirmed; the listener field works on
// every Envoy and Istio version. It is set to server.max_body_bytes exactly:
// a body Switchyard would accept always reaches it, a larger one gets
// Envoy's 413 without a round trip.
func (g *generator) listener() (*listenerv3.Listener, error) {
	e := g.cfg.Envoy
	if err := checkPort("envoy.listener_port", e.ListenerPort); err != nil {
		return nil, err
	}
	limit, err := g.bodyLimit()
	if err != nil {
		return nil, err
	}
	hcm, err := g.httpConnectionManager()
	if err != nil {
		return nil, err
	}
	hcmAny, err := anypb.New(hcm)
	if err != nil {
		return nil, fmt.Errorf("pack http_connection_manager: %w", err)
	}
	return &listenerv3.Listener{
		Name:                          listenerName,
		Address:                       socketAddress("0.0.0.0", uint32(e.ListenerPort)),
		PerConnectionBufferLimitBytes: u32(limit),
		FilterChains: []*listenerv3.FilterChain{{
			Filters: []*listenerv3.Filter{{
				Name:       hcmName,
				ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: hcmAny},
			}},
		}},
	}, nil
}

func (g *generator) httpConnectionManager() (*hcmv3.HttpConnectionManager, error) {
	rc, err := g.routeConfiguration()
	if err != nil {
		return nil, err
	}
	filters, err := g.hcmFilters()
	if err != nil {
		return nil, err
	}
	al, err := accessLog()
	if err != nil {
		return nil, err
	}
	lim := g.cfg.Server.Limits
	h := &hcmv3.HttpConnectionManager{
		StatPrefix: statPrefix,
		CodecType:  hcmv3.HttpConnectionManager_AUTO,
		// Edge settings: the client address is the peer, and on Envoy >= 1.36
		// no peer is "internal" unless configured, so clients cannot steer
		// retries or timeouts with x-envoy-* request headers.
		UseRemoteAddress: wrapperspb.Bool(true),
		NormalizePath:    wrapperspb.Bool(true),
		MergeSlashes:     true,
		// Envoy's header limits follow Switchyard's so a request Switchyard
		// would accept is not refused by Envoy first (Envoy's defaults are
		// 60 KiB and 100 headers).
		MaxRequestHeadersKb: u32(uint32(min(max((lim.MaxHeaderBytes+1023)/1024, 1), 8192))),
		CommonHttpProtocolOptions: &corev3.HttpProtocolOptions{
			MaxHeadersCount: u32(uint32(max(lim.MaxHeaders, 1))),
		},
		RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: rc},
		HttpFilters:    filters,
		AccessLog:      []*accesslogv3.AccessLog{al},
	}
	// A non-streaming answer from a slow model sends nothing until it is
	// done; the default 5 min idle timeout must not cut it before the route
	// timeout does.
	if g.maxRouteTimeout > envoyDefaultStreamIdle {
		h.StreamIdleTimeout = durationpb.New(g.maxRouteTimeout + 10*time.Second)
	}
	return h, nil
}

func (g *generator) hcmFilters() ([]*hcmv3.HttpFilter, error) {
	ep, err := anypb.New(g.extProcFilter(false))
	if err != nil {
		return nil, fmt.Errorf("pack ext_proc: %w", err)
	}
	// suppress_envoy_headers: providers are third parties; they need no
	// x-envoy-* headers (nor x-envoy-original-host from auto_host_rewrite),
	// and clients get no Envoy internals back.
	router, err := anypb.New(&routerv3.Router{SuppressEnvoyHeaders: true})
	if err != nil {
		return nil, fmt.Errorf("pack router: %w", err)
	}
	return []*hcmv3.HttpFilter{
		{Name: ExtProcFilterName, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: ep}},
		{Name: routerName, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: router}},
	}, nil
}

// extProcFilter builds the ext_proc config of either role. The roles differ
// only in what the server needs to tell them apart and to act per attempt:
// the upstream role asks for attributes (host metadata, cluster, attempt
// count) and may set routing headers; the router role asks for none.
//
// grpc_service.timeout: Envoy's ext_proc client starts its stream without a
// timeout (client_impl.cc) and bounds each message with message_timeout; the
// field is set to the longest route timeout plus slack so that, should a
// version honour it for the stream, it can never end a live request early.
func (g *generator) extProcFilter(upstream bool) *extprocv3.ExternalProcessor {
	ns := &extprocv3.MetadataOptions_MetadataNamespaces{Untyped: []string{MetadataNamespace}}
	ep := &extprocv3.ExternalProcessor{
		GrpcService: &corev3.GrpcService{
			TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{
				ClusterName: g.opts.ExtProcCluster,
			}},
			Timeout: durationpb.New(g.maxRouteTimeout + grpcTimeoutSlack),
		},
		FailureModeAllow: false,
		ProcessingMode: &extprocv3.ProcessingMode{
			RequestHeaderMode:  extprocv3.ProcessingMode_SEND,
			RequestBodyMode:    extprocv3.ProcessingMode_BUFFERED,
			ResponseHeaderMode: extprocv3.ProcessingMode_SEND,
			ResponseBodyMode:   extprocv3.ProcessingMode_NONE,
		},
		AllowModeOverride: true,
		MessageTimeout:    durationpb.New(g.cfg.Envoy.MessageTimeout.D()),
		// A processor that cannot be reached is a gateway dependency being
		// unavailable: 503, which OpenAI SDKs retry, rather than Envoy's 500.
		StatusOnError: &typev3.HttpStatus{Code: typev3.StatusCode_ServiceUnavailable},
		MetadataOptions: &extprocv3.MetadataOptions{
			ForwardingNamespaces: ns,
			ReceivingNamespaces:  proto.Clone(ns).(*extprocv3.MetadataOptions_MetadataNamespaces),
		},
	}
	if upstream {
		ep.RequestAttributes = append([]string(nil), UpstreamRequestAttributes...)
		// Upstream filters run after the route and host are chosen and
		// Envoy ignores clear_route_cache there, so unlocking :authority and
		// host cannot re-route; it lets the upstream role set the provider's
		// Host (envoy-ext-proc.md §2, §4-5). x-envoy-* stay locked.
		ep.MutationRules = &mutationrulesv3.HeaderMutationRules{AllowAllRouting: wrapperspb.Bool(true)}
	}
	return ep
}

func (g *generator) routeConfiguration() (*routev3.RouteConfiguration, error) {
	routes := make([]*routev3.Route, 0, len(g.snap.TargetNames)+1)
	for _, name := range g.snap.TargetNames {
		t, _ := g.snap.Target(name)
		r, err := g.targetRoute(t)
		if err != nil {
			return nil, err
		}
		routes = append(routes, r)
	}
	routes = append(routes, noTargetRoute())
	return &routev3.RouteConfiguration{
		Name: routeConfigName,
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    virtualHostName,
			Domains: []string{"*"},
			Routes:  routes,
		}},
	}, nil
}

// NumRetries is the retry count of a target: retries when set, else one per
// fallback model and at least one.
func NumRetries(t *config.TargetInfo) uint32 {
	if t.Target.Retries != nil {
		return uint32(max(*t.Target.Retries, 0))
	}
	return uint32(max(len(t.Models)-1, 1))
}

func (g *generator) targetRoute(t *config.TargetInfo) (*routev3.Route, error) {
	rp := &routev3.RetryPolicy{
		RetryOn:              retryOn,
		NumRetries:           u32(NumRetries(t)),
		PerTryTimeout:        durationpb.New(t.Target.SLO.D()),
		RetriableStatusCodes: retriableStatus(g.cfg.Envoy.RetriableStatus),
		RetryBackOff: &routev3.RetryPolicy_RetryBackOff{
			BaseInterval: durationpb.New(retryBaseInterval),
			MaxInterval:  durationpb.New(retryMaxInterval),
		},
	}
	if len(t.Models) > 1 {
		pp, err := anypb.New(&previouspriv3.PreviousPrioritiesConfig{UpdateFrequency: 1})
		if err != nil {
			return nil, fmt.Errorf("pack previous_priorities: %w", err)
		}
		rp.RetryPriority = &routev3.RetryPolicy_RetryPriority{
			Name:       "envoy.retry_priorities.previous_priorities",
			ConfigType: &routev3.RetryPolicy_RetryPriority_TypedConfig{TypedConfig: pp},
		}
	}
	if t.Cascade {
		// The judge can escalate without a 5xx (status kept, header added),
		// which keeps escalations out of consecutive_5xx outlier ejection.
		rp.RetryOn += ",retriable-headers"
		rp.RetriableHeaders = []*routev3.HeaderMatcher{{
			Name:                 EscalatedHeader,
			HeaderMatchSpecifier: &routev3.HeaderMatcher_PresentMatch{PresentMatch: true},
		}}
	}
	return &routev3.Route{
		Name: TargetCluster(t.Name),
		Match: &routev3.RouteMatch{
			PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: apiPrefix},
			Headers: []*routev3.HeaderMatcher{{
				Name: TargetHeader,
				HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
					MatchPattern: &matcherv3.StringMatcher_Exact{Exact: t.Name},
				}},
			}},
		},
		Action: &routev3.Route_Route{Route: &routev3.RouteAction{
			ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: TargetCluster(t.Name)},
			Timeout:          durationpb.New(t.Target.Timeout.D()),
			// Each attempt's Host becomes the chosen endpoint's hostname
			// (UpstreamHost), so a fallback to another vendor sends that
			// vendor's Host. Done by Envoy per attempt at pool-ready.
			HostRewriteSpecifier: &routev3.RouteAction_AutoHostRewrite{AutoHostRewrite: wrapperspb.Bool(true)},
			RetryPolicy:          rp,
		}},
	}, nil
}

func noTargetRoute() *routev3.Route {
	return &routev3.Route{
		Name:  "no-target",
		Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: apiPrefix}},
		Action: &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{
			Status: 503,
			Body:   &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: NoTargetBody}},
		}},
		ResponseHeadersToAdd: []*corev3.HeaderValueOption{{
			Header:       &corev3.HeaderValue{Key: "content-type", Value: "application/json"},
			AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
		}},
	}
}

func retriableStatus(codes []int) []uint32 {
	out := make([]uint32, 0, len(codes))
	for _, c := range codes {
		if c > 0 {
			out = append(out, uint32(c))
		}
	}
	return out
}

// accessLog writes one JSON line per request to stdout. It names the target,
// model, upstream and attempts; it never logs headers that may carry
// credentials, and the path is logged without its query string (some
// vendors accept keys there).
func accessLog() (*accesslogv3.AccessLog, error) {
	fields := map[string]any{
		"start_time":       "%START_TIME%",
		"request_id":       "%REQ(X-REQUEST-ID)%",
		"method":           "%REQ(:METHOD)%",
		"path":             "%REQ_WITHOUT_QUERY(:PATH)%",
		"status":           "%RESPONSE_CODE%",
		"details":          "%RESPONSE_CODE_DETAILS%",
		"flags":            "%RESPONSE_FLAGS%",
		"duration_ms":      "%DURATION%",
		"bytes_received":   "%BYTES_RECEIVED%",
		"bytes_sent":       "%BYTES_SENT%",
		"target":           "%REQ(X-SWITCHYARD-TARGET)%",
		"model":            "%RESP(X-SWITCHYARD-MODEL)%",
		"route":            "%ROUTE_NAME%",
		"upstream_cluster": "%UPSTREAM_CLUSTER%",
		"upstream_host":    "%UPSTREAM_HOST%",
		"attempts":         "%UPSTREAM_REQUEST_ATTEMPT_COUNT%",
	}
	st, err := structpb.NewStruct(fields)
	if err != nil {
		return nil, fmt.Errorf("access log format: %w", err)
	}
	rwq, err := anypb.New(&reqwithoutqueryv3.ReqWithoutQuery{})
	if err != nil {
		return nil, fmt.Errorf("pack req_without_query: %w", err)
	}
	out, err := anypb.New(&streamv3.StdoutAccessLog{AccessLogFormat: &streamv3.StdoutAccessLog_LogFormat{
		LogFormat: &corev3.SubstitutionFormatString{
			Format: &corev3.SubstitutionFormatString_JsonFormat{JsonFormat: st},
			Formatters: []*corev3.TypedExtensionConfig{{
				Name:        "envoy.formatter.req_without_query",
				TypedConfig: rwq,
			}},
		},
	}})
	if err != nil {
		return nil, fmt.Errorf("pack stdout access log: %w", err)
	}
	return &accesslogv3.AccessLog{
		Name:       "envoy.access_loggers.stdout",
		ConfigType: &accesslogv3.AccessLog_TypedConfig{TypedConfig: out},
	}, nil
}
