package extproc

import (
	"encoding/binary"
	"math"
	"strings"
	"unicode/utf8"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// metaWriter encodes the router's dynamic metadata (one google.protobuf.
// Struct in the switchyard namespace) straight into the wire bytes of
// ProcessingResponse.dynamic_metadata, which the answer then carries as an
// unknown field. Envoy, and any protobuf decoder, reads those bytes as the
// dynamic_metadata field: the bytes on the wire are those of a
// ProcessingResponse whose DynamicMetadata is the same Struct.
//
// Why: building the Struct (a map of Value messages, two wrappers) and
// marshalling it (a map walk per level) was ~4 µs of server CPU per 2 KB
// request under closed-loop load, 3.7% of the server's profile
// (decisionMetadata 1.7%, the Struct's Size and Marshal 2.0%). Appending
// ~270 bytes costs a fraction of that and allocates nothing once the
// buffers have grown.
//
// Strings are made valid UTF-8 (each run of invalid bytes becomes U+FFFD): proto3
// string fields must be, and a strict decoder (Envoy's, protobuf-go's)
// rejects the whole answer otherwise. The tenant comes from a request
// header, whose bytes are not necessarily UTF-8.
type metaWriter struct {
	fields []byte // the namespace Struct's map entries
	out    []byte // the dynamic_metadata field, tag included
}

// Field numbers of google.protobuf.Struct, its map entry and Value.
const (
	structFields     protowire.Number = 1
	entryKey         protowire.Number = 1
	entryValue       protowire.Number = 2
	valueNumber      protowire.Number = 2
	valueString      protowire.Number = 3
	valueBool        protowire.Number = 4
	valueStruct      protowire.Number = 5
	respDynamicMDNum protowire.Number = 8 // ProcessingResponse.dynamic_metadata
)

func (w *metaWriter) reset() { w.fields = w.fields[:0] }

// entry appends the map entry key → Value{kind} whose Value payload is
// valueLen bytes long; the caller appends the payload.
func (w *metaWriter) entry(key string, valueLen int) {
	keyLen := len(key) // keys are ASCII literals
	entryLen := 1 + protowire.SizeVarint(uint64(keyLen)) + keyLen +
		1 + protowire.SizeVarint(uint64(valueLen)) + valueLen
	w.fields = protowire.AppendTag(w.fields, structFields, protowire.BytesType)
	w.fields = protowire.AppendVarint(w.fields, uint64(entryLen))
	w.fields = protowire.AppendTag(w.fields, entryKey, protowire.BytesType)
	w.fields = protowire.AppendVarint(w.fields, uint64(keyLen))
	w.fields = append(w.fields, key...)
	w.fields = protowire.AppendTag(w.fields, entryValue, protowire.BytesType)
	w.fields = protowire.AppendVarint(w.fields, uint64(valueLen))
}

func (w *metaWriter) str(key, v string) {
	if !utf8.ValidString(v) {
		v = strings.ToValidUTF8(v, "\uFFFD")
	}
	w.entry(key, 1+protowire.SizeVarint(uint64(len(v)))+len(v))
	w.fields = protowire.AppendTag(w.fields, valueString, protowire.BytesType)
	w.fields = protowire.AppendVarint(w.fields, uint64(len(v)))
	w.fields = append(w.fields, v...)
}

func (w *metaWriter) num(key string, v float64) {
	w.entry(key, 1+8)
	w.fields = protowire.AppendTag(w.fields, valueNumber, protowire.Fixed64Type)
	w.fields = binary.LittleEndian.AppendUint64(w.fields, math.Float64bits(v))
}

func (w *metaWriter) boolean(key string, v bool) {
	w.entry(key, 1+1)
	w.fields = protowire.AppendTag(w.fields, valueBool, protowire.VarintType)
	w.fields = protowire.AppendVarint(w.fields, protowire.EncodeBool(v))
}

// bytes wraps the fields as Struct{switchyard: Value{struct_value:
// Struct{fields}}} in a dynamic_metadata field. The result is valid until
// the next reset.
func (w *metaWriter) bytes() protoreflect.RawFields {
	inner := len(w.fields)                                              // Struct (namespace)
	value := 1 + protowire.SizeVarint(uint64(inner)) + inner            // Value{struct_value}
	entry := 1 + protowire.SizeVarint(uint64(len(MetadataNamespace))) + // key
		len(MetadataNamespace) + 1 + protowire.SizeVarint(uint64(value)) + value // value
	outer := 1 + protowire.SizeVarint(uint64(entry)) + entry // Struct (dynamic metadata)
	b := w.out[:0]
	b = protowire.AppendTag(b, respDynamicMDNum, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(outer))
	b = protowire.AppendTag(b, structFields, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(entry))
	b = protowire.AppendTag(b, entryKey, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(len(MetadataNamespace)))
	b = append(b, MetadataNamespace...)
	b = protowire.AppendTag(b, entryValue, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(value))
	b = protowire.AppendTag(b, valueStruct, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(inner))
	b = append(b, w.fields...)
	w.out = b
	return protoreflect.RawFields(b)
}

// setDynamicMetadata attaches encoded dynamic metadata to resp, replacing
// any unknown fields it had; resp.DynamicMetadata must be nil.
func setDynamicMetadata(resp *extprocv3.ProcessingResponse, md protoreflect.RawFields) {
	resp.ProtoReflect().SetUnknown(md)
}
