package envoysim

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	upstreamcodecv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/upstream_codec/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	previouspriov3 "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/priority/previous_priorities/v3"
	upstreamsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"sigs.k8s.io/yaml"

	// Registered so protojson can resolve the Any types in a bootstrap.
	_ "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	_ "google.golang.org/protobuf/types/known/structpb"
	_ "google.golang.org/protobuf/types/known/wrapperspb"
)

// ErrUnsupported marks configuration that envoysim does not emulate. Load
// rejects it instead of ignoring it.
var ErrUnsupported = errors.New("unsupported by envoysim")

// Type URLs of the typed_configs envoysim understands.
const (
	typeHCM           = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
	typeExtProc       = "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor"
	typeRouter        = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
	typeUpstreamCodec = "type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec"
	typeHTTPOptions   = "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
	typePrevPrio      = "type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig"
	httpOptionsKey    = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
	previousPrioName  = "envoy.retry_priorities.previous_priorities"
)

// Envoy defaults that the emulation relies on (see envoy-ext-proc.md §1.5, §6).
const (
	defaultConnBufferLimit    = 1 << 20 // listener per_connection_buffer_limit_bytes
	defaultRouteTimeout       = 15 * time.Second
	defaultRetryBackOffBase   = 25 * time.Millisecond
	defaultOverprovisioning   = 140
	defaultMessageTimeout     = 200 * time.Millisecond
	defaultStatusOnError      = 500
	defaultConsecutive5xx     = 5
	defaultConsecutiveGateway = 5
	defaultBaseEjection       = 30 * time.Second
	defaultMaxEjectionTime    = 300 * time.Second
	defaultODInterval         = 10 * time.Second
	defaultMaxEjectionPercent = 10
	defaultPanicThreshold     = 50
)

// Config is a parsed and validated Envoy bootstrap. It is immutable and may
// be used by several Envoy instances.
type Config struct {
	listener *listenerModel
	clusters map[string]*clusterModel
	order    []string // cluster names in file order
}

type listenerModel struct {
	name        string
	address     string
	bufferLimit uint32
	hcm         *hcmModel
}

type hcmModel struct {
	statPrefix        string
	generateRequestID bool
	vhosts            []*vhostModel
	filters           []*extProcConfig // downstream ext_proc filters, in order
	suppressEnvoyHdrs bool
	maxHeadersKB      int // max_request_headers_kb
	maxHeadersCount   int // common_http_protocol_options.max_headers_count
}

type vhostModel struct {
	name        string
	domains     []string
	routes      []*routeModel
	bufferLimit *uint32
}

type routeModel struct {
	name          string
	prefix        string
	path          string
	exactPath     bool
	headers       []headerMatcher
	cluster       string
	clusterHeader string
	direct        *directResponse
	timeout       time.Duration
	retry         *retryPolicy
	bufferLimit   *uint32
	notFoundCode  int
	metadata      *corev3.Metadata
	// autoHostRewrite: each attempt's :authority becomes the chosen host's
	// hostname (route auto_host_rewrite).
	autoHostRewrite bool
	// respHeaders are response_headers_to_add, applied to every response the
	// router produces for this route (upstream or local).
	respHeaders []headerToAdd
}

type directResponse struct {
	status int
	body   []byte
}

type retryPolicy struct {
	on5xx, gatewayError, reset, connectFailure, onStatusCodes, retriable4xx, refusedStream bool
	onHeaders                                                                              bool // retriable-headers
	retriableHeaders                                                                       []headerMatcher
	statusCodes                                                                            map[int]bool
	numRetries                                                                             int
	perTryTimeout                                                                          time.Duration
	previousPriorities                                                                     bool
	updateFrequency                                                                        int
	backOffBase, backOffMax                                                                time.Duration
}

type clusterModel struct {
	name           string
	strictDNS      bool
	connectTimeout time.Duration
	http2          bool
	priorities     [][]*endpointModel // index = priority
	overprov       int
	filters        []*extProcConfig // upstream ext_proc filters (before upstream_codec)
	outlier        *outlierConfig
	metadata       *corev3.Metadata
	tls            bool // the cluster's transport_socket (the "default" match) is TLS
	socketMatches  []socketMatch
	maxRetries     int // circuit_breakers DEFAULT max_retries (concurrent retries)
	dnsFamily      clusterv3.Cluster_DnsLookupFamily
}

type endpointModel struct {
	host      string
	port      uint32
	priority  int
	metadata  *corev3.Metadata
	unhealthy bool
	// hostname is Endpoint.hostname; for STRICT_DNS an empty one is the DNS
	// name (DnsClusterImpl::ResolveTarget), for STATIC it stays empty.
	hostname string
}

func (e *endpointModel) address() string {
	return net.JoinHostPort(e.host, strconv.Itoa(int(e.port)))
}

type outlierConfig struct {
	consecutive5xx     int
	consecutiveGateway int
	enforcing5xx       int
	enforcingGateway   int
	baseEjection       time.Duration
	maxEjection        time.Duration
	interval           time.Duration
	maxEjectionPercent int
	alwaysEjectOneHost bool
}

// LoadFile reads an Envoy bootstrap in YAML (or JSON) from path.
func LoadFile(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("envoysim: read %s: %w", path, err)
	}
	return Load(b)
}

// Load parses an Envoy bootstrap expressed in YAML or JSON. Decoding is
// strict (unknown fields are errors, as in Envoy), every typed_config is
// unpacked, and any field that envoysim does not emulate is rejected with an
// error naming it.
func Load(yamlBytes []byte) (*Config, error) {
	js, err := yaml.YAMLToJSON(yamlBytes)
	if err != nil {
		return nil, fmt.Errorf("envoysim: yaml: %w", err)
	}
	var bs bootstrapv3.Bootstrap
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(js, &bs); err != nil {
		return nil, fmt.Errorf("envoysim: bootstrap: %w", err)
	}
	if err := bs.ValidateAll(); err != nil {
		return nil, fmt.Errorf("envoysim: bootstrap validation: %w", err)
	}
	// admin is accepted (every real bootstrap has one) but not served; node
	// only names the proxy.
	if err := onlyFields(&bs, "bootstrap", "static_resources", "admin", "node"); err != nil {
		return nil, err
	}
	sr := bs.GetStaticResources()
	if err := onlyFields(sr, "static_resources", "listeners", "clusters"); err != nil {
		return nil, err
	}
	cfg := &Config{clusters: map[string]*clusterModel{}}
	for i, c := range sr.GetClusters() {
		cm, err := buildCluster(c, fmt.Sprintf("static_resources.clusters[%d]", i))
		if err != nil {
			return nil, err
		}
		if _, dup := cfg.clusters[cm.name]; dup {
			return nil, fmt.Errorf("envoysim: duplicate cluster %q", cm.name)
		}
		cfg.clusters[cm.name] = cm
		cfg.order = append(cfg.order, cm.name)
	}
	if n := len(sr.GetListeners()); n != 1 {
		return nil, fmt.Errorf("%w: static_resources.listeners must hold exactly one listener, got %d", ErrUnsupported, n)
	}
	lm, err := buildListener(sr.GetListeners()[0], "static_resources.listeners[0]")
	if err != nil {
		return nil, err
	}
	cfg.listener = lm
	// Every ext_proc filter must name a known cluster.
	check := func(fs []*extProcConfig, where string) error {
		for _, f := range fs {
			if _, ok := cfg.clusters[f.grpcCluster]; !ok {
				return fmt.Errorf("envoysim: %s: ext_proc grpc_service.envoy_grpc.cluster_name %q is not a defined cluster", where, f.grpcCluster)
			}
		}
		return nil
	}
	if err := check(lm.hcm.filters, "http_connection_manager"); err != nil {
		return nil, err
	}
	for _, name := range cfg.order {
		if err := check(cfg.clusters[name].filters, "cluster "+name); err != nil {
			return nil, err
		}
	}
	for _, vh := range lm.hcm.vhosts {
		for _, r := range vh.routes {
			if r.cluster != "" {
				if _, ok := cfg.clusters[r.cluster]; !ok {
					// Envoy rejects a static route to an unknown cluster at load
					// (validate_clusters defaults to true for static route configs).
					return nil, fmt.Errorf("envoysim: route %q names unknown cluster %q", r.name, r.cluster)
				}
			}
		}
	}
	return cfg, nil
}

func unpack(a *anypb.Any, want string, into proto.Message, path string) error {
	if a == nil {
		return fmt.Errorf("envoysim: %s: typed_config is required", path)
	}
	if a.GetTypeUrl() != want {
		return fmt.Errorf("%w: %s: typed_config type %q (want %q)", ErrUnsupported, path, a.GetTypeUrl(), want)
	}
	if err := a.UnmarshalTo(into); err != nil {
		return fmt.Errorf("envoysim: %s: %w", path, err)
	}
	type validator interface{ ValidateAll() error }
	if v, ok := into.(validator); ok {
		if err := v.ValidateAll(); err != nil {
			return fmt.Errorf("envoysim: %s: %w", path, err)
		}
	}
	return nil
}

func dur(d *durationpb.Duration, def time.Duration) time.Duration {
	if d == nil {
		return def
	}
	return d.AsDuration()
}

func socketAddress(a *corev3.Address, path string) (string, uint32, error) {
	sa := a.GetSocketAddress()
	if sa == nil {
		return "", 0, fmt.Errorf("%w: %s: only socket_address is supported", ErrUnsupported, path)
	}
	if err := onlyFields(sa, path+".socket_address", "address", "port_value", "protocol"); err != nil {
		return "", 0, err
	}
	if sa.GetProtocol() != corev3.SocketAddress_TCP {
		return "", 0, fmt.Errorf("%w: %s: protocol %v", ErrUnsupported, path, sa.GetProtocol())
	}
	return sa.GetAddress(), sa.GetPortValue(), nil
}

func buildListener(l *listenerv3.Listener, path string) (*listenerModel, error) {
	if err := onlyFields(l, path, "name", "address", "filter_chains", "per_connection_buffer_limit_bytes"); err != nil {
		return nil, err
	}
	host, port, err := socketAddress(l.GetAddress(), path+".address")
	if err != nil {
		return nil, err
	}
	lm := &listenerModel{name: l.GetName(), address: net.JoinHostPort(host, strconv.Itoa(int(port))), bufferLimit: defaultConnBufferLimit}
	if v := l.GetPerConnectionBufferLimitBytes(); v != nil {
		lm.bufferLimit = v.GetValue()
	}
	if len(l.GetFilterChains()) != 1 {
		return nil, fmt.Errorf("%w: %s.filter_chains must hold exactly one chain", ErrUnsupported, path)
	}
	fc := l.GetFilterChains()[0]
	fpath := path + ".filter_chains[0]"
	if err := onlyFields(fc, fpath, "filters", "name"); err != nil {
		return nil, err
	}
	if len(fc.GetFilters()) != 1 {
		return nil, fmt.Errorf("%w: %s.filters must hold exactly one http_connection_manager", ErrUnsupported, fpath)
	}
	nf := fc.GetFilters()[0]
	var hcm hcmv3.HttpConnectionManager
	if err := unpack(nf.GetTypedConfig(), typeHCM, &hcm, fpath+".filters[0]"); err != nil {
		return nil, err
	}
	lm.hcm, err = buildHCM(&hcm, fpath+".filters[0].typed_config")
	if err != nil {
		return nil, err
	}
	return lm, nil
}

func buildHCM(h *hcmv3.HttpConnectionManager, path string) (*hcmModel, error) {
	// access_log, use_remote_address, normalize_path, merge_slashes and
	// stream_idle_timeout are accepted without effect (README "accepted but
	// not emulated"); the header limits are enforced (buildHCMLimits).
	if err := onlyFields(h, path, "stat_prefix", "route_config", "http_filters", "codec_type", "generate_request_id",
		"access_log", "use_remote_address", "normalize_path", "merge_slashes", "max_request_headers_kb",
		"common_http_protocol_options", "stream_idle_timeout"); err != nil {
		return nil, err
	}
	if ct := h.GetCodecType(); ct != hcmv3.HttpConnectionManager_AUTO && ct != hcmv3.HttpConnectionManager_HTTP1 {
		return nil, fmt.Errorf("%w: %s.codec_type %v (envoysim serves HTTP/1.1)", ErrUnsupported, path, ct)
	}
	m := &hcmModel{statPrefix: h.GetStatPrefix(), generateRequestID: true}
	if g := h.GetGenerateRequestId(); g != nil {
		m.generateRequestID = g.GetValue()
	}
	if err := buildHCMLimits(h, m, path); err != nil {
		return nil, err
	}
	rc := h.GetRouteConfig()
	if rc == nil {
		return nil, fmt.Errorf("%w: %s: only an inline route_config is supported", ErrUnsupported, path)
	}
	if err := onlyFields(rc, path+".route_config", "name", "virtual_hosts"); err != nil {
		return nil, err
	}
	for i, vh := range rc.GetVirtualHosts() {
		v, err := buildVHost(vh, fmt.Sprintf("%s.route_config.virtual_hosts[%d]", path, i))
		if err != nil {
			return nil, err
		}
		m.vhosts = append(m.vhosts, v)
	}
	filters := h.GetHttpFilters()
	if len(filters) == 0 {
		return nil, fmt.Errorf("envoysim: %s.http_filters is empty (the router filter is required)", path)
	}
	for i, f := range filters {
		fp := fmt.Sprintf("%s.http_filters[%d]", path, i)
		if err := onlyFields(f, fp, "name", "typed_config"); err != nil {
			return nil, err
		}
		last := i == len(filters)-1
		switch f.GetTypedConfig().GetTypeUrl() {
		case typeExtProc:
			if last {
				return nil, fmt.Errorf("envoysim: %s: the last http filter must be the router", fp)
			}
			var ep extprocfilterv3.ExternalProcessor
			if err := unpack(f.GetTypedConfig(), typeExtProc, &ep, fp); err != nil {
				return nil, err
			}
			c, err := buildExtProc(&ep, fp+".typed_config", false)
			if err != nil {
				return nil, err
			}
			m.filters = append(m.filters, c)
		case typeRouter:
			if !last {
				return nil, fmt.Errorf("envoysim: %s: the router must be the last http filter", fp)
			}
			var r routerv3.Router
			if err := unpack(f.GetTypedConfig(), typeRouter, &r, fp); err != nil {
				return nil, err
			}
			if err := onlyFields(&r, fp+".typed_config", "suppress_envoy_headers"); err != nil {
				return nil, err
			}
			m.suppressEnvoyHdrs = r.GetSuppressEnvoyHeaders()
		default:
			return nil, fmt.Errorf("%w: %s: http filter %q (%s)", ErrUnsupported, fp, f.GetName(), f.GetTypedConfig().GetTypeUrl())
		}
	}
	return m, nil
}

func buildVHost(vh *routev3.VirtualHost, path string) (*vhostModel, error) {
	if err := onlyFields(vh, path, "name", "domains", "routes", "per_request_buffer_limit_bytes"); err != nil {
		return nil, err
	}
	v := &vhostModel{name: vh.GetName(), domains: vh.GetDomains()}
	if b := vh.GetPerRequestBufferLimitBytes(); b != nil {
		x := b.GetValue()
		v.bufferLimit = &x
	}
	for i, r := range vh.GetRoutes() {
		rm, err := buildRoute(r, fmt.Sprintf("%s.routes[%d]", path, i))
		if err != nil {
			return nil, err
		}
		v.routes = append(v.routes, rm)
	}
	return v, nil
}

func buildRoute(r *routev3.Route, path string) (*routeModel, error) {
	if err := onlyFields(r, path, "name", "match", "route", "direct_response", "per_request_buffer_limit_bytes", "metadata",
		"response_headers_to_add"); err != nil {
		return nil, err
	}
	rm := &routeModel{name: r.GetName(), metadata: r.GetMetadata(), notFoundCode: 503}
	adds, err := buildResponseHeadersToAdd(r.GetResponseHeadersToAdd(), path)
	if err != nil {
		return nil, err
	}
	rm.respHeaders = adds
	if b := r.GetPerRequestBufferLimitBytes(); b != nil {
		x := b.GetValue()
		rm.bufferLimit = &x
	}
	m := r.GetMatch()
	if err := onlyFields(m, path+".match", "prefix", "path", "headers"); err != nil {
		return nil, err
	}
	switch p := m.GetPathSpecifier().(type) {
	case *routev3.RouteMatch_Prefix:
		rm.prefix = p.Prefix
	case *routev3.RouteMatch_Path:
		rm.path, rm.exactPath = p.Path, true
	default:
		return nil, fmt.Errorf("%w: %s.match: path specifier %T", ErrUnsupported, path, p)
	}
	for i, h := range m.GetHeaders() {
		hm, err := buildHeaderMatcher(h, fmt.Sprintf("%s.match.headers[%d]", path, i))
		if err != nil {
			return nil, err
		}
		rm.headers = append(rm.headers, hm)
	}
	switch a := r.GetAction().(type) {
	case *routev3.Route_DirectResponse:
		d := a.DirectResponse
		if err := onlyFields(d, path+".direct_response", "status", "body"); err != nil {
			return nil, err
		}
		rm.direct = &directResponse{status: int(d.GetStatus())}
		if b := d.GetBody(); b != nil {
			if err := onlyFields(b, path+".direct_response.body", "inline_string", "inline_bytes"); err != nil {
				return nil, err
			}
			rm.direct.body = append([]byte(b.GetInlineString()), b.GetInlineBytes()...)
		}
	case *routev3.Route_Route:
		ra := a.Route
		if ra.GetHedgePolicy() != nil {
			return nil, fmt.Errorf("%w: %s.route.hedge_policy (hedging is not emulated)", ErrUnsupported, path)
		}
		if err := onlyFields(ra, path+".route", "cluster", "cluster_header", "timeout", "retry_policy", "cluster_not_found_response_code",
			"auto_host_rewrite"); err != nil {
			return nil, err
		}
		rm.autoHostRewrite = ra.GetAutoHostRewrite().GetValue()
		rm.cluster = ra.GetCluster()
		rm.clusterHeader = ra.GetClusterHeader()
		rm.timeout = dur(ra.GetTimeout(), defaultRouteTimeout)
		switch ra.GetClusterNotFoundResponseCode() {
		case routev3.RouteAction_NOT_FOUND:
			rm.notFoundCode = 404
		case routev3.RouteAction_INTERNAL_SERVER_ERROR:
			rm.notFoundCode = 500
		}
		if rp := ra.GetRetryPolicy(); rp != nil {
			p, err := buildRetryPolicy(rp, path+".route.retry_policy")
			if err != nil {
				return nil, err
			}
			rm.retry = p
		}
	default:
		return nil, fmt.Errorf("%w: %s: route action %T", ErrUnsupported, path, a)
	}
	return rm, nil
}

func buildHeaderMatcher(h *routev3.HeaderMatcher, path string) (headerMatcher, error) {
	if err := onlyFields(h, path, "name", "string_match", "present_match", "invert_match"); err != nil {
		return headerMatcher{}, err
	}
	hm := headerMatcher{name: lower(h.GetName()), invert: h.GetInvertMatch()}
	switch s := h.GetHeaderMatchSpecifier().(type) {
	case *routev3.HeaderMatcher_StringMatch:
		sm, err := buildStringMatcher(s.StringMatch, path+".string_match")
		if err != nil {
			return hm, err
		}
		hm.str = &sm
	case *routev3.HeaderMatcher_PresentMatch:
		hm.present = true
		hm.presentWant = s.PresentMatch
	default:
		return hm, fmt.Errorf("%w: %s: header match specifier %T", ErrUnsupported, path, s)
	}
	return hm, nil
}

func buildRetryPolicy(rp *routev3.RetryPolicy, path string) (*retryPolicy, error) {
	if err := onlyFields(rp, path, "retry_on", "num_retries", "per_try_timeout", "retry_priority", "retriable_status_codes", "retry_back_off",
		"retriable_headers"); err != nil {
		return nil, err
	}
	p := &retryPolicy{numRetries: 1, statusCodes: map[int]bool{}, backOffBase: defaultRetryBackOffBase}
	if n := rp.GetNumRetries(); n != nil {
		p.numRetries = int(n.GetValue())
	}
	p.perTryTimeout = dur(rp.GetPerTryTimeout(), 0)
	for _, c := range rp.GetRetriableStatusCodes() {
		p.statusCodes[int(c)] = true
	}
	for _, on := range splitComma(rp.GetRetryOn()) {
		switch on {
		case "5xx":
			p.on5xx = true
		case "gateway-error":
			p.gatewayError = true
		case "reset":
			p.reset = true
		case "connect-failure":
			p.connectFailure = true
		case "retriable-status-codes":
			p.onStatusCodes = true
		case "retriable-4xx":
			p.retriable4xx = true
		case "refused-stream":
			p.refusedStream = true
		case "retriable-headers":
			p.onHeaders = true
		default:
			return nil, fmt.Errorf("%w: %s.retry_on %q", ErrUnsupported, path, on)
		}
	}
	for i, h := range rp.GetRetriableHeaders() {
		hm, err := buildHeaderMatcher(h, fmt.Sprintf("%s.retriable_headers[%d]", path, i))
		if err != nil {
			return nil, err
		}
		p.retriableHeaders = append(p.retriableHeaders, hm)
	}
	if bo := rp.GetRetryBackOff(); bo != nil {
		if err := onlyFields(bo, path+".retry_back_off", "base_interval", "max_interval"); err != nil {
			return nil, err
		}
		p.backOffBase = dur(bo.GetBaseInterval(), defaultRetryBackOffBase)
		p.backOffMax = dur(bo.GetMaxInterval(), 0)
	}
	if p.backOffMax == 0 {
		p.backOffMax = 10 * p.backOffBase // Envoy's default max_interval
	}
	if pr := rp.GetRetryPriority(); pr != nil {
		if pr.GetName() != previousPrioName {
			return nil, fmt.Errorf("%w: %s.retry_priority.name %q", ErrUnsupported, path, pr.GetName())
		}
		var pp previouspriov3.PreviousPrioritiesConfig
		if err := unpack(pr.GetTypedConfig(), typePrevPrio, &pp, path+".retry_priority"); err != nil {
			return nil, err
		}
		p.previousPriorities = true
		p.updateFrequency = int(pp.GetUpdateFrequency())
	}
	return p, nil
}

func buildCluster(c *clusterv3.Cluster, path string) (*clusterModel, error) {
	if err := onlyFields(c, path, "name", "type", "connect_timeout", "load_assignment", "outlier_detection",
		"typed_extension_protocol_options", "lb_policy", "transport_socket", "dns_lookup_family", "metadata",
		"transport_socket_matches", "circuit_breakers"); err != nil {
		return nil, err
	}
	cm := &clusterModel{name: c.GetName(), connectTimeout: dur(c.GetConnectTimeout(), 5*time.Second), overprov: defaultOverprovisioning,
		metadata: c.GetMetadata(), maxRetries: defaultMaxRetries, dnsFamily: c.GetDnsLookupFamily()}
	switch c.GetType() {
	case clusterv3.Cluster_STATIC:
	case clusterv3.Cluster_STRICT_DNS:
		cm.strictDNS = true
	default:
		return nil, fmt.Errorf("%w: %s.type %v", ErrUnsupported, path, c.GetType())
	}
	if c.GetLbPolicy() != clusterv3.Cluster_ROUND_ROBIN {
		return nil, fmt.Errorf("%w: %s.lb_policy %v", ErrUnsupported, path, c.GetLbPolicy())
	}
	// TLS is decided per host at New: rejected unless Options.PlaintextTLS.
	if err := buildSocketMatches(c, cm, path); err != nil {
		return nil, err
	}
	if cb := c.GetCircuitBreakers(); cb != nil {
		if err := buildCircuitBreakers(cb, cm, path+".circuit_breakers"); err != nil {
			return nil, err
		}
	}
	la := c.GetLoadAssignment()
	if la == nil {
		return nil, fmt.Errorf("envoysim: %s.load_assignment is required", path)
	}
	if err := buildEndpoints(cm, la, path+".load_assignment"); err != nil {
		return nil, err
	}
	if od := c.GetOutlierDetection(); od != nil {
		o, err := buildOutlier(od, path+".outlier_detection")
		if err != nil {
			return nil, err
		}
		cm.outlier = o
	}
	for k, v := range c.GetTypedExtensionProtocolOptions() {
		if k != httpOptionsKey {
			return nil, fmt.Errorf("%w: %s.typed_extension_protocol_options[%q]", ErrUnsupported, path, k)
		}
		var hpo upstreamsv3.HttpProtocolOptions
		if err := unpack(v, typeHTTPOptions, &hpo, path+".typed_extension_protocol_options"); err != nil {
			return nil, err
		}
		if err := buildHTTPOptions(cm, &hpo, fmt.Sprintf("%s.typed_extension_protocol_options[%q]", path, k)); err != nil {
			return nil, err
		}
	}
	return cm, nil
}

func buildEndpoints(cm *clusterModel, la *endpointv3.ClusterLoadAssignment, path string) error {
	if err := onlyFields(la, path, "cluster_name", "endpoints", "policy"); err != nil {
		return err
	}
	if pol := la.GetPolicy(); pol != nil {
		if err := onlyFields(pol, path+".policy", "overprovisioning_factor"); err != nil {
			return err
		}
		if of := pol.GetOverprovisioningFactor(); of != nil {
			cm.overprov = int(of.GetValue())
		}
	}
	maxPrio := -1
	for _, lle := range la.GetEndpoints() {
		maxPrio = max(maxPrio, int(lle.GetPriority()))
	}
	cm.priorities = make([][]*endpointModel, maxPrio+1)
	for i, lle := range la.GetEndpoints() {
		lp := fmt.Sprintf("%s.endpoints[%d]", path, i)
		if err := onlyFields(lle, lp, "lb_endpoints", "priority", "locality"); err != nil {
			return err
		}
		for j, lbe := range lle.GetLbEndpoints() {
			ep := fmt.Sprintf("%s.lb_endpoints[%d]", lp, j)
			if err := onlyFields(lbe, ep, "endpoint", "metadata", "health_status"); err != nil {
				return err
			}
			if err := onlyFields(lbe.GetEndpoint(), ep+".endpoint", "address", "hostname"); err != nil {
				return err
			}
			host, port, err := socketAddress(lbe.GetEndpoint().GetAddress(), ep+".endpoint.address")
			if err != nil {
				return err
			}
			em := &endpointModel{host: host, port: port, priority: int(lle.GetPriority()), metadata: lbe.GetMetadata(),
				hostname: lbe.GetEndpoint().GetHostname()}
			if em.hostname == "" && cm.strictDNS {
				em.hostname = host
			}
			switch lbe.GetHealthStatus() {
			case corev3.HealthStatus_UNKNOWN, corev3.HealthStatus_HEALTHY:
			case corev3.HealthStatus_UNHEALTHY, corev3.HealthStatus_DRAINING, corev3.HealthStatus_TIMEOUT:
				em.unhealthy = true
			default:
				return fmt.Errorf("%w: %s.health_status %v", ErrUnsupported, ep, lbe.GetHealthStatus())
			}
			cm.priorities[em.priority] = append(cm.priorities[em.priority], em)
		}
	}
	for p, eps := range cm.priorities {
		if len(eps) == 0 {
			return fmt.Errorf("%w: %s: priority %d has no endpoints (gaps in priorities are not emulated)", ErrUnsupported, path, p)
		}
	}
	if len(cm.priorities) == 0 {
		return fmt.Errorf("envoysim: %s: no endpoints", path)
	}
	return nil
}

func buildOutlier(od *clusterv3.OutlierDetection, path string) (*outlierConfig, error) {
	if err := onlyFields(od, path, "consecutive_5xx", "consecutive_gateway_failure", "enforcing_consecutive_5xx",
		"enforcing_consecutive_gateway_failure", "base_ejection_time", "max_ejection_percent", "interval",
		"max_ejection_time", "always_eject_one_host"); err != nil {
		return nil, fmt.Errorf("%w (success-rate, failure-percentage and local-origin detection are not emulated)", err)
	}
	o := &outlierConfig{
		consecutive5xx: defaultConsecutive5xx, consecutiveGateway: defaultConsecutiveGateway,
		enforcing5xx: 100, enforcingGateway: 0, maxEjectionPercent: defaultMaxEjectionPercent,
	}
	if v := od.GetConsecutive_5Xx(); v != nil {
		o.consecutive5xx = int(v.GetValue())
	}
	if v := od.GetConsecutiveGatewayFailure(); v != nil {
		o.consecutiveGateway = int(v.GetValue())
	}
	if v := od.GetEnforcingConsecutive_5Xx(); v != nil {
		o.enforcing5xx = int(v.GetValue())
	}
	if v := od.GetEnforcingConsecutiveGatewayFailure(); v != nil {
		o.enforcingGateway = int(v.GetValue())
	}
	if v := od.GetMaxEjectionPercent(); v != nil {
		o.maxEjectionPercent = int(v.GetValue())
	}
	if v := od.GetAlwaysEjectOneHost(); v != nil {
		o.alwaysEjectOneHost = v.GetValue()
	}
	o.baseEjection = dur(od.GetBaseEjectionTime(), defaultBaseEjection)
	o.interval = dur(od.GetInterval(), defaultODInterval)
	o.maxEjection = dur(od.GetMaxEjectionTime(), max(defaultMaxEjectionTime, o.baseEjection))
	if o.maxEjection < o.baseEjection {
		return nil, fmt.Errorf("envoysim: %s: max_ejection_time cannot be smaller than base_ejection_time", path)
	}
	if o.interval <= 0 {
		return nil, fmt.Errorf("envoysim: %s.interval must be positive", path)
	}
	for _, pct := range []int{o.enforcing5xx, o.enforcingGateway} {
		if pct != 0 && pct != 100 {
			// A probabilistic enforcement would make tests flaky; Envoy rolls a die.
			return nil, fmt.Errorf("%w: %s: enforcing percentages other than 0 or 100", ErrUnsupported, path)
		}
	}
	return o, nil
}

func buildHTTPOptions(cm *clusterModel, hpo *upstreamsv3.HttpProtocolOptions, path string) error {
	if err := onlyFields(hpo, path, "explicit_http_config", "http_filters"); err != nil {
		return err
	}
	if ec := hpo.GetExplicitHttpConfig(); ec != nil {
		switch ec.GetProtocolConfig().(type) {
		case *upstreamsv3.HttpProtocolOptions_ExplicitHttpConfig_HttpProtocolOptions:
			if err := onlyFields(ec.GetHttpProtocolOptions(), path+".explicit_http_config.http_protocol_options"); err != nil {
				return err
			}
		case *upstreamsv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions:
			if err := onlyFields(ec.GetHttp2ProtocolOptions(), path+".explicit_http_config.http2_protocol_options"); err != nil {
				return err
			}
			cm.http2 = true
		default:
			return fmt.Errorf("%w: %s.explicit_http_config: HTTP/3", ErrUnsupported, path)
		}
	}
	fs := hpo.GetHttpFilters()
	for i, f := range fs {
		fp := fmt.Sprintf("%s.http_filters[%d]", path, i)
		if err := onlyFields(f, fp, "name", "typed_config"); err != nil {
			return err
		}
		last := i == len(fs)-1
		switch f.GetTypedConfig().GetTypeUrl() {
		case typeUpstreamCodec:
			if !last {
				return fmt.Errorf("envoysim: %s: upstream_codec must be the last upstream http filter", fp)
			}
			var uc upstreamcodecv3.UpstreamCodec
			if err := unpack(f.GetTypedConfig(), typeUpstreamCodec, &uc, fp); err != nil {
				return err
			}
		case typeExtProc:
			if last {
				return fmt.Errorf("envoysim: %s: the last upstream http filter must be envoy.filters.http.upstream_codec", fp)
			}
			var ep extprocfilterv3.ExternalProcessor
			if err := unpack(f.GetTypedConfig(), typeExtProc, &ep, fp); err != nil {
				return err
			}
			c, err := buildExtProc(&ep, fp+".typed_config", true)
			if err != nil {
				return err
			}
			cm.filters = append(cm.filters, c)
		default:
			return fmt.Errorf("%w: %s: upstream http filter %q (%s)", ErrUnsupported, fp, f.GetName(), f.GetTypedConfig().GetTypeUrl())
		}
	}
	return nil
}

// ClusterNames lists the clusters in file order.
func (c *Config) ClusterNames() []string { return append([]string(nil), c.order...) }

// EndpointAddresses lists "host:port" of every endpoint of a cluster, by
// priority, as written in the config (before address overrides).
func (c *Config) EndpointAddresses(cluster string) []string {
	cm := c.clusters[cluster]
	if cm == nil {
		return nil
	}
	var out []string
	for _, eps := range cm.priorities {
		for _, e := range eps {
			out = append(out, e.address())
		}
	}
	return out
}
