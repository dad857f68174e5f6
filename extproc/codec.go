package extproc

import (
	"fmt"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
)

// vtMarshaler is implemented by the go-control-plane messages generated
// with vtprotobuf (ProcessingResponse among them): a size pass and a
// reflection-free marshal into a caller-owned buffer.
type vtMarshaler interface {
	SizeVT() int
	MarshalToSizedBufferVTStrict(dAtA []byte) (int, error)
}

// codec is the server's gRPC codec. It marshals messages that have
// vtprotobuf code without protobuf reflection, into pooled buffers, and
// leaves everything else to the standard proto codec. The bytes are the
// same: the generated code writes fields in field-number order as
// proto.Marshal does (codec_test.go checks it). go-control-plane ships no
// UnmarshalVT: Unmarshal has its own decoder for ProcessingRequest.
//
// Why: with a dynamic-metadata Struct and a header mutation in most
// answers, reflection-based Size+Marshal was 6% of the server's CPU under
// load (profile of `go run ./test/load -compare`), the largest gRPC item
// after syscalls.
type codec struct {
	fallback encoding.CodecV2
}

func newCodec() encoding.CodecV2 {
	return codec{fallback: encoding.GetCodecV2(grpcproto.Name)}
}

// Name is "proto": the content-subtype on the wire does not change.
func (codec) Name() string { return grpcproto.Name }

// smallAnswer is gRPC's smallest buffer-pool tier (grpc/internal/mem).
const smallAnswer = 256

func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(vtMarshaler)
	if !ok {
		return c.fallback.Marshal(v)
	}
	// Answers above gRPC's smallest pool tier (256 bytes: the routed body
	// answer, ~500 bytes) are pooled even below its 1 KiB threshold: the
	// pool hands out a tier buffer large enough for mem.NewBuffer to pool,
	// and the transport returns it once written. Allocation sets how often
	// the collector runs. Smaller answers would get a 256-byte tier buffer
	// that mem.NewBuffer does not pool, so they are allocated to size.
	size := m.SizeVT()
	if size <= smallAnswer {
		buf := make([]byte, size)
		if _, err := m.MarshalToSizedBufferVTStrict(buf); err != nil {
			return nil, fmt.Errorf("marshal %T: %w", v, err)
		}
		return mem.BufferSlice{mem.SliceBuffer(buf)}, nil
	}
	pool := mem.DefaultBufferPool()
	buf := pool.Get(size)
	if _, err := m.MarshalToSizedBufferVTStrict((*buf)[:size]); err != nil {
		pool.Put(buf)
		return nil, fmt.Errorf("marshal %T: %w", v, err)
	}
	return mem.BufferSlice{mem.NewBuffer(buf, pool)}, nil
}

// Unmarshal decodes ext_proc ProcessingRequests, the only message the server
// receives, with the hand-written decoder of decode.go: one copy of data and
// a few allocations per message instead of three per header, and the exact
// result of the standard codec (it hands every shape it does not decode
// itself to proto.Unmarshal). Everything else goes to the standard codec.
func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	if req, ok := v.(*extprocv3.ProcessingRequest); ok && req != nil {
		return decodeRequest(data, req)
	}
	return c.fallback.Unmarshal(data, v)
}
