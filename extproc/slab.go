package extproc

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filterprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// The router role builds the same few protobuf messages for every request.
// They live in a routerProc, which is pooled (router.go), so a steady
// stream of requests builds its answers without allocating: profiles of
// the 2 KB closed loop showed these builders at ~30 allocations and ~5 KB
// per request, the largest item after protobuf request decoding.
//
// Reuse is safe because gRPC serialises an answer inside stream.Send
// (SendMsg marshals before it returns), and a message is rebuilt only
// after the answer that used it has been sent. Strings placed in these
// messages are never rewritten: only the message structs and slices are
// reused.

// answerSlot is the storage of one CONTINUE answer with an optional
// CommonResponse and HeaderMutation.
type answerSlot struct {
	resp   extprocv3.ProcessingResponse
	hr     extprocv3.HeadersResponse
	br     extprocv3.BodyResponse
	common extprocv3.CommonResponse
	mut    extprocv3.HeaderMutation
	mode   filterprocv3.ProcessingMode
	reqH   extprocv3.ProcessingResponse_RequestHeaders
	resH   extprocv3.ProcessingResponse_ResponseHeaders
	reqB   extprocv3.ProcessingResponse_RequestBody
	resB   extprocv3.ProcessingResponse_ResponseBody
}

// answerKind is which ext_proc message an answer replies to.
type answerKind uint8

const (
	kindRequestHeaders answerKind = iota
	kindResponseHeaders
	kindRequestBody
	kindResponseBody
)

// cont rebuilds a as a CONTINUE answer of kind. With mutate it also carries
// an empty CommonResponse whose HeaderMutation is ready to fill; both are
// returned (nil without mutate).
func (a *answerSlot) cont(kind answerKind, mutate bool) (*extprocv3.ProcessingResponse, *extprocv3.CommonResponse) {
	a.resp.Reset()
	var common *extprocv3.CommonResponse
	if mutate {
		a.common.Reset()
		a.mut.Reset()
		a.common.HeaderMutation = &a.mut
		common = &a.common
	}
	switch kind {
	case kindRequestHeaders, kindResponseHeaders:
		a.hr.Reset()
		a.hr.Response = common
		if kind == kindRequestHeaders {
			a.reqH.RequestHeaders = &a.hr
			a.resp.Response = &a.reqH
		} else {
			a.resH.ResponseHeaders = &a.hr
			a.resp.Response = &a.resH
		}
	default:
		a.br.Reset()
		a.br.Response = common
		if kind == kindRequestBody {
			a.reqB.RequestBody = &a.br
			a.resp.Response = &a.reqB
		} else {
			a.resB.ResponseBody = &a.br
			a.resp.Response = &a.resB
		}
	}
	return &a.resp, common
}

// bodyMode returns a's ProcessingMode, reset, for a mode_override.
func (a *answerSlot) bodyMode() *filterprocv3.ProcessingMode {
	a.mode.Reset()
	return &a.mode
}

// headerSet builds a list of header mutations (raw_value only, overwrite).
type headerSet struct {
	opts []corev3.HeaderValueOption
	vals []corev3.HeaderValue
	buf  []byte
	list []*corev3.HeaderValueOption
}

// reset empties h for n headers whose values total about valueBytes,
// keeping its arrays when they are large enough. The next values overwrite
// the previous answer's bytes; that answer has been sent (see above), and
// nothing else points into buf.
func (h *headerSet) reset(n, valueBytes int) {
	if cap(h.opts) < n {
		h.opts = make([]corev3.HeaderValueOption, 0, n)
		h.vals = make([]corev3.HeaderValue, 0, n)
		h.list = make([]*corev3.HeaderValueOption, 0, n)
	}
	h.opts, h.vals, h.list = h.opts[:0], h.vals[:0], h.list[:0]
	if cap(h.buf) < valueBytes {
		h.buf = make([]byte, 0, valueBytes)
	}
	h.buf = h.buf[:0]
}

// set adds key=value. Earlier values stay valid if buf grows: they keep
// pointing into the old array.
func (h *headerSet) set(key, value string) {
	start := len(h.buf)
	h.buf = append(h.buf, value...)
	if len(h.vals) == cap(h.vals) {
		h.list = append(h.list, setHeader(key, value))
		return
	}
	h.vals = append(h.vals, corev3.HeaderValue{Key: key, RawValue: h.buf[start:len(h.buf):len(h.buf)]})
	h.opts = append(h.opts, corev3.HeaderValueOption{Header: &h.vals[len(h.vals)-1]})
	h.list = append(h.list, &h.opts[len(h.opts)-1])
}
