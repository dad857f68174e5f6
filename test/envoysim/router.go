package envoysim

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
)

var (
	errPerTryTimeout = errors.New("per try timeout")
	errRouteTimeout  = errors.New("route timeout")
)

// match is the HCM route table lookup (§4): virtual host by :authority
// (exact, then "*.suffix", "prefix.*", then "*"), first matching route.
func (h *hcmModel) match(hdr *headerMap) (*vhostModel, *routeModel) {
	vh := h.vhostFor(lower(hdr.value(":authority")))
	if vh == nil {
		return nil, nil
	}
	path := hdr.value(":path")
	noQuery := path
	if i := strings.IndexAny(noQuery, "?#"); i >= 0 {
		noQuery = noQuery[:i]
	}
	for _, rt := range vh.routes {
		if rt.exactPath {
			if noQuery != rt.path {
				continue
			}
		} else if !strings.HasPrefix(path, rt.prefix) {
			continue
		}
		ok := true
		for i := range rt.headers {
			if !rt.headers[i].match(hdr) {
				ok = false
				break
			}
		}
		if ok {
			return vh, rt
		}
	}
	return vh, nil
}

func (h *hcmModel) vhostFor(host string) *vhostModel {
	var best *vhostModel
	bestRank, bestLen := 4, -1
	for _, vh := range h.vhosts {
		for _, d := range vh.domains {
			d = lower(d)
			rank, l := 4, len(d)
			switch {
			case d == host:
				rank = 0
			case d == "*":
				rank = 3
			case strings.HasPrefix(d, "*") && strings.HasSuffix(host, d[1:]) && len(host) > len(d)-1:
				rank = 1
			case strings.HasSuffix(d, "*") && strings.HasPrefix(host, d[:len(d)-1]) && len(host) > len(d)-1:
				rank = 2
			default:
				continue
			}
			if rank < bestRank || (rank == bestRank && l > bestLen) {
				best, bestRank, bestLen = vh, rank, l
			}
		}
	}
	return best
}

// route is the router filter's decodeHeaders decision (§4).
func (r *request) routeRequest(body []byte) (*respStream, *localReply) {
	rt := r.currentRoute()
	pfx := "http." + r.e.cfg.listener.hcm.statPrefix + "."
	if rt == nil {
		r.e.stats.inc(pfx + "no_route")
		r.flag("NR")
		return nil, &localReply{status: 404, details: "route_not_found"}
	}
	if rt.direct != nil {
		return nil, &localReply{status: rt.direct.status, body: rt.direct.body, details: "direct_response"}
	}
	cl := r.routeCluster(rt)
	if cl == nil {
		// Missing or unknown cluster_header value: the cluster name is ""
		// or unknown and the router answers cluster_not_found_response_code
		// (default 503; HeaderClusterSpecifierPlugin + router.cc). The
		// cluster_header proto comment's "404" does not match the source.
		r.e.stats.inc(pfx + "no_cluster")
		return nil, &localReply{status: rt.notFoundCode, details: "cluster_not_found"}
	}
	r.cluster = cl
	return r.forward(rt, cl, body)
}

type tryResult struct {
	rs      *respStream
	local   *localReply
	failure string
}

// wouldRetryFromHeaders is RetryStateImpl::wouldRetryFromHeaders on the
// response headers as the router sees them, after the upstream filter chain
// (so a header or :status set by an upstream ext_proc counts, §6).
func (p *retryPolicy) wouldRetryFromHeaders(h *headerMap) bool {
	if p == nil {
		return false
	}
	if _, ok := h.get("x-envoy-ratelimited"); ok {
		// Only retried with retry_on envoy-ratelimited, which is not accepted.
		return false
	}
	code, _ := strconv.Atoi(h.value(":status"))
	switch {
	case p.on5xx && code >= 500 && code <= 599:
		return true
	case p.gatewayError && (code == 502 || code == 503 || code == 504):
		return true
	case p.retriable4xx && code == 409:
		return true
	case p.onStatusCodes && p.statusCodes[code]:
		return true
	}
	if p.onHeaders {
		for i := range p.retriableHeaders {
			if p.retriableHeaders[i].match(h) {
				return true
			}
		}
	}
	return false
}

// retriableReset is RetryStateImpl::wouldRetryFromReset; a per-try timeout
// is a local reset.
func (p *retryPolicy) retriableReset(connectFailure bool) bool {
	if p == nil {
		return false
	}
	if p.reset || p.on5xx || p.gatewayError {
		return true
	}
	return connectFailure && p.connectFailure
}

// retryState is RetryStateImpl for one request: the retries left and the
// circuit-breaker retry resource, held from the moment a retry is scheduled
// until the retried attempt's outcome is known (resetRetry).
type retryState struct {
	r       *request
	pol     *retryPolicy
	cl      *clusterRT
	left    int
	held    bool
	cpfx    string
	flagged string // response flag set by the last decision (URX, UO)
}

type retryStatus int

const (
	retryNo retryStatus = iota
	retryYes
	retryLimitExceeded
	retryOverflow
)

// should is RetryStateImpl::shouldRetry.
func (s *retryState) should(would bool) retryStatus {
	stats := s.r.e.stats
	if s.held && !would {
		stats.inc(s.cpfx + "upstream_rq_retry_success")
	}
	s.release()
	if !would {
		return retryNo
	}
	if s.left == 0 {
		stats.inc(s.cpfx + "upstream_rq_retry_limit_exceeded")
		s.flagged = "URX"
		return retryLimitExceeded
	}
	s.left--
	if !s.cl.acquireRetry() {
		stats.inc(s.cpfx + "upstream_rq_retry_overflow")
		s.flagged = "UO"
		return retryOverflow
	}
	s.held = true
	stats.inc(s.cpfx + "upstream_rq_retry")
	return retryYes
}

func (s *retryState) release() {
	if s.held {
		s.held = false
		s.cl.releaseRetry()
	}
}

func (r *request) flag(f string) {
	if f != "" && !slices.Contains(r.flags, f) {
		r.flags = append(r.flags, f)
	}
}

// forward runs router attempts with retries (§5, §6).
func (r *request) forward(rt *routeModel, cl *clusterRT, body []byte) (*respStream, *localReply) {
	e := r.e
	hcm := e.cfg.listener.hcm
	pol := rt.retry
	cpfx := "cluster." + cl.m.name + "."
	var gctx context.Context
	var gcancel context.CancelFunc
	if rt.timeout > 0 {
		gctx, gcancel = context.WithTimeoutCause(r.ctx, rt.timeout, errRouteTimeout)
	} else {
		gctx, gcancel = context.WithCancel(r.ctx)
	}
	r.cleanup = append(r.cleanup, gcancel)
	if !hcm.suppressEnvoyHdrs {
		t := rt.timeout
		if pol != nil && pol.perTryTimeout > 0 && (t == 0 || pol.perTryTimeout < t) {
			t = pol.perTryTimeout
		}
		if t > 0 {
			r.hdr.set("x-envoy-expected-rq-timeout-ms", strconv.FormatInt(t.Milliseconds(), 10))
		}
	}
	rs := &retryState{r: r, pol: pol, cl: cl, cpfx: cpfx}
	if pol != nil {
		rs.left = pol.numRetries
	}
	// The retry resource is released when the request ends (~RetryStateImpl).
	defer rs.release()
	var attempted []int
	excluded := map[int]bool{}
	for n := 1; ; n++ {
		if pol != nil && pol.previousPriorities && n > 1 && pol.updateFrequency > 0 && (n-1)%pol.updateFrequency == 0 {
			excluded = map[int]bool{}
			for _, p := range attempted {
				excluded[p] = true
			}
		}
		var excl map[int]bool
		if pol != nil && pol.previousPriorities {
			excl = excluded
		}
		h := cl.pick(excl, e.randIntN)
		att := Attempt{Priority: h.ep.priority, Host: h.ep.address(), Dialed: h.dial, TransportSocket: h.socket}
		attempted = append(attempted, h.ep.priority)
		e.stats.inc(cpfx + "upstream_rq_total")
		res := r.tryOnce(gctx, rt, cl, h, n, body)
		att.Authority = r.hdr.value(":authority")
		r.lastHost = h
		switch {
		case res.local != nil:
			// Local replies from upstream filters are final: not retried,
			// not seen by outlier detection (§5).
			att.Failure, att.Status = "upstream_local_reply", res.local.status
			r.attempts = append(r.attempts, att)
			return nil, res.local
		case res.failure != "":
			att.Failure = res.failure
			code := 503
			switch res.failure {
			case "connect_failure":
				e.stats.inc(cpfx + "upstream_cx_connect_fail")
				r.flag("UF")
			case "reset":
				e.stats.inc(cpfx + "upstream_rq_rx_reset")
			case "per_try_timeout":
				e.stats.inc(cpfx + "upstream_rq_per_try_timeout")
				code = 504
			case "route_timeout":
				e.stats.inc(cpfx + "upstream_rq_timeout")
				code = 504
			}
			cl.putHTTPCode(h, code)
			if res.failure == "route_timeout" {
				r.attempts = append(r.attempts, att)
				r.flag("UT")
				return nil, &localReply{status: 504, body: []byte("upstream request timeout"), details: "upstream_response_timeout"}
			}
			st := rs.should(pol.retriableReset(res.failure == "connect_failure"))
			r.flag(rs.flagged)
			if st == retryYes {
				att.Retried = true
				r.attempts = append(r.attempts, att)
				if lr := r.backoff(gctx, pol, n, cpfx); lr != nil {
					return nil, lr
				}
				continue
			}
			r.attempts = append(r.attempts, att)
			switch res.failure {
			case "per_try_timeout":
				return nil, &localReply{status: 504, body: []byte("upstream request timeout"), details: "upstream_per_try_timeout"}
			case "connect_failure":
				return nil, &localReply{status: 503, body: []byte("upstream connect error or disconnect/reset before headers. reset reason: connection failure"), details: "upstream_reset_before_response_started{connection_failure}"}
			default:
				return nil, &localReply{status: 503, body: []byte("upstream connect error or disconnect/reset before headers. reset reason: connection termination"), details: "upstream_reset_before_response_started{connection_termination}"}
			}
		}
		resp := res.rs
		code, _ := strconv.Atoi(resp.hdr.value(":status"))
		att.Status = code
		// The router sees the status after the upstream filter chain: a
		// :status rewritten by an upstream ext_proc is what outlier detection
		// and retry see (§6, inferred from code paths).
		cl.putHTTPCode(h, code)
		e.stats.inc(cpfx + "upstream_rq_" + strconv.Itoa(code))
		e.stats.inc(cpfx + "upstream_rq_" + statusClass(code))
		st := rs.should(pol.wouldRetryFromHeaders(resp.hdr))
		r.flag(rs.flagged)
		if st == retryYes {
			resp.discard()
			att.Retried = true
			r.attempts = append(r.attempts, att)
			if lr := r.backoff(gctx, pol, n, cpfx); lr != nil {
				return nil, lr
			}
			continue
		}
		// No retry (none wanted, limit exceeded or overflow): this response
		// goes downstream as it is (Filter::onUpstreamHeaders).
		r.attempts = append(r.attempts, att)
		// modify_headers_: the route's response_headers_to_add.
		applyHeadersToAdd(rt.respHeaders, resp.hdr)
		if !hcm.suppressEnvoyHdrs {
			resp.hdr.set("x-envoy-upstream-service-time", "0")
		}
		resp.details = "via_upstream"
		return resp, nil
	}
}

// backoff waits Envoy's jittered exponential back-off before retry n.
func (r *request) backoff(gctx context.Context, pol *retryPolicy, n int, cpfx string) *localReply {
	base, maxI := pol.backOffBase, pol.backOffMax
	if r.e.opts.RetryBackOffBase > 0 {
		base, maxI = r.e.opts.RetryBackOffBase, 10*r.e.opts.RetryBackOffBase
	}
	upper := base << min(n-1, 20)
	if upper > maxI || upper <= 0 {
		upper = maxI
	}
	d := time.Duration(r.e.randIntN(int(max(upper, 1))))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-gctx.Done():
		if errors.Is(context.Cause(gctx), errRouteTimeout) {
			r.e.stats.inc(cpfx + "upstream_rq_timeout")
			return &localReply{status: 504, body: []byte("upstream request timeout"), details: "upstream_response_timeout"}
		}
		return &localReply{status: 499, details: "downstream_remote_disconnect", reset: true}
	}
}

// tryOnce is one UpstreamRequest: a new upstream filter chain (a new
// ext_proc stream per attempt, §5), the codec, and the response back
// through the upstream filters.
func (r *request) tryOnce(gctx context.Context, rt *routeModel, cl *clusterRT, h *hostState, n int, body []byte) tryResult {
	pol := rt.retry
	actx, acancel := context.WithCancelCause(gctx)
	r.cleanup = append(r.cleanup, func() { acancel(nil) })
	var perTry *time.Timer
	if pol != nil && pol.perTryTimeout > 0 {
		perTry = time.AfterFunc(pol.perTryTimeout, func() { acancel(errPerTryTimeout) })
	}
	stop := func() {
		if perTry != nil {
			perTry.Stop()
		}
	}
	var ufs []*extProcFilter
	var respHdr *headerMap
	abandon := func() {
		for _, f := range ufs {
			f.closeStream(true)
		}
	}
	classify := func() string {
		if errors.Is(context.Cause(actx), errPerTryTimeout) {
			return "per_try_timeout"
		}
		if errors.Is(context.Cause(gctx), errRouteTimeout) {
			return "route_timeout"
		}
		return ""
	}
	fail := func(kind string) tryResult {
		stop()
		abandon()
		acancel(nil)
		return tryResult{failure: kind}
	}
	local := func(lr *localReply) tryResult {
		stop()
		abandon()
		acancel(nil)
		return tryResult{local: lr}
	}
	for _, cfg := range cl.m.filters {
		f := newExtProcFilter(cfg, r, "cluster."+cl.m.name+".ext_proc", func() *attrCtx {
			c := &attrCtx{req: r.hdr, resp: respHdr, cluster: cl.m, host: h.ep, attempts: n}
			if rt := r.currentRoute(); rt != nil {
				c.routeName, c.routeMeta = rt.name, rt.metadata
			}
			return c
		})
		ufs = append(ufs, f)
		r.cleanup = append(r.cleanup, func() { f.closeStream(true) })
	}
	// Upstream filters mutate the router's request headers, so mutations
	// persist into later attempts [inferred, §5]; body mutations apply to
	// this attempt's copy only.
	hdr := r.hdr
	b := body
	eos := len(body) == 0
	for _, f := range ufs {
		bs, lr := f.headers(actx, hdr, eos, true)
		if c := classify(); c != "" {
			return fail(c)
		}
		if lr != nil {
			return local(lr)
		}
		if bs.replaced {
			b, eos = bs.replacement, false
		}
	}
	if !eos {
		for _, f := range ufs {
			if f.complete {
				continue
			}
			var lr *localReply
			switch f.bodyMode(true) {
			case extprocfilterv3.ProcessingMode_BUFFERED:
				b, lr = f.bufferedBody(actx, hdr, b, true)
			case extprocfilterv3.ProcessingMode_STREAMED:
				b, lr = f.streamedChunk(actx, b, true, true)
			}
			if c := classify(); c != "" {
				return fail(c)
			}
			if lr != nil {
				return local(lr)
			}
		}
	}
	// auto_host_rewrite: UpstreamRequest::onPoolReady sets the router's
	// (shared) request :authority to the host's hostname. envoysim models a
	// connection that becomes ready after the upstream filters ran (a new
	// connection); on a reused one Envoy does it before they run. Either way
	// the provider receives the hostname, and a later attempt starts from
	// the previous attempt's value.
	if rt.autoHostRewrite && h.ep.hostname != "" {
		hdr.set(":authority", h.ep.hostname)
	}
	req, err := upstreamRequest(actx, hdr, h.dial, b)
	if err != nil {
		return fail("reset")
	}
	resp, err := cl.transport.RoundTrip(req)
	if err != nil {
		if c := classify(); c != "" {
			return fail(c)
		}
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return fail("connect_failure")
		}
		return fail("reset")
	}
	respHdr = responseHeaders(resp)
	reos := resp.ContentLength == 0 || req.Method == http.MethodHead || resp.StatusCode == 204 || resp.StatusCode == 304
	rs := &respStream{hdr: respHdr, eos: reos, ctx: actx, cancel: func() { acancel(nil) }}
	if reos {
		_ = resp.Body.Close()
	} else {
		ch := make(chan chunk)
		rs.body = ch
		r.e.wg.Add(1)
		go pump(actx, resp.Body, ch, &r.e.wg)
	}
	for i := len(ufs) - 1; i >= 0; i-- {
		out, lr := ufs[i].encode(r, rs)
		if c := classify(); c != "" {
			if out != nil {
				out.discard()
			}
			return fail(c)
		}
		if lr != nil {
			return local(lr)
		}
		rs = out
	}
	stop()
	return tryResult{rs: rs}
}

func pump(ctx context.Context, body io.ReadCloser, out chan<- chunk, wg interface{ Done() }) {
	defer wg.Done()
	defer close(out)
	defer body.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := body.Read(buf)
		eos := errors.Is(err, io.EOF)
		if n > 0 || eos {
			c := chunk{data: append([]byte(nil), buf[:n]...), eos: eos}
			select {
			case out <- c:
			case <-ctx.Done():
				return
			}
			if eos {
				return
			}
		}
		if err != nil && !eos {
			select {
			case out <- chunk{err: err}:
			case <-ctx.Done():
			}
			return
		}
	}
}

var hopByHop = map[string]bool{"connection": true, "keep-alive": true, "proxy-connection": true, "transfer-encoding": true, "upgrade": true, "te": true}

func responseHeaders(resp *http.Response) *headerMap {
	h := &headerMap{}
	h.add(":status", strconv.Itoa(resp.StatusCode))
	keys := make([]string, 0, len(resp.Header))
	for k := range resp.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		lk := lower(k)
		if hopByHop[lk] {
			continue
		}
		for _, v := range resp.Header[k] {
			h.add(lk, v)
		}
	}
	if _, ok := h.get("content-length"); !ok && resp.ContentLength >= 0 {
		h.add("content-length", strconv.FormatInt(resp.ContentLength, 10))
	}
	return h
}

// upstreamRequest is the HTTP/1.1 codec: :method, :path, :authority → Host,
// other headers as they are (lower case, as Envoy's codec writes them).
func upstreamRequest(ctx context.Context, hdr *headerMap, dial string, body []byte) (*http.Request, error) {
	path := hdr.value(":path")
	if !strings.HasPrefix(path, "/") {
		return nil, errors.New("bad :path")
	}
	req, err := http.NewRequestWithContext(ctx, hdr.value(":method"), "http://"+dial+path, nil)
	if err != nil {
		return nil, err
	}
	req.Host = hdr.value(":authority")
	_, hasCL := hdr.get("content-length")
	for _, e := range hdr.h {
		if strings.HasPrefix(e.key, ":") || e.key == "host" || e.key == "content-length" || hopByHop[e.key] {
			continue
		}
		req.Header[e.key] = append(req.Header[e.key], e.value)
	}
	switch {
	case hasCL:
		req.ContentLength = int64(len(body))
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	case len(body) > 0:
		// content-length was removed (STREAMED): chunked encoding (PM).
		req.ContentLength = -1
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	return req, nil
}
