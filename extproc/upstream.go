package extproc

import (
	"context"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filterprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
	"go.uber.org/zap"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/switchyard-llm/switchyard/internal/config"
	"github.com/switchyard-llm/switchyard/internal/judge"
	"github.com/switchyard-llm/switchyard/internal/openai"
	"github.com/switchyard-llm/switchyard/internal/route"
	"github.com/switchyard-llm/switchyard/internal/telemetry"
)

// Attribute keys the upstream filter is configured with (envoy-ext-proc.md §5).
const (
	attrsKey         = "envoy.filters.http.ext_proc"
	attrHostMetadata = "xds.upstream_host_metadata"
	attrHostModel    = "xds.upstream_host_metadata.filter_metadata['switchyard']['model']"
	attrClusterName  = "xds.cluster_name"
	clusterPrefix    = "target-"
)

// Headers the router role sets for the upstream role: the upstream role keeps
// no state from the router stream (the two can land on different replicas),
// so what it needs travels in the request.
const (
	headerOriginalPath = "x-switchyard-original-path"
	headerStream       = "x-switchyard-stream"
)

// upstreamProc is the upstream role: the ext_proc filter Envoy runs once per
// upstream attempt (retries and hedges included), with the chosen host's
// metadata in the attributes. It rewrites the request for that host's model
// and provider and, on cascade targets, judges the answer.
type upstreamProc struct {
	ctx     context.Context
	rt      *route.Router
	log     *zap.Logger
	metrics *telemetry.Metrics

	model    *config.ModelInfo
	target   *config.TargetInfo
	decision string
	judge    *judge.Judge
	judgeReq judge.Request
	status   int
	err      string // why the attempt could not be rewritten ("" when it could)
}

func newUpstream(ctx context.Context, rt *route.Router, log *zap.Logger, m *telemetry.Metrics, attrs map[string]*structpb.Struct) *upstreamProc {
	p := &upstreamProc{ctx: ctx, rt: rt, log: log, metrics: m}
	p.resolve(attrs[attrsKey])
	return p
}

func (p *upstreamProc) role() string       { return "upstream" }
func (p *upstreamProc) release()           {} // not pooled: one per upstream attempt, off the hot path
func (p *upstreamProc) decisionID() string { return p.decision }

// resolve finds the model of the chosen host and its target from the
// attributes. Envoy renders a Metadata-typed CEL value as its protobuf text
// format in a string Value (ai-gateway parses it with prototext); the leaf
// attribute for the model key (a plain string) and a Struct value are
// accepted too.
func (p *upstreamProc) resolve(attrs *structpb.Struct) {
	snap := p.rt.Snapshot()
	f := attrs.GetFields()
	name := f[attrHostModel].GetStringValue() // a leaf attribute arrives as a plain string
	switch v := f[attrHostMetadata].GetKind().(type) {
	case *structpb.Value_StringValue:
		if name != "" {
			break
		}
		var md corev3.Metadata
		if err := prototext.Unmarshal([]byte(v.StringValue), &md); err == nil {
			name = md.GetFilterMetadata()[MetadataNamespace].GetFields()["model"].GetStringValue()
		}
	case *structpb.Value_StructValue:
		if name != "" {
			break
		}
		fm := v.StructValue.GetFields()["filter_metadata"].GetStructValue()
		if fm == nil {
			fm = v.StructValue.GetFields()["filterMetadata"].GetStructValue()
		}
		name = fm.GetFields()[MetadataNamespace].GetStructValue().GetFields()["model"].GetStringValue()
	}
	if name == "" {
		p.err = "no_metadata"
		return
	}
	m, ok := snap.Model(name)
	if !ok {
		p.err = "unknown_model"
		return
	}
	p.model = m
	if cl := f[attrClusterName].GetStringValue(); strings.HasPrefix(cl, clusterPrefix) {
		p.target, _ = snap.Target(strings.TrimPrefix(cl, clusterPrefix))
	}
}

// requestHeaders sets the provider's credential and path for this attempt
// (the Host comes from the route's auto_host_rewrite and the endpoint's
// hostname), and for a cascade attempt that is not the last model asks Envoy
// to buffer the response body so it can be judged.
func (p *upstreamProc) requestHeaders(h *extprocv3.HttpHeaders) (*extprocv3.ProcessingResponse, error) {
	var origPath, path, stream string
	for _, hv := range h.GetHeaders().GetHeaders() {
		switch hv.GetKey() {
		case ":path":
			path = headerValue(hv)
		case headerOriginalPath:
			origPath = headerValue(hv)
		case headerStream:
			stream = headerValue(hv)
		case route.HeaderDecision:
			p.decision = headerValue(hv)
		case route.HeaderTarget:
			if p.target == nil {
				p.target, _ = p.rt.Snapshot().Target(headerValue(hv))
			}
		}
	}
	if p.model == nil {
		p.metrics.UpstreamRewrites.WithLabelValues("none", p.err).Inc()
		p.log.Error("upstream attempt without a known model; check the cluster's endpoint metadata",
			zap.String("decision_id", p.decision), zap.String("reason", p.err))
		if p.rt.Snapshot().Config.Server.FailureMode == config.FailOpen {
			return continueHeaders(true, nil), nil
		}
		return errorResponse(502, openai.TypeServer, "upstream_misconfigured",
			"the gateway could not identify the model of the chosen upstream", p.decision, nil), nil
	}
	prov := p.model.Provider
	var set []*corev3.HeaderValueOption
	if secret := p.rt.Snapshot().Secret(p.model.ProviderName); secret != "" && prov.Auth.Header != "" {
		set = append(set, setHeader(prov.Auth.Header, prov.Auth.Prefix+secret))
	}
	if origPath == "" {
		origPath = path
	}
	if newPath := rewritePath(origPath, prov.PathPrefix); newPath != path {
		set = append(set, setHeader(":path", newPath))
	}
	// The client's credentials are for the gateway, never for a provider
	// (without this a provider with no secret configured, like an on-prem
	// server or a vendor whose key is unset, received the client's key).
	// Envoy applies removals before sets (§2), so the provider's own
	// credential set above still goes out.
	remove := clientCredentialHeaders
	if extra := p.rt.Snapshot().Config.Policy.SecretHeaders; len(extra) > 0 {
		remove = append(append(make([]string, 0, len(remove)+len(extra)), remove...), lowerAll(extra)...)
	}
	resp := continueHeaders(true, &extprocv3.CommonResponse{HeaderMutation: &extprocv3.HeaderMutation{SetHeaders: set, RemoveHeaders: remove}})
	if p.judged(stream == "true") {
		// Body modes in a mode_override are taken literally (§1.4): keep the
		// request body BUFFERED while asking for the response body.
		resp.ModeOverride = &filterprocv3.ProcessingMode{
			RequestBodyMode:  filterprocv3.ProcessingMode_BUFFERED,
			ResponseBodyMode: filterprocv3.ProcessingMode_BUFFERED,
		}
		p.judge = p.rt.Judge(p.target.Name)
		// The judge reads the answer: ask for it uncompressed.
		mut := resp.GetRequestHeaders().GetResponse().GetHeaderMutation()
		mut.RemoveHeaders = append(mut.RemoveHeaders[:len(mut.RemoveHeaders):len(mut.RemoveHeaders)], "accept-encoding")
	}
	return resp, nil
}

// clientCredentialHeaders are the request headers of policy.DefaultSecretHeaders
// that can carry the client's credential (set-cookie is a response header).
var clientCredentialHeaders = []string{"authorization", "proxy-authorization", "cookie", "x-api-key", "api-key"}

func lowerAll(hs []string) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = strings.ToLower(h)
	}
	return out
}

// judged reports whether this attempt's answer is judged: a cascade target,
// not its last model (the last answer is always returned), not streaming.
func (p *upstreamProc) judged(stream bool) bool {
	if stream || p.target == nil || !p.target.Cascade || p.rt.Judge(p.target.Name) == nil {
		return false
	}
	models := p.target.Models
	return len(models) > 1 && models[len(models)-1].Name != p.model.Name
}

// rewritePath replaces the leading /v1 of path with prefix.
func rewritePath(path, prefix string) string {
	if prefix == "" {
		return path
	}
	prefix = strings.TrimSuffix(prefix, "/")
	if rest, ok := strings.CutPrefix(path, "/v1"); ok && (rest == "" || rest[0] == '/' || rest[0] == '?') {
		return prefix + rest
	}
	return path
}

// requestBody rewrites "model" to this host's upstream model id, keeping
// content-length right (BUFFERED: the header mutation in the same response
// is applied before Envoy checks the length, §3).
func (p *upstreamProc) requestBody(b *extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
	body := b.GetBody()
	if p.model == nil {
		return continueBody(true, nil), nil
	}
	out := body
	var err error
	if p.judge != nil {
		p.judgeReq = judge.RequestFromBody(body)
		// min_mean_logprob needs token log-probabilities: the judge asks the
		// cheap model for them (chat API) when the client did not.
		if j := p.target.Target.Judge; j != nil && j.MinMeanLogprob != nil && !p.judgeReq.Logprobs &&
			gjson.GetBytes(body, "messages").IsArray() {
			if out, err = sjson.SetBytes(out, "logprobs", true); err == nil {
				p.judgeReq.Logprobs = true
			}
		}
	}
	if cur := gjson.GetBytes(out, "model"); cur.Type == gjson.String && cur.Str != p.model.UpstreamModel {
		out, err = sjson.SetBytes(out, "model", p.model.UpstreamModel)
	}
	if len(out) == len(body) && err == nil && string(out) == string(body) {
		p.metrics.UpstreamRewrites.WithLabelValues(p.model.Name, "ok").Inc()
		return continueBody(true, nil), nil
	}
	if err != nil {
		p.metrics.UpstreamRewrites.WithLabelValues(p.model.Name, "error").Inc()
		p.log.Warn("model rewrite failed", zap.String("decision_id", p.decision), zap.Error(err))
		return continueBody(true, nil), nil
	}
	p.metrics.UpstreamRewrites.WithLabelValues(p.model.Name, "ok").Inc()
	return replaceBody(true, out, nil), nil
}

// replaceBody answers a BUFFERED body message with a new body and a matching
// content-length, plus any extra header sets.
func replaceBody(isRequest bool, body []byte, extra []*corev3.HeaderValueOption) *extprocv3.ProcessingResponse {
	set := append(extra, setHeader("content-length", strconv.Itoa(len(body))))
	return continueBody(isRequest, &extprocv3.CommonResponse{
		HeaderMutation: &extprocv3.HeaderMutation{SetHeaders: set},
		BodyMutation:   &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: body}},
	})
}

// responseHeaders labels the response with the model that answered.
func (p *upstreamProc) responseHeaders(h *extprocv3.HttpHeaders) (*extprocv3.ProcessingResponse, error) {
	for _, hv := range h.GetHeaders().GetHeaders() {
		if hv.GetKey() == ":status" {
			p.status, _ = strconv.Atoi(headerValue(hv))
			break
		}
	}
	if p.model == nil {
		return continueHeaders(false, nil), nil
	}
	target := "none"
	if p.target != nil {
		target = p.target.Name
	}
	p.metrics.UpstreamStatus.WithLabelValues(target, p.model.Name, statusClass(p.status)).Inc()
	return continueHeaders(false, &extprocv3.CommonResponse{HeaderMutation: &extprocv3.HeaderMutation{
		SetHeaders: []*corev3.HeaderValueOption{setHeader(route.HeaderModel, p.model.Name)},
	}}), nil
}

// responseBody judges a buffered cascade answer. A failed judgement adds
// x-switchyard-escalated to the held response headers; the generated route
// retries on that header (retry_on retriable-headers), so Envoy moves on to
// the next priority, the stronger model.
//
// The status and body are left as they are, on purpose (a deliberate change
// from rewriting the status to a 5xx): a 5xx would count towards outlier
// ejection and eject a healthy cheap model for one weak answer, and if Envoy
// cannot retry (retry budget exhausted) the client still gets a real answer,
// flagged by the header, rather than an error. That a header set by an
// upstream filter is seen by the router's retry check is inferred from
// Envoy's router source (envoy-ext-proc.md §6), not confirmed on a real Envoy.
func (p *upstreamProc) responseBody(b *extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
	if p.judge == nil {
		return continueBody(false, nil), nil
	}
	v := p.judge.Judge(p.judgeReq, p.status, b.GetBody())
	if v.OK {
		return continueBody(false, nil), nil
	}
	p.metrics.Escalations.WithLabelValues(p.target.Name, v.Reason).Inc()
	p.log.Info("cascade escalation", zap.String("decision_id", p.decision), zap.String("target", p.target.Name),
		zap.String("model", p.model.Name), zap.String("reason", v.Reason), zap.String("detail", v.Detail))
	return continueBody(false, &extprocv3.CommonResponse{HeaderMutation: &extprocv3.HeaderMutation{
		SetHeaders: []*corev3.HeaderValueOption{setHeader(route.HeaderEscalated, v.Reason)},
	}}), nil
}

func (p *upstreamProc) failure(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
	if p.rt.Snapshot().Config.Server.FailureMode == config.FailOpen {
		return continueFor(req)
	}
	return internalError(p.decision)
}

func statusClass(code int) string {
	switch {
	case code >= 200 && code < 300:
		return "2xx"
	case code >= 300 && code < 400:
		return "3xx"
	case code >= 400 && code < 500:
		return "4xx"
	case code >= 500 && code < 600:
		return "5xx"
	}
	return "other"
}
