package extproc

// A reflection-free decoder for the one message the server receives,
// ext_proc's ProcessingRequest.
//
// Why: under load (2 KB chat bodies, ~21 request and 6 response headers per
// request) proto.Unmarshal of requests was ~8.5% of the server's CPU and
// ~86 of ~222 allocations per request: protobuf-go allocates every
// HeaderValue on its own and copies every key, value and raw_value into a
// fresh string or slice (3 allocations per header). go-control-plane ships
// no UnmarshalVT, so this file decodes the shapes Envoy sends by hand:
//
//   - one copy of the incoming gRPC buffers into a private []byte, whose
//     sub-slices and unsafe.String views become the message's bytes and
//     string fields (no per-field copies);
//   - the HeaderValues of one HeaderMap in one slab plus one pointer slice,
//     and each oneof wrapper allocated together with its sub-messages;
//   - metadata_context and attributes (maps of Structs; Envoy sends the
//     first on every message, the second on the first of each direction)
//     are handed to protobuf-go itself, on just their bytes;
//   - anything else (unknown fields, repeated singular fields, wrong wire
//     types, invalid UTF-8, truncation, fields Envoy does not send) makes the
//     whole message go to proto.Unmarshal on the same bytes, so the result,
//     value or error, is always the standard codec's.

import (
	"bytes"
	"unicode/utf8"
	"unsafe"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filterprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Wire types and the tags (field number << 3 | wire type) the fast path
// accepts. Every other tag sends the message to proto.Unmarshal.
const (
	wireVarint = 0
	wireBytes  = 2

	// ProcessingRequest.
	tagRequestHeaders    = 2<<3 | wireBytes
	tagResponseHeaders   = 3<<3 | wireBytes
	tagRequestBody       = 4<<3 | wireBytes
	tagResponseBody      = 5<<3 | wireBytes
	tagRequestTrailers   = 6<<3 | wireBytes
	tagResponseTrailers  = 7<<3 | wireBytes
	tagMetadataContext   = 8<<3 | wireBytes
	tagAttributes        = 9<<3 | wireBytes
	tagObservabilityMode = 10<<3 | wireVarint
	tagProtocolConfig    = 11<<3 | wireBytes

	// HttpHeaders.
	tagHeadersHeaders     = 1<<3 | wireBytes
	tagHeadersEndOfStream = 3<<3 | wireVarint

	// HeaderMap.
	tagMapHeaders = 1<<3 | wireBytes

	// HeaderValue.
	tagValueKey      = 1<<3 | wireBytes
	tagValueValue    = 2<<3 | wireBytes
	tagValueRawValue = 3<<3 | wireBytes

	// HttpBody.
	tagBodyBody                      = 1<<3 | wireBytes
	tagBodyEndOfStream               = 2<<3 | wireVarint
	tagBodyEndOfStreamWithoutMessage = 3<<3 | wireVarint
	tagBodyGrpcMessageCompressed     = 4<<3 | wireVarint
	tagBodyDrainComplete             = 5<<3 | wireVarint

	// HttpTrailers.
	tagTrailersTrailers = 1<<3 | wireBytes

	// ProtocolConfiguration.
	tagPCRequestBodyMode  = 1<<3 | wireVarint
	tagPCResponseBodyMode = 2<<3 | wireVarint
	tagPCSendBodyWithout  = 3<<3 | wireVarint
)

// decodeRequest is codec.Unmarshal for *extprocv3.ProcessingRequest.
//
// gRPC frees data's buffers once Unmarshal returns, so the message cannot
// point into them: it is copied once into buf, and the decoded message's
// strings and byte slices are views of buf.
//
// Invariant: buf is private to the decoded message and nothing ever writes
// into it. Each bytes field is a distinct sub-slice with its capacity cut at
// its end (b[i:j:j]), so a consumer that appends to RawValue or Body gets a
// new array instead of overwriting the next field, and string fields are
// never exposed as []byte. A consumer that keeps one of these strings keeps
// the whole buf alive (a few KB at most for a headers message); one that
// needs a long-lived copy should clone it (strings.Clone), which is what
// any map key built from a header value gets anyway with string(RawValue).
//
// Errors are protobuf-go's, unwrapped, as the standard codec returns them.
func decodeRequest(data mem.BufferSlice, req *extprocv3.ProcessingRequest) error {
	buf := copyOut(data)
	if decodeFast(buf, req) {
		return nil
	}
	return proto.Unmarshal(buf, req)
}

// copyOut returns the bytes of data in one new slice (nil when empty).
// append and bytes.Join allocate without zeroing the memory they then
// overwrite; make would clear it first (~2% of server CPU with 64 KB
// bodies, in runtime.memclrNoHeapPointers under decodeRequest).
func copyOut(data mem.BufferSlice) []byte {
	switch len(data) {
	case 0:
		return nil
	case 1:
		b := data[0].ReadOnlyData()
		if len(b) == 0 {
			return nil
		}
		return append([]byte(nil), b...)
	}
	var arr [8][]byte
	parts := arr[:0]
	for _, d := range data {
		parts = append(parts, d.ReadOnlyData())
	}
	b := bytes.Join(parts, nil)
	if len(b) == 0 {
		return nil
	}
	return b
}

// decodeFast decodes b into req and reports true, or reports false when b
// is anything but the plain shape handled here (req is then in an
// unspecified state; the caller resets it through proto.Unmarshal). When it
// reports true, req is proto.Equal to what proto.Unmarshal(b) gives.
//
// Proto semantics kept: fields in any order; the last value of a repeated
// scalar wins; empty bytes decode as nil (protobuf-go's proto3 bytes). A
// repeated singular message or a second oneof member (which protobuf-go
// merges or replaces) is left to proto.Unmarshal.
func decodeFast(b []byte, req *extprocv3.ProcessingRequest) bool {
	*req = extprocv3.ProcessingRequest{}
	// The bytes of the metadata_context and attributes fields, tags
	// included: one run of b when they are adjacent (Envoy writes fields in
	// number order, so 8 and 9 are), else gathered into side.
	runStart, runEnd := -1, -1
	var side []byte
	for i := 0; i < len(b); {
		tagStart := i
		tag, i2, ok := consumeVarint(b, i)
		if !ok {
			return false
		}
		i = i2
		switch tag {
		case tagObservabilityMode:
			v, j, ok := consumeVarint(b, i)
			if !ok {
				return false
			}
			req.ObservabilityMode = v != 0
			i = j
		case tagProtocolConfig:
			s, e, ok := consumeLen(b, i)
			if !ok || req.ProtocolConfig != nil {
				return false
			}
			pc := new(extprocv3.ProtocolConfiguration)
			if !decodeProtocolConfig(b[s:e], pc) {
				return false
			}
			req.ProtocolConfig = pc
			i = e
		case tagRequestHeaders, tagResponseHeaders, tagRequestBody, tagResponseBody, tagRequestTrailers, tagResponseTrailers:
			s, e, ok := consumeLen(b, i)
			if !ok || req.Request != nil || !decodeOneof(tag>>3, b[s:e], req) {
				return false
			}
			i = e
		case tagMetadataContext, tagAttributes:
			_, e, ok := consumeLen(b, i)
			if !ok {
				return false
			}
			switch {
			case runStart < 0:
				runStart, runEnd = tagStart, e
			case side == nil && tagStart == runEnd:
				runEnd = e
			default:
				if side == nil {
					side = append([]byte(nil), b[runStart:runEnd]...)
				}
				side = append(side, b[tagStart:e]...)
			}
			i = e
		default:
			return false
		}
	}
	if runStart < 0 {
		return true
	}
	meta := b[runStart:runEnd]
	if side != nil {
		meta = side
	}
	if len(meta) == 2 && meta[0] == tagMetadataContext && meta[1] == 0 {
		// An empty metadata_context: what Envoy sends on every message
		// when no forwarded namespace is set on the stream.
		req.MetadataContext = new(corev3.Metadata)
		return true
	}
	// protobuf-go decodes fields 8 and 9 independently of the others, so
	// decoding just their bytes into req (at the same nesting depth: req is
	// the top-level message) gives exactly what it gives for the whole
	// message. Unmarshal resets req first: keep what was decoded.
	r, obs, pc := req.Request, req.ObservabilityMode, req.ProtocolConfig
	if err := proto.Unmarshal(meta, req); err != nil {
		return false
	}
	req.Request, req.ObservabilityMode, req.ProtocolConfig = r, obs, pc
	return true
}

// The oneof wrapper is allocated together with the sub-messages it points
// to: one allocation instead of three. The interior pointers keep the whole
// block alive, which is what the separate allocations would do anyway.
type (
	requestHeadersBlock struct {
		w extprocv3.ProcessingRequest_RequestHeaders
		h extprocv3.HttpHeaders
		m corev3.HeaderMap
	}
	responseHeadersBlock struct {
		w extprocv3.ProcessingRequest_ResponseHeaders
		h extprocv3.HttpHeaders
		m corev3.HeaderMap
	}
	requestBodyBlock struct {
		w extprocv3.ProcessingRequest_RequestBody
		h extprocv3.HttpBody
	}
	responseBodyBlock struct {
		w extprocv3.ProcessingRequest_ResponseBody
		h extprocv3.HttpBody
	}
	requestTrailersBlock struct {
		w extprocv3.ProcessingRequest_RequestTrailers
		t extprocv3.HttpTrailers
		m corev3.HeaderMap
	}
	responseTrailersBlock struct {
		w extprocv3.ProcessingRequest_ResponseTrailers
		t extprocv3.HttpTrailers
		m corev3.HeaderMap
	}
)

// decodeOneof decodes b, the payload of ProcessingRequest field num (2..7),
// into req.Request.
func decodeOneof(num uint64, b []byte, req *extprocv3.ProcessingRequest) bool {
	switch num {
	case 2:
		blk := new(requestHeadersBlock)
		if !decodeHTTPHeaders(b, &blk.h, &blk.m) {
			return false
		}
		blk.w.RequestHeaders = &blk.h
		req.Request = &blk.w
	case 3:
		blk := new(responseHeadersBlock)
		if !decodeHTTPHeaders(b, &blk.h, &blk.m) {
			return false
		}
		blk.w.ResponseHeaders = &blk.h
		req.Request = &blk.w
	case 4:
		blk := new(requestBodyBlock)
		if !decodeHTTPBody(b, &blk.h) {
			return false
		}
		blk.w.RequestBody = &blk.h
		req.Request = &blk.w
	case 5:
		blk := new(responseBodyBlock)
		if !decodeHTTPBody(b, &blk.h) {
			return false
		}
		blk.w.ResponseBody = &blk.h
		req.Request = &blk.w
	case 6:
		blk := new(requestTrailersBlock)
		if !decodeHTTPTrailers(b, &blk.t, &blk.m) {
			return false
		}
		blk.w.RequestTrailers = &blk.t
		req.Request = &blk.w
	case 7:
		blk := new(responseTrailersBlock)
		if !decodeHTTPTrailers(b, &blk.t, &blk.m) {
			return false
		}
		blk.w.ResponseTrailers = &blk.t
		req.Request = &blk.w
	default:
		return false
	}
	return true
}

// decodeHTTPHeaders decodes an HttpHeaders; m is the storage for its
// HeaderMap, used only if the headers field is present (as protobuf-go
// leaves Headers nil without it). attributes(2) is not handled.
func decodeHTTPHeaders(b []byte, h *extprocv3.HttpHeaders, m *corev3.HeaderMap) bool {
	for i := 0; i < len(b); {
		tag, i2, ok := consumeVarint(b, i)
		if !ok {
			return false
		}
		i = i2
		switch tag {
		case tagHeadersHeaders:
			s, e, ok := consumeLen(b, i)
			if !ok || h.Headers != nil || !decodeHeaderMap(b[s:e], m) {
				return false
			}
			h.Headers = m
			i = e
		case tagHeadersEndOfStream:
			v, j, ok := consumeVarint(b, i)
			if !ok {
				return false
			}
			h.EndOfStream = v != 0
			i = j
		default:
			return false
		}
	}
	return true
}

// decodeHTTPTrailers decodes an HttpTrailers, with m as decodeHTTPHeaders.
func decodeHTTPTrailers(b []byte, t *extprocv3.HttpTrailers, m *corev3.HeaderMap) bool {
	for i := 0; i < len(b); {
		tag, i2, ok := consumeVarint(b, i)
		if !ok || tag != tagTrailersTrailers {
			return false
		}
		s, e, ok := consumeLen(b, i2)
		if !ok || t.Trailers != nil || !decodeHeaderMap(b[s:e], m) {
			return false
		}
		t.Trailers = m
		i = e
	}
	return true
}

// decodeHeaderMap decodes a HeaderMap: a first pass counts the entries (and
// rejects any other field), so the HeaderValues are one slab and the
// pointers one slice: a pooled headerSlab for up to slabHeaders entries
// (headerslab.go; Server.Process returns it after the answer), else 2
// allocations whatever the number of headers.
func decodeHeaderMap(b []byte, m *corev3.HeaderMap) bool {
	n := 0
	for i := 0; i < len(b); {
		tag, _, e, ok := nextBytesField(b, i)
		if !ok || tag != tagMapHeaders {
			return false
		}
		n++
		i = e
	}
	if n == 0 {
		return true
	}
	var slab []corev3.HeaderValue
	var ptrs []*corev3.HeaderValue
	if n <= slabHeaders {
		// On a decoding failure below the slab is dropped, not returned:
		// the message then goes to protobuf-go, which resets it.
		s := headerSlabs.Get().(*headerSlab)
		slab, ptrs = s.vals[:n], s.ptrs[:n]
	} else {
		slab = make([]corev3.HeaderValue, n)
		ptrs = make([]*corev3.HeaderValue, n)
	}
	k := 0
	for i := 0; i < len(b); k++ {
		// Tags and lengths were checked by the first pass.
		_, s, e, _ := nextBytesField(b, i)
		if !decodeHeaderValue(b[s:e], &slab[k]) {
			return false
		}
		ptrs[k] = &slab[k]
		i = e
	}
	m.Headers = ptrs
	return true
}

// decodeHeaderValue decodes a HeaderValue. key and value are proto3
// strings: invalid UTF-8 is an error in protobuf-go, so it goes there.
func decodeHeaderValue(b []byte, hv *corev3.HeaderValue) bool {
	for i := 0; i < len(b); {
		tag, s, e, ok := nextBytesField(b, i)
		if !ok {
			return false
		}
		switch tag {
		case tagValueKey:
			if !utf8.Valid(b[s:e]) {
				return false
			}
			hv.Key = bytesView(b[s:e])
		case tagValueValue:
			if !utf8.Valid(b[s:e]) {
				return false
			}
			hv.Value = bytesView(b[s:e])
		case tagValueRawValue:
			hv.RawValue = subBytes(b, s, e)
		default:
			return false
		}
		i = e
	}
	return true
}

// decodeHTTPBody decodes an HttpBody, all of whose fields are handled.
func decodeHTTPBody(b []byte, h *extprocv3.HttpBody) bool {
	for i := 0; i < len(b); {
		tag, i2, ok := consumeVarint(b, i)
		if !ok {
			return false
		}
		i = i2
		if tag == tagBodyBody {
			s, e, ok := consumeLen(b, i)
			if !ok {
				return false
			}
			h.Body = subBytes(b, s, e)
			i = e
			continue
		}
		v, j, ok := consumeVarint(b, i)
		if !ok {
			return false
		}
		switch tag {
		case tagBodyEndOfStream:
			h.EndOfStream = v != 0
		case tagBodyEndOfStreamWithoutMessage:
			h.EndOfStreamWithoutMessage = v != 0
		case tagBodyGrpcMessageCompressed:
			h.GrpcMessageCompressed = v != 0
		case tagBodyDrainComplete:
			h.DrainComplete = v != 0
		default:
			return false
		}
		i = j
	}
	return true
}

// decodeProtocolConfig decodes a ProtocolConfiguration. The body modes are
// open proto3 enums: any value is kept, truncated to int32 as protobuf-go
// does.
func decodeProtocolConfig(b []byte, pc *extprocv3.ProtocolConfiguration) bool {
	for i := 0; i < len(b); {
		tag, i2, ok := consumeVarint(b, i)
		if !ok {
			return false
		}
		v, j, ok := consumeVarint(b, i2)
		if !ok {
			return false
		}
		switch tag {
		case tagPCRequestBodyMode:
			pc.RequestBodyMode = filterprocv3.ProcessingMode_BodySendMode(int32(v))
		case tagPCResponseBodyMode:
			pc.ResponseBodyMode = filterprocv3.ProcessingMode_BodySendMode(int32(v))
		case tagPCSendBodyWithout:
			pc.SendBodyWithoutWaitingForHeaderResponse = v != 0
		default:
			return false
		}
		i = j
	}
	return true
}

// consumeVarint reads the varint at b[i:] and returns it with the index
// after it. Varints that protowire rejects (truncated, over 64 bits) report
// false; non-minimal encodings are accepted, as protobuf-go accepts them.
//
// The one-byte case (every tag here, most lengths) is inlined; the rest
// goes to consumeVarintSlow.
func consumeVarint(b []byte, i int) (uint64, int, bool) {
	if uint(i) < uint(len(b)) {
		if c := b[i]; c < 0x80 {
			return uint64(c), i + 1, true
		}
	}
	return consumeVarintSlow(b, i)
}

func consumeVarintSlow(b []byte, i int) (uint64, int, bool) {
	v, n := protowire.ConsumeVarint(b[i:])
	if n < 0 {
		return 0, 0, false
	}
	return v, i + n, true
}

// consumeLen reads the length prefix at b[i:] and returns the bounds of the
// payload, which must fit in b.
func consumeLen(b []byte, i int) (start, end int, ok bool) {
	l, i, ok := consumeVarint(b, i)
	if !ok || l > uint64(len(b)-i) {
		return 0, 0, false
	}
	return i, i + int(l), true
}

// nextBytesField reads the tag at b[i:] and, when it is a length-delimited
// field, the bounds of its payload; for any other wire type s == e is the
// index after the tag. It is consumeVarint plus consumeLen in one call, for
// the per-header loops, where call overhead showed in profiles.
func nextBytesField(b []byte, i int) (tag uint64, s, e int, ok bool) {
	if i < len(b) && b[i] < 0x80 {
		tag = uint64(b[i])
		i++
	} else if tag, i, ok = consumeVarintSlow(b, i); !ok {
		return 0, 0, 0, false
	}
	if tag&7 != wireBytes {
		return tag, i, i, true
	}
	var l uint64
	if i < len(b) && b[i] < 0x80 {
		l = uint64(b[i])
		i++
	} else if l, i, ok = consumeVarintSlow(b, i); !ok {
		return 0, 0, 0, false
	}
	if l > uint64(len(b)-i) {
		return 0, 0, 0, false
	}
	return tag, i, i + int(l), true
}

// subBytes is b[s:e] as a proto3 bytes field: nil when empty (as
// protobuf-go decodes it), capacity cut at e so appends reallocate.
func subBytes(b []byte, s, e int) []byte {
	if s == e {
		return nil
	}
	return b[s:e:e]
}

// bytesView is b as a string without a copy. b must never be written
// afterwards: see decodeRequest's invariant.
func bytesView(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
