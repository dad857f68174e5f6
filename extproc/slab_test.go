package extproc

import (
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-llm/switchyard/internal/route"
)

// normalized drops what differs between two runs of the same request: the
// decision id and the decision time.
func normalized(t *testing.T, in []*extprocv3.ProcessingResponse) []*extprocv3.ProcessingResponse {
	t.Helper()
	out := make([]*extprocv3.ProcessingResponse, len(in))
	for i, r := range in {
		r = proto.Clone(r).(*extprocv3.ProcessingResponse)
		var common *extprocv3.CommonResponse
		switch {
		case r.GetRequestHeaders() != nil:
			common = r.GetRequestHeaders().GetResponse()
		case r.GetRequestBody() != nil:
			common = r.GetRequestBody().GetResponse()
		case r.GetResponseHeaders() != nil:
			common = r.GetResponseHeaders().GetResponse()
		}
		for _, h := range common.GetHeaderMutation().GetSetHeaders() {
			if h.GetHeader().GetKey() == route.HeaderDecision {
				h.Header.RawValue = []byte("id")
			}
		}
		if ns := r.GetDynamicMetadata().GetFields()[MetadataNamespace].GetStructValue(); ns != nil {
			delete(ns.Fields, "decision_id")
			delete(ns.Fields, "decision_us")
		}
		out[i] = r
	}
	return out
}

// The router role's answers are built in pooled storage (slab.go). A
// request that needed more (removed spoofed headers, a tenant, a streamed
// body rewritten for usage) must leave nothing behind for the next one.
func TestPooledAnswersCarryNothingOver(t *testing.T) {
	s := New(testRouter(t, nil), zap.NewNop(), nil)
	plain := func() []*extprocv3.ProcessingResponse {
		return run(t, s, chatHeaders(), reqBody(hiBody), respHeaders("200"))
	}
	rich := func() []*extprocv3.ProcessingResponse {
		return run(t, s,
			chatHeaders("x-switchyard-target", "evil", "x-switchyard-tier", "gold", "x-tenant-id", "acme"),
			reqBody(`{"model":"auto","stream":true,"messages":[{"role":"user","content":"write a haiku about ships"}]}`),
			respHeaders("200"))
	}
	want := normalized(t, plain())
	if want[0].GetRequestHeaders().GetResponse() != nil {
		t.Fatalf("plain request headers answer carries a CommonResponse: %v", want[0])
	}
	// The rich request really does use the extra storage.
	r := rich()
	if got := r[0].GetRequestHeaders().GetResponse().GetHeaderMutation().GetRemoveHeaders(); len(got) != 2 {
		t.Fatalf("rich request: removed headers %q, want the two spoofed ones", got)
	}
	if r[1].GetRequestBody().GetResponse().GetBodyMutation() == nil {
		t.Fatalf("rich request: streamed body not rewritten for usage: %v", r[1])
	}
	// sync.Pool may hand out a fresh processor (always under -race, now and
	// then), so alternate often enough for reuse to happen.
	for i := 0; i < 40; i++ {
		rich()
		got := normalized(t, plain())
		if len(got) != len(want) {
			t.Fatalf("round %d: %d answers, want %d", i, len(got), len(want))
		}
		for j := range want {
			if !proto.Equal(got[j], want[j]) {
				t.Fatalf("round %d, answer %d differs after a pooled rich request:\n got %v\nwant %v", i, j, got[j], want[j])
			}
		}
	}
}

// cont must clear whatever the slot held before.
func TestAnswerSlotCont(t *testing.T) {
	var a answerSlot
	resp, common := a.cont(kindRequestBody, true)
	common.ClearRouteCache = true
	common.HeaderMutation.RemoveHeaders = []string{"x-a"}
	var mw metaWriter
	mw.str("k", "v")
	setDynamicMetadata(resp, mw.bytes())
	a.bodyMode().ResponseBodyMode = 2

	resp, common = a.cont(kindResponseHeaders, false)
	if common != nil || resp.GetResponseHeaders() == nil || resp.GetResponseHeaders().GetResponse() != nil || len(resp.ProtoReflect().GetUnknown()) != 0 {
		t.Fatalf("reused slot is not a plain response-headers CONTINUE: %v", resp)
	}
	resp, common = a.cont(kindRequestBody, true)
	if common.GetClearRouteCache() || len(common.GetHeaderMutation().GetRemoveHeaders()) != 0 || resp.GetRequestBody().GetResponse() != common {
		t.Fatalf("reused slot kept old mutations: %v", resp)
	}
	if a.bodyMode().GetResponseBodyMode() != 0 {
		t.Fatal("bodyMode not reset")
	}
}
