// Package envoyconf generates the Envoy configuration that puts Switchyard in
// front of a model portfolio: the router-role ext_proc filter, one route per
// target matched on x-switchyard-target, one cluster per target with a
// priority level per model (endpoint metadata for the upstream role), the
// upstream-role ext_proc filter on every target cluster, retries with
// previous_priorities and outlier detection. It builds go-control-plane
// types from a config.Snapshot, so Envoy's routes and clusters are derived
// from the same file Switchyard serves and the two cannot drift.
//
// Everything generated is checked by Validate: protoc-gen-validate rules on
// every message including the ones packed in google.protobuf.Any (which
// ValidateAll does not open), plus the Switchyard contract that PGV cannot
// express (upstream_codec last, router last, role detection by attributes,
// TLS on every endpoint of a TLS provider, known attribute names, no
// negative durations). The same package renders Istio resources (istio.go).
package envoyconf

import (
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/switchyard-llm/switchyard/internal/config"
)

// Names shared with the ext_proc server (extproc's router and upstream roles)
// and with test/envoysim. Change them together.
const (
	// TargetHeader is set by the router role; routes match it.
	TargetHeader = "x-switchyard-target"
	// MetadataNamespace is the filter_metadata namespace of endpoint and
	// cluster metadata, and the dynamic-metadata namespace both ext_proc
	// filters accept from and forward to the server.
	MetadataNamespace = "switchyard"
	// SwitchyardCluster is the cluster Envoy dials for ext_proc in the
	// bootstrap (Istio uses its own outbound|port||host name instead).
	SwitchyardCluster = "switchyard"
	// TargetClusterPrefix prefixes every target cluster name.
	TargetClusterPrefix = "target-"
	// ExtProcFilterName is the HTTP filter name of both ext_proc filters.
	// Envoy keys ProcessingRequest.attributes by this literal.
	ExtProcFilterName = "envoy.filters.http.ext_proc"
	// TransportSocketMatchKey is the endpoint metadata key (in Envoy's
	// envoy.transport_socket_match namespace) that selects a TLS socket.
	TransportSocketMatchKey = "switchyard_tls"
)

// Endpoint metadata keys under filter_metadata.switchyard. The upstream role
// reads them from the xds.upstream_host_metadata attribute.
const (
	MetaModel         = "model"          // portfolio model name
	MetaUpstreamModel = "upstream_model" // provider's model id (body rewrite)
	MetaProvider      = "provider"       // provider name (auth, path prefix)
	MetaTier          = "tier"           // model tier
	MetaTarget        = "target"         // target name
	MetaPriority      = "priority"       // 0-based priority level (number)
	MetaLast          = "last"           // true on the last priority: never judged
	MetaCascade       = "cascade"        // true when the target has a judge
	MetaHost          = "host"           // Host/:authority for the provider (see UpstreamHost)
)

// UpstreamRequestAttributes are the attributes the upstream-role filter asks
// for; their presence is how the server tells the roles apart. Each name was
// checked against Envoy's docs/root/intro/arch_overview/advanced/attributes.rst.
var UpstreamRequestAttributes = []string{
	"xds.upstream_host_metadata",
	"xds.cluster_name",
	"upstream.request_attempt_count",
}

// Fixed settings. They are constants rather than config keys because the
// right value does not depend on the deployment; README "Envoy" says why.
const (
	// DefaultCAFile is the trust bundle for provider TLS in the official
	// Envoy and Istio proxy images.
	DefaultCAFile = "/etc/ssl/certs/ca-certificates.crt"

	targetConnectTimeout     = 2 * time.Second
	switchyardConnectTimeout = 1 * time.Second
	retryBaseInterval        = 25 * time.Millisecond
	retryMaxInterval         = 250 * time.Millisecond
	// retryCircuitBreaker replaces Envoy's default of 3 concurrent retries
	// per cluster, which would silently turn a provider outage under load
	// into 503s (upstream_rq_retry_overflow) instead of failover.
	retryCircuitBreaker = 1024
	// grpcTimeoutSlack is added to the longest route timeout for the
	// ext_proc grpc_service.timeout (see extProcFilter).
	grpcTimeoutSlack = 5 * time.Second
	// envoyDefaultStreamIdle is HCM's default stream_idle_timeout.
	envoyDefaultStreamIdle = 5 * time.Minute
)

// Options adjusts generation for a deployment. The zero value generates the
// standalone bootstrap.
type Options struct {
	// CAFile is the CA bundle that verifies provider certificates
	// (default DefaultCAFile).
	CAFile string
	// ExtProcCluster names the cluster both ext_proc filters dial (default
	// SwitchyardCluster; Istio passes outbound|50051||switchyard.<ns>.svc.cluster.local).
	ExtProcCluster string
}

func (o Options) withDefaults() Options {
	if o.CAFile == "" {
		o.CAFile = DefaultCAFile
	}
	if o.ExtProcCluster == "" {
		o.ExtProcCluster = SwitchyardCluster
	}
	return o
}

// ErrInvalid wraps every error that comes from a snapshot Envoy cannot be
// configured from (as opposed to a failed validation of generated output).
var ErrInvalid = errors.New("envoyconf: cannot generate")

// TargetCluster returns the cluster name of a target.
func TargetCluster(target string) string { return TargetClusterPrefix + target }

// Bootstrap builds the standalone Envoy bootstrap for snap. The result is
// validated; callers that change it should call Validate again.
func Bootstrap(snap *config.Snapshot) (*bootstrapv3.Bootstrap, error) {
	return BootstrapWithOptions(snap, Options{})
}

// BootstrapWithOptions is Bootstrap with deployment options.
func BootstrapWithOptions(snap *config.Snapshot, opts Options) (*bootstrapv3.Bootstrap, error) {
	g, err := newGenerator(snap, opts)
	if err != nil {
		return nil, err
	}
	b, err := g.bootstrap()
	if err != nil {
		return nil, err
	}
	if err := Validate(b); err != nil {
		return nil, fmt.Errorf("generated bootstrap failed validation (a generator bug): %w", err)
	}
	return b, nil
}

// Generate builds, validates and renders the bootstrap ("yaml", the default
// for "", or "json"),
// then decodes the rendered bytes strictly and validates them again, so what
// is written is exactly what was checked. It is the CLI entry point.
func Generate(snap *config.Snapshot, format string) ([]byte, error) {
	b, err := Bootstrap(snap)
	if err != nil {
		return nil, err
	}
	out, err := Render(b, format)
	if err != nil {
		return nil, err
	}
	if _, err := Parse(out); err != nil {
		return nil, fmt.Errorf("rendered bootstrap does not re-decode (a generator bug): %w", err)
	}
	return out, nil
}

// generator holds what every builder needs.
type generator struct {
	snap *config.Snapshot
	cfg  *config.Config
	opts Options
	// maxRouteTimeout is the longest target timeout.
	maxRouteTimeout time.Duration
}

func newGenerator(snap *config.Snapshot, opts Options) (*generator, error) {
	if snap == nil || snap.Config == nil {
		return nil, fmt.Errorf("%w: nil snapshot", ErrInvalid)
	}
	if len(snap.TargetNames) == 0 {
		return nil, fmt.Errorf("%w: the config has no targets", ErrInvalid)
	}
	g := &generator{snap: snap, cfg: snap.Config, opts: opts.withDefaults()}
	for _, name := range snap.TargetNames {
		t, ok := snap.Target(name)
		if !ok || len(t.Models) == 0 {
			return nil, fmt.Errorf("%w: target %q has no models", ErrInvalid, name)
		}
		g.maxRouteTimeout = max(g.maxRouteTimeout, t.Target.Timeout.D())
	}
	return g, nil
}

func (g *generator) bootstrap() (*bootstrapv3.Bootstrap, error) {
	e := g.cfg.Envoy
	if err := checkPort("envoy.admin_port", e.AdminPort); err != nil {
		return nil, err
	}
	l, err := g.listener()
	if err != nil {
		return nil, err
	}
	clusters := make([]*clusterv3.Cluster, 0, len(g.snap.TargetNames)+1)
	sy, err := g.switchyardCluster()
	if err != nil {
		return nil, err
	}
	clusters = append(clusters, sy)
	tcs, err := g.targetClusters()
	if err != nil {
		return nil, err
	}
	clusters = append(clusters, tcs...)
	return &bootstrapv3.Bootstrap{
		Admin: &bootstrapv3.Admin{Address: socketAddress("127.0.0.1", uint32(e.AdminPort))},
		StaticResources: &bootstrapv3.Bootstrap_StaticResources{
			Listeners: []*listenerv3.Listener{l},
			Clusters:  clusters,
		},
	}, nil
}

// targetClusters returns the target clusters alone (Istio adds them to the
// gateway with CLUSTER patches).
func (g *generator) targetClusters() ([]*clusterv3.Cluster, error) {
	out := make([]*clusterv3.Cluster, 0, len(g.snap.TargetNames))
	for _, name := range g.snap.TargetNames {
		t, _ := g.snap.Target(name)
		c, err := g.targetCluster(t)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// bodyLimit is the request-body buffer limit Envoy must allow so a body
// Switchyard accepts is never cut off by Envoy first (see listener).
func (g *generator) bodyLimit() (uint32, error) {
	n := g.cfg.Server.MaxBodyBytes
	if n <= 0 || n > math.MaxUint32 {
		return 0, fmt.Errorf("%w: server.max_body_bytes %d does not fit Envoy's 32-bit buffer limit", ErrInvalid, n)
	}
	return uint32(n), nil
}

// UpstreamHost returns the Host/:authority a model's provider expects:
// provider.host when set, else the host of the model address, with the port
// only when it is not the scheme default. The generated endpoints carry it
// (Endpoint.hostname for auto_host_rewrite and metadata key "host"), and the
// upstream role should use the same function so the two agree.
func UpstreamHost(m *config.ModelInfo) string {
	if m.Provider.Host != "" {
		return m.Provider.Host
	}
	host, port, err := net.SplitHostPort(m.Addr)
	if err != nil {
		return m.Addr
	}
	if (m.Provider.TLS && port == "443") || (!m.Provider.TLS && port == "80") {
		return host
	}
	return net.JoinHostPort(host, port)
}

// tlsServerName is the SNI and certificate name for a TLS model: the host of
// UpstreamHost without a port.
func tlsServerName(m *config.ModelInfo) string {
	h := UpstreamHost(m)
	if host, _, err := net.SplitHostPort(h); err == nil {
		return host
	}
	return h
}

func splitAddr(what, addr string) (string, uint32, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%w: %s %q is not host:port: %w", ErrInvalid, what, addr, err)
	}
	if host == "" {
		return "", 0, fmt.Errorf("%w: %s %q has no host (Envoy needs an address to dial)", ErrInvalid, what, addr)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return "", 0, fmt.Errorf("%w: %s %q has an invalid port", ErrInvalid, what, addr)
	}
	return host, uint32(p), nil
}

func checkPort(what string, p int) error {
	if p < 1 || p > 65535 {
		return fmt.Errorf("%w: %s %d is not a port", ErrInvalid, what, p)
	}
	return nil
}

func socketAddress(host string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address:       host,
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

func u32(v uint32) *wrapperspb.UInt32Value { return wrapperspb.UInt32(v) }
