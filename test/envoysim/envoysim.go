// Package envoysim is a Go emulation of the parts of Envoy that Switchyard
// relies on, for tests: an HTTP/1.1 listener with an HTTP connection manager
// (virtual hosts, header-matched routes, cluster_header, direct_response,
// route re-selection after a cleared route cache), the ext_proc client state
// machine (downstream and per-attempt upstream filters), the router (retries,
// per-try and route timeouts, previous_priorities, retriable headers,
// auto_host_rewrite, the max_retries circuit breaker) and clusters (STATIC
// and STRICT_DNS with dns_lookup_family, priority levels, endpoint metadata,
// transport_socket_matches, outlier detection).
//
// It is written from /work/shared/docs/envoy-ext-proc.md and Envoy's C++
// sources; comments cite the section of that document (§n.m) each behaviour
// comes from. It reads a real Envoy bootstrap (Load, LoadFile) and rejects
// every field it does not emulate, so a test can never pass here on a
// configuration that would mean something else to Envoy.
//
// envoysim is test infrastructure: nothing in extproc/ or internal/ imports it.
package envoysim

import (
	"context"
	"errors"
	"fmt"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"
)

// Options adjust an emulated Envoy for tests.
type Options struct {
	// AddressOverrides maps an endpoint address as written in the config
	// ("host:port") to the address envoysim dials instead, so a config naming
	// "api.vendor-a.example:443" or "switchyard:50051" can point at loopback
	// test servers. A key "cluster/host:port" applies to one cluster only and
	// wins over a plain "host:port" key.
	AddressOverrides map[string]string
	// Resolve resolves STRICT_DNS endpoints that have no override. It gets
	// the cluster name and "host:port" and returns the one address to dial
	// (the cluster's dns_lookup_family is not applied). Nil resolves with
	// LookupIP.
	Resolve func(cluster, hostPort string) (string, error)
	// LookupIP resolves the name of a STRICT_DNS endpoint that has neither
	// an override nor Resolve, at New. The cluster's dns_lookup_family picks
	// the addresses (AUTO: IPv6 else IPv4, V4_PREFERRED: IPv4 else IPv6,
	// V4_ONLY, V6_ONLY, ALL) and every picked address becomes a host with the
	// endpoint's metadata, as in Envoy's STRICT_DNS cluster. Default:
	// net.DefaultResolver.LookupIP with a 5 s deadline.
	LookupIP func(ctx context.Context, host string) ([]net.IP, error)
	// ListenAddress is where the listener binds; default "127.0.0.1:0" (the
	// listener address in the config is ignored so tests never collide).
	ListenAddress string
	// PlaintextTLS dials clusters that have a transport_socket in plaintext.
	// Without it New rejects such clusters: envoysim does not emulate TLS.
	PlaintextTLS bool
	// Clock drives outlier detection (ejection and unejection times). Default
	// time.Now. Tests inject a fake clock to pass base_ejection_time without
	// sleeping.
	Clock func() time.Time
	// RetryBackOffBase, when non-zero, replaces the base interval of every
	// retry policy (Envoy's default is 25 ms; max interval stays 10× base).
	RetryBackOffBase time.Duration
	// AccessLog receives one entry per downstream request, after the
	// response is finished.
	AccessLog func(AccessLogEntry)
	// Logger receives debug logs; default no-op.
	Logger *zap.Logger
	// Seed seeds the load balancer's priority choice; 0 picks 1.
	Seed uint64
}

// Attempt is one router attempt of a request.
type Attempt struct {
	Priority int    // priority level of the chosen host
	Host     string // endpoint address as written in the config
	Dialed   string // address actually dialled
	Status   int    // status as the router saw it (after upstream ext_proc); 0 if none
	// Authority is the :authority (Host) this attempt sent upstream: the
	// host's hostname when the route has auto_host_rewrite.
	Authority string
	// TransportSocket is the transport_socket_matches entry the host uses
	// ("default": the cluster's own transport_socket, or plaintext).
	TransportSocket string
	// Failure is "" for a response, or one of "connect_failure", "reset",
	// "per_try_timeout", "route_timeout", "upstream_local_reply".
	Failure string
	Retried bool // the router retried after this attempt
}

// AccessLogEntry describes one finished downstream request.
type AccessLogEntry struct {
	Method, Path, Authority string
	RequestID               string
	// Status is the final status sent downstream; 0 if the stream was reset
	// before response headers.
	Status int
	// ResponseCodeDetails is Envoy's %RESPONSE_CODE_DETAILS%, for example
	// "via_upstream", "route_not_found", "cluster_not_found",
	// "direct_response", "ext_proc_error_per-message_timeout_exceeded".
	ResponseCodeDetails string
	Route               string // matched route name ("" if none or unnamed)
	Cluster             string // cluster the router used ("" if none)
	Attempts            []Attempt
	// DynamicMetadata is the request's dynamic metadata per namespace, as
	// written by ext_proc filters (receiving namespaces only).
	DynamicMetadata map[string]map[string]any
	// Flags are Envoy's %RESPONSE_FLAGS% that envoysim produces: NR (no
	// route), UF (connect failure), UT (route timeout), URX (retry limit
	// exceeded), UO (retry overflow, circuit_breakers max_retries).
	Flags     []string
	Reset     bool // the stream was reset after the response started
	BodyBytes int  // response body bytes written to the client
	Duration  time.Duration
}

// Envoy is one emulated Envoy instance.
type Envoy struct {
	cfg        *Config
	opts       Options
	userLogger bool
	log        *zap.Logger
	stats      *counters
	clusters   map[string]*clusterRT
	rnd        *rand.Rand
	rndMu      sync.Mutex

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	grpc    map[string]*grpc.ClientConn
	ln      net.Listener
	srv     *http.Server
	started bool
	closed  bool
}

// New builds an Envoy from a loaded config. Address overrides are applied
// here; nothing listens until Start.
func New(cfg *Config, opts Options) (*Envoy, error) {
	if cfg == nil {
		return nil, errors.New("envoysim: nil config")
	}
	userLogger := opts.Logger != nil
	if !userLogger {
		opts.Logger = zap.NewNop()
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.ListenAddress == "" {
		opts.ListenAddress = "127.0.0.1:0"
	}
	seed := opts.Seed
	if seed == 0 {
		seed = 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Envoy{
		cfg: cfg, opts: opts, log: opts.Logger, stats: newCounters(),
		clusters: map[string]*clusterRT{}, rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		ctx: ctx, cancel: cancel, grpc: map[string]*grpc.ClientConn{}, userLogger: userLogger,
	}
	for _, name := range cfg.order {
		cm := cfg.clusters[name]
		for _, eps := range cm.priorities {
			for _, ep := range eps {
				if sock, tls := cm.resolveSocket(ep); tls && !opts.PlaintextTLS {
					cancel()
					return nil, fmt.Errorf("%w: cluster %s endpoint %s uses TLS transport socket %q; set Options.PlaintextTLS to dial it in plaintext",
						ErrUnsupported, name, ep.address(), sock)
				}
				if !cm.strictDNS && net.ParseIP(ep.host) == nil {
					cancel()
					return nil, fmt.Errorf("envoysim: cluster %s is STATIC but endpoint %q is not an IP address", name, ep.host)
				}
			}
		}
		c, err := newClusterRT(e, cm, e.resolver(cm))
		if err != nil {
			cancel()
			return nil, err
		}
		e.clusters[name] = c
	}
	return e, nil
}

// resolver returns the addresses envoysim dials for an endpoint of cm: an
// AddressOverrides entry ("cluster/host:port" first), else Options.Resolve,
// else (STRICT_DNS) a DNS lookup filtered by dns_lookup_family, else the
// address as written (STATIC IPs).
func (e *Envoy) resolver(cm *clusterModel) func(ep *endpointModel) ([]string, error) {
	opts := e.opts
	return func(ep *endpointModel) ([]string, error) {
		a := ep.address()
		if v, ok := opts.AddressOverrides[cm.name+"/"+a]; ok {
			return []string{v}, nil
		}
		if v, ok := opts.AddressOverrides[a]; ok {
			return []string{v}, nil
		}
		if !cm.strictDNS {
			return []string{a}, nil
		}
		if opts.Resolve != nil {
			v, err := opts.Resolve(cm.name, a)
			if err != nil {
				return nil, fmt.Errorf("envoysim: resolve %s in cluster %s: %w", a, cm.name, err)
			}
			return []string{v}, nil
		}
		var ips []net.IP
		if ip := net.ParseIP(ep.host); ip != nil {
			ips = []net.IP{ip}
		} else {
			lookup := opts.LookupIP
			if lookup == nil {
				lookup = func(ctx context.Context, host string) ([]net.IP, error) {
					return net.DefaultResolver.LookupIP(ctx, "ip", host)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			var err error
			ips, err = lookup(ctx, ep.host)
			cancel()
			if err != nil {
				return nil, fmt.Errorf("envoysim: resolve %s in cluster %s: %w", ep.host, cm.name, err)
			}
		}
		picked := pickFamily(ips, cm.dnsFamily)
		if len(picked) == 0 {
			return nil, fmt.Errorf("envoysim: %s in cluster %s has no address of dns_lookup_family %v (got %v)", ep.host, cm.name, cm.dnsFamily, ips)
		}
		out := make([]string, len(picked))
		for i, ip := range picked {
			out[i] = net.JoinHostPort(ip.String(), strconv.Itoa(int(ep.port)))
		}
		return out, nil
	}
}

func (e *Envoy) now() time.Time { return e.opts.Clock() }

// errorLog is where net/http reports handler panics: the injected logger,
// or stderr so an envoysim bug is never silent in a test run.
func (e *Envoy) errorLog() *log.Logger {
	if e.userLogger {
		return zap.NewStdLog(e.log)
	}
	return log.New(os.Stderr, "envoysim: ", 0)
}

func (e *Envoy) randIntN(n int) int {
	e.rndMu.Lock()
	defer e.rndMu.Unlock()
	return e.rnd.IntN(n)
}

// Start binds the listener and serves in the background. It returns the
// listener address ("127.0.0.1:port"). ctx bounds only the bind.
func (e *Envoy) Start(ctx context.Context) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.started || e.closed {
		return "", errors.New("envoysim: already started or closed")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", e.opts.ListenAddress)
	if err != nil {
		return "", fmt.Errorf("envoysim: listen: %w", err)
	}
	e.ln = ln
	e.srv = &http.Server{
		Handler:           http.HandlerFunc(e.serveHTTP),
		ReadHeaderTimeout: 10 * time.Second,
		// Above the HCM's own limit, so the emulated codec check decides.
		MaxHeaderBytes: max(1<<20, 2*e.cfg.listener.hcm.maxHeadersKB*1024+4096),
		BaseContext:    func(net.Listener) context.Context { return e.ctx },
		ErrorLog:       e.errorLog(),
	}
	e.started = true
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		_ = e.srv.Serve(ln)
	}()
	return ln.Addr().String(), nil
}

// Addr is the listener address after Start ("" before).
func (e *Envoy) Addr() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ln == nil {
		return ""
	}
	return e.ln.Addr().String()
}

// URL is "http://" + Addr().
func (e *Envoy) URL() string { return "http://" + e.Addr() }

// Close stops the listener, cancels in-flight requests and ext_proc
// streams, closes gRPC connections and waits for every goroutine it started.
func (e *Envoy) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	srv := e.srv
	e.mu.Unlock()
	var err error
	// Cancel first: request contexts derive from e.ctx, so in-flight
	// requests and ext_proc streams end and Shutdown does not wait on them.
	e.cancel()
	if srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err = srv.Shutdown(ctx)
		cancel()
		if err != nil {
			_ = srv.Close()
		}
	}
	e.wg.Wait()
	e.mu.Lock()
	for _, c := range e.grpc {
		_ = c.Close()
	}
	e.grpc = nil
	e.mu.Unlock()
	for _, c := range e.clusters {
		c.transport.CloseIdleConnections()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		err = nil
	}
	return err
}

// Stats returns a snapshot of counters and gauges with Envoy's names, for
// example "http.llm.ext_proc.spurious_msgs_received",
// "cluster.target-reasoning.upstream_rq_retry",
// "cluster.target-reasoning.outlier_detection.ejections_enforced_total".
func (e *Envoy) Stats() map[string]uint64 { return e.stats.snapshot() }

// StatSum adds every counter whose name is suffix or ends in "."+suffix,
// e.g. StatSum("spurious_msgs_received") over all ext_proc filters.
func (e *Envoy) StatSum(suffix string) uint64 { return e.stats.sum(suffix) }

// EjectedHosts reports, for one cluster, which hosts outlier detection has
// ejected at the clock's current time. Keys are the endpoint address as
// written in the config; when DNS gave one endpoint several hosts, the key is
// "address/dialled-address".
func (e *Envoy) EjectedHosts(cluster string) map[string]bool {
	c := e.clusters[cluster]
	if c == nil {
		return nil
	}
	return c.snapshot()
}

// HostInfo describes one host of a cluster as New built it.
type HostInfo struct {
	Priority        int
	Address         string // endpoint address as written in the config
	Dial            string // address envoysim dials
	Hostname        string // auto_host_rewrite value ("" for STATIC without hostname)
	TransportSocket string // transport_socket_matches name, or "default"
	TLS             bool   // the chosen socket is TLS (dialled in plaintext under PlaintextTLS)
}

// Hosts lists the hosts of a cluster by priority (nil for an unknown cluster).
func (e *Envoy) Hosts(cluster string) []HostInfo {
	c := e.clusters[cluster]
	if c == nil {
		return nil
	}
	out := make([]HostInfo, 0, len(c.all))
	for _, h := range c.all {
		out = append(out, HostInfo{Priority: h.ep.priority, Address: h.ep.address(), Dial: h.dial, Hostname: h.ep.hostname,
			TransportSocket: h.socket, TLS: h.tls})
	}
	return out
}

// grpcConn returns the (lazily dialled) connection to an ext_proc cluster.
func (e *Envoy) grpcConn(cluster string) (*grpc.ClientConn, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.grpc == nil {
		return nil, errors.New("envoysim closed")
	}
	if c, ok := e.grpc[cluster]; ok {
		return c, nil
	}
	cr := e.clusters[cluster]
	if cr == nil || len(cr.all) == 0 {
		return nil, fmt.Errorf("no ext_proc cluster %q", cluster)
	}
	// Envoy's gRPC client load-balances over the cluster; envoysim uses the
	// first endpoint of the highest priority.
	c, err := grpc.NewClient("passthrough:///"+cr.all[0].dial,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithAuthority(cluster))
	if err != nil {
		return nil, err
	}
	e.grpc[cluster] = c
	return c, nil
}

func metadataToMap(m map[string]*structpb.Struct) map[string]map[string]any {
	out := make(map[string]map[string]any, len(m))
	for k, v := range m {
		out[k] = v.AsMap()
	}
	return out
}

func statusClass(code int) string { return strconv.Itoa(code/100) + "xx" }
