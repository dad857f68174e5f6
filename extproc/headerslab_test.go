package extproc

import (
	"fmt"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// headersMsg is a request headers message with n headers; with value set,
// each header also carries the deprecated value field.
func headersMsg(prefix string, n int, value bool) *extprocv3.ProcessingRequest {
	hs := make([]*corev3.HeaderValue, n)
	for i := range hs {
		hs[i] = &corev3.HeaderValue{Key: fmt.Sprintf("%s-%d", prefix, i), RawValue: []byte(fmt.Sprintf("%s value %d", prefix, i))}
		if value {
			hs[i].Value = "v-" + prefix
		}
	}
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{
		RequestHeaders: &extprocv3.HttpHeaders{Headers: &corev3.HeaderMap{Headers: hs}}}}
}

func wireDecode(t *testing.T, m *extprocv3.ProcessingRequest) *extprocv3.ProcessingRequest {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	got := new(extprocv3.ProcessingRequest)
	if err := newCodec().Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, got); err != nil {
		t.Fatal(err)
	}
	return got
}

// Decoding, releasing and decoding again (the pool hands the slab back
// most of the time) gives exactly the message each time: nothing of a
// larger or richer earlier message shows through.
func TestHeaderSlabsCarryNothingOver(t *testing.T) {
	msgs := []*extprocv3.ProcessingRequest{
		headersMsg("big", slabHeaders, true), headersMsg("small", 3, false),
		headersMsg("one", 1, true), headersMsg("over", slabHeaders+1, false), headersMsg("mid", 12, false),
	}
	for round := range 50 {
		for _, want := range msgs {
			got := wireDecode(t, want)
			if !proto.Equal(got, want) {
				t.Fatalf("round %d: decoded %v\nwant %v", round, got, want)
			}
			hm := got.GetRequestHeaders().GetHeaders()
			s := slabOf(hm.Headers)
			if (s != nil) != (len(hm.Headers) <= slabHeaders) {
				t.Fatalf("%d headers: in a slab %v, want %v", len(hm.Headers), s != nil, len(hm.Headers) <= slabHeaders)
			}
			releaseRequest(got)
			if s == nil {
				continue
			}
			if hm.Headers != nil {
				t.Fatal("released message still reaches its slab")
			}
			for k := range s.vals {
				if v := &s.vals[k]; v.Key != "" || v.Value != "" || v.RawValue != nil {
					t.Fatalf("released slab keeps header %d: %v", k, v)
				}
			}
		}
	}
}

// Only a slab's own slice is taken for one: not a slice of the same
// capacity built elsewhere, and not a sub-slice that starts later.
func TestSlabOfRecognisesOnlySlabs(t *testing.T) {
	other := make([]*corev3.HeaderValue, 2, slabHeaders)
	other[0], other[1] = &corev3.HeaderValue{Key: "a"}, &corev3.HeaderValue{Key: "b"}
	if slabOf(other) != nil {
		t.Error("a plain slice of capacity slabHeaders was taken for a slab")
	}
	s := headerSlabs.Get().(*headerSlab)
	if slabOf(s.ptrs[:3]) != s {
		t.Error("a slab's own slice was not recognised")
	}
	if slabOf(s.ptrs[1:4]) != nil {
		t.Error("a sub-slice was taken for a slab")
	}
	if slabOf(nil) != nil {
		t.Error("nil was taken for a slab")
	}
	// A message built in memory (not decoded) is left alone.
	m := headersMsg("x", 2, false)
	releaseRequest(m)
	if len(m.GetRequestHeaders().GetHeaders().GetHeaders()) != 2 {
		t.Error("releaseRequest emptied a message that was not decoded into a slab")
	}
}

func BenchmarkDecodeRelease(b *testing.B) {
	raw, err := proto.Marshal(headersMsg("h", 18, false))
	if err != nil {
		b.Fatal(err)
	}
	c := newCodec()
	b.ReportAllocs()
	for b.Loop() {
		req := new(extprocv3.ProcessingRequest)
		if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(raw)}, req); err != nil {
			b.Fatal(err)
		}
		releaseRequest(req)
	}
}
