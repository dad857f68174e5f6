package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
)

// nullProcessor is the floor: an ext_proc server that answers every
// message with a CONTINUE of the matching kind and does nothing else. Its
// answers are built once and shared (marshalling an unmodified message
// concurrently is safe).
type nullProcessor struct {
	extprocv3.UnimplementedExternalProcessorServer
}

var (
	nullReqHeaders  = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{}}}
	nullReqBody     = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{}}}
	nullRespHeaders = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{}}}
	nullRespBody    = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{}}}
	nullReqTrailers = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestTrailers{RequestTrailers: &extprocv3.TrailersResponse{}}}
	nullRspTrailers = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseTrailers{ResponseTrailers: &extprocv3.TrailersResponse{}}}
)

func (nullProcessor) Process(stream extprocv3.ExternalProcessor_ProcessServer) error {
	for {
		req, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) || status.Code(err) == codes.Canceled {
				return nil
			}
			return err
		}
		var resp *extprocv3.ProcessingResponse
		switch req.Request.(type) {
		case *extprocv3.ProcessingRequest_RequestHeaders:
			resp = nullReqHeaders
		case *extprocv3.ProcessingRequest_RequestBody:
			resp = nullReqBody
		case *extprocv3.ProcessingRequest_ResponseHeaders:
			resp = nullRespHeaders
		case *extprocv3.ProcessingRequest_ResponseBody:
			resp = nullRespBody
		case *extprocv3.ProcessingRequest_RequestTrailers:
			resp = nullReqTrailers
		case *extprocv3.ProcessingRequest_ResponseTrailers:
			resp = nullRspTrailers
		default:
			return status.Errorf(codes.InvalidArgument, "unsupported ext_proc message %T", req.Request)
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

// newNullGRPC builds the null processor's gRPC server with the options
// Switchyard's own server uses (extproc.NewGRPCServer), so transport costs
// match and only the processing differs.
func newNullGRPC() *grpc.Server {
	gs := grpc.NewServer(
		grpc.MaxRecvMsgSize(32<<20),
		grpc.MaxSendMsgSize(32<<20),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 2 * time.Minute, Timeout: 20 * time.Second}),
		grpc.MaxConcurrentStreams(1<<16),
		grpc.NumStreamWorkers(64), // Switchyard's default server.stream_workers
	)
	extprocv3.RegisterExternalProcessorServer(gs, nullProcessor{})
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus(extprocv3.ExternalProcessor_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	return gs
}

// nullAdmin serves /metrics (Go and process collectors, like Switchyard's),
// /healthz and /readyz, so the tool measures both servers the same way.
func nullAdmin() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	ok := func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) }
	mux.HandleFunc("/healthz", ok)
	mux.HandleFunc("/readyz", ok)
	return mux
}

// serveNull runs the null processor on grpcLis and, when adminLis is not
// nil, its admin endpoints, until ctx is done.
func serveNull(ctx context.Context, grpcLis, adminLis net.Listener) error {
	gs := newNullGRPC()
	errc := make(chan error, 2)
	go func() { errc <- gs.Serve(grpcLis) }()
	var hs *http.Server
	if adminLis != nil {
		hs = &http.Server{Handler: nullAdmin(), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := hs.Serve(adminLis); !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		err = fmt.Errorf("null processor: %w", err)
	}
	stopped := make(chan struct{})
	go func() { gs.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		gs.Stop()
	}
	if hs != nil {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}
	return err
}

// runNullServer is the -null-server mode: listen on grpcAddr (and adminAddr
// when set) and serve until ctx is done.
func runNullServer(ctx context.Context, grpcAddr, adminAddr string) error {
	gl, err := net.Listen("tcp", grpcAddr)
	if err != nil {
		return fmt.Errorf("null processor listen %s: %w", grpcAddr, err)
	}
	var al net.Listener
	if adminAddr != "" {
		if al, err = net.Listen("tcp", adminAddr); err != nil {
			gl.Close()
			return fmt.Errorf("null processor admin listen %s: %w", adminAddr, err)
		}
	}
	return serveNull(ctx, gl, al)
}
