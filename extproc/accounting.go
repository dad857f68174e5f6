package extproc

import (
	"bytes"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filterprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/switchyard-llm/switchyard/internal/openai"
	"github.com/switchyard-llm/switchyard/internal/route"
)

// accounting follows one response of the router role: which model answered
// (x-switchyard-model, set by the upstream role), the usage block (a
// non-streaming body, or the final SSE chunk) and what it cost against the
// baseline model.
type accounting struct {
	on       bool
	stream   bool // the response is SSE
	filter   bool // drop the usage-only chunk: the client did not ask for usage
	status   int
	model    string
	usage    openai.Usage
	gotUsage bool
	scanner  openai.SSEScanner
	sseOut   openai.SSEFilter
	content  []byte // streamed delta text, to estimate output tokens when no usage comes
	outBuf   []byte
	done     bool
	sawDone  bool   // the SSE "data: [DONE]" sentinel went by
	encoding string // content-encoding of the answer
}

// forceUsage rewrites a streaming request so the provider reports usage in
// a final chunk; the client's own choice is remembered so the chunk can be
// removed from what it receives.
func (p *routerProc) forceUsage(d *route.Decision) ([]byte, bool) {
	if !p.cfg().Accounting.Enabled || !d.Stream || d.IncludeUsage || d.Shape != openai.ShapeChat && d.Shape != openai.ShapeCompletions {
		return nil, false
	}
	body, changed := openai.ForceIncludeUsage(p.req.Body)
	if changed {
		p.acct.filter = true
	}
	return body, changed
}

// startResponse reads the response headers and, when accounting is on,
// switches the response body mode: STREAMED for SSE (chunks flow to the
// client as they come, never buffered), BUFFERED for a JSON answer (one
// message, and the cost header can still be added because Envoy holds the
// headers, §3). mode_override is honoured here because Envoy is waiting for
// a headers response (§1.4); body modes are literal, so both are given.
func (p *routerProc) startResponse(h *extprocv3.HttpHeaders, ans *answerSlot) *filterprocv3.ProcessingMode {
	a := &p.acct
	ct := ""
	for _, hv := range h.GetHeaders().GetHeaders() {
		switch hv.GetKey() {
		case ":status":
			a.status, _ = strconv.Atoi(headerValue(hv))
		case route.HeaderModel:
			a.model = headerValue(hv)
		case "content-type":
			ct = strings.ToLower(headerValue(hv))
		case "content-encoding":
			a.encoding = strings.ToLower(strings.TrimSpace(headerValue(hv)))
		}
	}
	// The header is set by the upstream role to the model that answered;
	// anything else (an upstream's own header, no upstream role) must not
	// become a metric label or a price lookup: unknown names would grow
	// the label sets without bound, and a non-UTF-8 label value panics.
	if _, known := p.rt.Snapshot().Model(a.model); !known {
		a.model = p.decision.Model
	}
	if !p.cfg().Accounting.Enabled || a.status < 200 || a.status >= 300 || h.GetEndOfStream() {
		return nil
	}
	a.on = true
	a.stream = strings.HasPrefix(ct, "text/event-stream")
	mode := ans.bodyMode()
	mode.ResponseBodyMode = filterprocv3.ProcessingMode_BUFFERED
	if a.stream {
		mode.ResponseBodyMode = filterprocv3.ProcessingMode_STREAMED
	}
	return mode
}

// responseChunk accounts one response body message. For SSE it returns the
// bytes to send instead of the chunk when the usage chunk is filtered out.
func (p *routerProc) responseChunk(b *extprocv3.HttpBody) *extprocv3.ProcessingResponse {
	a := &p.acct
	// After accounting, an SSE answer whose usage chunk is hidden is still
	// filtered until its end; anything else passes untouched.
	if !a.on || a.done && !(a.stream && a.filter) {
		return continueBody(false, nil)
	}
	body, eos := b.GetBody(), b.GetEndOfStream()
	if !a.stream {
		if a.encoding != "" && a.encoding != "identity" {
			// A compressed answer (the client sent accept-encoding): read
			// usage from a bounded decoded copy; the client gets the bytes as sent.
			if dec, err := route.Decompress(a.encoding, body, p.cfg().Server.Content.MaxDecodedBytes); err == nil {
				body = dec
			}
		}
		a.usage, a.gotUsage = openai.ParseUsage(body)
		if !a.gotUsage {
			a.usage = openai.Usage{InputTokens: int64(p.decision.Signals.EstTokens), OutputTokens: openai.EstimateTokens(body), Estimated: true}
		}
		return p.finish(continueBody(false, nil), true)
	}
	if !a.done {
		a.scanner.Feed(body, func(ev openai.Event) {
			if ev.Done {
				// Account at the sentinel, not only at end_of_stream: SDKs
				// close the stream after [DONE], which can cancel the
				// ext_proc stream before Envoy sends end_of_stream.
				a.sawDone = true
				return
			}
			if u, ok := openai.UsageFromEvent(ev.Data); ok {
				a.usage, a.gotUsage = u, true
				return
			}
			if !a.gotUsage {
				a.content = openai.ContentFromEvent(ev.Data, a.content)
			}
		})
	}
	resp := continueBody(false, nil)
	if a.filter {
		a.outBuf = a.sseOut.Filter(body, eos, openai.IsUsageOnlyChunk, a.outBuf[:0])
		if !bytes.Equal(a.outBuf, body) {
			resp = continueBody(false, &extprocv3.CommonResponse{BodyMutation: &extprocv3.BodyMutation{
				Mutation: &extprocv3.BodyMutation_Body{Body: bytes.Clone(a.outBuf)}}})
		}
	}
	if !a.done && (eos || a.sawDone) {
		if !a.gotUsage {
			a.usage = openai.Usage{InputTokens: int64(p.decision.Signals.EstTokens), OutputTokens: openai.EstimateTokens(a.content), Estimated: true}
		}
		return p.finish(resp, false)
	}
	return resp
}

// finish records tokens and cost in metrics and dynamic metadata, and in the
// x-switchyard-cost-usd header when configured and the headers are still held.
func (p *routerProc) finish(resp *extprocv3.ProcessingResponse, headersHeld bool) *extprocv3.ProcessingResponse {
	a := &p.acct
	a.done = true
	snap := p.rt.Snapshot()
	cost, baseline := 0.0, 0.0
	if m, ok := snap.Model(a.model); ok {
		cost = openai.Price(a.usage, m.Price.InputPerMTok, m.Price.OutputPerMTok)
	}
	if b := snap.Baseline(); b != nil {
		baseline = openai.Price(a.usage, b.Price.InputPerMTok, b.Price.OutputPerMTok)
	}
	d := p.decision
	est := strconv.FormatBool(a.usage.Estimated)
	m := p.metrics
	m.Tokens.WithLabelValues("input", a.model, est).Add(float64(a.usage.InputTokens))
	m.Tokens.WithLabelValues("output", a.model, est).Add(float64(a.usage.OutputTokens))
	provider := "none"
	if mi, ok := snap.Model(a.model); ok {
		provider = mi.ProviderName
	}
	m.GenAITokens.WithLabelValues("input", a.model, provider).Observe(float64(a.usage.InputTokens))
	m.GenAITokens.WithLabelValues("output", a.model, provider).Observe(float64(a.usage.OutputTokens))
	m.CostUSD.WithLabelValues(a.model, d.Target).Add(cost)
	m.BaselineCostUSD.WithLabelValues(d.Target).Add(baseline)

	// The decision's answer, which used p.md, was sent long before.
	md := &p.md
	md.reset()
	md.str("decision_id", d.ID)
	md.str("model", a.model)
	md.num("input_tokens", float64(a.usage.InputTokens))
	md.num("output_tokens", float64(a.usage.OutputTokens))
	md.boolean("tokens_estimated", a.usage.Estimated)
	md.num("cost_usd", cost)
	md.num("baseline_usd", baseline)
	setDynamicMetadata(resp, md.bytes())
	if headersHeld && p.cfg().Accounting.CostHeader {
		common := resp.GetResponseBody().GetResponse()
		if common == nil {
			common = &extprocv3.CommonResponse{}
			resp.GetResponseBody().Response = common
		}
		common.HeaderMutation = &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{
			setHeader(route.HeaderCost, strconv.FormatFloat(cost, 'f', 8, 64)),
		}}
	}
	return resp
}
