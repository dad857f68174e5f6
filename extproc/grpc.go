package extproc

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"

	"github.com/switchyard-llm/switchyard/internal/config"
)

// GRPCServer is the gRPC server with the ext_proc and health services.
type GRPCServer struct {
	*grpc.Server
	Health *health.Server
}

// NewGRPCServer builds the gRPC server for s: message size limits from
// config (a BUFFERED body must fit in one message), keepalive settings that
// tolerate Envoy's pings, optional TLS/mTLS, and the standard health service.
func NewGRPCServer(s *Server, cfg config.Server) (*GRPCServer, error) {
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(cfg.GRPCMaxMessageBytes),
		grpc.MaxSendMsgSize(cfg.GRPCMaxMessageBytes),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 2 * time.Minute, Timeout: 20 * time.Second}),
		// Envoy multiplexes many request streams over few connections.
		grpc.MaxConcurrentStreams(1 << 16),
		// Reflection-free marshalling of ext_proc answers (codec.go).
		grpc.ForceServerCodecV2(newCodec()),
	}
	if cfg.StreamWorkers > 0 {
		// Long-lived goroutines keep the stack a decision grew to
		// (config.Server.StreamWorkers).
		opts = append(opts, grpc.NumStreamWorkers(uint32(cfg.StreamWorkers)))
	}
	if cfg.TLS.CertFile != "" {
		tc, err := serverTLS(cfg.TLS)
		if err != nil {
			return nil, err
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(tc)))
	}
	gs := grpc.NewServer(opts...)
	extprocv3.RegisterExternalProcessorServer(gs, s)
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus(extprocv3.ExternalProcessor_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	return &GRPCServer{Server: gs, Health: hs}, nil
}

func serverTLS(c config.ServerTLS) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("server.tls: load cert/key: %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.ClientCAFile != "" {
		pem, err := os.ReadFile(c.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("server.tls.client_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("server.tls.client_ca_file %s: no PEM certificates found", c.ClientCAFile)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}
