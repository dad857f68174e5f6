package route

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"io"
	"strconv"
	"strings"

	"github.com/andybalholm/brotli"

	"github.com/switchyard-llm/switchyard/internal/openai"
)

// decode returns the body to read, decompressing a content-encoded body
// within server.content.max_decoded_bytes. The body sent upstream is never
// changed: Envoy forwards the client's bytes as they came.
func (r *Router) decode(q *Request, d *Decision) ([]byte, bool) {
	enc := strings.ToLower(strings.TrimSpace(q.header("content-encoding")))
	if enc == "" || enc == "identity" {
		return q.Body, true
	}
	content := r.snap.Config.Server.Content
	if content.Encodings == "reject" {
		r.reject(d, 415, openai.TypeInvalidRequest, "unsupported_content_encoding",
			"content-encoding "+strconv.Quote(truncate(enc, 32))+" is not accepted by this gateway; send an uncompressed body")
		return nil, false
	}
	out, err := Decompress(enc, q.Body, content.MaxDecodedBytes)
	switch {
	case errors.Is(err, ErrUnknownEncoding):
		r.reject(d, 415, openai.TypeInvalidRequest, "unsupported_content_encoding",
			"content-encoding "+strconv.Quote(truncate(enc, 32))+" is not supported (gzip, deflate, br)")
		return nil, false
	case errors.Is(err, ErrTooLarge):
		r.reject(d, 413, openai.TypeInvalidRequest, "request_too_large",
			"the decompressed request body exceeds "+strconv.FormatInt(content.MaxDecodedBytes, 10)+" bytes")
		return nil, false
	case err != nil:
		r.reject(d, 400, openai.TypeInvalidRequest, "invalid_content_encoding",
			"the request body is not valid "+enc+" data")
		return nil, false
	}
	return out, true
}

// Errors of Decompress.
var (
	ErrUnknownEncoding = errors.New("unknown content-encoding")
	ErrTooLarge        = errors.New("decoded body too large")
)

// Decompress inflates a gzip, deflate or br body, refusing to produce more
// than limit bytes (a zip bomb stops at the limit, it is never fully
// inflated).
func Decompress(enc string, body []byte, limit int64) ([]byte, error) {
	var rd io.Reader
	switch enc {
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		rd = zr
	case "deflate":
		// HTTP "deflate" is zlib-wrapped in theory and raw deflate in
		// practice; accept both.
		rd = newDeflateReader(body)
	case "br":
		rd = brotli.NewReader(bytes.NewReader(body))
	default:
		return nil, ErrUnknownEncoding
	}
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(rd, limit+1))
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, ErrTooLarge
	}
	return buf.Bytes(), nil
}

func newDeflateReader(body []byte) io.Reader {
	if len(body) >= 2 && body[0]&0x0f == 8 && (uint16(body[0])<<8|uint16(body[1]))%31 == 0 {
		if zr, err := zlib.NewReader(bytes.NewReader(body)); err == nil {
			return zr
		}
	}
	return flate.NewReader(bytes.NewReader(body))
}
