package extproc

import (
	"math"
	"strings"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// metaField is one field for both encoders.
type metaField struct {
	key  string
	kind byte // 's', 'n', 'b'
	s    string
	n    float64
	b    bool
}

// viaWriter encodes fields with metaWriter into an answer and decodes the
// answer's bytes as a client would.
func viaWriter(t testing.TB, w *metaWriter, fields []metaField) *extprocv3.ProcessingResponse {
	t.Helper()
	w.reset()
	for _, f := range fields {
		switch f.kind {
		case 's':
			w.str(f.key, f.s)
		case 'n':
			w.num(f.key, f.n)
		case 'b':
			w.boolean(f.key, f.b)
		}
	}
	resp := continueBody(true, nil)
	setDynamicMetadata(resp, w.bytes())
	bs, err := newCodec().Marshal(resp)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	defer bs.Free()
	got := new(extprocv3.ProcessingResponse)
	if err := proto.Unmarshal(bs.Materialize(), got); err != nil {
		t.Fatalf("the answer does not decode: %v", err)
	}
	return got
}

// viaStruct is the same answer built the ordinary way, with valid UTF-8.
func viaStruct(fields []metaField) *extprocv3.ProcessingResponse {
	m := map[string]*structpb.Value{}
	for _, f := range fields {
		switch f.kind {
		case 's':
			m[f.key] = structpb.NewStringValue(strings.ToValidUTF8(f.s, "\uFFFD"))
		case 'n':
			m[f.key] = structpb.NewNumberValue(f.n)
		case 'b':
			m[f.key] = structpb.NewBoolValue(f.b)
		}
	}
	resp := continueBody(true, nil)
	resp.DynamicMetadata = &structpb.Struct{Fields: map[string]*structpb.Value{
		MetadataNamespace: structpb.NewStructValue(&structpb.Struct{Fields: m}),
	}}
	return resp
}

func TestMetaWriterEncodesTheStruct(t *testing.T) {
	long := strings.Repeat("x", 300) // two-byte length varints at every level
	tests := []struct {
		name   string
		fields []metaField
	}{
		{"empty", nil},
		{"decision", []metaField{
			{key: "decision_id", kind: 's', s: "f1je491rq7m80"}, {key: "outcome", kind: 's', s: "routed"},
			{key: "status", kind: 'n', n: 429}, {key: "complexity", kind: 'n', n: 0.4375},
			{key: "decision_us", kind: 'n', n: 0}, {key: "stream", kind: 'b', b: false},
			{key: "cached", kind: 'b', b: true},
		}},
		{"empty and long strings", []metaField{{key: "a", kind: 's'}, {key: "b", kind: 's', s: long}}},
		{"numbers", []metaField{
			{key: "neg", kind: 'n', n: -1.5}, {key: "big", kind: 'n', n: 1e300},
			{key: "inf", kind: 'n', n: math.Inf(1)}, {key: "tiny", kind: 'n', n: math.SmallestNonzeroFloat64},
		}},
		{"invalid UTF-8 becomes U+FFFD", []metaField{
			{key: "tenant", kind: 's', s: "acme\xff\xfe-eu"}, {key: "t2", kind: 's', s: "\xc3"},
			{key: "ok", kind: 's', s: "zürich ✓"},
		}},
		{"many fields", func() (fs []metaField) {
			for i := range 40 {
				fs = append(fs, metaField{key: "k" + itoa(i), kind: 's', s: long[:i*7]})
			}
			return fs
		}()},
	}
	var w metaWriter // reused across cases, as in a pooled routerProc
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, want := viaWriter(t, &w, tt.fields), viaStruct(tt.fields)
			if !proto.Equal(got, want) {
				t.Fatalf("decoded answer differs:\n got %v\nwant %v", got, want)
			}
			if len(got.ProtoReflect().GetUnknown()) != 0 {
				t.Fatalf("bytes left unknown after decoding: %x", got.ProtoReflect().GetUnknown())
			}
		})
	}
}

func FuzzMetaWriter(f *testing.F) {
	f.Add("tenant", "acme", 1.5, true, "reason", "keyword:secret")
	f.Add("", "", 0.0, false, "", "")
	f.Add("t", "\xff\x00\xc3", -0.0, true, strings.Repeat("k", 200), strings.Repeat("\u00e9", 100))
	var w metaWriter
	f.Fuzz(func(t *testing.T, k1, s1 string, n float64, b bool, k2, s2 string) {
		// Keys are Switchyard's own ASCII literals; map keys are unique.
		if !isASCII(k1) || !isASCII(k2) || k1 == k2 || k1+"#" == k2 || k2+"!" == k1 {
			return
		}
		fields := []metaField{{key: k1, kind: 's', s: s1}, {key: k2, kind: 's', s: s2},
			{key: k1 + "#", kind: 'n', n: n}, {key: k2 + "!", kind: 'b', b: b}}
		got, want := viaWriter(t, &w, fields), viaStruct(fields)
		if math.IsNaN(n) {
			// NaN != NaN: compare the rest.
			delete(got.GetDynamicMetadata().GetFields()[MetadataNamespace].GetStructValue().GetFields(), k1+"#")
			delete(want.GetDynamicMetadata().GetFields()[MetadataNamespace].GetStructValue().GetFields(), k1+"#")
		}
		if !proto.Equal(got, want) {
			t.Fatalf("decoded answer differs:\n got %v\nwant %v", got, want)
		}
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// A tenant header that is not UTF-8 used to go into the metadata Struct
// as is; a strict decoder (Envoy's, protobuf-go's) then rejects the whole
// answer, so the request failed instead of being routed.
func TestNonUTF8TenantStillDecodes(t *testing.T) {
	s := New(testRouter(t, nil), zap.NewNop(), nil)
	sent := run(t, s, chatHeaders("x-tenant-id", "acme\xff"), reqBody(hiBody), respHeaders("200"))
	if len(sent) != 3 {
		t.Fatalf("sent %d answers, want 3", len(sent))
	}
	md := sent[1].GetDynamicMetadata().GetFields()[MetadataNamespace].GetStructValue().GetFields()
	if got := md["tenant"].GetStringValue(); got != "acme\uFFFD" {
		t.Fatalf("tenant in metadata = %q, want %q (all fields: %v)", got, "acme\uFFFD", md)
	}
	if md["target"].GetStringValue() != "fast" {
		t.Fatalf("metadata = %v", md)
	}
}
