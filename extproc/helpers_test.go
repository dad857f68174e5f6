package extproc

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-llm/switchyard/internal/config"
	"github.com/switchyard-llm/switchyard/internal/route"
	"github.com/switchyard-llm/switchyard/internal/telemetry"
)

// fakeStream is an in-memory ExternalProcessor_ProcessServer: Recv returns
// the scripted requests then io.EOF (Envoy's graceful close), Send records.
type fakeStream struct {
	grpc.ServerStream
	ctx  context.Context
	reqs []*extprocv3.ProcessingRequest
	i    int
	mu   sync.Mutex
	sent []*extprocv3.ProcessingResponse

	kindsOnly bool
	kinds     []string
	codec     encoding.CodecV2
	// wire: Recv hands out what the server's codec decodes from each
	// scripted message's bytes, as gRPC does, instead of the message.
	wire bool
}

func newFakeStream(ctx context.Context, reqs ...*extprocv3.ProcessingRequest) *fakeStream {
	return &fakeStream{ctx: ctx, reqs: reqs, codec: newCodec()}
}

func (f *fakeStream) Context() context.Context     { return f.ctx }
func (f *fakeStream) SetHeader(metadata.MD) error  { return nil }
func (f *fakeStream) SendHeader(metadata.MD) error { return nil }
func (f *fakeStream) SetTrailer(metadata.MD)       {}

func (f *fakeStream) Recv() (*extprocv3.ProcessingRequest, error) {
	if err := f.ctx.Err(); err != nil {
		return nil, err
	}
	if f.i >= len(f.reqs) {
		return nil, io.EOF
	}
	r := f.reqs[f.i]
	f.i++
	if f.wire {
		// As gRPC does: the server's codec decodes the bytes into a new
		// message (header maps in pooled slabs, which Process returns).
		b, err := proto.Marshal(r)
		if err != nil {
			return r, nil // not encodable (a test's invalid message): as is
		}
		got := new(extprocv3.ProcessingRequest)
		if err := f.codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, got); err != nil {
			return nil, err
		}
		return got, nil
	}
	return r, nil
}

// Send serialises r with the server's codec, as gRPC does inside Send
// (the server reuses its answer messages once Send has returned, slab.go),
// and records what a client decodes from those bytes: dynamic metadata
// written as wire bytes (metadata.go) reads back as DynamicMetadata, as it
// does in Envoy. With kindsOnly (benchmarks) the answer is still
// serialised, which is server work, but only its oneof kind is kept.
func (f *fakeStream) Send(r *extprocv3.ProcessingResponse) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	bs, err := f.codec.Marshal(r)
	if err != nil {
		return err
	}
	defer bs.Free()
	if f.kindsOnly {
		f.kinds = append(f.kinds, responseKind(r))
		return nil
	}
	got := new(extprocv3.ProcessingResponse)
	if err := proto.Unmarshal(bs.Materialize(), got); err != nil {
		return fmt.Errorf("fakeStream: answer does not decode: %w", err)
	}
	f.sent = append(f.sent, got)
	return nil
}

// responseKind names the oneof of r without allocating.
func responseKind(r *extprocv3.ProcessingResponse) string {
	switch r.Response.(type) {
	case *extprocv3.ProcessingResponse_RequestHeaders:
		return "request_headers"
	case *extprocv3.ProcessingResponse_RequestBody:
		return "request_body"
	case *extprocv3.ProcessingResponse_ResponseHeaders:
		return "response_headers"
	case *extprocv3.ProcessingResponse_ResponseBody:
		return "response_body"
	case *extprocv3.ProcessingResponse_ImmediateResponse:
		return "immediate_response"
	default:
		return "other"
	}
}

// reset rewinds the stream for reuse in benchmarks.
func (f *fakeStream) reset() { f.i = 0; f.sent = f.sent[:0]; f.kinds = f.kinds[:0] }

// Envoy-shaped messages (envoy-ext-proc.md §1.2: lower-case keys, pseudo
// headers included, values in raw_value).
func reqHeaders(eos bool, kv ...string) *extprocv3.ProcessingRequest {
	hs := make([]*corev3.HeaderValue, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		hs = append(hs, &corev3.HeaderValue{Key: kv[i], RawValue: []byte(kv[i+1])})
	}
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{
		RequestHeaders: &extprocv3.HttpHeaders{Headers: &corev3.HeaderMap{Headers: hs}, EndOfStream: eos}}}
}

func chatHeaders(extra ...string) *extprocv3.ProcessingRequest {
	kv := append([]string{":method", "POST", ":path", "/v1/chat/completions", ":authority", "llm.example",
		":scheme", "https", "content-type", "application/json"}, extra...)
	return reqHeaders(false, kv...)
}

func reqBody(body string) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{
		RequestBody: &extprocv3.HttpBody{Body: []byte(body), EndOfStream: true}}}
}

func respHeaders(status string) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{
		ResponseHeaders: &extprocv3.HttpHeaders{Headers: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
			{Key: ":status", RawValue: []byte(status)}, {Key: "content-type", RawValue: []byte("application/json")}}}}}}
}

// testRouter builds the real pipeline (signals, shipped policies) from the
// embedded default config, edited by mutate.
func testRouter(t testing.TB, mutate func(*config.Config)) *route.Router {
	t.Helper()
	cfg, err := config.Load("")
	if err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		mutate(cfg)
	}
	snap, err := config.Compile(cfg, "test")
	if err != nil {
		t.Fatal(err)
	}
	rt, err := route.Build(context.Background(), snap, zap.NewNop(), telemetry.NewMetrics())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Close)
	return rt
}

// run processes one scripted stream and returns what was sent.
func run(t testing.TB, s *Server, reqs ...*extprocv3.ProcessingRequest) []*extprocv3.ProcessingResponse {
	t.Helper()
	fs := newFakeStream(context.Background(), reqs...)
	fs.wire = true
	if err := s.Process(fs); err != nil {
		t.Fatalf("Process: %v", err)
	}
	return fs.sent
}

// setHeaders returns the header mutation's sets as a map, failing the test
// if any set uses value instead of raw_value (Envoy would write an empty
// header, §2) or sets append.
func setHeaders(t testing.TB, m *extprocv3.HeaderMutation) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, h := range m.GetSetHeaders() {
		if h.GetHeader().GetValue() != "" {
			t.Errorf("header %s set via value, not raw_value", h.GetHeader().GetKey())
		}
		if h.GetAppend().GetValue() {
			t.Errorf("header %s appended instead of overwritten", h.GetHeader().GetKey())
		}
		out[h.GetHeader().GetKey()] = string(h.GetHeader().GetRawValue())
	}
	return out
}
