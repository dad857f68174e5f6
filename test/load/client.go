package main

import (
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Phases of one request, in the order Envoy sends them.
const (
	phaseHeaders     = "request_headers"
	phaseBody        = "request_body"
	phaseRespHeaders = "response_headers"
	phaseTotal       = "total"
	phaseQueue       = "queue" // open loop: due time to the moment the stream opened
)

var phases = []string{phaseHeaders, phaseBody, phaseRespHeaders, phaseTotal, phaseQueue}

// Expectations of the answers, by server kind.
const (
	expectRoute    = "route"    // Switchyard: the body answer sets x-switchyard-target with clear_route_cache
	expectContinue = "continue" // null processor: a plain CONTINUE of the right kind
)

// targetHeader is the header Switchyard sets to tell Envoy's route table
// where the request goes.
const targetHeader = "x-switchyard-target"

// Error kinds reported by the load tool.
const (
	errMsgTimeout   = "msg_timeout"          // no answer within -msg-timeout: abandoned, as Envoy does (504)
	errDeadline     = "stream_deadline"      // no answer within -stream-timeout
	errEarlyEOF     = "early_eof"            // the server ended the stream before answering
	errExtraMessage = "extra_message"        // a message after the last answer
	errImmediate    = "unexpected_immediate" // an immediate response the run did not allow
	errNoTarget     = "no_target"            // a body answer without x-switchyard-target (expect route)
	errMalformed    = "malformed_"           // + phase: wrong kind of answer or an invalid mutation
)

// outcome is the result of one request.
type outcome struct {
	lat       [3]time.Duration // per message phase; zero when not reached
	total     time.Duration
	queue     time.Duration
	err       string // "" when the request was answered correctly
	immediate int    // HTTP status of an immediate response, 0 when none
	target    string // x-switchyard-target of a routed request
}

// staticHeaders are the request headers that do not change between
// requests, shared read-only by every message (concurrent marshalling of an
// unmodified message is safe in protobuf-go).
type headerSet struct {
	python, node []*corev3.HeaderValue
	tenants      []*corev3.HeaderValue
	respJSON     []*corev3.HeaderValue
	respSSE      []*corev3.HeaderValue
}

func hv(k, v string) *corev3.HeaderValue { return &corev3.HeaderValue{Key: k, RawValue: []byte(v)} }

// newHeaderSet lists what Envoy forwards for a request from the OpenAI
// Python or Node SDK: pseudo-headers first, keys lower-case, values in
// raw_value (envoy-ext-proc.md §1.2), plus what Envoy's connection manager
// adds (x-forwarded-proto, x-request-id).
func newHeaderSet() *headerSet {
	common := []*corev3.HeaderValue{
		hv(":authority", "llm-gateway.internal.example"),
		hv(":path", "/v1/chat/completions"),
		hv(":method", "POST"),
		hv(":scheme", "https"),
		hv("content-type", "application/json"),
		hv("accept", "application/json"),
		hv("accept-encoding", "gzip, deflate"),
		hv("x-stainless-retry-count", "0"),
		hv("x-stainless-read-timeout", "600"),
		hv("x-stainless-os", "Linux"),
		hv("x-stainless-arch", "x64"),
		hv("x-forwarded-proto", "https"),
	}
	python := append(append([]*corev3.HeaderValue{}, common...),
		hv("user-agent", "OpenAI/Python 1.82.1"),
		hv("x-stainless-lang", "python"),
		hv("x-stainless-package-version", "1.82.1"),
		hv("x-stainless-runtime", "CPython"),
		hv("x-stainless-runtime-version", "3.12.8"),
	)
	node := append(append([]*corev3.HeaderValue{}, common...),
		hv("user-agent", "OpenAI/JS 4.104.0"),
		hv("x-stainless-lang", "js"),
		hv("x-stainless-package-version", "4.104.0"),
		hv("x-stainless-runtime", "node"),
		hv("x-stainless-runtime-version", "v22.11.0"),
	)
	hs := &headerSet{python: python, node: node}
	for _, t := range []string{"acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "tyrell"} {
		hs.tenants = append(hs.tenants, hv("x-tenant-id", t))
	}
	resp := []*corev3.HeaderValue{
		hv(":status", "200"),
		hv("date", "Tue, 04 Aug 2026 10:12:31 GMT"),
		hv("openai-processing-ms", "812"),
		hv("x-envoy-upstream-service-time", "815"),
		hv("server", "envoy"),
	}
	hs.respJSON = append(append([]*corev3.HeaderValue{}, resp...), hv("content-type", "application/json"))
	hs.respSSE = append(append([]*corev3.HeaderValue{}, resp...), hv("content-type", "text/event-stream; charset=utf-8"))
	return hs
}

// messages builds the three messages of request i.
func (hs *headerSet) messages(i uint64, body []byte, t *template) (reqH, reqB, respH *extprocv3.ProcessingRequest) {
	base := hs.python
	if i%3 == 2 {
		base = hs.node
	}
	h := make([]*corev3.HeaderValue, 0, len(base)+4)
	h = append(h, base...)
	h = append(h,
		hv("content-length", strconv.Itoa(len(body))),
		hs.tenants[i%uint64(len(hs.tenants))],
		&corev3.HeaderValue{Key: "authorization", RawValue: bearer(i)},
		&corev3.HeaderValue{Key: "x-request-id", RawValue: requestID(i)},
	)
	reqH = &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{
		RequestHeaders: &extprocv3.HttpHeaders{Headers: &corev3.HeaderMap{Headers: h}}}}
	reqB = &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{
		RequestBody: &extprocv3.HttpBody{Body: body, EndOfStream: true}}}
	rh := hs.respJSON
	if t.stream {
		rh = hs.respSSE
	}
	respH = &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{
		ResponseHeaders: &extprocv3.HttpHeaders{Headers: &corev3.HeaderMap{Headers: rh}}}}
	return reqH, reqB, respH
}

const hexdigits = "0123456789abcdef"

// bearer is a made-up per-client key (one of 64), shaped like a project key.
func bearer(i uint64) []byte {
	b := []byte("Bearer sk-proj-loadtest-0000000000000000")
	k := (i % 64) * 0x9E3779B97F4A7C15
	for j := len(b) - 1; j >= len(b)-16; j-- {
		b[j] = hexdigits[k&15]
		k >>= 4
	}
	return b
}

// requestID is a UUID-shaped id unique within a run, like Envoy's.
func requestID(i uint64) []byte {
	b := []byte("7f3c2a10-0000-4000-8000-000000000000")
	for j, k := len(b)-1, i; j >= 24 && k > 0; j-- {
		b[j] = hexdigits[k&15]
		k >>= 4
	}
	return b
}

// exchange runs request i on one new stream exactly as Envoy does with
// headers SEND, request body BUFFERED and response headers SEND: each
// message waits for its answer, then the stream is half-closed and drained
// to EOF (Envoy's graceful close, §1.1). start is when the request was due
// (open loop) or began (closed loop); latency is measured from it.
func (w *worker) exchange(ctx context.Context, client extprocv3.ExternalProcessorClient, i uint64, start time.Time) (o outcome) {
	body, t := w.corpus.body(w.buf[:0], i)
	w.buf = body
	reqH, reqB, respH := w.headers.messages(i, body, t)

	ctx, cancel := context.WithTimeout(ctx, w.cfg.streamTimeout)
	defer cancel()
	opened := time.Now()
	o.queue = opened.Sub(start)
	// Every request counts in the total, failed ones too (an abandoned one
	// at the moment it was abandoned), so failures cannot flatter the tail.
	defer func() { o.total = time.Since(start) }()
	// Envoy's message_timeout: an answer that has not come in time makes
	// Envoy reply 504 and reset the stream. The timer for the first
	// message runs from the stream's opening.
	var timedOut atomic.Bool
	arm := func(from time.Time) *time.Timer {
		return time.AfterFunc(w.cfg.msgTimeout-time.Since(from), func() { timedOut.Store(true); cancel() })
	}
	fail := func(err error) outcome {
		if timedOut.Load() {
			o.err = errMsgTimeout
		} else {
			o.err = recvKind(err)
		}
		return o
	}
	timer := arm(opened)
	stream, err := client.Process(ctx)
	if err != nil {
		timer.Stop()
		return fail(err)
	}
	msgs := [3]*extprocv3.ProcessingRequest{reqH, reqB, respH}
	for ph := range msgs {
		t0 := opened // the stream open is part of the first exchange, as in Envoy
		if ph > 0 {
			t0 = time.Now()
			timer = arm(t0)
		}
		if err := stream.Send(msgs[ph]); err != nil && !errors.Is(err, io.EOF) {
			// io.EOF from Send means the server ended the stream; Recv
			// below reports why.
			timer.Stop()
			o.lat[ph] = time.Since(t0)
			return fail(err)
		}
		resp, err := stream.Recv()
		o.lat[ph] = time.Since(t0)
		if !timer.Stop() {
			// Fired: Envoy has given up on this request, even if the
			// answer came a moment later.
			timedOut.Store(true)
		}
		if err != nil || timedOut.Load() {
			return fail(err)
		}
		done, kind := w.check(ph, resp, &o)
		if kind != "" {
			o.err = kind
		}
		if done || kind != "" {
			break
		}
	}
	if err := stream.CloseSend(); err != nil && o.err == "" {
		o.err = grpcKind(err)
	}
	// Drain: the server must end the stream with OK and send nothing more.
	for {
		_, err := stream.Recv()
		if err == nil {
			if o.err == "" {
				o.err = errExtraMessage
			}
			continue
		}
		if !errors.Is(err, io.EOF) && o.err == "" {
			o.err = recvKind(err)
		}
		break
	}
	return o
}

// check validates the answer to message ph. done means the exchange is
// over (an immediate response ends the HTTP request in Envoy); a non-empty
// kind is an error.
func (w *worker) check(ph int, resp *extprocv3.ProcessingResponse, o *outcome) (done bool, kind string) {
	if ir := resp.GetImmediateResponse(); ir != nil {
		o.immediate = int(ir.GetStatus().GetCode())
		if o.immediate == 0 {
			o.immediate = 200 // Envoy's default for an unset status
		}
		if !w.cfg.allowImmediate {
			return true, errImmediate
		}
		return true, ""
	}
	malformed := errMalformed + []string{phaseHeaders, phaseBody, phaseRespHeaders}[ph]
	var common *extprocv3.CommonResponse
	switch ph {
	case 0:
		r, ok := resp.Response.(*extprocv3.ProcessingResponse_RequestHeaders)
		if !ok || r.RequestHeaders == nil {
			return true, malformed
		}
		common = r.RequestHeaders.GetResponse()
	case 1:
		r, ok := resp.Response.(*extprocv3.ProcessingResponse_RequestBody)
		if !ok || r.RequestBody == nil {
			return true, malformed
		}
		common = r.RequestBody.GetResponse()
	default:
		r, ok := resp.Response.(*extprocv3.ProcessingResponse_ResponseHeaders)
		if !ok || r.ResponseHeaders == nil {
			return true, malformed
		}
		common = r.ResponseHeaders.GetResponse()
	}
	if common.GetStatus() != extprocv3.CommonResponse_CONTINUE {
		return true, malformed
	}
	// Envoy reads raw_value only; a mutation with value set (alone or
	// with raw_value) would write an empty header or fail the request (§2).
	for _, s := range common.GetHeaderMutation().GetSetHeaders() {
		h := s.GetHeader()
		if h.GetValue() != "" || h.GetKey() == "" || h.GetKey() != strings.ToLower(h.GetKey()) {
			return true, malformed
		}
		if ph == 1 && h.GetKey() == targetHeader {
			o.target = string(h.GetRawValue())
		}
	}
	if ph == 1 && w.cfg.expect == expectRoute {
		if o.target == "" {
			return true, errNoTarget
		}
		if !common.GetClearRouteCache() {
			// Without it Envoy keeps the route picked before the header was set (§4).
			return true, malformed
		}
	}
	return false, ""
}

// grpcKind names a gRPC error by its code, e.g. grpc_unavailable.
func grpcKind(err error) string {
	c := status.Code(err)
	if c == codes.DeadlineExceeded || errors.Is(err, context.DeadlineExceeded) {
		return errDeadline
	}
	return "grpc_" + strings.ToLower(strings.ReplaceAll(c.String(), " ", "_"))
}

func recvKind(err error) string {
	if errors.Is(err, io.EOF) {
		return errEarlyEOF
	}
	return grpcKind(err)
}
