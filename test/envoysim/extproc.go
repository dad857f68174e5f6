package envoysim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// Envoy's remote_close_timeout_milliseconds default: how long a graceful
// close waits for the processor to end the RPC (§1.1).
const remoteCloseTimeout = time.Second

type respKind int

const (
	kindNone respKind = iota
	kindReqHeaders
	kindRespHeaders
	kindReqBody
	kindRespBody
	kindReqTrailers
	kindRespTrailers
	kindImmediate
	kindUnset
)

func kindOf(r *extprocv3.ProcessingResponse) respKind {
	switch r.GetResponse().(type) {
	case *extprocv3.ProcessingResponse_RequestHeaders:
		return kindReqHeaders
	case *extprocv3.ProcessingResponse_ResponseHeaders:
		return kindRespHeaders
	case *extprocv3.ProcessingResponse_RequestBody:
		return kindReqBody
	case *extprocv3.ProcessingResponse_ResponseBody:
		return kindRespBody
	case *extprocv3.ProcessingResponse_RequestTrailers:
		return kindReqTrailers
	case *extprocv3.ProcessingResponse_ResponseTrailers:
		return kindRespTrailers
	case *extprocv3.ProcessingResponse_ImmediateResponse:
		return kindImmediate
	}
	return kindUnset
}

// localReply is what Envoy's sendLocalReply produces.
type localReply struct {
	status  int
	body    []byte
	details string
	mutate  func(h *headerMap) // ImmediateResponse.headers, checked by the filter's rules
	reset   bool               // the response already started: reset the stream instead
}

type recvItem struct {
	resp *extprocv3.ProcessingResponse
	err  error
}

// extProcFilter is one ext_proc filter instance: one per HTTP request for
// the downstream filter, one per router attempt for an upstream filter (§1.1, §5).
type extProcFilter struct {
	cfg   *extProcConfig
	r     *request
	stats *counters
	name  string // stats scope
	mode  *extprocfilterv3.ProcessingMode

	// attrCtx returns what the attribute expressions may see now.
	attrCtx func() *attrCtx

	stream    extprocv3.ExternalProcessor_ProcessClient
	cancel    context.CancelFunc
	recvCh    chan recvItem
	closing   chan struct{}
	recvDone  chan struct{}
	closeOnce sync.Once

	complete                   bool // processing_complete_: the processor is ignored from now on
	sentFirst                  bool
	sentReqAttrs, sentRspAttr  bool
	reqHasNoBody, rspHasNoBody bool
}

func newExtProcFilter(cfg *extProcConfig, r *request, scope string, attr func() *attrCtx) *extProcFilter {
	m := proto.Clone(cfg.mode).(*extprocfilterv3.ProcessingMode)
	return &extProcFilter{cfg: cfg, r: r, stats: r.e.stats, name: scope, mode: m, attrCtx: attr}
}

func (f *extProcFilter) inc(name string) { f.stats.inc(f.name + "." + name) }

// open lazily opens the gRPC stream (§1.1).
func (f *extProcFilter) open() error {
	conn, err := f.r.e.grpcConn(f.cfg.grpcCluster)
	if err != nil {
		return status.Error(14, err.Error())
	}
	ctx, cancel := context.WithCancel(f.r.e.ctx)
	if len(f.cfg.initialMetadata) > 0 {
		ctx = metadata.NewOutgoingContext(ctx, metadata.New(f.cfg.initialMetadata))
	}
	st, err := extprocv3.NewExternalProcessorClient(conn).Process(ctx)
	if err != nil {
		cancel()
		return err
	}
	f.stream, f.cancel = st, cancel
	f.recvCh = make(chan recvItem, 8)
	f.closing = make(chan struct{})
	f.recvDone = make(chan struct{})
	f.inc("streams_started")
	f.r.e.wg.Add(1)
	go f.receive(st)
	return nil
}

func (f *extProcFilter) receive(st extprocv3.ExternalProcessor_ProcessClient) {
	defer f.r.e.wg.Done()
	defer close(f.recvDone)
	for {
		resp, err := st.Recv()
		select {
		case f.recvCh <- recvItem{resp, err}:
		case <-f.closing:
		}
		if err != nil {
			return
		}
	}
}

// closeStream ends the stream. Graceful: half-close and let the processor
// finish within remoteCloseTimeout (ext_proc_graceful_grpc_close); otherwise
// reset (§1.1).
func (f *extProcFilter) closeStream(graceful bool) {
	if f.stream == nil {
		return
	}
	f.closeOnce.Do(func() {
		close(f.closing)
		if !graceful {
			f.cancel()
			return
		}
		_ = f.stream.CloseSend()
		f.r.e.wg.Add(1)
		go func() {
			defer f.r.e.wg.Done()
			t := time.NewTimer(remoteCloseTimeout)
			defer t.Stop()
			select {
			case <-f.recvDone:
			case <-t.C:
			case <-f.r.e.ctx.Done():
			}
			f.cancel()
		}()
	})
}

func (f *extProcFilter) noExternalProcess(req bool) bool {
	if req {
		return f.mode.GetRequestHeaderMode() != extprocfilterv3.ProcessingMode_SEND &&
			f.mode.GetRequestBodyMode() == extprocfilterv3.ProcessingMode_NONE
	}
	return f.mode.GetResponseHeaderMode() != extprocfilterv3.ProcessingMode_SEND &&
		f.mode.GetResponseBodyMode() == extprocfilterv3.ProcessingMode_NONE
}

func (f *extProcFilter) shouldRemoveContentLength(req bool) bool {
	bm, hm := f.mode.GetResponseBodyMode(), f.mode.GetResponseHeaderMode()
	if req {
		bm, hm = f.mode.GetRequestBodyMode(), f.mode.GetRequestHeaderMode()
	}
	return bm == extprocfilterv3.ProcessingMode_STREAMED ||
		(bm == extprocfilterv3.ProcessingMode_BUFFERED && hm == extprocfilterv3.ProcessingMode_SKIP)
}

func (f *extProcFilter) metadataContext() *corev3.Metadata {
	md := &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{}}
	for _, ns := range f.cfg.forwardNamespaces {
		if s := f.r.getMetadata(ns); s != nil {
			md.FilterMetadata[ns] = s
		}
	}
	return md
}

// send builds the common fields of §1.2 and sends. Failures to open or send
// surface as the gRPC error they are.
func (f *extProcFilter) send(req *extprocv3.ProcessingRequest, reqDir bool) error {
	if f.stream == nil {
		if err := f.open(); err != nil {
			return err
		}
	}
	req.MetadataContext = f.metadataContext()
	if reqDir && !f.sentReqAttrs && len(f.cfg.requestAttrs) > 0 {
		req.Attributes = map[string]*structpb.Struct{"envoy.filters.http.ext_proc": evalAttrs(f.cfg.requestAttrs, f.attrCtx())}
		f.sentReqAttrs = true
	}
	if !reqDir && !f.sentRspAttr && len(f.cfg.responseAttrs) > 0 {
		req.Attributes = map[string]*structpb.Struct{"envoy.filters.http.ext_proc": evalAttrs(f.cfg.responseAttrs, f.attrCtx())}
		f.sentRspAttr = true
	}
	if !f.sentFirst {
		req.ProtocolConfig = &extprocv3.ProtocolConfiguration{
			RequestBodyMode:                         f.cfg.mode.GetRequestBodyMode(),
			ResponseBodyMode:                        f.cfg.mode.GetResponseBodyMode(),
			SendBodyWithoutWaitingForHeaderResponse: f.cfg.sendBodyWithoutWait,
		}
		f.sentFirst = true
	}
	if err := f.stream.Send(req); err != nil {
		// The real error arrives on Recv.
		return nil
	}
	f.inc("stream_msgs_sent")
	return nil
}

func detailsOf(s string) string { return strings.Join(strings.Fields(s), "_") }

func (f *extProcFilter) errorReply(code int, details string) *localReply {
	return &localReply{status: code, details: details}
}

// grpcFailure handles a non-OK stream end or a failure to open (§1.5).
func (f *extProcFilter) grpcFailure(err error) *localReply {
	f.inc("streams_failed")
	if f.complete {
		return nil
	}
	f.complete = true
	if f.cfg.failureModeAllow {
		f.inc("failure_mode_allowed")
		f.closeStream(false)
		return nil
	}
	f.closeStream(false)
	st := status.Convert(err)
	return f.errorReply(f.cfg.statusOnError, fmt.Sprintf("ext_proc_error_gRPC_error_%d{%s}", int(st.Code()), detailsOf(st.Message())))
}

// processingError is handleErrorResponse: status_on_error whatever
// failure_mode_allow says (invalid mutations).
func (f *extProcFilter) processingError(err error) *localReply {
	f.complete = true
	f.closeStream(false)
	msg := err.Error()
	msg = strings.TrimPrefix(msg, errMutation.Error()+": ")
	return f.errorReply(f.cfg.statusOnError, detailsOf(msg))
}

func (f *extProcFilter) spurious(detail string) *localReply {
	f.inc("spurious_msgs_received")
	f.complete = true
	if f.cfg.failureModeAllow {
		f.inc("failure_mode_allowed")
		f.closeStream(false)
		return nil
	}
	f.closeStream(false)
	return f.errorReply(f.cfg.statusOnError, detailsOf(detail))
}

// effectiveModeOverride: DEFAULT header/trailer modes keep the configured
// value, body modes are taken literally (§1.4).
func effectiveModeOverride(target, configured *extprocfilterv3.ProcessingMode) *extprocfilterv3.ProcessingMode {
	m := proto.Clone(configured).(*extprocfilterv3.ProcessingMode)
	if target.GetRequestHeaderMode() != extprocfilterv3.ProcessingMode_DEFAULT {
		m.RequestHeaderMode = target.GetRequestHeaderMode()
	}
	if target.GetResponseHeaderMode() != extprocfilterv3.ProcessingMode_DEFAULT {
		m.ResponseHeaderMode = target.GetResponseHeaderMode()
	}
	if target.GetRequestTrailerMode() != extprocfilterv3.ProcessingMode_DEFAULT {
		m.RequestTrailerMode = target.GetRequestTrailerMode()
	}
	if target.GetResponseTrailerMode() != extprocfilterv3.ProcessingMode_DEFAULT {
		m.ResponseTrailerMode = target.GetResponseTrailerMode()
	}
	m.RequestBodyMode = target.GetRequestBodyMode()
	m.ResponseBodyMode = target.GetResponseBodyMode()
	return m
}

func (f *extProcFilter) maybeModeOverride(resp *extprocv3.ProcessingResponse, inHeaders bool) *localReply {
	mo := resp.GetModeOverride()
	if mo == nil || !inHeaders || !f.cfg.allowModeOverride || f.cfg.sendBodyWithoutWait {
		return nil
	}
	eff := effectiveModeOverride(mo, f.cfg.rawMode)
	if len(f.cfg.allowedOverrideModes) > 0 {
		ok := false
		for _, o := range f.cfg.allowedOverrideModes {
			if eff.GetRequestBodyMode() == o.GetRequestBodyMode() && eff.GetRequestTrailerMode() == o.GetRequestTrailerMode() &&
				eff.GetResponseHeaderMode() == o.GetResponseHeaderMode() && eff.GetResponseBodyMode() == o.GetResponseBodyMode() &&
				eff.GetResponseTrailerMode() == o.GetResponseTrailerMode() {
				ok = true
				break
			}
		}
		if !ok {
			return nil
		}
	}
	if err := checkModeSupported(normaliseMode(eff)); err != nil {
		// Not a silent divergence: the test sees a 500 naming envoysim.
		f.r.e.stats.inc("envoysim.unsupported_mode_override")
		f.complete = true
		f.closeStream(false)
		return f.errorReply(500, detailsOf("envoysim: "+err.Error()))
	}
	f.mode = normaliseMode(eff)
	return nil
}

// applyDynamicMetadata writes namespaces listed in
// receiving_namespaces.untyped; others are dropped (§1.4).
func (f *extProcFilter) applyDynamicMetadata(resp *extprocv3.ProcessingResponse) {
	dm := resp.GetDynamicMetadata()
	if dm == nil {
		return
	}
	for ns, v := range dm.GetFields() {
		allowed := false
		for _, r := range f.cfg.receiveNamespaces {
			if r == ns {
				allowed = true
				break
			}
		}
		if !allowed {
			f.r.e.stats.inc("envoysim.dynamic_metadata_dropped")
			continue
		}
		f.r.mergeMetadata(ns, v.GetStructValue())
	}
}

// call sends one message and waits for its answer (§1.3, §1.4, §1.5).
// It returns the response when it has the wanted kind; a local reply when
// Envoy would answer the client itself; (nil, nil) when the processor is
// dropped and the request continues unmodified.
func (f *extProcFilter) call(ctx context.Context, req *extprocv3.ProcessingRequest, reqDir bool, want respKind) (*extprocv3.ProcessingResponse, *localReply) {
	if f.complete {
		return nil, nil
	}
	if err := f.send(req, reqDir); err != nil {
		return nil, f.grpcFailure(err)
	}
	return f.await(ctx, want)
}

func (f *extProcFilter) await(ctx context.Context, want respKind) (*extprocv3.ProcessingResponse, *localReply) {
	timer := time.NewTimer(f.cfg.messageTimeout)
	defer timer.Stop()
	restarted := false
	inHeaders := want == kindReqHeaders || want == kindRespHeaders
	for {
		select {
		case <-ctx.Done():
			f.complete = true
			f.closeStream(false)
			return nil, &localReply{status: 499, details: "downstream_remote_disconnect", reset: true}
		case <-timer.C:
			f.inc("message_timeouts")
			f.complete = true
			f.closeStream(false)
			if f.cfg.failureModeAllow {
				f.inc("failure_mode_allowed")
				return nil, nil
			}
			return nil, f.errorReply(504, "ext_proc_error_per-message_timeout_exceeded")
		case it := <-f.recvCh:
			if it.err != nil {
				if errors.Is(it.err, io.EOF) {
					// Server ended the RPC with OK: the rest of the request
					// passes unmodified (§1.1 onGrpcClose).
					f.inc("streams_closed")
					f.complete = true
					f.closeStream(false)
					return nil, nil
				}
				return nil, f.grpcFailure(it.err)
			}
			resp := it.resp
			if d := resp.GetOverrideMessageTimeout(); d != nil {
				ms := d.AsDuration()
				if ms < time.Millisecond || ms > f.cfg.maxMessageTimeout || restarted {
					f.inc("override_message_timeout_ignored")
					continue
				}
				restarted = true
				timer.Reset(ms)
				f.inc("override_message_timeout_received")
				continue
			}
			if lr := f.maybeModeOverride(resp, inHeaders); lr != nil {
				return nil, lr
			}
			k := kindOf(resp)
			switch {
			case k == want:
				f.inc("stream_msgs_received")
				f.applyDynamicMetadata(resp)
				return resp, nil
			case k == kindImmediate && !f.cfg.disableImmediate:
				f.inc("stream_msgs_received")
				f.applyDynamicMetadata(resp)
				f.complete = true
				f.closeStream(true)
				return nil, f.immediate(resp.GetImmediateResponse())
			case k == kindUnset:
				return nil, f.spurious("unhandled message")
			default:
				return nil, f.spurious("spurious message")
			}
		}
	}
}

// immediate turns an ImmediateResponse into a local reply (§1.4).
func (f *extProcFilter) immediate(ir *extprocv3.ImmediateResponse) *localReply {
	code := int(ir.GetStatus().GetCode())
	if code < 200 || code > 999 {
		code = 200
	}
	lr := &localReply{status: code, body: ir.GetBody(), details: detailsOf(ir.GetDetails())}
	if hm := ir.GetHeaders(); hm != nil {
		lr.mutate = func(h *headerMap) {
			// A rejected mutation here is only logged by Envoy.
			_ = applyHeaderMutation(hm, h, f.cfg.checker, mutationOpts{rejected: func() { f.inc("rejected_header_mutations") }})
		}
	}
	return lr
}

func (f *extProcFilter) mutOpts(reqDir, replacing bool) mutationOpts {
	return mutationOpts{
		replacing:         replacing,
		dropContentLength: f.shouldRemoveContentLength(reqDir),
		rejected:          func() { f.inc("rejected_header_mutations") },
	}
}

// clearRouteCache: only downstream, only on the request path, only with a
// header_mutation in the same CommonResponse (§1.4, §4).
func (f *extProcFilter) clearRouteCache(cr *extprocv3.CommonResponse, reqDir bool) {
	if cr == nil {
		return
	}
	if f.cfg.upstream {
		if cr.GetClearRouteCache() {
			f.inc("clear_route_cache_upstream_ignored")
		}
		return
	}
	if !reqDir || cr.GetHeaderMutation() == nil {
		if cr.GetClearRouteCache() {
			f.inc("clear_route_cache_ignored")
		}
		return
	}
	switch f.cfg.routeCacheAction {
	case extprocfilterv3.ExternalProcessor_DEFAULT:
		if cr.GetClearRouteCache() {
			if f.cfg.disableClearRoute {
				f.inc("clear_route_cache_disabled")
				return
			}
			f.r.clearRouteCache()
		}
	case extprocfilterv3.ExternalProcessor_CLEAR:
		f.r.clearRouteCache()
	case extprocfilterv3.ExternalProcessor_RETAIN:
	}
}

// bodyState is one direction's body as it leaves the headers phase.
type bodyState struct {
	replaced    bool   // CONTINUE_AND_REPLACE set a body
	replacement []byte // the new body when replaced
}

// headers processes request or response headers. It returns a local reply
// or nil; hdr is mutated in place.
func (f *extProcFilter) headers(ctx context.Context, hdr *headerMap, eos, reqDir bool) (*bodyState, *localReply) {
	bs := &bodyState{}
	if reqDir {
		f.reqHasNoBody = eos
	} else {
		f.rspHasNoBody = eos
	}
	if f.complete {
		return bs, nil
	}
	if f.shouldRemoveContentLength(reqDir) {
		hdr.remove("content-length")
	}
	hm := f.mode.GetResponseHeaderMode()
	if reqDir {
		hm = f.mode.GetRequestHeaderMode()
	}
	if hm != extprocfilterv3.ProcessingMode_SEND {
		return bs, nil
	}
	req := &extprocv3.ProcessingRequest{}
	hh := &extprocv3.HttpHeaders{Headers: hdr.toProto(f.cfg.forward), EndOfStream: eos}
	want := kindRespHeaders
	if reqDir {
		req.Request = &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: hh}
		want = kindReqHeaders
	} else {
		req.Request = &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: hh}
	}
	resp, lr := f.call(ctx, req, reqDir, want)
	if resp == nil {
		return bs, lr
	}
	var hr *extprocv3.HeadersResponse
	if reqDir {
		hr = resp.GetRequestHeaders()
	} else {
		hr = resp.GetResponseHeaders()
	}
	cr := hr.GetResponse()
	if cr.GetStatus() == extprocv3.CommonResponse_CONTINUE_AND_REPLACE {
		if err := applyHeaderMutation(cr.GetHeaderMutation(), hdr, f.cfg.checker, f.mutOpts(reqDir, true)); err != nil {
			return bs, f.processingError(err)
		}
		if bm := cr.GetBodyMutation(); bm != nil {
			switch m := bm.GetMutation().(type) {
			case *extprocv3.BodyMutation_Body:
				bs.replaced, bs.replacement = true, m.Body
			case *extprocv3.BodyMutation_ClearBody:
				bs.replaced = m.ClearBody
			default:
				return bs, f.spurious("spurious message")
			}
			if bs.replaced {
				hdr.remove("content-length")
			}
		}
		// No further messages in this direction (PS handleHeadersResponseWithContinueAndReplace).
		if reqDir {
			f.mode.RequestBodyMode = extprocfilterv3.ProcessingMode_NONE
			f.mode.RequestTrailerMode = extprocfilterv3.ProcessingMode_SKIP
		} else {
			f.mode.ResponseBodyMode = extprocfilterv3.ProcessingMode_NONE
			f.mode.ResponseTrailerMode = extprocfilterv3.ProcessingMode_SKIP
		}
	} else if err := applyHeaderMutation(cr.GetHeaderMutation(), hdr, f.cfg.checker, f.mutOpts(reqDir, false)); err != nil {
		return bs, f.processingError(err)
	}
	// A mode_override may have switched this direction to a mode in which
	// content-length is unreliable [inferred].
	if f.shouldRemoveContentLength(reqDir) {
		hdr.remove("content-length")
	}
	f.clearRouteCache(cr, reqDir)
	f.closeIfLast(want, false)
	return bs, nil
}

// closeIfLast is closeGrpcStreamIfLastRespReceived
// (ext_proc_stream_close_optimization on).
func (f *extProcFilter) closeIfLast(k respKind, lastBody bool) {
	if f.stream == nil || f.complete {
		return
	}
	last := false
	switch k {
	case kindReqHeaders:
		last = (f.reqHasNoBody || f.mode.GetRequestBodyMode() == extprocfilterv3.ProcessingMode_NONE) && f.noExternalProcess(false)
	case kindReqBody:
		last = lastBody && f.noExternalProcess(false)
	case kindRespHeaders:
		last = f.rspHasNoBody || f.mode.GetResponseBodyMode() == extprocfilterv3.ProcessingMode_NONE
	case kindRespBody:
		last = lastBody
	}
	if last {
		f.closeStream(true)
	}
}

func (f *extProcFilter) bodyMode(reqDir bool) extprocfilterv3.ProcessingMode_BodySendMode {
	if reqDir {
		return f.mode.GetRequestBodyMode()
	}
	return f.mode.GetResponseBodyMode()
}

func bodyRequest(reqDir bool, data []byte, eos bool) (*extprocv3.ProcessingRequest, respKind) {
	hb := &extprocv3.HttpBody{Body: data, EndOfStream: eos}
	if reqDir {
		return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: hb}}, kindReqBody
	}
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: hb}}, kindRespBody
}

func bodyResponseOf(resp *extprocv3.ProcessingResponse, reqDir bool) *extprocv3.BodyResponse {
	if reqDir {
		return resp.GetRequestBody()
	}
	return resp.GetResponseBody()
}

// bufferedBody runs the BUFFERED exchange on a complete body (§1.3, §3):
// the header mutation of the BodyResponse applies (headers are still held),
// then the body mutation, then the content-length check.
func (f *extProcFilter) bufferedBody(ctx context.Context, hdr *headerMap, body []byte, reqDir bool) ([]byte, *localReply) {
	req, want := bodyRequest(reqDir, body, true)
	resp, lr := f.call(ctx, req, reqDir, want)
	if resp == nil {
		return body, lr
	}
	cr := bodyResponseOf(resp, reqDir).GetResponse()
	if err := applyHeaderMutation(cr.GetHeaderMutation(), hdr, f.cfg.checker, f.mutOpts(reqDir, false)); err != nil {
		return body, f.processingError(err)
	}
	if bm := cr.GetBodyMutation(); bm != nil {
		var ok bool
		if body, ok = mutateBody(bm, body); !ok {
			return body, f.spurious("spurious message")
		}
		if cl, ok := hdr.get("content-length"); ok {
			if n, err := strconv.Atoi(cl); err != nil || n != len(body) {
				return body, f.processingError(errors.New("mismatch between content length and the length of the mutated body"))
			}
		}
	}
	f.clearRouteCache(cr, reqDir)
	f.closeIfLast(want, false)
	return body, nil
}

// streamedChunk runs the STREAMED exchange for one chunk (§1.3, §3): the
// mutation replaces that chunk only; header mutations are not applied.
func (f *extProcFilter) streamedChunk(ctx context.Context, data []byte, eos, reqDir bool) ([]byte, *localReply) {
	req, want := bodyRequest(reqDir, data, eos)
	resp, lr := f.call(ctx, req, reqDir, want)
	if resp == nil {
		return data, lr
	}
	cr := bodyResponseOf(resp, reqDir).GetResponse()
	if bm := cr.GetBodyMutation(); bm != nil {
		var ok bool
		if data, ok = mutateBody(bm, data); !ok {
			return data, f.spurious("spurious message")
		}
	}
	if cr.GetClearRouteCache() {
		f.clearRouteCache(&extprocv3.CommonResponse{ClearRouteCache: true}, false)
	}
	f.closeIfLast(want, eos)
	return data, nil
}

// mutateBody applies a BUFFERED or STREAMED body mutation (§3): body
// replaces, clear_body empties. ok is false for streamed_response, which
// is valid only in FULL_DUPLEX_STREAMED and so spurious here.
func mutateBody(bm *extprocv3.BodyMutation, body []byte) (out []byte, ok bool) {
	switch m := bm.GetMutation().(type) {
	case *extprocv3.BodyMutation_Body:
		return m.Body, true
	case *extprocv3.BodyMutation_ClearBody:
		if m.ClearBody {
			return nil, true
		}
	case *extprocv3.BodyMutation_StreamedResponse:
		return body, false
	}
	return body, true
}
