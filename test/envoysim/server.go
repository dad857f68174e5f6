package envoysim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// chunk is one data callback; err != nil means the stream was reset.
type chunk struct {
	data []byte
	eos  bool
	err  error
}

// respStream is a response travelling through the encoder filters.
type respStream struct {
	hdr     *headerMap
	eos     bool         // headers only
	body    <-chan chunk // nil when eos
	ctx     context.Context
	cancel  context.CancelFunc
	details string
}

// discard abandons the body: the producer and every stage stop.
func (rs *respStream) discard() {
	if rs == nil {
		return
	}
	if rs.cancel != nil {
		rs.cancel()
	}
	if rs.body != nil {
		for range rs.body { //nolint:revive // drain so producers exit
		}
	}
}

// request is the per-downstream-request state (HCM ActiveStream).
type request struct {
	e   *Envoy
	ctx context.Context

	hdr         *headerMap
	route       *routeModel
	vhost       *vhostModel
	routeCached bool
	bufferLimit uint32

	mdMu sync.Mutex
	md   map[string]*structpb.Struct

	// set by the router for attribute contexts and the access log
	cluster  *clusterRT
	lastHost *hostState
	attempts []Attempt
	respHdr  *headerMap
	flags    []string // response flags for the access log

	cleanup []func()
	stages  sync.WaitGroup
}

func (r *request) getMetadata(ns string) *structpb.Struct {
	r.mdMu.Lock()
	defer r.mdMu.Unlock()
	if s, ok := r.md[ns]; ok {
		return proto.Clone(s).(*structpb.Struct)
	}
	return nil
}

// mergeMetadata is StreamInfo::setDynamicMetadata: fields merge into the
// namespace.
func (r *request) mergeMetadata(ns string, s *structpb.Struct) {
	if s == nil {
		return
	}
	r.mdMu.Lock()
	defer r.mdMu.Unlock()
	cur, ok := r.md[ns]
	if !ok {
		cur = &structpb.Struct{Fields: map[string]*structpb.Value{}}
		r.md[ns] = cur
	}
	for k, v := range s.GetFields() {
		cur.Fields[k] = proto.Clone(v).(*structpb.Value)
	}
}

func (r *request) clearRouteCache() { r.routeCached = false }

// currentRoute is the cached route; it is recomputed on first use after a
// clear (§4).
func (r *request) currentRoute() *routeModel {
	if !r.routeCached {
		r.vhost, r.route = r.e.cfg.listener.hcm.match(r.hdr)
		r.routeCached = true
	}
	return r.route
}

func (r *request) routeCluster(rt *routeModel) *clusterRT {
	if rt == nil || rt.direct != nil {
		return nil
	}
	name := rt.cluster
	if rt.clusterHeader != "" {
		name, _ = r.hdr.get(lower(rt.clusterHeader)) // first value only
	}
	return r.e.clusters[name]
}

func (r *request) downstreamAttr() *attrCtx {
	rt := r.currentRoute()
	c := &attrCtx{req: r.hdr, resp: r.respHdr, attempts: len(r.attempts)}
	if rt != nil {
		c.routeName, c.routeMeta = rt.name, rt.metadata
	}
	if r.cluster != nil {
		c.cluster = r.cluster.m
	} else if cl := r.routeCluster(rt); cl != nil {
		c.cluster = cl.m
	}
	if r.lastHost != nil {
		c.host, c.hostAddrOv = r.lastHost.ep, ""
	}
	return c
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// headersFromHTTP builds Envoy's request header map for an HTTP/1.1
// request: pseudo-headers first, the Host header as :authority, keys lower
// case. Go's http.Header loses order, so regular headers are sorted.
func headersFromHTTP(r *http.Request, genID bool) *headerMap {
	h := &headerMap{}
	h.add(":authority", r.Host)
	h.add(":path", r.RequestURI)
	h.add(":method", r.Method)
	h.add(":scheme", "http")
	keys := make([]string, 0, len(r.Header))
	for k := range r.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		lk := lower(k)
		if lk == "host" {
			continue
		}
		for _, v := range r.Header[k] {
			h.add(lk, v)
		}
	}
	if r.ContentLength > 0 {
		h.set("content-length", strconv.FormatInt(r.ContentLength, 10))
	}
	for _, te := range r.TransferEncoding {
		h.add("transfer-encoding", te)
	}
	// HCM mutations before the filter chain.
	h.set("x-forwarded-proto", "http")
	if _, ok := h.get("x-request-id"); !ok && genID {
		h.set("x-request-id", newRequestID())
	}
	return h
}

// readBody reads the client body as data callbacks, up to limit+1 bytes.
func readBody(r io.Reader, limit int) ([]chunk, int, error) {
	var out []chunk
	total := 0
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			total += n
			out = append(out, chunk{data: append([]byte(nil), buf[:n]...)})
			if total > limit {
				return out, total, nil
			}
		}
		if errors.Is(err, io.EOF) {
			if len(out) == 0 {
				out = append(out, chunk{})
			}
			out[len(out)-1].eos = true
			return out, total, nil
		}
		if err != nil {
			return out, total, err
		}
	}
}

func joinChunks(cs []chunk) []byte {
	var b []byte
	for _, c := range cs {
		b = append(b, c.data...)
	}
	return b
}

// localResponse is sendLocalReply (Utility::prepareLocalReply): :status,
// then the caller's header changes (route response_headers_to_add, an
// ImmediateResponse's mutation), then content-length and, with a body and no
// content-type yet, content-type text/plain; an empty body has neither.
func localResponse(ctx context.Context, lr *localReply) *respStream {
	h := &headerMap{}
	h.add(":status", strconv.Itoa(lr.status))
	if lr.mutate != nil {
		lr.mutate(h)
	}
	if len(lr.body) > 0 {
		h.set("content-length", strconv.Itoa(len(lr.body)))
		if _, ok := h.get("content-type"); !ok {
			h.add("content-type", "text/plain")
		}
	} else {
		h.remove("content-type")
		h.set("content-length", "0")
	}
	rs := &respStream{hdr: h, eos: len(lr.body) == 0, details: lr.details}
	if !rs.eos {
		c := make(chan chunk, 1)
		c <- chunk{data: lr.body, eos: true}
		close(c)
		rs.body = c
	}
	rs.ctx, rs.cancel = context.WithCancel(ctx)
	return rs
}

// finalizeLocal adds the matched route's response_headers_to_add to a local
// reply, before the reply's own header changes (the filter manager calls
// finalizeResponseHeaders, then modify_headers). Direct responses get them
// the same way (the router's callback).
func (r *request) finalizeLocal(lr *localReply) *localReply {
	rt := r.currentRoute()
	if lr == nil || rt == nil || len(rt.respHeaders) == 0 {
		return lr
	}
	own := lr.mutate
	out := *lr
	out.mutate = func(h *headerMap) {
		applyHeadersToAdd(rt.respHeaders, h)
		if own != nil {
			own(h)
		}
	}
	return &out
}

// headerLimitReply is the HTTP/1 codec's protocol error for a request over
// max_headers_count headers or max_request_headers_kb KiB of request line
// and headers (ConnectionImpl::completeLastHeader, checkMaxHeadersSize): 431,
// and the connection is closed.
func headerLimitReply(hr *http.Request, hcm *hcmModel) *localReply {
	count, size := 0, len(hr.RequestURI)
	if hr.Host != "" { // Go moves the Host header out of hr.Header
		count, size = 1, size+len("host")+len(hr.Host)
	}
	for k, vs := range hr.Header {
		for _, v := range vs {
			count++
			size += len(k) + len(v)
		}
	}
	switch {
	case size > hcm.maxHeadersKB*1024:
		return &localReply{status: 431, body: []byte("Request Header Fields Too Large"), details: "http1.headers_too_large"}
	case count > hcm.maxHeadersCount:
		return &localReply{status: 431, body: []byte("Request Header Fields Too Large"), details: "http1.too_many_headers"}
	}
	return nil
}

func (e *Envoy) serveHTTP(w http.ResponseWriter, hr *http.Request) {
	start := time.Now()
	hcm := e.cfg.listener.hcm
	r := &request{e: e, ctx: hr.Context(), md: map[string]*structpb.Struct{}, bufferLimit: e.cfg.listener.bufferLimit}
	r.hdr = headersFromHTTP(hr, hcm.generateRequestID)
	entry := AccessLogEntry{Method: hr.Method, Path: hr.RequestURI, Authority: hr.Host, RequestID: r.hdr.value("x-request-id")}
	e.stats.inc("http." + hcm.statPrefix + ".downstream_rq_total")
	if lr := headerLimitReply(hr, hcm); lr != nil {
		// The codec answers before any filter or route runs.
		w.Header().Set("Connection", "close")
		rs := localResponse(r.ctx, lr)
		entry.ResponseCodeDetails = lr.details
		entry.Status, entry.BodyBytes, _ = e.write(w, rs, hcm.suppressEnvoyHdrs)
		entry.Duration = time.Since(start)
		e.stats.inc("http." + hcm.statPrefix + ".downstream_rq_" + statusClass(entry.Status))
		if e.opts.AccessLog != nil {
			e.opts.AccessLog(entry)
		}
		return
	}
	defer func() {
		r.stages.Wait()
		for i := len(r.cleanup) - 1; i >= 0; i-- {
			r.cleanup[i]()
		}
		entry.Attempts = r.attempts
		entry.Flags = r.flags
		entry.DynamicMetadata = metadataToMap(r.md)
		entry.Duration = time.Since(start)
		if r.cluster != nil {
			entry.Cluster = r.cluster.m.name
		}
		if entry.Status != 0 {
			e.stats.inc("http." + hcm.statPrefix + ".downstream_rq_" + statusClass(entry.Status))
		}
		if e.opts.AccessLog != nil {
			e.opts.AccessLog(entry)
		}
	}()

	rt := r.currentRoute()
	if rt != nil {
		entry.Route = rt.name
		if rt.bufferLimit != nil {
			r.bufferLimit = *rt.bufferLimit
		} else if r.vhost.bufferLimit != nil {
			r.bufferLimit = *r.vhost.bufferLimit
		}
	}
	eos := hr.ContentLength == 0
	filters := make([]*extProcFilter, 0, len(hcm.filters))
	var lr *localReply
	encFrom := -1 // encoders run from this filter index down to 0
	var replaced []byte
	replacedSet := false
	for i, cfg := range hcm.filters {
		scope := "http." + hcm.statPrefix + ".ext_proc"
		if len(hcm.filters) > 1 {
			scope += "." + strconv.Itoa(i)
		}
		f := newExtProcFilter(cfg, r, scope, r.downstreamAttr)
		filters = append(filters, f)
		r.cleanup = append(r.cleanup, func() { f.closeStream(true) })
		bs, l := f.headers(r.ctx, r.hdr, eos && !replacedSet, true)
		if l != nil {
			lr, encFrom = l, i-1
			break
		}
		if bs.replaced {
			replaced, replacedSet = bs.replacement, true
		}
	}
	var body []byte
	if lr == nil {
		encFrom = len(filters) - 1
		body, lr = r.decodeBody(hr, filters, eos, replaced, replacedSet, &encFrom)
	}
	var rs *respStream
	if lr == nil {
		rs, lr = r.routeRequest(body)
		if r.currentRoute() != nil {
			entry.Route = r.currentRoute().name
		}
	}
	if lr != nil {
		rs = localResponse(r.ctx, r.finalizeLocal(lr))
	}
	for i := encFrom; i >= 0; i-- {
		if r.ctx.Err() != nil {
			break
		}
		out, l := filters[i].encode(r, rs)
		if l != nil {
			if l.reset {
				rs = nil
				entry.Reset = true
				break
			}
			rs = localResponse(r.ctx, r.finalizeLocal(l))
			continue
		}
		rs = out
	}
	if rs == nil {
		entry.ResponseCodeDetails = "downstream_remote_disconnect"
		return
	}
	entry.ResponseCodeDetails = rs.details
	entry.Status, entry.BodyBytes, entry.Reset = e.write(w, rs, hcm.suppressEnvoyHdrs)
	if entry.Reset {
		defer panic(http.ErrAbortHandler) // reset the client stream
	}
}

// decodeBody reads the client body and runs each filter's body phase (§1.3).
func (r *request) decodeBody(hr *http.Request, filters []*extProcFilter, eos bool, replaced []byte, replacedSet bool, encFrom *int) ([]byte, *localReply) {
	var chunks []chunk
	if !eos {
		limit := int(r.bufferLimit)
		cs, total, err := readBody(hr.Body, limit)
		if err != nil {
			return nil, &localReply{status: 400, details: "downstream_remote_disconnect", reset: true}
		}
		chunks = cs
		buffering := false
		for _, f := range filters {
			if !f.complete && f.bodyMode(true) == extprocfilterv3.ProcessingMode_BUFFERED {
				buffering = true
			}
		}
		if buffering && total > limit {
			// The buffer limit is exceeded while a filter buffers: the filter
			// manager answers 413 itself and nothing is sent (§1.3).
			return nil, &localReply{status: 413, body: []byte("Payload Too Large"), details: "request_payload_too_large"}
		}
		if total > limit {
			// Not buffered by a filter: stream it through (the router copy is
			// only for retries); read the rest.
			rest, err := io.ReadAll(hr.Body)
			if err != nil {
				return nil, &localReply{status: 400, details: "downstream_remote_disconnect", reset: true}
			}
			chunks[len(chunks)-1].eos = false
			chunks = append(chunks, chunk{data: rest, eos: true})
		}
	}
	if replacedSet {
		// CONTINUE_AND_REPLACE with a body: the original body is drained.
		chunks = []chunk{{data: replaced, eos: true}}
	}
	if len(chunks) == 0 {
		return nil, nil
	}
	for i, f := range filters {
		if f.complete {
			continue
		}
		switch f.bodyMode(true) {
		case extprocfilterv3.ProcessingMode_BUFFERED:
			b, lr := f.bufferedBody(r.ctx, r.hdr, joinChunks(chunks), true)
			if lr != nil {
				*encFrom = i - 1
				return nil, lr
			}
			chunks = []chunk{{data: b, eos: true}}
		case extprocfilterv3.ProcessingMode_STREAMED:
			out := make([]chunk, 0, len(chunks))
			for _, c := range chunks {
				d, lr := f.streamedChunk(r.ctx, c.data, c.eos, true)
				if lr != nil {
					*encFrom = i - 1
					return nil, lr
				}
				out = append(out, chunk{data: d, eos: c.eos})
			}
			chunks = out
		}
	}
	return joinChunks(chunks), nil
}

// encode is the filter's response path: headers, then the body per mode.
func (f *extProcFilter) encode(r *request, rs *respStream) (*respStream, *localReply) {
	r.respHdr = rs.hdr
	bs, lr := f.headers(rs.ctx, rs.hdr, rs.eos, false)
	if lr != nil {
		rs.discard()
		return nil, lr
	}
	if bs.replaced {
		rs.discard()
		c := make(chan chunk, 1)
		c <- chunk{data: bs.replacement, eos: true}
		close(c)
		ctx, cancel := context.WithCancel(r.ctx)
		return &respStream{hdr: rs.hdr, body: c, ctx: ctx, cancel: cancel, details: rs.details}, nil
	}
	if rs.eos || f.complete {
		return rs, nil
	}
	switch f.bodyMode(false) {
	case extprocfilterv3.ProcessingMode_BUFFERED:
		var data []byte
		for c := range rs.body {
			if c.err != nil {
				rs.discard()
				return nil, &localReply{status: 503, details: "upstream_reset_after_response_started", reset: true}
			}
			data = append(data, c.data...)
		}
		out, lr := f.bufferedBody(rs.ctx, rs.hdr, data, false)
		if lr != nil {
			return nil, lr
		}
		c := make(chan chunk, 1)
		c <- chunk{data: out, eos: true}
		close(c)
		return &respStream{hdr: rs.hdr, body: c, ctx: rs.ctx, cancel: rs.cancel, details: rs.details}, nil
	case extprocfilterv3.ProcessingMode_STREAMED:
		out := make(chan chunk)
		in := rs.body
		r.stages.Add(1)
		go func() {
			defer r.stages.Done()
			defer close(out)
			failed := false
			for c := range in {
				if failed {
					continue // drain
				}
				if c.err == nil && !f.complete {
					d, lr := f.streamedChunk(rs.ctx, c.data, c.eos, false)
					if lr != nil {
						// The response already started: Envoy resets the stream.
						c = chunk{err: fmt.Errorf("ext_proc local reply after response started: %d %s", lr.status, lr.details)}
					} else {
						c.data = d
					}
				}
				select {
				case out <- c:
				case <-rs.ctx.Done():
					failed = true
					continue
				}
				if c.err != nil {
					failed = true
					rs.cancel()
				}
			}
		}()
		return &respStream{hdr: rs.hdr, body: out, ctx: rs.ctx, cancel: rs.cancel, details: rs.details}, nil
	}
	return rs, nil
}

// write sends the response to the client, flushing every chunk so
// streamed (SSE) bodies arrive chunk by chunk.
func (e *Envoy) write(w http.ResponseWriter, rs *respStream, suppress bool) (status, n int, reset bool) {
	defer func() {
		if rs.cancel != nil {
			rs.cancel()
		}
	}()
	status, err := strconv.Atoi(rs.hdr.value(":status"))
	if err != nil || status < 100 {
		status = 502
	}
	wh := w.Header()
	for _, h := range rs.hdr.h {
		if strings.HasPrefix(h.key, ":") || h.key == "transfer-encoding" || h.key == "connection" {
			continue
		}
		wh[http.CanonicalHeaderKey(h.key)] = append(wh[http.CanonicalHeaderKey(h.key)], h.value)
	}
	wh.Set("Server", "envoy")
	w.WriteHeader(status)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	if rs.body == nil {
		return status, 0, false
	}
	for c := range rs.body {
		if c.err != nil {
			rs.discard()
			return status, n, true
		}
		if len(c.data) > 0 {
			m, werr := w.Write(c.data)
			n += m
			if werr != nil {
				rs.discard()
				return status, n, true
			}
			_ = rc.Flush()
		}
	}
	return status, n, false
}
