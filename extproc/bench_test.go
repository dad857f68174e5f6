package extproc

import (
	"context"
	"strings"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"go.uber.org/zap"
)

// chatBody2KB is a realistic ~2 KB multi-turn chat request.
var chatBody2KB = func() string {
	turns := []string{
		`{"role":"system","content":"You are a helpful assistant for an online bookshop. Answer briefly and cite the catalogue section when you can."}`,
		`{"role":"user","content":"I am looking for a gift for my father, who likes naval history and long biographies. He has already read most of the well-known books about the Napoleonic wars."}`,
		`{"role":"assistant","content":"Two options from the History > Maritime section: a recent biography of a nineteenth-century shipbuilder, and a social history of life aboard merchant ships between 1850 and 1900. Both are hardcover and in stock."}`,
		`{"role":"user","content":"The second sounds good. Can you tell me how long it is, whether there is an illustrated edition, and if you can gift-wrap it and ship it to a different address than mine? Also, what is your return policy if he already owns it?"}`,
	}
	b := `{"model":"auto","temperature":0.3,"max_tokens":400,"messages":[` + strings.Join(turns, ",")
	for len(b) < 1900 {
		b += `,{"role":"user","content":"Please also suggest a short note I could write on the card; he is retiring this year after forty years as an engineer."}`
	}
	return b + `]}`
}()

// BenchmarkRouterRequest measures one whole router-role request in process:
// request headers, a 2 KB BUFFERED body through the full pipeline (parse,
// signals, shipped policies), and response headers.
//
// "repeat" sends the same body every time (intent and policy decision come
// from their caches, as for a hot prompt); "unique" changes a number inside
// the prompt on every request, so the classifier runs every time (the policy
// decision cache still hits: the decision depends on nothing that changed).
func BenchmarkRouterRequest(b *testing.B) {
	for _, mode := range []string{"repeat", "unique"} {
		b.Run(mode, func(b *testing.B) {
			s := New(testRouter(b, nil), zap.NewNop(), nil)
			body := reqBody(chatBody2KB)
			reqs := []*extprocv3.ProcessingRequest{chatHeaders(), body, respHeaders("200")}
			fs := newFakeStream(context.Background(), reqs...)
			fs.kindsOnly = true
			raw := []byte(chatBody2KB)
			at := strings.LastIndex(chatBody2KB, "forty years")
			b.SetBytes(int64(len(chatBody2KB)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if mode == "unique" {
					// Rewrite "forty" as a 5-digit counter in place: same length.
					n := i % 100000
					for j := 4; j >= 0; j-- {
						raw[at+j] = byte('0' + n%10)
						n /= 10
					}
					body.GetRequestBody().Body = raw
				}
				fs.reset()
				if err := s.Process(fs); err != nil {
					b.Fatal(err)
				}
				if len(fs.kinds) != 3 || fs.kinds[1] != "request_body" {
					b.Fatalf("unexpected responses: %v", fs.kinds)
				}
			}
		})
	}
}
