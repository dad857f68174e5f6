package main

import (
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

func TestClientCodecSkipsOnlyDynamicMetadata(t *testing.T) {
	md, err := structpb.NewStruct(map[string]any{"switchyard": map[string]any{"target": "fast", "n": 1.5}})
	if err != nil {
		t.Fatal(err)
	}
	body := &extprocv3.ProcessingResponse{
		Response: &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{
			Response: &extprocv3.CommonResponse{
				ClearRouteCache: true,
				HeaderMutation: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{
					{Header: &corev3.HeaderValue{Key: targetHeader, RawValue: []byte("fast")}}}},
			}}},
		DynamicMetadata: md,
	}
	plain := &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{
		ImmediateResponse: &extprocv3.ImmediateResponse{Body: []byte("no"), Details: "d"}}}
	c := newClientCodec()
	for i, m := range []*extprocv3.ProcessingResponse{body, plain} {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var got extprocv3.ProcessingResponse
		if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, &got); err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		want := proto.Clone(m).(*extprocv3.ProcessingResponse)
		want.DynamicMetadata = nil
		if !proto.Equal(&got, want) {
			t.Errorf("case %d: got %v, want %v", i, &got, want)
		}
	}
	// Metadata between other fields, twice: both copies go, the rest stays.
	head, _ := proto.Marshal(&extprocv3.ProcessingResponse{DynamicMetadata: md})
	mid, _ := proto.Marshal(plain)
	var got extprocv3.ProcessingResponse
	all := append(append(append([]byte{}, head...), mid...), head...)
	if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(all)}, &got); err != nil || !proto.Equal(&got, plain) {
		t.Errorf("interleaved: %v, %v", err, &got)
	}
	// Truncated input is an error, not a partial answer.
	b, _ := proto.Marshal(body)
	if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b[:len(b)-3])}, &got); err == nil {
		t.Error("truncated answer decoded without error")
	}
}
