package envoysim

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
)

// extProcConfig is a compiled ExternalProcessor filter config.
type extProcConfig struct {
	upstream             bool
	grpcCluster          string
	initialMetadata      map[string]string
	failureModeAllow     bool
	mode                 *extprocfilterv3.ProcessingMode // normalised: DEFAULT header → SEND, DEFAULT trailer → SKIP
	rawMode              *extprocfilterv3.ProcessingMode // as configured (mode_override compares against it)
	requestAttrs         []*attrExpr
	responseAttrs        []*attrExpr
	messageTimeout       time.Duration
	maxMessageTimeout    time.Duration
	checker              *mutationChecker
	forward              *forwardRules
	allowModeOverride    bool
	disableImmediate     bool
	forwardNamespaces    []string
	receiveNamespaces    []string
	routeCacheAction     extprocfilterv3.ExternalProcessor_RouteCacheAction
	disableClearRoute    bool
	allowedOverrideModes []*extprocfilterv3.ProcessingMode
	statusOnError        int
	sendBodyWithoutWait  bool
}

func normaliseMode(m *extprocfilterv3.ProcessingMode) *extprocfilterv3.ProcessingMode {
	out := &extprocfilterv3.ProcessingMode{}
	if m != nil {
		out = &extprocfilterv3.ProcessingMode{
			RequestHeaderMode: m.GetRequestHeaderMode(), ResponseHeaderMode: m.GetResponseHeaderMode(),
			RequestBodyMode: m.GetRequestBodyMode(), ResponseBodyMode: m.GetResponseBodyMode(),
			RequestTrailerMode: m.GetRequestTrailerMode(), ResponseTrailerMode: m.GetResponseTrailerMode(),
		}
	}
	if out.RequestHeaderMode == extprocfilterv3.ProcessingMode_DEFAULT {
		out.RequestHeaderMode = extprocfilterv3.ProcessingMode_SEND
	}
	if out.ResponseHeaderMode == extprocfilterv3.ProcessingMode_DEFAULT {
		out.ResponseHeaderMode = extprocfilterv3.ProcessingMode_SEND
	}
	if out.RequestTrailerMode == extprocfilterv3.ProcessingMode_DEFAULT {
		out.RequestTrailerMode = extprocfilterv3.ProcessingMode_SKIP
	}
	if out.ResponseTrailerMode == extprocfilterv3.ProcessingMode_DEFAULT {
		out.ResponseTrailerMode = extprocfilterv3.ProcessingMode_SKIP
	}
	return out
}

// checkModeSupported rejects modes envoysim does not emulate (§1.3).
func checkModeSupported(m *extprocfilterv3.ProcessingMode) error {
	for _, b := range []extprocfilterv3.ProcessingMode_BodySendMode{m.GetRequestBodyMode(), m.GetResponseBodyMode()} {
		switch b {
		case extprocfilterv3.ProcessingMode_NONE, extprocfilterv3.ProcessingMode_STREAMED, extprocfilterv3.ProcessingMode_BUFFERED:
		default:
			return fmt.Errorf("%w: body mode %v (envoysim emulates NONE, STREAMED and BUFFERED)", ErrUnsupported, b)
		}
	}
	for _, t := range []extprocfilterv3.ProcessingMode_HeaderSendMode{m.GetRequestTrailerMode(), m.GetResponseTrailerMode()} {
		if t == extprocfilterv3.ProcessingMode_SEND {
			return fmt.Errorf("%w: trailer mode SEND (envoysim serves HTTP/1.1 without trailers)", ErrUnsupported)
		}
	}
	return nil
}

func buildExtProc(ep *extprocfilterv3.ExternalProcessor, path string, upstream bool) (*extProcConfig, error) {
	if err := onlyFields(ep, path, "grpc_service", "failure_mode_allow", "processing_mode", "request_attributes",
		"response_attributes", "message_timeout", "stat_prefix", "mutation_rules", "max_message_timeout",
		"forward_rules", "allow_mode_override", "disable_immediate_response", "metadata_options",
		"disable_clear_route_cache", "route_cache_action", "allowed_override_modes", "status_on_error",
		"send_body_without_waiting_for_header_response"); err != nil {
		return nil, err
	}
	gs := ep.GetGrpcService()
	if gs == nil {
		return nil, fmt.Errorf("%w: %s: only grpc_service is supported", ErrUnsupported, path)
	}
	// grpc_service.timeout is accepted; Envoy does not bound the ext_proc
	// stream with it (message_timeout governs each message).
	if err := onlyFields(gs, path+".grpc_service", "envoy_grpc", "timeout", "initial_metadata"); err != nil {
		return nil, err
	}
	eg := gs.GetEnvoyGrpc()
	if eg == nil {
		return nil, fmt.Errorf("%w: %s.grpc_service: only envoy_grpc is supported", ErrUnsupported, path)
	}
	if err := onlyFields(eg, path+".grpc_service.envoy_grpc", "cluster_name", "authority"); err != nil {
		return nil, err
	}
	c := &extProcConfig{
		upstream:            upstream,
		grpcCluster:         eg.GetClusterName(),
		initialMetadata:     map[string]string{},
		failureModeAllow:    ep.GetFailureModeAllow(),
		mode:                normaliseMode(ep.GetProcessingMode()),
		rawMode:             rawMode(ep.GetProcessingMode()),
		messageTimeout:      dur(ep.GetMessageTimeout(), defaultMessageTimeout),
		maxMessageTimeout:   dur(ep.GetMaxMessageTimeout(), 0),
		allowModeOverride:   ep.GetAllowModeOverride(),
		disableImmediate:    ep.GetDisableImmediateResponse(),
		routeCacheAction:    ep.GetRouteCacheAction(),
		disableClearRoute:   ep.GetDisableClearRouteCache(),
		statusOnError:       defaultStatusOnError,
		sendBodyWithoutWait: ep.GetSendBodyWithoutWaitingForHeaderResponse(),
	}
	for _, md := range gs.GetInitialMetadata() {
		c.initialMetadata[lower(md.GetKey())] = md.GetValue()
	}
	if pm := ep.GetProcessingMode(); pm != nil {
		if err := onlyFields(pm, path+".processing_mode", "request_header_mode", "response_header_mode",
			"request_body_mode", "response_body_mode", "request_trailer_mode", "response_trailer_mode"); err != nil {
			return nil, err
		}
	}
	if err := checkModeSupported(c.mode); err != nil {
		return nil, fmt.Errorf("%s.processing_mode: %w", path, err)
	}
	if c.sendBodyWithoutWait && (c.mode.GetRequestBodyMode() == extprocfilterv3.ProcessingMode_STREAMED ||
		c.mode.GetResponseBodyMode() == extprocfilterv3.ProcessingMode_STREAMED) {
		return nil, fmt.Errorf("%w: %s.send_body_without_waiting_for_header_response with a STREAMED body", ErrUnsupported, path)
	}
	for i, m := range ep.GetAllowedOverrideModes() {
		if err := checkModeSupported(normaliseMode(m)); err != nil {
			return nil, fmt.Errorf("%s.allowed_override_modes[%d]: %w", path, i, err)
		}
		c.allowedOverrideModes = append(c.allowedOverrideModes, m)
	}
	if c.routeCacheAction != extprocfilterv3.ExternalProcessor_DEFAULT && c.disableClearRoute {
		return nil, fmt.Errorf("envoysim: %s: route_cache_action and disable_clear_route_cache are mutually exclusive", path)
	}
	if s := ep.GetStatusOnError(); s != nil && s.GetCode() != 0 {
		c.statusOnError = int(s.GetCode())
	}
	var err error
	if c.checker, err = buildChecker(ep.GetMutationRules(), path+".mutation_rules"); err != nil {
		return nil, err
	}
	if fr := ep.GetForwardRules(); fr != nil {
		if err := onlyFields(fr, path+".forward_rules", "allowed_headers", "disallowed_headers"); err != nil {
			return nil, err
		}
		c.forward = &forwardRules{}
		for i, p := range fr.GetAllowedHeaders().GetPatterns() {
			sm, err := buildStringMatcher(p, fmt.Sprintf("%s.forward_rules.allowed_headers.patterns[%d]", path, i))
			if err != nil {
				return nil, err
			}
			c.forward.allow = append(c.forward.allow, sm)
		}
		for i, p := range fr.GetDisallowedHeaders().GetPatterns() {
			sm, err := buildStringMatcher(p, fmt.Sprintf("%s.forward_rules.disallowed_headers.patterns[%d]", path, i))
			if err != nil {
				return nil, err
			}
			c.forward.disallow = append(c.forward.disallow, sm)
		}
	}
	if mo := ep.GetMetadataOptions(); mo != nil {
		if err := onlyFields(mo, path+".metadata_options", "forwarding_namespaces", "receiving_namespaces"); err != nil {
			return nil, err
		}
		if err := onlyFields(mo.GetForwardingNamespaces(), path+".metadata_options.forwarding_namespaces", "untyped"); err != nil {
			return nil, err
		}
		if err := onlyFields(mo.GetReceivingNamespaces(), path+".metadata_options.receiving_namespaces", "untyped"); err != nil {
			return nil, err
		}
		c.forwardNamespaces = mo.GetForwardingNamespaces().GetUntyped()
		c.receiveNamespaces = mo.GetReceivingNamespaces().GetUntyped()
	}
	for _, a := range ep.GetRequestAttributes() {
		x, err := parseAttr(a)
		if err != nil {
			return nil, fmt.Errorf("%s.request_attributes: %w", path, err)
		}
		c.requestAttrs = append(c.requestAttrs, x)
	}
	for _, a := range ep.GetResponseAttributes() {
		x, err := parseAttr(a)
		if err != nil {
			return nil, fmt.Errorf("%s.response_attributes: %w", path, err)
		}
		c.responseAttrs = append(c.responseAttrs, x)
	}
	return c, nil
}

func rawMode(m *extprocfilterv3.ProcessingMode) *extprocfilterv3.ProcessingMode {
	if m == nil {
		return &extprocfilterv3.ProcessingMode{}
	}
	return proto.Clone(m).(*extprocfilterv3.ProcessingMode)
}
