package extproc

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/switchyard-llm/switchyard/internal/config"
)

// TestGRPCWiring runs the real gRPC server over bufconn: the health service
// answers, a body just under the configured message limit is processed, and
// one over it is refused by gRPC itself; with stream workers (the default)
// and with a goroutine per stream.
func TestGRPCWiring(t *testing.T) {
	for _, workers := range []int{config.DefaultStreamWorkers, 1, -1} {
		t.Run(fmt.Sprintf("stream_workers=%d", workers), func(t *testing.T) { testGRPCWiring(t, workers) })
	}
}

func testGRPCWiring(t *testing.T, workers int) {
	const limit = 2 << 20
	rt := testRouter(t, func(c *config.Config) {
		c.Server.GRPCMaxMessageBytes = limit
		c.Server.MaxBodyBytes = limit - 128<<10
		c.Server.StreamWorkers = workers
	})
	s := New(rt, zap.NewNop(), nil)
	gs, err := NewGRPCServer(s, rt.Snapshot().Config.Server)
	if err != nil {
		t.Fatal(err)
	}
	lis := bufconn.Listen(1 << 20)
	go func() { _ = gs.Serve(lis) }()
	defer gs.Stop()

	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	hc, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: extprocv3.ExternalProcessor_ServiceDesc.ServiceName})
	if err != nil || hc.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", hc, err)
	}

	client := extprocv3.NewExternalProcessorClient(conn)
	exchange := func(body string) (*extprocv3.ProcessingResponse, error) {
		stream, err := client.Process(ctx)
		if err != nil {
			return nil, err
		}
		defer func() { _ = stream.CloseSend() }()
		if err := stream.Send(chatHeaders()); err != nil {
			return nil, err
		}
		if _, err := stream.Recv(); err != nil {
			return nil, err
		}
		if err := stream.Send(reqBody(body)); err != nil {
			return nil, err
		}
		return stream.Recv()
	}
	// A 1.5 MiB prompt: well over gRPC's 4 MiB-default-minded peers' 32 KB
	// complaints, under this server's 2 MiB limit.
	big := `{"model":"auto","messages":[{"role":"user","content":"` + strings.Repeat("lorem ipsum ", 1536<<10/12) + `"}]}`
	resp, err := exchange(big)
	if err != nil {
		t.Fatalf("body under the limit: %v", err)
	}
	if resp.GetRequestBody().GetResponse().GetHeaderMutation() == nil {
		t.Fatalf("no routing mutation for the large body: %v", resp)
	}
	_, err = exchange(strings.Repeat("x", limit+1))
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("body over the gRPC limit: err = %v, want ResourceExhausted", err)
	}
}
