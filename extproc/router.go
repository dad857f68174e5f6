package extproc

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"go.uber.org/zap"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/switchyard-llm/switchyard/internal/config"
	"github.com/switchyard-llm/switchyard/internal/openai"
	"github.com/switchyard-llm/switchyard/internal/route"
	"github.com/switchyard-llm/switchyard/internal/telemetry"
)

// routerProc is the router role: the downstream ext_proc filter that sees the
// client's request (headers SEND, body BUFFERED) and chooses the target.
// routerProcs are pooled with the storage of their answers (slab.go).
type routerProc struct {
	ctx     context.Context
	rt      *route.Router
	log     *zap.Logger
	metrics *telemetry.Metrics
	id      string

	req      route.Request
	spoofed  []string        // client-supplied x-switchyard-* headers, removed
	decision *route.Decision // &dec once decided
	dec      route.Decision
	acct     accounting

	// Answer storage, reused from stream to stream.
	ansReqHeaders, ansDecision, ansRespHeaders answerSlot
	routeHeaders, respHeaders                  headerSet
	md                                         metaWriter
}

var routerProcs = sync.Pool{New: func() any { return new(routerProc) }}

func newRouterProc(ctx context.Context, rt *route.Router, log *zap.Logger, m *telemetry.Metrics, id string) *routerProc {
	p := routerProcs.Get().(*routerProc)
	p.ctx, p.rt, p.log, p.metrics, p.id = ctx, rt, log, m, id
	return p
}

// release returns p to the pool once its stream has ended and its last
// answer has been sent. Per-request state is dropped; only the answer
// storage and the arrays of req.Headers and spoofed are kept. No string
// is reused: header values are fresh for every stream (requestHeaders).
func (p *routerProc) release() {
	p.ctx, p.rt, p.log, p.metrics, p.id = nil, nil, nil, nil, ""
	clear(p.req.Headers)
	clear(p.spoofed)
	p.req = route.Request{Headers: p.req.Headers[:0]}
	p.spoofed = p.spoofed[:0]
	p.decision = nil
	p.dec.Reset() // keeps map and slice capacity, drops the request's data
	p.acct = accounting{}
	routerProcs.Put(p)
}

func (p *routerProc) role() string       { return "router" }
func (p *routerProc) decisionID() string { return p.id }

func (p *routerProc) cfg() *config.Config { return p.rt.Snapshot().Config }

// requestHeaders records the headers, enforces header limits and removes
// client-supplied x-switchyard-* headers so nobody can pick their own target.
func (p *routerProc) requestHeaders(h *extprocv3.HttpHeaders) (*extprocv3.ProcessingResponse, error) {
	limits := p.cfg().Server.Limits
	hv := h.GetHeaders().GetHeaders()
	if len(hv) > limits.MaxHeaders {
		p.metrics.Rejections.WithLabelValues("too_many_headers").Inc()
		return errorResponse(431, openai.TypeInvalidRequest, "too_many_headers",
			"the request has "+itoa(len(hv))+" headers; the limit is "+itoa(limits.MaxHeaders), p.id, nil), nil
	}
	// The values are read through strings that view the message's own
	// bytes, which are fresh for every message and never written again:
	// the server's codec copies each message once into a private buffer
	// (decodeRequest's invariant), and protobuf-go, its fallback, copies
	// every field. A copy here was a second one (600 B per request).
	size := 0
	if cap(p.req.Headers) < len(hv) {
		p.req.Headers = make([]route.Header, 0, len(hv))
	}
	for _, hdr := range hv {
		key := strings.ToLower(hdr.GetKey()) // no copy when already lower-case
		raw := headerBytes(hdr)
		size += len(hdr.GetKey()) + len(raw)
		val := unsafe.String(unsafe.SliceData(raw), len(raw))
		switch {
		case key == ":method":
			p.req.Method = val
		case key == ":path":
			p.req.Path = val
		case strings.HasPrefix(key, route.HeaderPrefix):
			p.spoofed = append(p.spoofed, key)
			continue
		}
		p.req.Headers = append(p.req.Headers, route.Header{Key: key, Value: val})
	}
	if size > limits.MaxHeaderBytes {
		p.metrics.Rejections.WithLabelValues("headers_too_large").Inc()
		return errorResponse(431, openai.TypeInvalidRequest, "headers_too_large",
			"the request headers are "+itoa(size)+" bytes; the limit is "+itoa(limits.MaxHeaderBytes), p.id, nil), nil
	}
	if h.GetEndOfStream() {
		// No body (GET /v1/models and the like): route to the default target now.
		p.req.NoBody = true
		return p.decide(true)
	}
	resp, common := p.ansReqHeaders.cont(kindRequestHeaders, len(p.spoofed) > 0)
	if common != nil {
		common.HeaderMutation.RemoveHeaders = p.spoofed
	}
	return resp, nil
}

// requestBody decides on the buffered body.
func (p *routerProc) requestBody(b *extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
	if p.decision != nil {
		// A second body message means the filter is not in BUFFERED mode;
		// the decision is made, let the rest through.
		return continueBody(true, nil), nil
	}
	p.req.Body = b.GetBody()
	return p.decide(false)
}

// decide runs the pipeline and answers with the route (header mutation plus
// clear_route_cache in the same CommonResponse, §4) or an immediate error.
func (p *routerProc) decide(inHeaders bool) (*extprocv3.ProcessingResponse, error) {
	d := &p.dec
	p.rt.DecideInto(p.ctx, &p.req, p.id, d)
	p.decision = d
	md := decisionMetadata(&p.md, d)
	if !d.Allowed() {
		return errorResponse(d.Status, d.ErrType, d.Code, d.Message, d.ID, md), nil
	}
	hs := &p.routeHeaders
	hs.reset(8+len(d.Headers), 64+len(p.req.Path))
	hs.set(route.HeaderTarget, d.Target)
	hs.set(route.HeaderDecision, d.ID)
	hs.set(route.HeaderReason, d.Reason)
	// For the upstream role, which keeps no state from this stream.
	hs.set(headerOriginalPath, p.req.Path)
	hs.set(headerStream, strconv.FormatBool(d.Stream))
	if d.Tier != "" {
		hs.set(route.HeaderTier, d.Tier)
	}
	for k, v := range d.Headers {
		hs.set(k, v)
	}
	kind := kindRequestBody
	if inHeaders {
		kind = kindRequestHeaders
	}
	resp, common := p.ansDecision.cont(kind, true)
	common.HeaderMutation.SetHeaders = hs.list
	common.HeaderMutation.RemoveHeaders = p.spoofed
	common.ClearRouteCache = true
	if body, ok := p.forceUsage(d); ok && !inHeaders {
		// BUFFERED: the header mutation in this response is applied before
		// Envoy checks content-length against the new body (§3).
		common.HeaderMutation.SetHeaders = append(common.HeaderMutation.SetHeaders, setHeader("content-length", strconv.Itoa(len(body))))
		common.BodyMutation = &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: body}}
	}
	setDynamicMetadata(resp, md)
	return resp, nil
}

// responseHeaders tells the client where its request went and starts
// accounting for the response.
func (p *routerProc) responseHeaders(h *extprocv3.HttpHeaders) (*extprocv3.ProcessingResponse, error) {
	d := p.decision
	if d == nil || !d.Allowed() {
		return continueHeaders(false, nil), nil
	}
	resp, common := p.ansRespHeaders.cont(kindResponseHeaders, true)
	resp.ModeOverride = p.startResponse(h, &p.ansRespHeaders)
	hs := &p.respHeaders
	hs.reset(3, 48)
	hs.set(route.HeaderTarget, d.Target)
	hs.set(route.HeaderDecision, d.ID)
	if d.Tier != "" {
		hs.set(route.HeaderTier, d.Tier)
	}
	common.HeaderMutation.SetHeaders = hs.list
	return resp, nil
}

func (p *routerProc) responseBody(b *extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
	if p.decision == nil {
		return continueBody(false, nil), nil
	}
	return p.responseChunk(b), nil
}

// failure answers after a panic: closed → 500, open → let the request through.
func (p *routerProc) failure(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
	if p.cfg().Server.FailureMode == config.FailOpen {
		return continueFor(req)
	}
	return internalError(p.id)
}

// decisionMetadata is written to the switchyard dynamic-metadata namespace
// for Envoy access logs. It carries no prompt text and no header values.
func decisionMetadata(f *metaWriter, d *route.Decision) protoreflect.RawFields {
	f.reset()
	f.str("decision_id", d.ID)
	f.str("outcome", d.Outcome)
	f.str("reason", d.Reason)
	if d.Target != "" {
		f.str("target", d.Target)
		f.str("tier", d.Tier)
		f.str("model", d.Model)
	}
	if d.Status != 0 {
		f.num("status", float64(d.Status))
	}
	if d.Signals.Classifier != "" {
		f.str("intent", d.Signals.Intent)
		f.num("complexity", d.Signals.Complexity)
	}
	if d.PolicyRevision != "" {
		f.str("policy_revision", d.PolicyRevision)
	}
	if d.Request.Tenant != "" {
		f.str("tenant", d.Request.Tenant)
	}
	f.num("decision_us", float64(d.Durations.Total.Microseconds()))
	f.boolean("stream", d.Stream)
	return f.bytes()
}
