package envoysim

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// ---- scripted ext_proc server ----

// step is what the scripted processor does with one received message.
type step struct {
	send    []*extprocv3.ProcessingResponse
	delay   time.Duration // before sending
	endWith error         // end the RPC: nil with end=true is OK
	end     bool
}

// streamRec records one ext_proc stream as the server saw it.
type streamRec struct {
	mu     sync.Mutex
	reqs   []*extprocv3.ProcessingRequest
	md     metadata.MD
	done   chan struct{}
	endErr error // what Recv returned when the client ended (io.EOF = CloseSend)
}

func (s *streamRec) requests() []*extprocv3.ProcessingRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*extprocv3.ProcessingRequest(nil), s.reqs...)
}

type procServer struct {
	extprocv3.UnimplementedExternalProcessorServer
	// script decides per message; nil → continueAll.
	script  func(rec *streamRec, idx int, req *extprocv3.ProcessingRequest) step
	mu      sync.Mutex
	streams []*streamRec
	addr    string
}

func (p *procServer) Process(st extprocv3.ExternalProcessor_ProcessServer) error {
	md, _ := metadata.FromIncomingContext(st.Context())
	rec := &streamRec{md: md, done: make(chan struct{})}
	p.mu.Lock()
	p.streams = append(p.streams, rec)
	script := p.script
	p.mu.Unlock()
	defer close(rec.done)
	for i := 0; ; i++ {
		req, err := st.Recv()
		if err != nil {
			rec.mu.Lock()
			rec.endErr = err
			rec.mu.Unlock()
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, req)
		rec.mu.Unlock()
		s := continueAll(req)
		if script != nil {
			s = script(rec, i, req)
		}
		if s.delay > 0 {
			select {
			case <-time.After(s.delay):
			case <-st.Context().Done():
				return st.Context().Err()
			}
		}
		for _, r := range s.send {
			if err := st.Send(r); err != nil {
				return err
			}
		}
		if s.end {
			return s.endWith
		}
	}
}

func (p *procServer) all() []*streamRec {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*streamRec(nil), p.streams...)
}

// waitStreams waits until n streams have ended (the client closed them).
func (p *procServer) waitStreams(t *testing.T, n int) []*streamRec {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ss := p.all()
		if len(ss) >= n {
			for _, s := range ss[:n] {
				select {
				case <-s.done:
				case <-time.After(time.Until(deadline)):
					t.Fatalf("stream did not end")
				}
			}
			return ss
		}
		if time.Now().After(deadline) {
			t.Fatalf("want %d ext_proc streams, got %d", n, len(ss))
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func startProc(t *testing.T, script func(rec *streamRec, idx int, req *extprocv3.ProcessingRequest) step) *procServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &procServer{script: script, addr: ln.Addr().String()}
	gs := grpc.NewServer()
	extprocv3.RegisterExternalProcessorServer(gs, p)
	done := make(chan struct{})
	go func() { defer close(done); _ = gs.Serve(ln) }()
	t.Cleanup(func() { gs.Stop(); <-done })
	return p
}

// continueAll answers any message with an empty response of its kind.
func continueAll(req *extprocv3.ProcessingRequest) step {
	return step{send: []*extprocv3.ProcessingResponse{answer(req, &extprocv3.CommonResponse{})}}
}

func answer(req *extprocv3.ProcessingRequest, cr *extprocv3.CommonResponse) *extprocv3.ProcessingResponse {
	switch req.GetRequest().(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{Response: cr}}}
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{Response: cr}}}
	case *extprocv3.ProcessingRequest_RequestBody:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{Response: cr}}}
	case *extprocv3.ProcessingRequest_ResponseBody:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{Response: cr}}}
	}
	return &extprocv3.ProcessingResponse{}
}

func setHdr(k, v string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, RawValue: []byte(v)}}
}

func appendHdr(k, v string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, RawValue: []byte(v)}, Append: wrapperspb.Bool(true)}
}

func mut(sets ...*corev3.HeaderValueOption) *extprocv3.HeaderMutation {
	return &extprocv3.HeaderMutation{SetHeaders: sets}
}

func immediate(code int, body string) *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{ImmediateResponse: &extprocv3.ImmediateResponse{
		Status: &typev3.HttpStatus{Code: typev3.StatusCode(code)}, Body: []byte(body), Details: "denied by test",
	}}}
}

func grpcErr(c codes.Code) error { return status.Error(c, "scripted failure") }

// ---- upstream HTTP servers ----

type backend struct {
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []recordedReq
	h    http.HandlerFunc
}

type recordedReq struct {
	method, path, host string
	header             http.Header
	body               []byte
}

func (b *backend) requests() []recordedReq {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]recordedReq(nil), b.reqs...)
}

func startBackend(t *testing.T, h http.HandlerFunc) *backend {
	t.Helper()
	b := &backend{h: h}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.reqs = append(b.reqs, recordedReq{r.Method, r.RequestURI, r.Host, r.Header.Clone(), body})
		b.mu.Unlock()
		if b.h != nil {
			b.h(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *backend) addr() string { return strings.TrimPrefix(b.srv.URL, "http://") }

func status200(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, body) }
}

func statusCode(code int) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }
}

// ---- config builder ----

type cfgParts struct {
	filters      string // downstream ext_proc filter entries (YAML list items, column 0)
	routes       string // route list items (column 0)
	backendExtra string // extra fields of cluster "backend" (column 0)
	upstreamProc string // extra fields of the upstream ext_proc (column 0); "" = no upstream filter
	backendPrios int    // 1 or 2 (default 2)
}

func indent(s string, n int) string {
	pad := strings.Repeat(" ", n)
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = pad + l
		}
	}
	return strings.Join(lines, "\n")
}

func extProcYAML(extra string) string {
	return "- name: envoy.filters.http.ext_proc\n  typed_config:\n    \"@type\": type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor\n    grpc_service: {envoy_grpc: {cluster_name: extproc}}\n" + indent(extra, 4) + "\n"
}

const defaultRoutes = "- match: {prefix: /}\n  route: {cluster: backend}\n"

func buildYAML(p cfgParts) string {
	if p.routes == "" {
		p.routes = defaultRoutes
	}
	if p.backendPrios == 0 {
		p.backendPrios = 2
	}
	var b strings.Builder
	b.WriteString(`static_resources:
  listeners:
  - name: l
    address: {socket_address: {address: 127.0.0.1, port_value: 10000}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: t
          route_config:
            virtual_hosts:
            - name: vh
              domains: ["*"]
              routes:
`)
	b.WriteString(indent(p.routes, 14) + "\n")
	b.WriteString("          http_filters:\n")
	if p.filters != "" {
		b.WriteString(indent(p.filters, 10) + "\n")
	}
	b.WriteString(`          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
  clusters:
  - name: extproc
    type: STATIC
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
    load_assignment:
      cluster_name: extproc
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 10.9.9.9, port_value: 50051}}}}]}]
  - name: other
    type: STATIC
    load_assignment:
      cluster_name: other
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 10.0.0.3, port_value: 80}}}}]}]
  - name: backend
    type: STATIC
`)
	if p.backendExtra != "" {
		b.WriteString(indent(p.backendExtra, 4) + "\n")
	}
	if p.upstreamProc != "" {
		b.WriteString(`    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http_protocol_options: {}}
        http_filters:
        - name: envoy.filters.http.ext_proc
          typed_config:
            "@type": type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor
            grpc_service: {envoy_grpc: {cluster_name: extproc}}
`)
		b.WriteString(indent(p.upstreamProc, 12) + "\n")
		b.WriteString(`        - name: envoy.filters.http.upstream_codec
          typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec}
`)
	}
	b.WriteString(`    load_assignment:
      cluster_name: backend
      endpoints:
      - priority: 0
        lb_endpoints:
        - endpoint: {address: {socket_address: {address: 10.0.0.1, port_value: 80}}}
          metadata: {filter_metadata: {switchyard: {model: m-a, provider: vendor-a}}}
`)
	if p.backendPrios > 1 {
		b.WriteString(`      - priority: 1
        lb_endpoints:
        - endpoint: {address: {socket_address: {address: 10.0.0.2, port_value: 80}}}
          metadata: {filter_metadata: {switchyard: {model: m-b, provider: vendor-b}}}
`)
	}
	return b.String()
}

// ---- harness ----

type harness struct {
	t      *testing.T
	env    *Envoy
	url    string
	client *http.Client
	mu     sync.Mutex
	logs   []AccessLogEntry
	logCh  chan AccessLogEntry
}

type simSetup struct {
	yaml   string
	proc   *procServer
	p0, p1 *backend // priority 0 / 1 of "backend"
	other  *backend
	modify func(*Options)
}

func newSim(t *testing.T, s simSetup) *harness {
	t.Helper()
	cfg, err := Load([]byte(s.yaml))
	if err != nil {
		t.Fatalf("Load: %v\n%s", err, s.yaml)
	}
	ov := map[string]string{}
	if s.proc != nil {
		ov["10.9.9.9:50051"] = s.proc.addr
	} else {
		ov["10.9.9.9:50051"] = "127.0.0.1:1" // nothing listens: gRPC errors
	}
	if s.p0 != nil {
		ov["10.0.0.1:80"] = s.p0.addr()
	}
	if s.p1 != nil {
		ov["10.0.0.2:80"] = s.p1.addr()
	}
	if s.other != nil {
		ov["10.0.0.3:80"] = s.other.addr()
	}
	h := &harness{t: t, logCh: make(chan AccessLogEntry, 64)}
	opts := Options{AddressOverrides: ov, RetryBackOffBase: time.Millisecond, AccessLog: func(e AccessLogEntry) {
		h.mu.Lock()
		h.logs = append(h.logs, e)
		h.mu.Unlock()
		select {
		case h.logCh <- e:
		default:
		}
	}}
	if s.modify != nil {
		s.modify(&opts)
	}
	env, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := env.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	h.env, h.url = env, "http://"+addr
	t.Cleanup(func() {
		if err := env.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	h.client = newClient(t)
	return h
}

func newClient(t *testing.T) *http.Client {
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

type resp struct {
	status int
	header http.Header
	body   string
}

func (h *harness) do(method, path, body string, hdr map[string]string) resp {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, h.url+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v // Go's client ignores a Host entry in Header
			continue
		}
		req.Header.Set(k, v)
	}
	r, err := h.client.Do(req)
	if err != nil {
		h.t.Fatalf("request: %v", err)
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		h.t.Fatalf("read body: %v", err)
	}
	return resp{r.StatusCode, r.Header, string(b)}
}

func (h *harness) post(body string, hdr map[string]string) resp {
	return h.do(http.MethodPost, "/v1/chat/completions", body, hdr)
}

// lastLog waits for the access log of the most recent request.
func (h *harness) lastLog() AccessLogEntry {
	h.t.Helper()
	select {
	case e := <-h.logCh:
		return e
	case <-time.After(5 * time.Second):
		h.t.Fatal("no access log entry")
	}
	return AccessLogEntry{}
}

func headerValue(hm *corev3.HeaderMap, k string) (string, bool) {
	for _, h := range hm.GetHeaders() {
		if h.GetKey() == k {
			return string(h.GetRawValue()), true
		}
	}
	return "", false
}
