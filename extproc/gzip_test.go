package extproc

import (
	"bytes"
	"compress/gzip"
	"encoding/json"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"testing"
)

func gzipBytes(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

type extprocv3ProcessingResponse = extprocv3.ProcessingResponse

func toString(v any) string { b, _ := json.Marshal(v); return string(b) }
