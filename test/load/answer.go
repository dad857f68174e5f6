package main

// A hand-written decoder for the answers the load tool expects, so that the
// client's decoding cost is close to what Envoy's generated C++ parser pays
// rather than protobuf-go's table-driven reflection.
//
// Why: the client shares the two cores with the server under test, so
// whatever it spends on an answer is taken from the server. proto.Unmarshal
// of one Switchyard request's three answers (a routed body answer carries
// ~7 header mutations and the rewritten body) took ~12.7 µs of client CPU
// per request (-client-profile, 2 KB closed loop), the null processor's
// empty CONTINUEs under 1 µs: a cost charged to the server only because the
// emulated proxy is written in Go. This file decodes the shapes the tool
// checks (request_headers, response_headers and request_body answers with a
// CommonResponse, and a mode_override) into the same message protobuf-go would build, in a few
// allocations; every other shape, and anything malformed, goes to
// proto.Unmarshal on the same bytes, so the result, value or error, is
// always the standard codec's. -full-decode bypasses it (and the
// dynamic_metadata skip in codec.go).

import (
	"math"
	"unicode/utf8"
	"unsafe"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filterprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of the messages decoded here.
const (
	// ProcessingResponse (dynamicMetadataField, 8, is in codec.go).
	respRequestHeaders  = 1
	respResponseHeaders = 2
	respRequestBody     = 3
	respModeOverride    = 9

	// ProcessingMode: six enums, fields 1 to 6.
	modeLast = 6

	// HeadersResponse and BodyResponse.
	partResponse = 1

	// CommonResponse.
	commonStatus          = 1
	commonHeaderMutation  = 2
	commonBodyMutation    = 3
	commonClearRouteCache = 5

	// HeaderMutation.
	mutSetHeaders    = 1
	mutRemoveHeaders = 2

	// HeaderValueOption.
	optHeader         = 1
	optAppendAction   = 3
	optKeepEmptyValue = 4

	// HeaderValue.
	hvKey      = 1
	hvValue    = 2
	hvRawValue = 3

	// BodyMutation.
	bodyBody      = 1
	bodyClearBody = 2
)

// field is one top-level field of a message: its number, wire type, and for
// the bytes type its payload, for varints its value.
type field struct {
	num protowire.Number
	typ protowire.Type
	b   []byte
	v   uint64
}

// fields iterates the fields of b. It stops with ok false on malformed
// input or a wire type other than varint and bytes (fixed32/64 and groups
// occur nowhere in the decoded shapes).
type fields struct {
	b  []byte
	ok bool
}

func (it *fields) next(f *field) bool {
	if len(it.b) == 0 {
		return false
	}
	num, typ, n := protowire.ConsumeTag(it.b)
	if n < 0 {
		it.ok = false
		return false
	}
	it.b = it.b[n:]
	f.num, f.typ = num, typ
	switch typ {
	case protowire.VarintType:
		v, m := protowire.ConsumeVarint(it.b)
		if m < 0 {
			it.ok = false
			return false
		}
		f.v, f.b = v, nil
		it.b = it.b[m:]
	case protowire.BytesType:
		v, m := protowire.ConsumeBytes(it.b)
		if m < 0 {
			it.ok = false
			return false
		}
		f.b = v[:len(v):len(v)]
		it.b = it.b[m:]
	default:
		it.ok = false
		return false
	}
	return true
}

func walk(b []byte) fields { return fields{b: b, ok: true} }

// decodeAnswer decodes b into m and reports true, or reports false when b
// is anything but the plain shape handled here (m is then in an
// unspecified state; the caller decodes b again with proto.Unmarshal).
// When it reports true, m is proto.Equal to what proto.Unmarshal gives for b
// without its dynamic_metadata (field 8, skipped as in codec.go: its bytes
// are stepped over, not decoded).
//
// b must be private to m and never written again: bytes and string fields
// are views of it. Proto semantics kept: fields in any order; the last
// value of a scalar wins; empty bytes are nil. A repeated singular message
// or a second oneof member (which protobuf-go merges or replaces), unknown
// fields, invalid UTF-8 in a string and negative enum values are all left
// to proto.Unmarshal.
func decodeAnswer(b []byte, m *extprocv3.ProcessingResponse) bool {
	*m = extprocv3.ProcessingResponse{}
	var f field
	it := walk(b)
	for it.next(&f) {
		if f.typ != protowire.BytesType {
			return false
		}
		if f.num == dynamicMetadataField {
			continue // never checked; skipped as in codec.go
		}
		if f.num == respModeOverride {
			if m.ModeOverride != nil {
				return false // protobuf-go merges a second one
			}
			m.ModeOverride = new(filterprocv3.ProcessingMode)
			if !decodeMode(f.b, m.ModeOverride) {
				return false
			}
			continue
		}
		if m.Response != nil {
			return false
		}
		switch f.num {
		case respRequestHeaders:
			blk := new(struct {
				w extprocv3.ProcessingResponse_RequestHeaders
				h extprocv3.HeadersResponse
			})
			if !decodePart(f.b, &blk.h.Response) {
				return false
			}
			blk.w.RequestHeaders = &blk.h
			m.Response = &blk.w
		case respResponseHeaders:
			blk := new(struct {
				w extprocv3.ProcessingResponse_ResponseHeaders
				h extprocv3.HeadersResponse
			})
			if !decodePart(f.b, &blk.h.Response) {
				return false
			}
			blk.w.ResponseHeaders = &blk.h
			m.Response = &blk.w
		case respRequestBody:
			blk := new(struct {
				w extprocv3.ProcessingResponse_RequestBody
				h extprocv3.BodyResponse
			})
			if !decodePart(f.b, &blk.h.Response) {
				return false
			}
			blk.w.RequestBody = &blk.h
			m.Response = &blk.w
		default:
			return false
		}
	}
	return it.ok
}

// decodeMode decodes a ProcessingMode (what Switchyard's response-headers
// answer carries to skip the response body).
func decodeMode(b []byte, pm *filterprocv3.ProcessingMode) bool {
	var f field
	it := walk(b)
	for it.next(&f) {
		// Open enums: protobuf-go keeps any int32; a negative one (ten
		// varint bytes) is left to it.
		if f.typ != protowire.VarintType || f.num < 1 || f.num > modeLast || f.v > math.MaxInt32 {
			return false
		}
		v := int32(f.v)
		switch f.num {
		case 1:
			pm.RequestHeaderMode = filterprocv3.ProcessingMode_HeaderSendMode(v)
		case 2:
			pm.ResponseHeaderMode = filterprocv3.ProcessingMode_HeaderSendMode(v)
		case 3:
			pm.RequestBodyMode = filterprocv3.ProcessingMode_BodySendMode(v)
		case 4:
			pm.ResponseBodyMode = filterprocv3.ProcessingMode_BodySendMode(v)
		case 5:
			pm.RequestTrailerMode = filterprocv3.ProcessingMode_HeaderSendMode(v)
		case 6:
			pm.ResponseTrailerMode = filterprocv3.ProcessingMode_HeaderSendMode(v)
		}
	}
	return it.ok
}

// decodePart decodes a HeadersResponse or BodyResponse (both are one
// CommonResponse in field 1) and sets *common when the field is present.
func decodePart(b []byte, common **extprocv3.CommonResponse) bool {
	var f field
	it := walk(b)
	for it.next(&f) {
		if f.num != partResponse || f.typ != protowire.BytesType || *common != nil {
			return false
		}
		c := new(extprocv3.CommonResponse)
		if !decodeCommon(f.b, c) {
			return false
		}
		*common = c
	}
	return it.ok
}

func decodeCommon(b []byte, c *extprocv3.CommonResponse) bool {
	var f field
	it := walk(b)
	for it.next(&f) {
		switch {
		case f.num == commonStatus && f.typ == protowire.VarintType:
			if f.v > math.MaxInt32 {
				return false
			}
			c.Status = extprocv3.CommonResponse_ResponseStatus(f.v)
		case f.num == commonClearRouteCache && f.typ == protowire.VarintType:
			c.ClearRouteCache = f.v != 0
		case f.num == commonHeaderMutation && f.typ == protowire.BytesType && c.HeaderMutation == nil:
			hm := new(extprocv3.HeaderMutation)
			if !decodeHeaderMutation(f.b, hm) {
				return false
			}
			c.HeaderMutation = hm
		case f.num == commonBodyMutation && f.typ == protowire.BytesType && c.BodyMutation == nil:
			bm := new(extprocv3.BodyMutation)
			if !decodeBodyMutation(f.b, bm) {
				return false
			}
			c.BodyMutation = bm
		default:
			return false
		}
	}
	return it.ok
}

func decodeHeaderMutation(b []byte, hm *extprocv3.HeaderMutation) bool {
	// Count the set_headers first, so that their options and values are
	// two slabs instead of two allocations each.
	var f field
	n := 0
	it := walk(b)
	for it.next(&f) {
		if f.num == mutSetHeaders {
			n++
		}
	}
	if !it.ok {
		return false
	}
	var (
		opts []corev3.HeaderValueOption
		vals []corev3.HeaderValue
	)
	if n > 0 {
		opts = make([]corev3.HeaderValueOption, n)
		vals = make([]corev3.HeaderValue, n)
		hm.SetHeaders = make([]*corev3.HeaderValueOption, 0, n)
	}
	it = walk(b)
	for it.next(&f) {
		if f.typ != protowire.BytesType {
			return false
		}
		switch f.num {
		case mutSetHeaders:
			i := len(hm.SetHeaders)
			if !decodeHeaderValueOption(f.b, &opts[i], &vals[i]) {
				return false
			}
			hm.SetHeaders = append(hm.SetHeaders, &opts[i])
		case mutRemoveHeaders:
			if !utf8.Valid(f.b) {
				return false
			}
			hm.RemoveHeaders = append(hm.RemoveHeaders, view(f.b))
		default:
			return false
		}
	}
	return it.ok
}

func decodeHeaderValueOption(b []byte, o *corev3.HeaderValueOption, hv *corev3.HeaderValue) bool {
	var f field
	it := walk(b)
	for it.next(&f) {
		switch {
		case f.num == optHeader && f.typ == protowire.BytesType && o.Header == nil:
			if !decodeHeaderValue(f.b, hv) {
				return false
			}
			o.Header = hv
		case f.num == optAppendAction && f.typ == protowire.VarintType:
			if f.v > math.MaxInt32 {
				return false
			}
			o.AppendAction = corev3.HeaderValueOption_HeaderAppendAction(f.v)
		case f.num == optKeepEmptyValue && f.typ == protowire.VarintType:
			o.KeepEmptyValue = f.v != 0
		default:
			return false
		}
	}
	return it.ok
}

func decodeHeaderValue(b []byte, hv *corev3.HeaderValue) bool {
	var f field
	it := walk(b)
	for it.next(&f) {
		if f.typ != protowire.BytesType {
			return false
		}
		switch f.num {
		case hvKey, hvValue:
			if !utf8.Valid(f.b) {
				return false
			}
			if f.num == hvKey {
				hv.Key = view(f.b)
			} else {
				hv.Value = view(f.b)
			}
		case hvRawValue:
			hv.RawValue = nilIfEmpty(f.b)
		default:
			return false
		}
	}
	return it.ok
}

func decodeBodyMutation(b []byte, bm *extprocv3.BodyMutation) bool {
	var f field
	it := walk(b)
	for it.next(&f) {
		if bm.Mutation != nil {
			return false // a second oneof member: protobuf-go's rules
		}
		switch {
		case f.num == bodyBody && f.typ == protowire.BytesType:
			// A oneof bytes member is never nil once present.
			bm.Mutation = &extprocv3.BodyMutation_Body{Body: f.b[:len(f.b):len(f.b)]}
		case f.num == bodyClearBody && f.typ == protowire.VarintType:
			bm.Mutation = &extprocv3.BodyMutation_ClearBody{ClearBody: f.v != 0}
		default:
			return false
		}
	}
	return it.ok
}

// view is b as a string without a copy (b is never written again).
func view(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}
