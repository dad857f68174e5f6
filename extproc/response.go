package extproc

import (
	"strconv"
	"unsafe"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/switchyard-llm/switchyard/internal/openai"
)

// MetadataNamespace is the dynamic-metadata namespace Switchyard writes; the
// Envoy filter must list it in metadata_options.receiving_namespaces.
const MetadataNamespace = "switchyard"

// headerValue reads a header value the way Envoy sends it: raw_value by
// default, value on Envoys without send_header_raw_value (§1.2).
func headerValue(h *corev3.HeaderValue) string {
	if len(h.RawValue) > 0 {
		return string(h.RawValue)
	}
	return h.Value
}

// headerBytes is headerValue without a copy: raw_value itself, or a view
// of value. Callers must not modify it.
func headerBytes(h *corev3.HeaderValue) []byte {
	if len(h.RawValue) > 0 {
		return h.RawValue
	}
	return unsafe.Slice(unsafe.StringData(h.Value), len(h.Value))
}

// setHeader builds a mutation that overwrites key with value. Only raw_value
// is set: Envoy reads raw_value alone, and append defaults to overwrite (§2).
func setHeader(key, value string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: key, RawValue: []byte(value)}}
}

func continueHeaders(isRequest bool, common *extprocv3.CommonResponse) *extprocv3.ProcessingResponse {
	hr := &extprocv3.HeadersResponse{Response: common}
	if isRequest {
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: hr}}
	}
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: hr}}
}

func continueBody(isRequest bool, common *extprocv3.CommonResponse) *extprocv3.ProcessingResponse {
	br := &extprocv3.BodyResponse{Response: common}
	if isRequest {
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{RequestBody: br}}
	}
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: br}}
}

// continueFor answers req with a plain CONTINUE of the matching kind.
func continueFor(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
	switch req.Request.(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		return continueHeaders(true, nil)
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		return continueHeaders(false, nil)
	case *extprocv3.ProcessingRequest_RequestBody:
		return continueBody(true, nil)
	case *extprocv3.ProcessingRequest_ResponseBody:
		return continueBody(false, nil)
	case *extprocv3.ProcessingRequest_RequestTrailers:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestTrailers{RequestTrailers: &extprocv3.TrailersResponse{}}}
	default:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseTrailers{ResponseTrailers: &extprocv3.TrailersResponse{}}}
	}
}

// errorResponse is an ImmediateResponse carrying an OpenAI-style error, so
// SDKs surface the message and code as they would for the vendor's own errors.
// md, when not empty, is dynamic metadata encoded by a metaWriter.
func errorResponse(httpStatus int, errType, code, message, decisionID string, md protoreflect.RawFields) *extprocv3.ProcessingResponse {
	hdrs := []*corev3.HeaderValueOption{setHeader("content-type", "application/json")}
	if decisionID != "" {
		hdrs = append(hdrs, setHeader("x-switchyard-decision", decisionID))
	}
	resp := &extprocv3.ProcessingResponse{
		Response: &extprocv3.ProcessingResponse_ImmediateResponse{ImmediateResponse: &extprocv3.ImmediateResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(httpStatus)},
			Headers: &extprocv3.HeaderMutation{SetHeaders: hdrs},
			Body:    openai.ErrorBody(message, errType, code),
			Details: "switchyard_" + code,
		}},
	}
	if len(md) > 0 {
		setDynamicMetadata(resp, md)
	}
	return resp
}

// internalError is the fail-closed answer when Switchyard itself failed.
func internalError(decisionID string) *extprocv3.ProcessingResponse {
	return errorResponse(500, openai.TypeServer, "internal_error",
		"the gateway failed to process this request (decision "+decisionID+")", decisionID, nil)
}

func itoa(n int) string { return strconv.Itoa(n) }
