package extproc

import (
	"bytes"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filterprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
)

// codecCases are the answers Switchyard sends, as the real pipeline builds
// them, plus hand-built ones covering the remaining oneofs.
func codecCases(t *testing.T) []*extprocv3.ProcessingResponse {
	s := New(testRouter(t, nil), zap.NewNop(), nil)
	out := run(t, s, chatHeaders("authorization", "Bearer sk-test"), reqBody(hiBody), respHeaders("200"))
	out = append(out, run(t, s, chatHeaders(), reqBody(`{"model":`))...) // immediate 400
	md, err := structpb.NewStruct(map[string]any{"switchyard": map[string]any{
		"target": "fast", "cost": 0.25, "escalated": false, "tags": []any{"a", "b"}, "none": nil}})
	if err != nil {
		t.Fatal(err)
	}
	out = append(out,
		&extprocv3.ProcessingResponse{
			Response: &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{
				Response: &extprocv3.CommonResponse{
					Status:       extprocv3.CommonResponse_CONTINUE_AND_REPLACE,
					BodyMutation: &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: []byte(`{"ok":true}`)}},
					HeaderMutation: &extprocv3.HeaderMutation{
						SetHeaders:    []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "x-a", RawValue: []byte("1")}, AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD}},
						RemoveHeaders: []string{"content-length", "x-b"},
					},
				}}},
			DynamicMetadata: md,
			ModeOverride:    &filterprocv3.ProcessingMode{ResponseBodyMode: filterprocv3.ProcessingMode_STREAMED, ResponseHeaderMode: filterprocv3.ProcessingMode_SKIP},
		},
		&extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{ImmediateResponse: &extprocv3.ImmediateResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode_TooManyRequests},
			Body:    []byte(strings.Repeat("x", 3000)), // above the pooling threshold
			Details: "switchyard_rate",
		}}},
		&extprocv3.ProcessingResponse{
			Response:               &extprocv3.ProcessingResponse_RequestTrailers{RequestTrailers: &extprocv3.TrailersResponse{}},
			OverrideMessageTimeout: durationpb.New(1500_000_000),
		},
	)
	return out
}

func TestCodecMatchesProto(t *testing.T) {
	c := newCodec()
	std := encoding.GetCodecV2(grpcproto.Name)
	for i, m := range codecCases(t) {
		got, err := c.Marshal(m)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		b := got.Materialize()
		got.Free()
		back := &extprocv3.ProcessingResponse{}
		if err := proto.Unmarshal(b, back); err != nil {
			t.Fatalf("case %d: standard unmarshal of codec output: %v", i, err)
		}
		if !proto.Equal(back, m) {
			t.Errorf("case %d: round trip differs:\n got %v\nwant %v", i, back, m)
		}
		// Same encoding up to field order (protobuf-go writes oneofs last,
		// vtprotobuf in field-number order; parsers accept both).
		want, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != len(want) {
			t.Errorf("case %d: %d bytes, proto.Marshal gives %d", i, len(b), len(want))
		}
		// And the codec reads what it (and the standard codec) wrote.
		stdOut, err := std.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var viaCodec extprocv3.ProcessingResponse
		if err := c.Unmarshal(stdOut, &viaCodec); err != nil || !proto.Equal(&viaCodec, m) {
			t.Errorf("case %d: codec unmarshal: %v", i, err)
		}
		stdOut.Free()
	}
}

// The codec is only faster when built with -tags vtprotobuf (the Makefile
// sets it); the answer types must then take the fast path.
func TestCodecUsesVTProto(t *testing.T) {
	_, ok := any(&extprocv3.ProcessingResponse{}).(vtMarshaler)
	if ok != vtprotobufBuild {
		t.Errorf("ProcessingResponse vtproto marshaler = %v, build tag vtprotobuf = %v", ok, vtprotobufBuild)
	}
}

// Messages without vtprotobuf code (the health service's) use the standard
// codec.
func TestCodecFallsBack(t *testing.T) {
	m := &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}
	if _, ok := any(m).(vtMarshaler); ok {
		t.Skip("health messages gained vtprotobuf code; the fallback is untested here")
	}
	got, err := newCodec().Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Free()
	want, _ := proto.Marshal(m)
	if !bytes.Equal(got.Materialize(), want) {
		t.Errorf("fallback bytes %x, want %x", got.Materialize(), want)
	}
	if _, err := newCodec().Marshal("not a message"); err == nil {
		t.Error("marshal of a non-message succeeded")
	}
	if newCodec().Name() != "proto" {
		t.Errorf("name %q, want proto (content-subtype must not change)", newCodec().Name())
	}
}

// BenchmarkCodecMarshal compares the codec with the standard one on the
// body answer of a routed request (header mutation + dynamic metadata).
func BenchmarkCodecMarshal(b *testing.B) {
	s := New(testRouter(b, nil), zap.NewNop(), nil)
	sent := run(b, s, chatHeaders(), reqBody(hiBody), respHeaders("200"))
	m := sent[1]
	for _, bc := range []struct {
		name string
		c    encoding.CodecV2
	}{{"vtproto", newCodec()}, {"standard", encoding.GetCodecV2(grpcproto.Name)}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				out, err := bc.c.Marshal(m)
				if err != nil {
					b.Fatal(err)
				}
				out.Free()
			}
		})
	}
}
