package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// startNull runs the null processor in-process with its admin endpoints
// and returns the two addresses.
func startNull(t *testing.T) (grpcAddr, adminAddr string) {
	t.Helper()
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	al, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serveNull(ctx, gl, al) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("null processor: %v", err)
		}
	})
	return gl.Addr().String(), al.Addr().String()
}

func testMeasurement(t *testing.T, addr, admin string, rc runConfig) measurement {
	t.Helper()
	c, err := newCorpus(1, []int{1024, 8192}, 8, 0.5, "auto", 1)
	if err != nil {
		t.Fatal(err)
	}
	rc.addr = addr
	if rc.conns == 0 {
		rc.conns = 2
	}
	rc.msgTimeout, rc.streamTimeout = time.Minute, time.Minute // no timing in tests
	if rc.expect == "" {
		rc.expect = expectContinue
	}
	if err := rc.validate(); err != nil {
		t.Fatal(err)
	}
	mode := "closed"
	if rc.rate > 0 {
		mode = "open"
	}
	return measurement{label: "test", run: rc, corpus: c, admin: admin, settings: Settings{Mode: mode}}
}

// checkAllAnswered asserts that every request was answered once, correctly.
func checkAllAnswered(t *testing.T, rep *Report, n int) {
	t.Helper()
	if rep.Sent != n || rep.Completed != int64(n) || rep.OK != int64(n) {
		t.Errorf("sent %d, completed %d, ok %d; want %d each", rep.Sent, rep.Completed, rep.OK, n)
	}
	if len(rep.Errors) != 0 || len(rep.Immediate) != 0 {
		t.Errorf("errors %v, immediate %v; want none", rep.Errors, rep.Immediate)
	}
	for _, p := range []string{phaseHeaders, phaseBody, phaseRespHeaders, phaseTotal} {
		if got := rep.Latency[p].Count; got != n {
			t.Errorf("%s latency samples %d, want %d", p, got, n)
		}
		if l := rep.Latency[p]; l.Min <= 0 || l.P50 > l.P99 || l.P99 > l.P999 || l.P999 > l.Max {
			t.Errorf("%s summary out of order: %+v", p, l)
		}
	}
	if rep.Throughput <= 0 {
		t.Errorf("throughput %v", rep.Throughput)
	}
}

func TestClosedLoopAgainstNull(t *testing.T) {
	addr, admin := startNull(t)
	m := testMeasurement(t, addr, admin, runConfig{concurrency: 8, requests: 300, warmup: 0})
	rep, err := m.execute(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checkAllAnswered(t, rep, 300)
	if _, ok := rep.Latency[phaseQueue]; ok {
		t.Error("closed loop must not report a queue phase")
	}
	sv := rep.Server
	if sv == nil || sv.Error != "" {
		t.Fatalf("server stats %+v", sv)
	}
	if sv.Before.RSSBytes <= 0 || sv.After.RSSBytes <= 0 || sv.Before.Goroutines <= 0 {
		t.Errorf("server metrics not read: %+v", sv)
	}
}

func TestOpenLoopAgainstNull(t *testing.T) {
	addr, admin := startNull(t)
	m := testMeasurement(t, addr, admin, runConfig{rate: 4000, requests: 200, maxWorkers: 64, warmup: 0})
	rep, err := m.execute(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checkAllAnswered(t, rep, 200)
	if q := rep.Latency[phaseQueue]; q.Count != 200 {
		t.Errorf("open loop queue samples %d, want 200", q.Count)
	}
	if rep.Workers < 1 || rep.Workers > 64 {
		t.Errorf("%d workers, want 1..64", rep.Workers)
	}
}

// The warm-up's requests are not counted.
func TestWarmupNotCounted(t *testing.T) {
	addr, _ := startNull(t)
	m := testMeasurement(t, addr, "", runConfig{concurrency: 2, requests: 50, warmup: 20 * time.Millisecond})
	rep, err := m.execute(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checkAllAnswered(t, rep, 50)
	if rep.Server != nil {
		t.Error("server stats without -admin")
	}
}

// scripted is an ext_proc server whose answers the test controls, to check
// the tool's validation and error accounting.
type scripted struct {
	extprocv3.UnimplementedExternalProcessorServer
	body    func(body []byte) *extprocv3.ProcessingResponse
	extra   bool // send one more message after the response headers answer
	fail    bool // with body returning nil: end the stream with INTERNAL instead of hanging
	streams atomic.Int64
	// onStream, when set, is called as each stream starts.
	onStream func()
}

func (s *scripted) Process(stream extprocv3.ExternalProcessor_ProcessServer) error {
	s.streams.Add(1)
	if s.onStream != nil {
		s.onStream()
	}
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		var resp *extprocv3.ProcessingResponse
		switch r := req.Request.(type) {
		case *extprocv3.ProcessingRequest_RequestHeaders:
			resp = nullReqHeaders
		case *extprocv3.ProcessingRequest_RequestBody:
			if resp = s.body(r.RequestBody.GetBody()); resp == nil {
				if s.fail {
					return status.Error(codes.Internal, "scripted failure")
				}
				// Never answer: wait for the client to give up.
				<-stream.Context().Done()
				return stream.Context().Err()
			}
		case *extprocv3.ProcessingRequest_ResponseHeaders:
			resp = nullRespHeaders
			if s.extra {
				if err := stream.Send(resp); err != nil {
					return err
				}
			}
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

func startScripted(t *testing.T, s *scripted) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	extprocv3.RegisterExternalProcessorServer(gs, s)
	go func() { _ = gs.Serve(l) }()
	t.Cleanup(gs.Stop)
	return l.Addr().String()
}

func routeTo(target string, clear bool, useValue bool) *extprocv3.ProcessingResponse {
	h := &corev3.HeaderValue{Key: targetHeader, RawValue: []byte(target)}
	if useValue {
		h = &corev3.HeaderValue{Key: targetHeader, Value: target}
	}
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{
		Response: &extprocv3.CommonResponse{
			HeaderMutation:  &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{{Header: h}}},
			ClearRouteCache: clear,
		}}}}
}

func deny(code int) *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{ImmediateResponse: &extprocv3.ImmediateResponse{
		Status: &typev3.HttpStatus{Code: typev3.StatusCode(code)}}}}
}

func TestValidation(t *testing.T) {
	// Streaming bodies (a quarter of the pool) are denied, the rest routed
	// by kind, so the counts can be checked exactly.
	byKind := func(body []byte) *extprocv3.ProcessingResponse {
		if bytes.Contains(body, []byte(`"stream":true`)) {
			return deny(403)
		}
		if bytes.Contains(body, []byte("```")) {
			return routeTo("reasoning", true, false)
		}
		return routeTo("fast", true, false)
	}
	tests := []struct {
		name     string
		srv      *scripted
		expect   string
		allowImm bool
		wantErr  string // the only error kind expected; "" for none
	}{
		{"routes and allowed denials", &scripted{body: byKind}, expectRoute, true, ""},
		{"denials not allowed", &scripted{body: byKind}, expectRoute, false, errImmediate},
		{"no target header", &scripted{body: func([]byte) *extprocv3.ProcessingResponse { return nullReqBody }}, expectRoute, false, errNoTarget},
		{"no target is fine for continue", &scripted{body: func([]byte) *extprocv3.ProcessingResponse { return nullReqBody }}, expectContinue, false, ""},
		{"route without clear_route_cache", &scripted{body: func([]byte) *extprocv3.ProcessingResponse { return routeTo("fast", false, false) }}, expectRoute, false, errMalformed + phaseBody},
		{"header in value not raw_value", &scripted{body: func([]byte) *extprocv3.ProcessingResponse { return routeTo("fast", true, true) }}, expectRoute, false, errMalformed + phaseBody},
		{"wrong answer kind", &scripted{body: func([]byte) *extprocv3.ProcessingResponse { return nullRespHeaders }}, expectContinue, false, errMalformed + phaseBody},
		{"extra message", &scripted{body: func([]byte) *extprocv3.ProcessingResponse { return nullReqBody }, extra: true}, expectContinue, false, errExtraMessage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := startScripted(t, tt.srv)
			const n = 120
			m := testMeasurement(t, addr, "", runConfig{concurrency: 4, requests: n, expect: tt.expect, allowImmediate: tt.allowImm})
			rep, err := m.execute(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if rep.Completed != n || tt.srv.streams.Load() != n {
				t.Fatalf("completed %d on %d streams, want %d", rep.Completed, tt.srv.streams.Load(), n)
			}
			var imm, routed int64
			for _, v := range rep.Immediate {
				imm += v
			}
			for _, v := range rep.Targets {
				routed += v
			}
			if tt.wantErr == "" {
				if len(rep.Errors) != 0 || rep.OK != n {
					t.Errorf("errors %v, ok %d; want none, %d", rep.Errors, rep.OK, n)
				}
			} else if len(rep.Errors) != 1 || rep.Errors[tt.wantErr] == 0 || rep.OK+rep.Errors[tt.wantErr] != n {
				t.Errorf("errors %v, ok %d; want only %s", rep.Errors, rep.OK, tt.wantErr)
			}
			if tt.name == "routes and allowed denials" {
				if imm == 0 || rep.Immediate[403] != imm || rep.Targets["reasoning"] == 0 || rep.Targets["fast"] == 0 || imm+routed != n {
					t.Errorf("immediate %v, targets %v; want 403s plus both targets adding up to %d", rep.Immediate, rep.Targets, n)
				}
				// A denied request ends at the body: no response_headers phase.
				if rep.Latency[phaseRespHeaders].Count != int(routed) {
					t.Errorf("response_headers samples %d, want %d routed", rep.Latency[phaseRespHeaders].Count, routed)
				}
			}
		})
	}
}

// A server that does not answer in -msg-timeout gets the request
// abandoned, as Envoy does, and the wait counts in the latency.
func TestMessageTimeoutAbandons(t *testing.T) {
	srv := &scripted{body: func([]byte) *extprocv3.ProcessingResponse { return nil }}
	addr := startScripted(t, srv)
	m := testMeasurement(t, addr, "", runConfig{concurrency: 4, requests: 20})
	m.run.msgTimeout = 50 * time.Millisecond
	rep, err := m.execute(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Completed != 20 || rep.Errors[errMsgTimeout] != 20 {
		t.Fatalf("completed %d, errors %v; want 20 %s", rep.Completed, rep.Errors, errMsgTimeout)
	}
	body, total := rep.Latency[phaseBody], rep.Latency[phaseTotal]
	if body.Count != 20 || total.Count != 20 || body.Min < 50e3 || total.Min < body.Min {
		t.Errorf("abandoned requests must count at least the 50ms wait: body %+v, total %+v", body, total)
	}
	if rep.Latency[phaseRespHeaders].Count != 0 {
		t.Error("an abandoned request must not reach response_headers")
	}
}

// A server that is not there is one error up front, not a run of failures.
func TestUnreachableServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	m := testMeasurement(t, addr, "", runConfig{concurrency: 2, requests: 10})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	rep, err := m.execute(ctx)
	if err == nil || !strings.Contains(err.Error(), addr) {
		t.Errorf("execute against a closed port = %v, %v; want a connect error naming %s", rep, err, addr)
	}
}

// A server that fails mid-run is counted per request by gRPC code.
func TestServerErrorsCounted(t *testing.T) {
	srv := &scripted{body: func([]byte) *extprocv3.ProcessingResponse { return nil }, fail: true}
	addr := startScripted(t, srv)
	m := testMeasurement(t, addr, "", runConfig{concurrency: 2, requests: 10})
	rep, err := m.execute(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Completed != 10 || rep.Errors["grpc_internal"] != 10 {
		t.Errorf("completed %d, errors %v; want 10 grpc_internal", rep.Completed, rep.Errors)
	}
}

func TestRatiosAndTargets(t *testing.T) {
	null := &Report{Throughput: 1000, Goodput: 1000, Latency: map[string]Summary{phaseTotal: {P50: 100, P99: 400, P999: 800}}}
	sy := &Report{Throughput: 950, Goodput: 900, Latency: map[string]Summary{phaseTotal: {P50: 110, P99: 480, P999: 1280}}}
	r := ratiosOf(null, sy)
	if r.Throughput != 0.9 || r.P99 != 1.2 || r.P999 != 1.6 {
		t.Errorf("ratios %+v", r)
	}
	open := targetsFor("open", []int{2048}, r)
	if len(open) != 2 || !open[0].Pass || open[1].Pass {
		t.Errorf("open-loop targets %+v: want p99 pass, p99.9 fail", open)
	}
	if c := targetsFor("closed", []int{2048}, r); len(c) != 1 || !c[0].Pass || c[0].Want != ">= 0.85" {
		t.Errorf("closed-loop 2k target %+v", c)
	}
	if c := targetsFor("closed", []int{65536}, Ratios{Throughput: 0.61}); !c[0].Pass || c[0].Want != ">= 0.60" {
		t.Errorf("closed-loop 64k target %+v", c)
	}
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("median = %v", m)
	}
	if m := median([]float64{4, 1, 2, 3}); m != 2.5 {
		t.Errorf("median = %v", m)
	}
}
