package envoysim

import (
	"fmt"
	"net"
	"strings"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	streamv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	rawbufferv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/raw_buffer/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	// Registered so protojson can resolve the Any types nested in access
	// loggers (formatter extensions).
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/formatter/req_without_query/v3"
)

// Type URLs of transport sockets and access loggers envoysim understands.
const (
	typeUpstreamTLS  = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
	typeRawBuffer    = "type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer"
	typeStdoutLog    = "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"
	typeStderrLog    = "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StderrAccessLog"
	typeFileLog      = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"
	socketMatchNS    = "envoy.transport_socket_match" // endpoint metadata namespace (Config::MetadataFilters)
	tlsSocketName    = "envoy.transport_sockets.tls"
	rawSocketName    = "envoy.transport_sockets.raw_buffer"
	defaultSocketTag = "default" // TransportSocketMatcherImpl's name for the cluster socket
)

// Envoy defaults for the HCM's header limits (http_connection_manager.proto,
// protocol.proto) and the circuit breaker's retry budget (circuit_breaker.proto).
const (
	defaultMaxHeadersKB    = 60
	defaultMaxHeadersCount = 100
	defaultMaxRetries      = 3
)

// socketMatch is one entry of Cluster.transport_socket_matches.
type socketMatch struct {
	name   string
	labels map[string]*structpb.Value // match: every key must equal the endpoint's value
	tls    bool
}

// headerToAdd is one response_headers_to_add entry (HeaderValueOption as
// HeaderParser applies it).
type headerToAdd struct {
	key, value string
	action     corev3.HeaderValueOption_HeaderAppendAction
	keepEmpty  bool
}

// buildTransportSocket reads a transport_socket: TLS or raw buffer. envoysim
// never speaks TLS; it records which socket an endpoint would use so a test
// can see it (Attempt.TransportSocket) and New can refuse TLS unless
// Options.PlaintextTLS is set.
func buildTransportSocket(ts *corev3.TransportSocket, path string) (tls bool, err error) {
	if err := onlyFields(ts, path, "name", "typed_config"); err != nil {
		return false, err
	}
	if tc := ts.GetTypedConfig(); tc != nil {
		switch tc.GetTypeUrl() {
		case typeUpstreamTLS:
			var c tlsv3.UpstreamTlsContext
			return true, unpack(tc, typeUpstreamTLS, &c, path)
		case typeRawBuffer:
			var c rawbufferv3.RawBuffer
			return false, unpack(tc, typeRawBuffer, &c, path)
		default:
			return false, fmt.Errorf("%w: %s.typed_config %s", ErrUnsupported, path, tc.GetTypeUrl())
		}
	}
	switch ts.GetName() {
	case tlsSocketName:
		return true, nil
	case rawSocketName:
		return false, nil
	}
	return false, fmt.Errorf("%w: %s.name %q", ErrUnsupported, path, ts.GetName())
}

// buildSocketMatches reads transport_socket_matches. Envoy's
// TransportSocketMatcherImpl::resolve picks, per host, the first match whose
// every label equals the value under the endpoint metadata namespace
// envoy.transport_socket_match (then the locality's, which envoysim does not
// accept), else the cluster's transport_socket ("default"), else plaintext.
func buildSocketMatches(c *clusterv3.Cluster, cm *clusterModel, path string) error {
	if c.GetTransportSocketMatcher() != nil {
		return fmt.Errorf("%w: %s.transport_socket_matcher", ErrUnsupported, path)
	}
	seen := map[string]bool{}
	for i, m := range c.GetTransportSocketMatches() {
		mp := fmt.Sprintf("%s.transport_socket_matches[%d]", path, i)
		if err := onlyFields(m, mp, "name", "match", "transport_socket"); err != nil {
			return err
		}
		if seen[m.GetName()] {
			return fmt.Errorf("envoysim: %s: duplicate match name %q", mp, m.GetName())
		}
		seen[m.GetName()] = true
		tls, err := buildTransportSocket(m.GetTransportSocket(), mp+".transport_socket")
		if err != nil {
			return err
		}
		sm := socketMatch{name: m.GetName(), labels: map[string]*structpb.Value{}, tls: tls}
		for k, v := range m.GetMatch().GetFields() {
			sm.labels[k] = v
		}
		cm.socketMatches = append(cm.socketMatches, sm)
	}
	if ts := c.GetTransportSocket(); ts != nil {
		tls, err := buildTransportSocket(ts, path+".transport_socket")
		if err != nil {
			return err
		}
		cm.tls = tls
	}
	return nil
}

// resolveSocket is TransportSocketMatcherImpl::resolve for one endpoint: the
// match name ("default" for the cluster socket) and whether it is TLS.
func (cm *clusterModel) resolveSocket(ep *endpointModel) (string, bool) {
	have := ep.metadata.GetFilterMetadata()[socketMatchNS].GetFields()
	for _, m := range cm.socketMatches {
		ok := true
		for k, want := range m.labels {
			got, present := have[k]
			if !present || !proto.Equal(got, want) {
				ok = false
				break
			}
		}
		if ok {
			return m.name, m.tls
		}
	}
	return defaultSocketTag, cm.tls
}

// buildCircuitBreakers reads the retry budget. Only max_retries is emulated:
// the other thresholds (connections, pending requests, requests) would need a
// connection-pool model, so they are rejected rather than ignored. Routes
// always use the DEFAULT routing priority (RouteAction.priority is not
// accepted), so HIGH thresholds are parsed but never consulted.
func buildCircuitBreakers(cb *clusterv3.CircuitBreakers, cm *clusterModel, path string) error {
	if err := onlyFields(cb, path, "thresholds"); err != nil {
		return err
	}
	for i, th := range cb.GetThresholds() {
		tp := fmt.Sprintf("%s.thresholds[%d]", path, i)
		if err := onlyFields(th, tp, "priority", "max_retries"); err != nil {
			return fmt.Errorf("%w (only max_retries is emulated)", err)
		}
		if th.GetPriority() == corev3.RoutingPriority_DEFAULT && th.GetMaxRetries() != nil {
			cm.maxRetries = int(th.GetMaxRetries().GetValue())
		}
	}
	return nil
}

// buildResponseHeadersToAdd reads a route's response_headers_to_add. Values
// with substitution formatters (%...%) are not emulated.
func buildResponseHeadersToAdd(hs []*corev3.HeaderValueOption, path string) ([]headerToAdd, error) {
	var out []headerToAdd
	for i, h := range hs {
		hp := fmt.Sprintf("%s.response_headers_to_add[%d]", path, i)
		if err := onlyFields(h, hp, "header", "append", "append_action", "keep_empty_value"); err != nil {
			return nil, err
		}
		if err := onlyFields(h.GetHeader(), hp+".header", "key", "value", "raw_value"); err != nil {
			return nil, err
		}
		v := h.GetHeader().GetValue()
		if len(h.GetHeader().GetRawValue()) > 0 {
			v = string(h.GetHeader().GetRawValue())
		}
		if strings.Contains(v, "%") {
			return nil, fmt.Errorf("%w: %s.header.value: substitution formatters", ErrUnsupported, hp)
		}
		a := headerToAdd{key: lower(h.GetHeader().GetKey()), value: v, action: h.GetAppendAction(), keepEmpty: h.GetKeepEmptyValue()}
		if ap := h.GetAppend(); ap != nil {
			// The deprecated BoolValue wins when set (HeaderParser).
			a.action = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
			if ap.GetValue() {
				a.action = corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD
			}
		}
		out = append(out, a)
	}
	return out, nil
}

// applyHeadersToAdd is HeaderParser::evaluateHeaders for static values.
func applyHeadersToAdd(adds []headerToAdd, h *headerMap) {
	for _, a := range adds {
		if a.value == "" && !a.keepEmpty {
			continue
		}
		_, exists := h.get(a.key)
		switch a.action {
		case corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD:
			h.add(a.key, a.value)
		case corev3.HeaderValueOption_ADD_IF_ABSENT:
			if !exists {
				h.add(a.key, a.value)
			}
		case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD:
			h.set(a.key, a.value)
		case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS:
			if exists {
				h.set(a.key, a.value)
			}
		}
	}
}

// buildAccessLogs checks the HCM access loggers. They are accepted without
// effect (Options.AccessLog is envoysim's own log); only stream and file
// loggers without filters load, so a config whose logging depends on
// something else is not silently mis-read.
func buildAccessLogs(als []*accesslogv3.AccessLog, path string) error {
	for i, al := range als {
		ap := fmt.Sprintf("%s.access_log[%d]", path, i)
		if err := onlyFields(al, ap, "name", "typed_config"); err != nil {
			return err
		}
		tc := al.GetTypedConfig()
		var err error
		switch tc.GetTypeUrl() {
		case typeStdoutLog:
			err = unpack(tc, typeStdoutLog, &streamv3.StdoutAccessLog{}, ap)
		case typeStderrLog:
			err = unpack(tc, typeStderrLog, &streamv3.StderrAccessLog{}, ap)
		case typeFileLog:
			err = unpack(tc, typeFileLog, &filev3.FileAccessLog{}, ap)
		default:
			err = fmt.Errorf("%w: %s: access logger %s", ErrUnsupported, ap, tc.GetTypeUrl())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// buildHCMLimits reads the header limits the HTTP/1 codec enforces
// (codec_impl.cc: more than max_headers_count headers, or more than
// max_request_headers_kb KiB of request line and headers, is a 431).
func buildHCMLimits(h *hcmv3.HttpConnectionManager, m *hcmModel, path string) error {
	m.maxHeadersKB, m.maxHeadersCount = defaultMaxHeadersKB, defaultMaxHeadersCount
	if v := h.GetMaxRequestHeadersKb(); v != nil {
		m.maxHeadersKB = int(v.GetValue())
	}
	if o := h.GetCommonHttpProtocolOptions(); o != nil {
		if err := onlyFields(o, path+".common_http_protocol_options", "max_headers_count"); err != nil {
			return err
		}
		if v := o.GetMaxHeadersCount(); v != nil {
			m.maxHeadersCount = int(v.GetValue())
		}
	}
	return buildAccessLogs(h.GetAccessLog(), path)
}

// pickFamily is the DNS resolver's answer for a cluster's
// dns_lookup_family: AUTO tries IPv6 first and falls back to IPv4,
// V4_PREFERRED the reverse, V4_ONLY / V6_ONLY keep one family and ALL keeps
// both (every address becomes a host of the STRICT_DNS cluster).
func pickFamily(ips []net.IP, fam clusterv3.Cluster_DnsLookupFamily) []net.IP {
	var v4, v6 []net.IP
	for _, ip := range ips {
		if ip.To4() != nil {
			v4 = append(v4, ip)
		} else {
			v6 = append(v6, ip)
		}
	}
	switch fam {
	case clusterv3.Cluster_V4_ONLY:
		return v4
	case clusterv3.Cluster_V6_ONLY:
		return v6
	case clusterv3.Cluster_V4_PREFERRED:
		if len(v4) > 0 {
			return v4
		}
		return v6
	case clusterv3.Cluster_ALL:
		return append(v4, v6...)
	default: // AUTO
		if len(v6) > 0 {
			return v6
		}
		return v4
	}
}
