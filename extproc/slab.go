package extproc

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// The router role builds the same few protobuf messages for every request.
// These builders take their elements from a handful of slices instead of
// one heap object per header, value and oneof wrapper (profiles showed
// setHeader and structpb values as the largest allocators after OPA).

// headerSet builds a list of header mutations (raw_value only, overwrite).
type headerSet struct {
	opts []corev3.HeaderValueOption
	vals []corev3.HeaderValue
	buf  []byte
	list []*corev3.HeaderValueOption
}

func newHeaderSet(n, valueBytes int) *headerSet {
	return &headerSet{
		opts: make([]corev3.HeaderValueOption, 0, n),
		vals: make([]corev3.HeaderValue, 0, n),
		buf:  make([]byte, 0, valueBytes),
		list: make([]*corev3.HeaderValueOption, 0, n),
	}
}

// set adds key=value. Earlier values stay valid if buf grows: they keep
// pointing into the old array.
func (h *headerSet) set(key, value string) {
	start := len(h.buf)
	h.buf = append(h.buf, value...)
	if len(h.vals) == cap(h.vals) {
		h.list = append(h.list, setHeader(key, value))
		return
	}
	h.vals = append(h.vals, corev3.HeaderValue{Key: key, RawValue: h.buf[start:len(h.buf):len(h.buf)]})
	h.opts = append(h.opts, corev3.HeaderValueOption{Header: &h.vals[len(h.vals)-1]})
	h.list = append(h.list, &h.opts[len(h.opts)-1])
}

// fieldSet builds the fields of a structpb.Struct.
type fieldSet struct {
	vals   []structpb.Value
	strs   []structpb.Value_StringValue
	nums   []structpb.Value_NumberValue
	fields map[string]*structpb.Value
}

func newFieldSet(n int) *fieldSet {
	return &fieldSet{
		vals:   make([]structpb.Value, 0, n),
		strs:   make([]structpb.Value_StringValue, 0, n),
		nums:   make([]structpb.Value_NumberValue, 0, n),
		fields: make(map[string]*structpb.Value, n),
	}
}

func (f *fieldSet) str(key, v string) {
	if len(f.strs) == cap(f.strs) || len(f.vals) == cap(f.vals) {
		f.fields[key] = structpb.NewStringValue(v)
		return
	}
	f.strs = append(f.strs, structpb.Value_StringValue{StringValue: v})
	f.vals = append(f.vals, structpb.Value{Kind: &f.strs[len(f.strs)-1]})
	f.fields[key] = &f.vals[len(f.vals)-1]
}

func (f *fieldSet) num(key string, v float64) {
	if len(f.nums) == cap(f.nums) || len(f.vals) == cap(f.vals) {
		f.fields[key] = structpb.NewNumberValue(v)
		return
	}
	f.nums = append(f.nums, structpb.Value_NumberValue{NumberValue: v})
	f.vals = append(f.vals, structpb.Value{Kind: &f.nums[len(f.nums)-1]})
	f.fields[key] = &f.vals[len(f.vals)-1]
}

func (f *fieldSet) boolean(key string, v bool) { f.fields[key] = structpb.NewBoolValue(v) }
