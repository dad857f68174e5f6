package main

import (
	"context"
	"net"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filterprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/switchyard-llm/switchyard/extproc"
	"github.com/switchyard-llm/switchyard/internal/config"
	"github.com/switchyard-llm/switchyard/internal/route"
	"github.com/switchyard-llm/switchyard/internal/telemetry"
)

// wantAnswer is what the standard codec gives for b without its
// dynamic_metadata.
func wantAnswer(t testing.TB, b []byte) (*extprocv3.ProcessingResponse, error) {
	t.Helper()
	stripped, err := withoutField(b, dynamicMetadataField)
	if err != nil {
		return nil, err
	}
	var m extprocv3.ProcessingResponse
	if err := proto.Unmarshal(stripped, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

func opt(k, raw string, action corev3.HeaderValueOption_HeaderAppendAction) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, RawValue: []byte(raw)}, AppendAction: action}
}

func mustStruct(t testing.TB) *structpb.Struct {
	s, err := structpb.NewStruct(map[string]any{"switchyard": map[string]any{"target": "fast", "n": 2.5}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// answerCases are answers of the shapes the fast path takes (fast true)
// and of shapes it leaves to proto.Unmarshal.
func answerCases(t testing.TB) []struct {
	name string
	m    *extprocv3.ProcessingResponse
	fast bool
} {
	routed := &extprocv3.ProcessingResponse{
		Response: &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{Response: &extprocv3.CommonResponse{
			Status: extprocv3.CommonResponse_CONTINUE_AND_REPLACE,
			HeaderMutation: &extprocv3.HeaderMutation{
				SetHeaders: []*corev3.HeaderValueOption{
					opt(targetHeader, "reasoning", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
					opt("x-switchyard-decision", "d-1", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
					opt("content-length", "2048", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
					{Header: &corev3.HeaderValue{Key: "x-empty"}, KeepEmptyValue: true},
				},
				RemoveHeaders: []string{"x-switchyard-spoof", "content-encoding"},
			},
			BodyMutation:    &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: []byte(`{"model":"large-a"}`)}},
			ClearRouteCache: true,
		}}},
		DynamicMetadata: mustStruct(t),
	}
	return []struct {
		name string
		m    *extprocv3.ProcessingResponse
		fast bool
	}{
		{"routed body answer", routed, true},
		{"empty request headers answer", &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{}}}, true},
		{"response headers with metadata", &extprocv3.ProcessingResponse{
			Response:        &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{Response: &extprocv3.CommonResponse{}}},
			DynamicMetadata: mustStruct(t)}, true},
		{"clear body", &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{Response: &extprocv3.CommonResponse{
			BodyMutation: &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_ClearBody{ClearBody: true}}}}}}, true},
		{"empty body mutation body", &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{Response: &extprocv3.CommonResponse{
			BodyMutation: &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{}}}}}}, true},
		{"header with value", &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{Response: &extprocv3.CommonResponse{
			HeaderMutation: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: targetHeader, Value: "fast"}}}}}}}}, true},
		{"empty answer", &extprocv3.ProcessingResponse{}, true},
		// Left to proto.Unmarshal.
		{"immediate response", &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{ImmediateResponse: &extprocv3.ImmediateResponse{
			Status: &typev3.HttpStatus{Code: typev3.StatusCode_Forbidden}, Body: []byte("no"), Details: "d"}}}, false},
		{"response body", &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{}}}, false},
		{"mode override", &extprocv3.ProcessingResponse{
			Response:     &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{}},
			ModeOverride: &filterprocv3.ProcessingMode{ResponseBodyMode: filterprocv3.ProcessingMode_NONE, ResponseTrailerMode: filterprocv3.ProcessingMode_SKIP, RequestBodyMode: filterprocv3.ProcessingMode_BUFFERED}}, true},
		{"status beyond the defined values", &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{Response: &extprocv3.CommonResponse{
			Status: 7}}}}, true},
		{"message timeout override", &extprocv3.ProcessingResponse{
			Response:               &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{}},
			OverrideMessageTimeout: durationpb.New(5e9)}, false},
		{"deprecated append", &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{Response: &extprocv3.CommonResponse{
			HeaderMutation: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "a"}, Append: wrapperspb.Bool(true)}}}}}}}, false},
		{"trailers", &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{Response: &extprocv3.CommonResponse{
			Trailers: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{{Key: "t", Value: "v"}}}}}}}, false},
	}
}

func TestDecodeAnswerMatchesProtoUnmarshal(t *testing.T) {
	for _, tc := range answerCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			b, err := proto.Marshal(tc.m)
			if err != nil {
				t.Fatal(err)
			}
			want, err := wantAnswer(t, b)
			if err != nil {
				t.Fatal(err)
			}
			var got extprocv3.ProcessingResponse
			fast := decodeAnswer(append([]byte(nil), b...), &got)
			if fast != tc.fast {
				t.Fatalf("fast path %v, want %v", fast, tc.fast)
			}
			if fast && !proto.Equal(&got, want) {
				t.Fatalf("fast path gave %v, want %v", &got, want)
			}
			// Through the codec, fast path or not, the answer is the same.
			var viaCodec extprocv3.ProcessingResponse
			if err := newClientCodec().Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, &viaCodec); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(&viaCodec, want) {
				t.Fatalf("codec gave %v, want %v", &viaCodec, want)
			}
		})
	}
}

// Wire shapes protobuf-go accepts with rules of its own, built by hand:
// each must leave the fast path, so the codec's answer stays the standard
// one (or its error).
func TestDecodeAnswerLeavesUnusualWireToProto(t *testing.T) {
	tag := func(b []byte, num protowire.Number, typ protowire.Type) []byte {
		return protowire.AppendTag(b, num, typ)
	}
	msg := func(b []byte, num protowire.Number, payload []byte) []byte {
		return protowire.AppendBytes(tag(b, num, protowire.BytesType), payload)
	}
	hv := msg(nil, hvKey, []byte("k"))
	option := msg(nil, optHeader, hv)
	mutation := msg(nil, mutSetHeaders, option)
	common := msg(nil, commonHeaderMutation, mutation)
	part := msg(nil, partResponse, common)
	cases := map[string][]byte{
		// protobuf-go merges a repeated singular message and replaces a
		// oneof member.
		"two request_headers":      append(msg(nil, respRequestHeaders, part), msg(nil, respRequestHeaders, part)...),
		"two oneof members":        append(msg(nil, respRequestHeaders, part), msg(nil, respRequestBody, part)...),
		"two common responses":     msg(nil, respRequestHeaders, append(part, part...)),
		"two header mutations":     msg(nil, respRequestHeaders, msg(nil, partResponse, append(common, common...))),
		"two headers in an option": msg(nil, respRequestHeaders, msg(nil, partResponse, msg(nil, commonHeaderMutation, msg(nil, mutSetHeaders, append(option, option...))))),
		// An unknown field and a known one with the wrong wire type are
		// unknown fields to protobuf-go.
		"unknown field":         msg(msg(nil, respRequestHeaders, part), 99, []byte("x")),
		"status as bytes":       msg(nil, respRequestHeaders, msg(nil, partResponse, msg(nil, commonStatus, nil))),
		"two mode overrides":    append(msg(nil, respModeOverride, nil), msg(nil, respModeOverride, nil)...),
		"negative mode":         msg(nil, respModeOverride, protowire.AppendVarint(tag(nil, 3, protowire.VarintType), uint64(1<<64-1))),
		"mode field 7":          msg(nil, respModeOverride, protowire.AppendVarint(tag(nil, 7, protowire.VarintType), 1)),
		"negative status":       msg(nil, respRequestHeaders, msg(nil, partResponse, protowire.AppendVarint(tag(nil, commonStatus, protowire.VarintType), uint64(1<<64-1)))),
		"fixed32 field":         protowire.AppendFixed32(tag(nil, respRequestHeaders, protowire.Fixed32Type), 1),
		"invalid UTF-8 key":     msg(nil, respRequestHeaders, msg(nil, partResponse, msg(nil, commonHeaderMutation, msg(nil, mutSetHeaders, msg(nil, optHeader, msg(nil, hvKey, []byte{0xff})))))),
		"invalid UTF-8 removal": msg(nil, respRequestHeaders, msg(nil, partResponse, msg(nil, commonHeaderMutation, msg(nil, mutRemoveHeaders, []byte{0xc3})))),
		"truncated":             msg(nil, respRequestHeaders, part)[:5],
		"metadata as varint":    protowire.AppendVarint(tag(nil, dynamicMetadataField, protowire.VarintType), 1),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			var got extprocv3.ProcessingResponse
			if decodeAnswer(append([]byte(nil), b...), &got) {
				t.Fatalf("fast path took %x: %v", b, &got)
			}
			want, wantErr := wantAnswer(t, b)
			var viaCodec extprocv3.ProcessingResponse
			err := newClientCodec().Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, &viaCodec)
			if (err != nil) != (wantErr != nil) {
				t.Fatalf("codec error %v, standard codec error %v", err, wantErr)
			}
			if err == nil && !proto.Equal(&viaCodec, want) {
				t.Fatalf("codec gave %v, want %v", &viaCodec, want)
			}
		})
	}
}

func FuzzDecodeAnswer(f *testing.F) {
	for _, tc := range answerCases(f) {
		b, err := proto.Marshal(tc.m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var got extprocv3.ProcessingResponse
		if !decodeAnswer(append([]byte(nil), b...), &got) {
			return
		}
		want, err := wantAnswer(t, b)
		if err != nil {
			t.Fatalf("fast path accepted %x, proto.Unmarshal: %v", b, err)
		}
		if !proto.Equal(&got, want) {
			t.Fatalf("%x: fast path gave %v, want %v", b, &got, want)
		}
	})
}

// recordingCodec keeps the wire bytes of every answer it decodes.
type recordingCodec struct {
	clientCodec
	answers *[][]byte
}

func (c recordingCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*c.answers = append(*c.answers, data.Materialize())
	return c.clientCodec.Unmarshal(data, v)
}

// The answers Switchyard itself sends (the real router on the embedded
// default config) to the load tool's corpus all take the fast path, and
// decode to what the standard codec gives.
func TestSwitchyardAnswersTakeTheFastPath(t *testing.T) {
	cfg, err := config.Load("")
	if err != nil {
		t.Fatal(err)
	}
	snap, err := config.Compile(cfg, "test")
	if err != nil {
		t.Fatal(err)
	}
	rt, err := route.Build(context.Background(), snap, zap.NewNop(), telemetry.NewMetrics())
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	gs, err := extproc.NewGRPCServer(extproc.New(rt, zap.NewNop(), telemetry.NewMetrics()), cfg.Server)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gs.Serve(lis) }()
	defer gs.Stop()

	var answers [][]byte
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(recordingCodec{clientCodec: newClientCodec().(clientCodec), answers: &answers})))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	c, err := newCorpus(1, []int{1024, 2048, 8192}, 16, 0.5, "auto", 1)
	if err != nil {
		t.Fatal(err)
	}
	hs := newHeaderSet()
	client := extprocv3.NewExternalProcessorClient(cc)
	const n = 48
	for i := range uint64(n) {
		body, tmpl := c.body(nil, i)
		reqH, reqB, respH := hs.messages(i, body, tmpl)
		stream, err := client.Process(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range []*extprocv3.ProcessingRequest{reqH, reqB, respH} {
			if err := stream.Send(m); err != nil {
				t.Fatal(err)
			}
			if _, err := stream.Recv(); err != nil {
				t.Fatal(err)
			}
		}
		_ = stream.CloseSend()
	}
	if len(answers) != 3*n {
		t.Fatalf("%d answers recorded, want %d", len(answers), 3*n)
	}
	var routed, withMeta int
	for i, b := range answers {
		var got extprocv3.ProcessingResponse
		if !decodeAnswer(append([]byte(nil), b...), &got) {
			t.Fatalf("answer %d left the fast path: %x", i, b)
		}
		want, err := wantAnswer(t, b)
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(&got, want) {
			t.Fatalf("answer %d: fast path gave %v, want %v", i, &got, want)
		}
		if got.GetRequestBody().GetResponse().GetClearRouteCache() {
			routed++
		}
		if len(want.ProtoReflect().GetUnknown()) == 0 && len(b) > proto.Size(want) {
			withMeta++ // the difference is the skipped dynamic_metadata
		}
	}
	// Every request was routed, and metadata was skipped, not absent.
	if routed != n || withMeta == 0 {
		t.Errorf("routed %d of %d, %d answers with metadata", routed, n, withMeta)
	}
}
