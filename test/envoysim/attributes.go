package envoysim

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// Attributes (§1.2, §5). Envoy evaluates each configured CEL expression and
// puts the result into a Struct keyed by the expression text. Its
// ExpressionManager::evaluateAttributes maps bool → bool_value, int64/uint64 →
// number_value and everything else → string_value via Expr::print, which for a
// protobuf message (for example the whole xds.upstream_host_metadata) is the
// C++ ShortDebugString text, for a map "CelMap value" and for a list
// "CelList value". envoysim implements the path-and-index subset of CEL that
// attribute names use, and rejects anything else at load.

type attrExpr struct {
	text string
	segs []attrSeg
}

type attrSeg struct {
	name  string // field access
	index string // map index (when isIdx)
	isIdx bool
}

// attribute roots envoysim can evaluate. The value says whether further
// segments may follow.
var attrRoots = map[string]bool{
	"request.path": false, "request.url_path": false, "request.host": false, "request.scheme": false,
	"request.method": false, "request.id": false, "request.protocol": false, "request.query": false,
	"request.headers": true, "response.code": false, "response.headers": true,
	"xds.cluster_name": false, "xds.route_name": false, "xds.cluster_metadata": true,
	"xds.upstream_host_metadata": true, "xds.route_metadata": true,
	"upstream.request_attempt_count": false, "upstream.address": false, "upstream.port": false,
}

func parseAttr(text string) (*attrExpr, error) {
	x := &attrExpr{text: text}
	s := strings.TrimSpace(text)
	for len(s) > 0 {
		switch {
		case s[0] == '[':
			if len(s) < 4 || (s[1] != '\'' && s[1] != '"') {
				return nil, fmt.Errorf("%w: attribute %q: only quoted string indexes are supported", ErrUnsupported, text)
			}
			q := s[1]
			end := strings.IndexByte(s[2:], q)
			if end < 0 || len(s) < end+4 || s[end+3] != ']' {
				return nil, fmt.Errorf("%w: attribute %q: malformed index", ErrUnsupported, text)
			}
			x.segs = append(x.segs, attrSeg{index: s[2 : 2+end], isIdx: true})
			s = s[end+4:]
		case s[0] == '.':
			s = s[1:]
		default:
			n := 0
			for n < len(s) && (s[n] == '_' || s[n] >= 'a' && s[n] <= 'z' || s[n] >= 'A' && s[n] <= 'Z' || s[n] >= '0' && s[n] <= '9') {
				n++
			}
			if n == 0 {
				return nil, fmt.Errorf("%w: attribute %q: unexpected %q", ErrUnsupported, text, s[0])
			}
			x.segs = append(x.segs, attrSeg{name: s[:n]})
			s = s[n:]
		}
	}
	if len(x.segs) < 2 || x.segs[0].isIdx || x.segs[1].isIdx {
		return nil, fmt.Errorf("%w: attribute %q", ErrUnsupported, text)
	}
	root := x.segs[0].name + "." + x.segs[1].name
	more, ok := attrRoots[root]
	if !ok || (!more && len(x.segs) > 2) {
		return nil, fmt.Errorf("%w: attribute %q", ErrUnsupported, text)
	}
	if strings.HasSuffix(root, "_metadata") && len(x.segs) > 2 {
		if x.segs[2].isIdx || x.segs[2].name != "filter_metadata" {
			return nil, fmt.Errorf("%w: attribute %q: only .filter_metadata of a Metadata is supported", ErrUnsupported, text)
		}
		for _, sg := range x.segs[3:] {
			if !sg.isIdx {
				return nil, fmt.Errorf("%w: attribute %q: field access inside filter_metadata", ErrUnsupported, text)
			}
		}
	}
	if strings.HasSuffix(root, ".headers") && len(x.segs) > 3 {
		return nil, fmt.Errorf("%w: attribute %q", ErrUnsupported, text)
	}
	return x, nil
}

// attrCtx is what the expressions can see at the time of a message.
type attrCtx struct {
	req        *headerMap
	resp       *headerMap
	routeName  string
	cluster    *clusterModel
	host       *endpointModel
	routeMeta  *corev3.Metadata
	attempts   int // 0: unknown (no router attempt yet)
	hostAddrOv string
}

type celMap map[string]any
type celList []any

// eval returns (value, ok). ok=false is a CEL evaluation error: Envoy skips
// the attribute.
func (x *attrExpr) eval(c *attrCtx) (any, bool) {
	root := x.segs[0].name + "." + x.segs[1].name
	rest := x.segs[2:]
	switch root {
	case "request.path":
		return headerAttr(c.req, ":path")
	case "request.url_path":
		p, ok := headerAttr(c.req, ":path")
		if !ok {
			return nil, false
		}
		s := p.(string)
		if i := strings.IndexByte(s, '?'); i >= 0 {
			s = s[:i]
		}
		return s, true
	case "request.query":
		p, ok := headerAttr(c.req, ":path")
		if !ok {
			return nil, false
		}
		s := p.(string)
		if i := strings.IndexByte(s, '?'); i >= 0 {
			return s[i+1:], true
		}
		return "", true
	case "request.host":
		return headerAttr(c.req, ":authority")
	case "request.scheme":
		return headerAttr(c.req, ":scheme")
	case "request.method":
		return headerAttr(c.req, ":method")
	case "request.id":
		return headerAttr(c.req, "x-request-id")
	case "request.protocol":
		return "HTTP/1.1", true
	case "request.headers":
		return headersAttr(c.req, rest)
	case "response.headers":
		return headersAttr(c.resp, rest)
	case "response.code":
		if c.resp == nil {
			return nil, false
		}
		n, err := strconv.Atoi(c.resp.value(":status"))
		if err != nil {
			return nil, false
		}
		return int64(n), true
	case "xds.cluster_name":
		if c.cluster == nil {
			return nil, false
		}
		return c.cluster.name, true
	case "xds.route_name":
		if c.routeName == "" && c.routeMeta == nil && c.cluster == nil {
			return nil, false
		}
		return c.routeName, true
	case "xds.cluster_metadata":
		if c.cluster == nil {
			return nil, false
		}
		return metadataAttr(c.cluster.metadata, rest)
	case "xds.upstream_host_metadata":
		if c.host == nil {
			return nil, false
		}
		return metadataAttr(c.host.metadata, rest)
	case "xds.route_metadata":
		if c.routeMeta == nil && c.cluster == nil {
			return nil, false
		}
		return metadataAttr(c.routeMeta, rest)
	case "upstream.request_attempt_count":
		if c.attempts == 0 {
			return nil, false
		}
		return uint64(c.attempts), true
	case "upstream.address":
		if c.host == nil {
			return nil, false
		}
		if c.hostAddrOv != "" {
			return c.hostAddrOv, true
		}
		return c.host.address(), true
	case "upstream.port":
		if c.host == nil {
			return nil, false
		}
		return int64(c.host.port), true
	}
	return nil, false
}

func headerAttr(h *headerMap, k string) (any, bool) {
	if h == nil {
		return nil, false
	}
	v, ok := h.get(k)
	return v, ok
}

func headersAttr(h *headerMap, rest []attrSeg) (any, bool) {
	if h == nil {
		return nil, false
	}
	if len(rest) == 0 {
		m := celMap{}
		for k, v := range h.Map() {
			m[k] = v
		}
		return m, true
	}
	vals := h.values(lower(rest[0].index))
	if len(vals) == 0 {
		return nil, false
	}
	return strings.Join(vals, ","), true
}

func metadataAttr(md *corev3.Metadata, rest []attrSeg) (any, bool) {
	if md == nil {
		md = &corev3.Metadata{}
	}
	if len(rest) == 0 {
		return md, true
	}
	// rest[0] is .filter_metadata (checked at parse).
	var cur any = structMapOfMetadata(md)
	for _, sg := range rest[1:] {
		m, ok := cur.(celMap)
		if !ok {
			return nil, false
		}
		v, ok := m[sg.index]
		if !ok {
			return nil, false
		}
		cur = v
	}
	return cur, true
}

func structMapOfMetadata(md *corev3.Metadata) celMap {
	m := celMap{}
	for k, s := range md.GetFilterMetadata() {
		m[k] = structToCel(s)
	}
	return m
}

func structToCel(s *structpb.Struct) celMap {
	m := celMap{}
	for k, v := range s.GetFields() {
		m[k] = valueToCel(v)
	}
	return m
}

func valueToCel(v *structpb.Value) any {
	switch k := v.GetKind().(type) {
	case *structpb.Value_StringValue:
		return k.StringValue
	case *structpb.Value_NumberValue:
		return k.NumberValue
	case *structpb.Value_BoolValue:
		return k.BoolValue
	case *structpb.Value_StructValue:
		return structToCel(k.StructValue)
	case *structpb.Value_ListValue:
		l := celList{}
		for _, e := range k.ListValue.GetValues() {
			l = append(l, valueToCel(e))
		}
		return l
	}
	return nil
}

// toProtoValue is ExpressionManager::evaluateAttributes' conversion.
func toProtoValue(v any) *structpb.Value {
	switch x := v.(type) {
	case bool:
		return structpb.NewBoolValue(x)
	case int64:
		return structpb.NewNumberValue(float64(x))
	case uint64:
		return structpb.NewNumberValue(float64(x))
	}
	return structpb.NewStringValue(celPrint(v))
}

// celPrint is Envoy's Filters::Common::Expr::print.
func celPrint(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case string:
		return x
	case float64:
		return absDouble(x)
	case celMap:
		return "CelMap value"
	case celList:
		return "CelList value"
	case *corev3.Metadata:
		return shortDebugMetadata(x)
	}
	return fmt.Sprint(v)
}

// absDouble mimics absl::StrCat(double): six significant digits, %g style.
func absDouble(f float64) string {
	if math.IsInf(f, 1) {
		return "inf"
	}
	if math.IsInf(f, -1) {
		return "-inf"
	}
	if math.IsNaN(f) {
		return "nan"
	}
	return strconv.FormatFloat(f, 'g', 6, 64)
}

// shortDebugMetadata renders a Metadata the way C++ protobuf's
// ShortDebugString does: fields in number order, map entries sorted by key,
// "name { ... }" nesting, single spaces. typed_filter_metadata is not
// emulated (envoysim rejects nothing that could fill it).
func shortDebugMetadata(md *corev3.Metadata) string {
	var b strings.Builder
	keys := make([]string, 0, len(md.GetFilterMetadata()))
	for k := range md.GetFilterMetadata() {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		sep(&b)
		b.WriteString("filter_metadata { key: ")
		quoteText(&b, k)
		b.WriteString(" value { ")
		writeStructFields(&b, md.GetFilterMetadata()[k])
		b.WriteString("} }")
	}
	return b.String()
}

func sep(b *strings.Builder) {
	if b.Len() > 0 {
		s := b.String()
		if s[len(s)-1] != ' ' {
			b.WriteByte(' ')
		}
	}
}

func writeStructFields(b *strings.Builder, s *structpb.Struct) {
	keys := make([]string, 0, len(s.GetFields()))
	for k := range s.GetFields() {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b.WriteString("fields { key: ")
		quoteText(b, k)
		b.WriteString(" value { ")
		writeValue(b, s.GetFields()[k])
		b.WriteString("} } ")
	}
}

func writeValue(b *strings.Builder, v *structpb.Value) {
	switch k := v.GetKind().(type) {
	case *structpb.Value_NullValue:
		b.WriteString("null_value: NULL_VALUE ")
	case *structpb.Value_NumberValue:
		b.WriteString("number_value: " + strconv.FormatFloat(k.NumberValue, 'g', -1, 64) + " ")
	case *structpb.Value_StringValue:
		b.WriteString("string_value: ")
		quoteText(b, k.StringValue)
		b.WriteByte(' ')
	case *structpb.Value_BoolValue:
		b.WriteString("bool_value: " + strconv.FormatBool(k.BoolValue) + " ")
	case *structpb.Value_StructValue:
		b.WriteString("struct_value { ")
		writeStructFields(b, k.StructValue)
		b.WriteString("} ")
	case *structpb.Value_ListValue:
		b.WriteString("list_value { ")
		for _, e := range k.ListValue.GetValues() {
			b.WriteString("values { ")
			writeValue(b, e)
			b.WriteString("} ")
		}
		b.WriteString("} ")
	}
}

// quoteText is C++ text-format string quoting with UTF-8 kept as is.
func quoteText(b *strings.Builder, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '"':
			b.WriteString(`\"`)
		case '\'':
			b.WriteString(`\'`)
		case '\\':
			b.WriteString(`\\`)
		default:
			if c < 0x20 || c == 0x7f {
				fmt.Fprintf(b, `\%03o`, c)
			} else {
				b.WriteByte(c)
			}
		}
	}
	b.WriteByte('"')
}

// evalAttrs builds the Struct for one direction's first message.
func evalAttrs(exprs []*attrExpr, c *attrCtx) *structpb.Struct {
	s := &structpb.Struct{Fields: map[string]*structpb.Value{}}
	for _, x := range exprs {
		if v, ok := x.eval(c); ok {
			s.Fields[x.text] = toProtoValue(v)
		}
	}
	return s
}
