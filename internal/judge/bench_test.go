package judge

import (
	"encoding/json"
	"strings"
	"testing"
)

// answer2KB is a plain-prose answer of about 2 KB.
var answer2KB = strings.Repeat("To rotate the signing key, publish the new public key first, wait one cache lifetime, then switch the signer. ", 19)

// jsonAnswer2KB is a structured answer of about 2 KB matching benchSchema.
var jsonAnswer2KB = func() string {
	type item struct {
		SKU   string  `json:"sku"`
		Qty   int     `json:"qty"`
		Price float64 `json:"price"`
		Note  string  `json:"note"`
	}
	v := struct {
		Customer string `json:"customer"`
		Items    []item `json:"items"`
	}{Customer: "Harbour Supplies"}
	for i := 0; i < 24; i++ {
		v.Items = append(v.Items, item{SKU: "BX-1042", Qty: i + 1, Price: 12.5, Note: "deliver to dock 3"})
	}
	b, _ := json.Marshal(v)
	return string(b)
}()

const benchSchema = `{"type":"object","required":["customer","items"],"additionalProperties":false,"properties":{
"customer":{"type":"string"},"items":{"type":"array","items":{"type":"object","required":["sku","qty","price","note"],
"additionalProperties":false,"properties":{"sku":{"type":"string","pattern":"^[A-Z]{2}-[0-9]+$"},"qty":{"type":"integer","minimum":1},
"price":{"type":"number"},"note":{"type":"string"}}}}}}`

func BenchmarkJudge(b *testing.B) {
	j := mustJudge(b, allOn(-2))
	lps := make([]float64, 400)
	for i := range lps {
		lps[i] = -0.05 * float64(i%7)
	}
	b.Run("prose-2KB", func(b *testing.B) {
		body := chatText(b, answer2KB)
		benchJudge(b, j, Request{}, body)
	})
	b.Run("prose-2KB-400-logprobs", func(b *testing.B) {
		body := chatLogprobs(b, answer2KB, lps...)
		benchJudge(b, j, Request{Logprobs: true}, body)
	})
	b.Run("json-2KB", func(b *testing.B) {
		benchJudge(b, j, Request{WantJSON: true}, chatText(b, jsonAnswer2KB))
	})
	b.Run("json-schema-2KB", func(b *testing.B) {
		benchJudge(b, j, Request{WantJSON: true, Schema: []byte(benchSchema)}, chatText(b, jsonAnswer2KB))
	})
	b.Run("refusal", func(b *testing.B) {
		benchJudge(b, j, Request{}, chatText(b, "I'm sorry, but I can't help with that request."))
	})
}

func benchJudge(b *testing.B, j *Judge, req Request, body []byte) {
	if v := j.Judge(req, 200, body); v.Detail != "" && v.OK {
		b.Fatalf("benchmark body not judged: %+v", v)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j.Judge(req, 200, body)
	}
}

func BenchmarkSchemaCompile(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if e := compileSchema([]byte(benchSchema)); e.sch == nil {
			b.Fatal(e.err)
		}
	}
}

func BenchmarkRequestFromBody(b *testing.B) {
	body := []byte(`{"model":"auto","messages":[{"role":"system","content":"Extract the order as JSON."},{"role":"user","content":"` +
		strings.Repeat("Two boxes of BX-1042 to dock 3. ", 60) + `"}],"response_format":{"type":"json_schema","json_schema":{"name":"order","strict":true,"schema":` +
		benchSchema + `}},"logprobs":true}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		RequestFromBody(body)
	}
}
