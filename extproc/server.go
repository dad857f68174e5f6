// Package extproc is Switchyard's Envoy external-processing gRPC service. It
// owns the Recv/Send loop of each ext_proc stream, tells the router role
// (downstream filter) from the upstream role (per-attempt upstream filter)
// by the attributes Envoy sends, and turns route.Decisions into
// ProcessingResponses. Only this package knows protobuf types.
package extproc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"sync"
	"sync/atomic"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchyard-llm/switchyard/internal/route"
	"github.com/switchyard-llm/switchyard/internal/telemetry"
)

var _ extprocv3.ExternalProcessorServer = (*Server)(nil)

// Server implements the ExternalProcessor service.
type Server struct {
	extprocv3.UnimplementedExternalProcessorServer

	router  atomic.Pointer[route.Router]
	log     *zap.Logger
	metrics *telemetry.Metrics
	ids     *idSource

	// draining refuses new streams during shutdown; open streams finish.
	draining atomic.Bool
	streams  sync.WaitGroup
}

// New returns a Server serving rt until Swap replaces it.
func New(rt *route.Router, log *zap.Logger, m *telemetry.Metrics) *Server {
	if log == nil {
		log = zap.NewNop()
	}
	if m == nil {
		m = telemetry.NewMetrics()
	}
	s := &Server{log: log, metrics: m, ids: newIDSource()}
	s.router.Store(rt)
	return s
}

// Swap installs a new router for streams opened from now on and returns the
// previous one. Open streams keep the router they started with.
func (s *Server) Swap(rt *route.Router) *route.Router { return s.router.Swap(rt) }

// Router returns the live router.
func (s *Server) Router() *route.Router { return s.router.Load() }

// Drain makes new streams fail with UNAVAILABLE (Envoy then applies its
// failure mode) while open streams run to completion; Wait blocks until they have.
func (s *Server) Drain() { s.draining.Store(true) }

// Wait blocks until every open stream has ended or ctx is done.
func (s *Server) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { s.streams.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// processor handles the messages of one stream for one role. Each method
// returns the response to send, or an error that ends the stream.
type processor interface {
	requestHeaders(*extprocv3.HttpHeaders) (*extprocv3.ProcessingResponse, error)
	requestBody(*extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error)
	responseHeaders(*extprocv3.HttpHeaders) (*extprocv3.ProcessingResponse, error)
	responseBody(*extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error)
	// failure answers the pending message after a panic, per the failure mode.
	failure(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse
	role() string
	decisionID() string
	// release is called once the stream has ended and its last answer has
	// been sent; the processor and its answers must not be used after it.
	release()
}

// Process serves one ext_proc stream: one HTTP request (router role) or one
// upstream attempt (upstream role).
func (s *Server) Process(stream extprocv3.ExternalProcessor_ProcessServer) error {
	if s.draining.Load() {
		return status.Error(codes.Unavailable, "switchyard is shutting down")
	}
	s.streams.Add(1)
	defer s.streams.Done()
	s.metrics.StreamsActive.Inc()
	defer s.metrics.StreamsActive.Dec()

	ctx := stream.Context()
	rt := s.router.Load() // one snapshot for the whole stream
	var p processor
	result := "ok"
	defer func() {
		r := "router"
		if p != nil {
			r = p.role()
		}
		s.metrics.StreamEnded(r, result)
		if p != nil {
			p.release()
		}
	}()
	for {
		req, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) || status.Code(err) == codes.Canceled || ctx.Err() != nil {
				if !errors.Is(err, io.EOF) {
					result = "canceled"
				}
				return nil
			}
			result = "error"
			return err
		}
		if p == nil {
			p = s.newProcessor(ctx, rt, req)
		}
		resp, err := s.handle(p, req)
		if err != nil {
			releaseRequest(req)
			result = "error"
			s.log.Warn("ending ext_proc stream", zap.String("role", p.role()),
				zap.String("decision_id", p.decisionID()), zap.Error(err))
			return err
		}
		err = stream.Send(resp) // serialises resp: nothing refers to req after this
		releaseRequest(req)
		if err != nil {
			if status.Code(err) == codes.Canceled || ctx.Err() != nil {
				result = "canceled"
				return nil
			}
			result = "error"
			return err
		}
		if resp.GetImmediateResponse() != nil {
			// Envoy closes the stream after an immediate response; nothing
			// more will be sent, but drain until it does so the client sees
			// no error.
			continue
		}
	}
}

// handle dispatches one message, recovering a panic into the failure-mode answer.
func (s *Server) handle(p processor, req *extprocv3.ProcessingRequest) (resp *extprocv3.ProcessingResponse, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.metrics.Panics.Inc()
			s.log.Error("panic in request handling", zap.String("role", p.role()),
				zap.String("decision_id", p.decisionID()), zap.Any("panic", r),
				zap.ByteString("stack", debug.Stack()))
			resp, err = p.failure(req), nil
		}
	}()
	switch m := req.Request.(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		return p.requestHeaders(m.RequestHeaders)
	case *extprocv3.ProcessingRequest_RequestBody:
		return p.requestBody(m.RequestBody)
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		return p.responseHeaders(m.ResponseHeaders)
	case *extprocv3.ProcessingRequest_ResponseBody:
		return p.responseBody(m.ResponseBody)
	case *extprocv3.ProcessingRequest_RequestTrailers:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestTrailers{
			RequestTrailers: &extprocv3.TrailersResponse{}}}, nil
	case *extprocv3.ProcessingRequest_ResponseTrailers:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseTrailers{
			ResponseTrailers: &extprocv3.TrailersResponse{}}}, nil
	default:
		return nil, status.Error(codes.InvalidArgument, fmt.Sprintf("unsupported ext_proc message %T", req.Request))
	}
}

// newProcessor picks the role from the first message: only the upstream
// filter is configured with request_attributes, so attributes mean upstream
// (envoy-ext-proc.md §5, "Detecting upstream versus downstream").
func (s *Server) newProcessor(ctx context.Context, rt *route.Router, first *extprocv3.ProcessingRequest) processor {
	if attrs := first.GetAttributes(); len(attrs) > 0 {
		return newUpstream(ctx, rt, s.log, s.metrics, attrs)
	}
	return newRouterProc(ctx, rt, s.log, s.metrics, s.ids.next())
}
