package extproc

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filterprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
)

func decRaw(k, v string) *corev3.HeaderValue {
	return &corev3.HeaderValue{Key: k, RawValue: []byte(v)}
}

// decLoadHeaders are the 21 request headers test/load/client.go sends for a
// Python-SDK request (common 12 + 5 SDK + 4 per request).
func decLoadHeaders() []*corev3.HeaderValue {
	return []*corev3.HeaderValue{
		decRaw(":authority", "llm-gateway.internal.example"),
		decRaw(":path", "/v1/chat/completions"),
		decRaw(":method", "POST"),
		decRaw(":scheme", "https"),
		decRaw("content-type", "application/json"),
		decRaw("accept", "application/json"),
		decRaw("accept-encoding", "gzip, deflate"),
		decRaw("x-stainless-retry-count", "0"),
		decRaw("x-stainless-read-timeout", "600"),
		decRaw("x-stainless-os", "Linux"),
		decRaw("x-stainless-arch", "x64"),
		decRaw("x-forwarded-proto", "https"),
		decRaw("user-agent", "OpenAI/Python 1.82.1"),
		decRaw("x-stainless-lang", "python"),
		decRaw("x-stainless-package-version", "1.82.1"),
		decRaw("x-stainless-runtime", "CPython"),
		decRaw("x-stainless-runtime-version", "3.12.8"),
		decRaw("content-length", "2048"),
		decRaw("x-tenant-id", "globex"),
		decRaw("authorization", "Bearer sk-proj-loadtest-9e3779b97f4a7c15"),
		decRaw("x-request-id", "6f1c2a9e-33b4-4c1d-9a7e-0d2f5b8c1e40"),
	}
}

// decRespHeaders are the 6 response headers of test/load/client.go.
func decRespHeaders() []*corev3.HeaderValue {
	return []*corev3.HeaderValue{
		decRaw(":status", "200"),
		decRaw("date", "Tue, 04 Aug 2026 10:12:31 GMT"),
		decRaw("openai-processing-ms", "812"),
		decRaw("x-envoy-upstream-service-time", "815"),
		decRaw("server", "envoy"),
		decRaw("content-type", "application/json"),
	}
}

// decChatBody is a ~2 KB chat request written for these tests.
var decChatBody = func() []byte {
	b := `{"model":"auto","stream":false,"messages":[{"role":"system","content":"You plan weekend hiking trips for a local club. Keep answers short."}`
	for i := 0; len(b) < 1990; i++ {
		b += `,{"role":"user","content":"Route idea ` + strconv.Itoa(i) + `: a ridge loop with a lake swim, about fourteen kilometres, leaving the car park at eight."}`
	}
	return []byte(b + `]}`)
}()

func decHeadersReq(resp, eos bool, hs []*corev3.HeaderValue) *extprocv3.ProcessingRequest {
	h := &extprocv3.HttpHeaders{Headers: &corev3.HeaderMap{Headers: hs}, EndOfStream: eos}
	if resp {
		return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: h}}
	}
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: h}}
}

func decBodyReq(body []byte, eos bool) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{
		RequestBody: &extprocv3.HttpBody{Body: body, EndOfStream: eos}}}
}

// decMetadata is what Envoy forwards once Switchyard has set its namespace.
func decMetadata(tb testing.TB) *corev3.Metadata {
	s, err := structpb.NewStruct(map[string]any{"target": "fast", "cost": 0.25, "tags": []any{"a", true, nil}})
	if err != nil {
		tb.Fatal(err)
	}
	return &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"switchyard": s}}
}

// decAttributes is the attributes map of Envoy's first message.
func decAttributes(tb testing.TB) map[string]*structpb.Struct {
	s, err := structpb.NewStruct(map[string]any{"xds.cluster_name": "target-fast", "upstream.request_attempt_count": 1.0})
	if err != nil {
		tb.Fatal(err)
	}
	return map[string]*structpb.Struct{"envoy.filters.http.ext_proc": s}
}

// decEnvoyFirst is the first message of an upstream-role stream as Envoy
// builds it: headers, (empty) metadata_context, attributes, protocol_config.
func decEnvoyFirst(tb testing.TB) *extprocv3.ProcessingRequest {
	m := decHeadersReq(false, false, decLoadHeaders())
	m.MetadataContext = &corev3.Metadata{}
	m.Attributes = decAttributes(tb)
	m.ProtocolConfig = &extprocv3.ProtocolConfiguration{RequestBodyMode: filterprocv3.ProcessingMode_BUFFERED}
	return m
}

func decMarshal(tb testing.TB, m proto.Message) []byte {
	tb.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// Raw wire builders for what proto.Marshal never writes.
func wBytes(num protowire.Number, payload []byte) []byte {
	b := protowire.AppendTag(nil, num, protowire.BytesType)
	return protowire.AppendBytes(b, payload)
}

func wVarint(num protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(nil, num, protowire.VarintType), v)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// wHeaders is request_headers{headers{headers: each of vals}}, vals being
// raw HeaderValue payloads.
func wHeaders(vals ...[]byte) []byte {
	var m []byte
	for _, v := range vals {
		m = append(m, wBytes(1, v)...)
	}
	return wBytes(2, wBytes(1, m))
}

type decodeCase struct {
	name string
	b    []byte
	fast bool // decodeFast must accept it (false: it must refuse it)
}

func decodeCases(tb testing.TB) []decodeCase {
	mk := func(m proto.Message) []byte { return decMarshal(tb, m) }
	binary := make([]byte, 512)
	for i := range binary {
		binary[i] = byte(i)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KB
	valueOnly := []*corev3.HeaderValue{{Key: ":path", Value: "/v1/chat/completions"}, {Key: "x-a", Value: "ü-é"}}
	both := []*corev3.HeaderValue{{Key: "x-both", Value: "v", RawValue: []byte("r")}, {}, {Key: "x-empty"}}
	withPC := decHeadersReq(false, false, decLoadHeaders())
	withPC.ProtocolConfig = &extprocv3.ProtocolConfiguration{
		RequestBodyMode: filterprocv3.ProcessingMode_BUFFERED, ResponseBodyMode: filterprocv3.ProcessingMode_STREAMED,
		SendBodyWithoutWaitingForHeaderResponse: true}
	oddEnums := decBodyReq([]byte("x"), true)
	oddEnums.ProtocolConfig = &extprocv3.ProtocolConfiguration{RequestBodyMode: 99, ResponseBodyMode: -7}
	obs := decBodyReq(decChatBody, false)
	obs.ObservabilityMode = true
	emptyMeta := decHeadersReq(true, false, decRespHeaders())
	emptyMeta.MetadataContext = &corev3.Metadata{}
	withMeta := decHeadersReq(true, true, decRespHeaders())
	withMeta.MetadataContext = decMetadata(tb)
	anyVal, err := anypb.New(&corev3.HeaderValue{Key: "k", Value: "v"})
	if err != nil {
		tb.Fatal(err)
	}
	typedMeta := decBodyReq(nil, true)
	typedMeta.MetadataContext = &corev3.Metadata{TypedFilterMetadata: map[string]*anypb.Any{"t": anyVal}}
	grpcBody := &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{
		Body: []byte("\x00\x00\x00\x00\x02hi"), EndOfStream: true, EndOfStreamWithoutMessage: true, GrpcMessageCompressed: true, DrainComplete: true}}}
	flow := decBodyReq([]byte("x"), false)
	flow.FlowControlInit = &extprocv3.ProcessingRequest_FlowControlInit{InitialWindowDownstreamToSidestream: 1 << 20}
	hdrAttrs := &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{
		Headers: &corev3.HeaderMap{Headers: decRespHeaders()}, Attributes: decAttributes(tb)}}}
	trailers := func(resp bool, hs []*corev3.HeaderValue) *extprocv3.ProcessingRequest {
		t := &extprocv3.HttpTrailers{Trailers: &corev3.HeaderMap{Headers: hs}}
		if resp {
			return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseTrailers{ResponseTrailers: t}}
		}
		return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestTrailers{RequestTrailers: t}}
	}
	hv := func(k, v string) []byte { return cat(wBytes(1, []byte(k)), wBytes(3, []byte(v))) }
	headers21 := mk(decHeadersReq(false, false, decLoadHeaders()))
	meta := mk(&extprocv3.ProcessingRequest{MetadataContext: decMetadata(tb)})

	return []decodeCase{
		// What the fast path handles.
		{"empty message", nil, true},
		{"request headers 21 raw_value", headers21, true},
		{"request headers value only", mk(decHeadersReq(false, false, valueOnly)), true},
		{"headers value, raw_value and empty entries", mk(decHeadersReq(false, true, both)), true},
		{"headers empty map", mk(decHeadersReq(false, true, nil)), true},
		{"headers without map", mk(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{EndOfStream: true}}}), true},
		{"empty request headers", mk(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{}}}), true},
		{"response headers 6 eos", mk(decHeadersReq(true, true, decRespHeaders())), true},
		{"body empty", mk(decBodyReq(nil, false)), true},
		{"body empty eos", mk(decBodyReq(nil, true)), true},
		{"body 2 KB eos", mk(decBodyReq(decChatBody, true)), true},
		{"body 64 KB", mk(decBodyReq(big, false)), true},
		{"body binary", mk(decBodyReq(binary, true)), true},
		{"response body grpc flags", mk(grpcBody), true},
		{"request trailers", mk(trailers(false, []*corev3.HeaderValue{decRaw("grpc-status", "0")})), true},
		{"response trailers empty map", mk(trailers(true, nil)), true},
		{"response trailers", mk(trailers(true, decRespHeaders())), true},
		{"empty trailers", mk(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestTrailers{RequestTrailers: &extprocv3.HttpTrailers{}}}), true},
		{"protocol_config", mk(withPC), true},
		{"protocol_config odd enums", mk(oddEnums), true},
		{"empty protocol_config", mk(&extprocv3.ProcessingRequest{ProtocolConfig: &extprocv3.ProtocolConfiguration{}}), true},
		{"observability_mode", mk(obs), true},
		{"empty metadata_context", mk(emptyMeta), true},
		{"metadata_context with struct", mk(withMeta), true},
		{"metadata_context typed", mk(typedMeta), true},
		{"envoy first message with attributes", mk(decEnvoyFirst(tb)), true},
		{"metadata_context twice, apart", cat(meta, headers21, wBytes(8, mk(&corev3.Metadata{TypedFilterMetadata: map[string]*anypb.Any{"t": anyVal}}))), true},
		{"attributes before oneof", cat(mk(&extprocv3.ProcessingRequest{Attributes: decAttributes(tb)}), headers21), true},
		{"observability twice, last wins", cat(wVarint(10, 1), headers21, wVarint(10, 0)), true},
		{"bool varint 2", cat(wVarint(10, 2), headers21), true},
		{"bool as 10-byte varint", cat(wVarint(10, 1<<63), headers21), true},
		{"key twice, last wins", wHeaders(cat(hv("a", "1"), wBytes(1, []byte("b")))), true},
		{"body twice, last wins", wBytes(4, cat(wBytes(1, []byte("one")), wBytes(1, []byte("two")), wVarint(2, 1))), true},
		{"empty raw_value and body fields", cat(wBytes(4, cat(wBytes(1, nil), wVarint(2, 1)))), true},
		{"empty raw_value field", wHeaders(cat(wBytes(1, []byte("k")), wBytes(3, nil))), true},
		{"end_of_stream varint 2", wBytes(2, cat(wBytes(1, nil), wVarint(3, 2))), true},
		{"body flags varint 5", wBytes(5, cat(wVarint(2, 5), wVarint(3, 5), wVarint(4, 5), wVarint(5, 5))), true},
		{"protocol_config wide enums", wBytes(11, cat(wVarint(1, 1<<40|300000), wVarint(2, 1<<31), wVarint(3, 300))), true},
		{"raw_value invalid UTF-8", wHeaders(hv("x-bin", "\xff\xfe")), true},
		{"non-minimal tag and length", cat([]byte{0x92, 0x00, 0x80 | 2, 0x00}, wBytes(1, nil)), true},
		{"fields out of order", cat(wVarint(10, 1), wBytes(4, cat(wVarint(2, 1), wBytes(1, []byte("b"))))), true},

		// What it leaves to proto.Unmarshal.
		{"flow_control_init", mk(flow), false},
		{"HttpHeaders.attributes", mk(hdrAttrs), false},
		{"unknown top-level field", cat(headers21, wVarint(99, 1)), false},
		{"unknown HeaderValue field", wHeaders(cat(hv("a", "1"), wVarint(7, 1))), false},
		{"unknown HttpBody field", wBytes(4, cat(wBytes(1, []byte("b")), wVarint(9, 1))), false},
		{"same oneof member twice", cat(headers21, wHeaders(hv("x-more", "1"))), false},
		{"two oneof members", cat(headers21, mk(decBodyReq([]byte("b"), true))), false},
		{"protocol_config twice", cat(mk(withPC), mk(&extprocv3.ProcessingRequest{ProtocolConfig: &extprocv3.ProtocolConfiguration{RequestBodyMode: 1}})), false},
		{"HttpHeaders.headers twice", wBytes(2, cat(wBytes(1, wBytes(1, hv("a", "1"))), wBytes(1, wBytes(1, hv("b", "2"))))), false},
		{"trailers map twice", wBytes(6, cat(wBytes(1, nil), wBytes(1, nil))), false},
		{"oneof as varint", wVarint(2, 1), false},
		{"observability as bytes", cat(headers21, wBytes(10, []byte{1})), false},
		{"metadata_context as varint", wVarint(8, 0), false},
		{"end_of_stream as bytes", wBytes(2, wBytes(3, []byte{1})), false},
		{"invalid UTF-8 key", wHeaders(hv("x-\xff", "v")), false},
		{"invalid UTF-8 value", wHeaders(cat(wBytes(1, []byte("k")), wBytes(2, []byte("\xc3\x28")))), false},
		{"truncated", headers21[:len(headers21)-3], false},
		{"length past end", []byte{0x12, 0x05, 0x0a}, false},
		{"varint overflow", cat(wVarint(10, 0)[:1], bytes.Repeat([]byte{0xff}, 10), []byte{0x01}), false},
		{"field number 0", []byte{0x02, 0x00}, false},
		{"group wire type", []byte{0x13, 0x14}, false},
		{"broken metadata_context", cat(headers21, wBytes(8, []byte{0x0a, 0x09})), false},
		{"invalid UTF-8 in attributes key", cat(headers21, wBytes(9, wBytes(1, []byte("\xff")))), false},
	}
}

// decodeBoth decodes b with the server codec (from a BufferSlice, as gRPC
// hands it) and with proto.Unmarshal, and fails t unless both give the same
// message or both fail with the same error.
func decodeBoth(t testing.TB, b []byte) *extprocv3.ProcessingRequest {
	t.Helper()
	got := new(extprocv3.ProcessingRequest)
	gotErr := newCodec().Unmarshal(mem.BufferSlice{mem.SliceBuffer(bytes.Clone(b))}, got)
	want := new(extprocv3.ProcessingRequest)
	wantErr := proto.Unmarshal(b, want)
	switch {
	case (gotErr == nil) != (wantErr == nil):
		t.Fatalf("decode of %x: error %v, proto.Unmarshal: %v", b, gotErr, wantErr)
	case wantErr != nil:
		if gotErr.Error() != wantErr.Error() {
			t.Fatalf("decode of %x: error %q, proto.Unmarshal %q", b, gotErr, wantErr)
		}
	case !proto.Equal(got, want):
		t.Fatalf("decode of %x differs:\n got %v\nwant %v", b, got, want)
	case nilness(got) != nilness(want):
		t.Fatalf("decode of %x: nil bytes fields %s, proto.Unmarshal %s", b, nilness(got), nilness(want))
	}
	// A message the fast path accepts must be one protobuf-go accepts too,
	// with the same value (checked directly, not through the codec).
	fast := new(extprocv3.ProcessingRequest)
	if decodeFast(bytes.Clone(b), fast) {
		if wantErr != nil {
			t.Fatalf("decodeFast accepted %x, proto.Unmarshal fails: %v", b, wantErr)
		}
		if !proto.Equal(fast, want) {
			t.Fatalf("decodeFast of %x differs:\n got %v\nwant %v", b, fast, want)
		}
	}
	return got
}

// nilness tells which bytes fields and header lists are nil: proto.Equal
// does not distinguish nil from empty, code that checks for nil would.
func nilness(m *extprocv3.ProcessingRequest) string {
	var sb strings.Builder
	mark := func(isNil bool) {
		if isNil {
			sb.WriteByte('n')
		} else {
			sb.WriteByte('.')
		}
	}
	maps := []*corev3.HeaderMap{m.GetRequestHeaders().GetHeaders(), m.GetResponseHeaders().GetHeaders(),
		m.GetRequestTrailers().GetTrailers(), m.GetResponseTrailers().GetTrailers()}
	for _, hm := range maps {
		mark(hm.GetHeaders() == nil)
		for _, h := range hm.GetHeaders() {
			mark(h.RawValue == nil)
		}
	}
	mark(m.GetRequestBody().GetBody() == nil)
	mark(m.GetResponseBody().GetBody() == nil)
	return sb.String()
}

func TestDecodeRequestMatchesProto(t *testing.T) {
	for _, tc := range decodeCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			decodeBoth(t, tc.b)
			if ok := decodeFast(bytes.Clone(tc.b), new(extprocv3.ProcessingRequest)); ok != tc.fast {
				t.Errorf("decodeFast ok = %v, want %v (fast path taken when it should be)", ok, tc.fast)
			}
		})
	}
}

// TestDecodeRequestEdits: every single-byte change, deletion and truncation
// of a few rich messages decodes as proto.Unmarshal decodes it.
func TestDecodeRequestEdits(t *testing.T) {
	first := decEnvoyFirst(t)
	first.Request.(*extprocv3.ProcessingRequest_RequestHeaders).RequestHeaders.Headers.Headers = append(
		decRespHeaders()[:3], &corev3.HeaderValue{Key: "x-v", Value: "val"})
	first.ObservabilityMode = true
	body := decBodyReq([]byte(`{"model":"auto","messages":[]}`), true)
	body.MetadataContext = &corev3.Metadata{}
	trailers := &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseTrailers{ResponseTrailers: &extprocv3.HttpTrailers{
		Trailers: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{decRaw("grpc-status", "0"), {Key: "grpc-message", Value: "ok"}}}}}}
	for _, m := range []*extprocv3.ProcessingRequest{first, body, trailers} {
		orig := decMarshal(t, m)
		fastHits, n := 0, 0
		check := func(b []byte) {
			n++
			decodeBoth(t, b)
			if decodeFast(bytes.Clone(b), new(extprocv3.ProcessingRequest)) {
				fastHits++
			}
		}
		for i := range orig {
			b := bytes.Clone(orig)
			for v := 0; v < 256; v++ {
				if byte(v) == orig[i] {
					continue
				}
				b[i] = byte(v)
				check(b)
			}
			check(orig[:i])
			check(append(bytes.Clone(orig[:i]), orig[i+1:]...))
		}
		// Sanity: edits inside values keep the fast path, so most of them
		// must have taken it; a decoder that always falls back fails here.
		if fastHits < n/4 {
			t.Errorf("%d-byte message: fast path on %d of %d edits", len(orig), fastHits, n)
		}
	}
}

// TestDecodeRequestAliasing: the decoded message owns its bytes (gRPC
// reuses the source buffers), and appending to a bytes field never
// changes another field.
func TestDecodeRequestAliasing(t *testing.T) {
	m := decEnvoyFirst(t)
	m.GetRequestHeaders().Headers.Headers = append(decLoadHeaders(), &corev3.HeaderValue{Key: "x-v", Value: "value-field"})
	for i, src := range []*extprocv3.ProcessingRequest{m, decBodyReq(decChatBody, true), decHeadersReq(true, false, decRespHeaders()), m, decBodyReq(decChatBody, true)} {
		b := decMarshal(t, src)
		// One buffer, or three, as gRPC hands over a message split across
		// frames.
		parts := [][]byte{bytes.Clone(b)}
		if i < 3 {
			parts = [][]byte{bytes.Clone(b[:len(b)/3]), bytes.Clone(b[len(b)/3 : len(b)/2]), bytes.Clone(b[len(b)/2:])}
		}
		var data mem.BufferSlice
		for _, p := range parts {
			data = append(data, mem.SliceBuffer(p))
		}
		got := new(extprocv3.ProcessingRequest)
		if err := newCodec().Unmarshal(data, got); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got, src) {
			t.Fatalf("decoded %v, want %v", got, src)
		}
		for _, p := range parts {
			for i := range p {
				p[i] = 0xAA
			}
		}
		if !proto.Equal(got, src) {
			t.Fatalf("decoded message changed with the source buffers:\n got %v\nwant %v", got, src)
		}

		for _, h := range got.GetRequestHeaders().GetHeaders().GetHeaders() {
			if len(h.RawValue) > 0 && cap(h.RawValue) != len(h.RawValue) {
				t.Errorf("%s: raw_value cap %d > len %d", h.Key, cap(h.RawValue), len(h.RawValue))
			}
			h.RawValue = append(h.RawValue, strings.Repeat("Z", 64)...)
		}
		for _, h := range got.GetResponseHeaders().GetHeaders().GetHeaders() {
			h.RawValue = append(h.RawValue, strings.Repeat("Z", 64)...)
		}
		if body := got.GetRequestBody(); body != nil {
			if cap(body.Body) != len(body.Body) {
				t.Errorf("body cap %d > len %d", cap(body.Body), len(body.Body))
			}
			body.Body = append(body.Body, strings.Repeat("Z", 64)...)
			if !bytes.Equal(body.Body[:len(decChatBody)], decChatBody) {
				t.Error("append changed the body")
			}
		}
		// Every other field is unchanged: compare keys and values only.
		want := src.GetRequestHeaders().GetHeaders().GetHeaders()
		want = append(want, src.GetResponseHeaders().GetHeaders().GetHeaders()...)
		have := got.GetRequestHeaders().GetHeaders().GetHeaders()
		have = append(have, got.GetResponseHeaders().GetHeaders().GetHeaders()...)
		for i, h := range have {
			if h.Key != want[i].Key || h.Value != want[i].Value || !bytes.HasPrefix(h.RawValue, want[i].RawValue) {
				t.Errorf("header %d after appends: %q=%q/%q, want %q=%q/%q", i, h.Key, h.Value, h.RawValue, want[i].Key, want[i].Value, want[i].RawValue)
			}
		}
	}
}

// TestDecodeRequestAllocs pins the point of the decoder: a headers message
// costs the same few allocations whatever its number of headers (copy,
// oneof block, HeaderValue slab, pointer slice), a body message two.
func TestDecodeRequestAllocs(t *testing.T) {
	c := newCodec()
	for _, tc := range []struct {
		name string
		m    *extprocv3.ProcessingRequest
		max  float64
	}{
		{"headers21", decHeadersReq(false, false, decLoadHeaders()), 4},
		{"headers6", decHeadersReq(true, false, decRespHeaders()), 4},
		{"body2KB", decBodyReq(decChatBody, true), 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := mem.BufferSlice{mem.SliceBuffer(decMarshal(t, tc.m))}
			req := new(extprocv3.ProcessingRequest)
			allocs := testing.AllocsPerRun(50, func() {
				if err := c.Unmarshal(data, req); err != nil {
					t.Fatal(err)
				}
			})
			if allocs > tc.max {
				t.Errorf("%v allocations per decode, want at most %v", allocs, tc.max)
			}
		})
	}
}

// TestDecodeRequestOtherTypes: messages other than ProcessingRequest keep
// the standard codec.
func TestDecodeRequestOtherTypes(t *testing.T) {
	want := &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{}}}
	b := decMarshal(t, want)
	got := new(extprocv3.ProcessingResponse)
	if err := newCodec().Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, got); err != nil || !proto.Equal(got, want) {
		t.Fatalf("got %v, %v; want %v", got, err, want)
	}
}

func FuzzDecodeRequest(f *testing.F) {
	for _, tc := range decodeCases(f) {
		// Big seeds add no shapes, and minimising an input of tens of KB
		// stalls the fuzzer for seconds.
		if len(tc.b) <= 4096 {
			f.Add(tc.b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeBoth(t, b)
	})
}

// BenchmarkDecodeRequest compares protobuf-go (proto.Unmarshal of a []byte,
// and the standard gRPC codec on a BufferSlice, which is what the server
// used before) with the server codec, on the load test's messages.
func BenchmarkDecodeRequest(b *testing.B) {
	for _, bc := range []struct {
		name string
		m    *extprocv3.ProcessingRequest
	}{
		{"headers21", decHeadersReq(false, false, decLoadHeaders())},
		{"body2KB", decBodyReq(decChatBody, true)},
		{"respHeaders6", decHeadersReq(true, false, decRespHeaders())},
		{"envoyFirst21", decEnvoyFirst(b)},
	} {
		raw := decMarshal(b, bc.m)
		data := mem.BufferSlice{mem.SliceBuffer(raw)}
		b.Run(bc.name+"/proto", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := proto.Unmarshal(raw, new(extprocv3.ProcessingRequest)); err != nil {
					b.Fatal(err)
				}
			}
		})
		std := encoding.GetCodecV2(grpcproto.Name)
		b.Run(bc.name+"/stdcodec", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := std.Unmarshal(data, new(extprocv3.ProcessingRequest)); err != nil {
					b.Fatal(err)
				}
			}
		})
		c := newCodec()
		b.Run(bc.name+"/codec", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req := new(extprocv3.ProcessingRequest)
				if err := c.Unmarshal(data, req); err != nil {
					b.Fatal(err)
				}
				releaseRequest(req) // as Server.Process does once the answer is sent
			}
		})
	}
}
