package extproc

import (
	"sync"
	"unsafe"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// The decoder (decode.go) puts the HeaderValues of a headers or trailers
// message into a pooled headerSlab, and Server.Process returns the slab
// once the message's answer has been sent. Why: the HeaderValue structs
// were a third of everything the server allocated under the 2 KB closed
// loop (3.3 KB of 10.6 KB per request for ~24 headers, /debug/pprof/allocs),
// and allocation sets how often the collector runs, which drives the
// open-loop tail.
//
// What is reused is only the struct shells. Keys and values stay views of
// the message's own copy of its bytes, which is fresh for every message and
// never written (decodeRequest); a slab is cleared when it is returned, so
// it keeps no view of a message it no longer belongs to. No processor keeps
// a *HeaderValue or a HeaderMap past its handler: requestHeaders,
// startResponse and the upstream role keep strings (views of the message
// bytes), never pointers to the structs.

// slabHeaders is the most headers a slab holds; a map with more gets
// plain allocations, as before.
const slabHeaders = 32

// headerSlab holds the HeaderValues of one HeaderMap. ptrs must stay the
// first field: a HeaderMap's Headers slice is ptrs[:n], and releaseHeaders
// finds the slab from the slice's first element.
type headerSlab struct {
	ptrs [slabHeaders]*corev3.HeaderValue
	vals [slabHeaders]corev3.HeaderValue
}

var headerSlabs = sync.Pool{New: func() any {
	s := new(headerSlab)
	for k := range s.ptrs {
		s.ptrs[k] = &s.vals[k]
	}
	return s
}}

// slabOf returns the slab behind hs, or nil when hs did not come from one
// (a map decoded by protobuf-go, or with more than slabHeaders entries).
func slabOf(hs []*corev3.HeaderValue) *headerSlab {
	if len(hs) == 0 || cap(hs) != slabHeaders {
		return nil
	}
	// A slab's first pointer is to its own first value, right after the
	// pointer array. The addresses are compared before any conversion:
	// converting a pointer into a slice made by anyone else (protobuf-go
	// grows its own arrays) would be invalid. Such a slice cannot pass the
	// test: its array (256 bytes) and its values (HeaderValues of their own)
	// are separate allocations in different size classes.
	base := unsafe.Pointer(unsafe.SliceData(hs))
	if uintptr(unsafe.Pointer(hs[0])) != uintptr(base)+unsafe.Offsetof(headerSlab{}.vals) {
		return nil
	}
	return (*headerSlab)(base)
}

// releaseHeaders returns the slab behind m's headers to the pool, cleared,
// and empties m, so the message can no longer reach it.
func releaseHeaders(m *corev3.HeaderMap) {
	if m == nil {
		return
	}
	s := slabOf(m.Headers)
	if s == nil {
		return
	}
	for _, hv := range m.Headers {
		hv.Reset()
	}
	m.Headers = nil
	headerSlabs.Put(s)
}

// releaseRequest returns the header slabs of a handled message.
func releaseRequest(req *extprocv3.ProcessingRequest) {
	switch m := req.GetRequest().(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		releaseHeaders(m.RequestHeaders.GetHeaders())
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		releaseHeaders(m.ResponseHeaders.GetHeaders())
	case *extprocv3.ProcessingRequest_RequestTrailers:
		releaseHeaders(m.RequestTrailers.GetTrailers())
	case *extprocv3.ProcessingRequest_ResponseTrailers:
		releaseHeaders(m.ResponseTrailers.GetTrailers())
	}
}
