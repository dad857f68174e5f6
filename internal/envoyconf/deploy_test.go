package envoyconf

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/switchyard-llm/switchyard/internal/config"
)

// docs decodes every YAML document of a file into generic maps.
func docs(t *testing.T, path string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []map[string]any
	for {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if m != nil {
			out = append(out, m)
		}
	}
}

func byKind(t *testing.T, ds []map[string]any, kind, name string) map[string]any {
	t.Helper()
	for _, d := range ds {
		if d["kind"] == kind && nested(d, "metadata", "name") == name {
			return d
		}
	}
	t.Fatalf("no %s %q", kind, name)
	return nil
}

func TestIstio(t *testing.T) {
	snap := defaultSnap(t)
	out, err := Istio(snap, IstioOptions{Namespace: "llm", GatewayPort: 8000, ListenerPort: 8001})
	if err != nil {
		t.Fatal(err)
	}
	if err := ValidateIstio(out); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "istio.yaml")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	ds := docs(t, path)

	ext := byKind(t, ds, "EnvoyFilter", "switchyard-ext-proc")
	patches := nested(ext, "spec", "configPatches").([]any)
	p0 := patches[0].(map[string]any)
	if p0["applyTo"] != "HTTP_FILTER" || nested(p0, "match", "context") != "GATEWAY" ||
		nested(p0, "patch", "operation") != "INSERT_BEFORE" ||
		nested(p0, "match", "listener", "filterChain", "filter", "subFilter", "name") != routerName {
		t.Errorf("ext_proc patch = %v", p0)
	}
	if got := nested(p0, "patch", "value", "typed_config", "grpc_service", "envoy_grpc", "cluster_name"); got != "outbound|50051||switchyard.llm.svc.cluster.local" {
		t.Errorf("ext_proc cluster = %v", got)
	}
	p1 := patches[1].(map[string]any)
	if nested(p1, "match", "listener", "portNumber") != 8001 || nested(p1, "patch", "value", "per_connection_buffer_limit_bytes") != int(snap.Config.Server.MaxBodyBytes) {
		t.Errorf("listener patch = %v", p1)
	}

	cl := nested(byKind(t, ds, "EnvoyFilter", "switchyard-clusters"), "spec", "configPatches").([]any)
	if len(cl) != len(snap.TargetNames) {
		t.Fatalf("cluster patches = %d, want %d", len(cl), len(snap.TargetNames))
	}
	for i, p := range cl {
		if got := nested(p, "patch", "value", "name"); got != TargetCluster(snap.TargetNames[i]) || nested(p, "patch", "operation") != "ADD" {
			t.Errorf("cluster patch %d = %v", i, got)
		}
	}

	// INSERT_FIRST in reverse: applied in order, the routes end in target order.
	rp := nested(byKind(t, ds, "EnvoyFilter", "switchyard-routes"), "spec", "configPatches").([]any)
	var applied []string
	for _, p := range rp {
		if nested(p, "match", "routeConfiguration", "vhost", "name") != "*:8000" || nested(p, "patch", "operation") != "INSERT_FIRST" {
			t.Fatalf("route patch = %v", p)
		}
		applied = append([]string{nested(p, "patch", "value", "name").(string)}, applied...)
	}
	var want []string
	for _, n := range snap.TargetNames {
		want = append(want, TargetCluster(n))
	}
	if !slices.Equal(applied, want) {
		t.Errorf("routes after INSERT_FIRST = %v, want %v", applied, want)
	}

	// External providers get a ServiceEntry and TLS origination; on-prem none.
	for _, h := range []string{"api.vendor-a.example", "api.vendor-b.example"} {
		se := byKind(t, ds, "ServiceEntry", "llm-"+h)
		if nested(se, "metadata", "namespace") != "llm" || nested(se, "spec", "location") != "MESH_EXTERNAL" {
			t.Errorf("ServiceEntry %s = %v", h, se)
		}
		dr := byKind(t, ds, "DestinationRule", "llm-"+h)
		pls := nested(dr, "spec", "trafficPolicy", "portLevelSettings").([]any)
		if nested(pls[0], "tls", "mode") != "SIMPLE" || nested(pls[0], "tls", "sni") != h {
			t.Errorf("DestinationRule %s = %v", h, dr)
		}
	}
	for _, d := range ds {
		if d["kind"] == "ServiceEntry" && strings.Contains(nested(d, "metadata", "name").(string), "vllm") {
			t.Errorf("on-prem provider got a ServiceEntry: %v", d)
		}
	}
}

func TestValidateIstioRejects(t *testing.T) {
	good, err := GenerateIstio(snapFrom(t, singleModelYAML), "switchyard")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, old, new, want string }{
		{"unknown field in ext_proc", "allow_mode_override: true", "allow_mode_overide: true", "allow_mode_overide"},
		{"invalid value in a cluster", "max_ejection_percent: 100", "max_ejection_percent: 300", "MaxEjectionPercent"},
		{"negative per_try_timeout in a route", "per_try_timeout: 3s", "per_try_timeout: -3s", "negative duration"},
		{"missing operation", "operation: MERGE", "operation: \"\"", "patch.operation"},
		{"bad context", "context: GATEWAY", "context: GATEWAYS", "GATEWAYS"},
		{"codec not last", "name: envoy.filters.http.upstream_codec", "name: envoy.filters.http.upstream_codek", "must be envoy.filters.http.upstream_codec"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bad := strings.Replace(string(good), tc.old, tc.new, 1)
			if bad == string(good) {
				t.Fatalf("fixture: %q not found", tc.old)
			}
			err := ValidateIstio([]byte(bad))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one naming %q", err, tc.want)
			}
		})
	}
}

// TestKubernetesManifests checks the hand-kept manifests against what the
// brief and the config require, so they cannot silently drift.
func TestKubernetesManifests(t *testing.T) {
	ds := docs(t, filepath.Join(envoyDir, "k8s", "switchyard.yaml"))
	dep := byKind(t, ds, "Deployment", "switchyard")
	if nested(dep, "spec", "replicas") != 2 {
		t.Errorf("replicas = %v", nested(dep, "spec", "replicas"))
	}
	pod := nested(dep, "spec", "template", "spec").(map[string]any)
	if nested(pod, "securityContext", "runAsNonRoot") != true {
		t.Error("pod is not runAsNonRoot")
	}
	c := pod["containers"].([]any)[0].(map[string]any)
	ports := map[string]int{}
	for _, p := range c["ports"].([]any) {
		ports[nested(p, "name").(string)] = nested(p, "containerPort").(int)
	}
	cfg, err := config.Load("")
	if err != nil {
		t.Fatal(err)
	}
	_, grpcPort, _ := net.SplitHostPort(cfg.Server.GRPCAddr)
	_, adminPort, _ := net.SplitHostPort(cfg.Server.AdminAddr)
	if itoa(ports["grpc"]) != grpcPort || itoa(ports["http-admin"]) != adminPort || adminPort != "9090" {
		t.Errorf("container ports = %v, config grpc %s admin %s", ports, grpcPort, adminPort)
	}
	for probe, path := range map[string]string{"readinessProbe": "/readyz", "livenessProbe": "/healthz"} {
		if nested(c, probe, "httpGet", "path") != path || nested(c, probe, "httpGet", "port") != "http-admin" {
			t.Errorf("%s = %v", probe, c[probe])
		}
	}
	sc := c["securityContext"].(map[string]any)
	if sc["readOnlyRootFilesystem"] != true || sc["allowPrivilegeEscalation"] != false {
		t.Errorf("container securityContext = %v", sc)
	}
	if nested(c, "resources", "limits", "memory") == nil || nested(c, "resources", "requests", "cpu") == nil {
		t.Errorf("resources = %v", c["resources"])
	}
	args := strings.Join(toStrings(c["args"]), " ")
	mounted := false
	for _, m := range c["volumeMounts"].([]any) {
		if strings.HasPrefix(strings.TrimPrefix(args, "serve --config "), nested(m, "mountPath").(string)+"/") && nested(m, "name") == "config" {
			mounted = true
		}
	}
	if !mounted {
		t.Errorf("--config in %q is not under the config volume mount", args)
	}
	// Every provider key the config reads from the environment comes from the Secret.
	env := map[string]bool{}
	for _, e := range c["env"].([]any) {
		if nested(e, "valueFrom", "secretKeyRef", "name") == "switchyard-provider-keys" {
			env[nested(e, "name").(string)] = true
		}
	}
	for name, p := range cfg.Providers {
		if p.Auth.SecretEnv != "" && !env[p.Auth.SecretEnv] {
			t.Errorf("provider %s reads %s, which the Deployment does not take from the Secret", name, p.Auth.SecretEnv)
		}
	}

	svc := byKind(t, ds, "Service", "switchyard")
	named := map[string]map[string]any{}
	for _, p := range nested(svc, "spec", "ports").([]any) {
		named[nested(p, "name").(string)] = p.(map[string]any)
	}
	if g := named["grpc"]; g == nil || g["port"] != 50051 || g["appProtocol"] != "grpc" {
		t.Errorf("Service grpc port = %v", g)
	}
	if a := named["http-admin"]; a == nil || a["port"] != 9090 {
		t.Errorf("Service http-admin port = %v", a)
	}

	// The generated ConfigMap (TestGeneratedFiles keeps the file equal to
	// this) holds a config Switchyard accepts.
	cmYAML, err := configMap(config.DefaultYAML())
	if err != nil {
		t.Fatal(err)
	}
	cmPath := filepath.Join(t.TempDir(), "configmap.yaml")
	if err := os.WriteFile(cmPath, cmYAML, 0o644); err != nil {
		t.Fatal(err)
	}
	cm := byKind(t, docs(t, cmPath), "ConfigMap", "switchyard-config")
	data, _ := nested(cm, "data", "config.yaml").(string)
	if _, err := config.Parse([]byte(data), "configmap"); err != nil {
		t.Errorf("ConfigMap config.yaml: %v", err)
	}
}

func TestDockerCompose(t *testing.T) {
	ds := docs(t, filepath.Join(envoyDir, "docker-compose.yaml"))
	if len(ds) != 1 {
		t.Fatalf("docker-compose.yaml has %d documents", len(ds))
	}
	svcs := ds[0]["services"].(map[string]any)
	img, _ := nested(svcs, "envoy", "image").(string)
	if !regexp.MustCompile(`^envoyproxy/envoy(-distroless)?:(distroless-)?v1\.\d+\.\d+$`).MatchString(img) {
		t.Errorf("envoy image %q is not pinned to a release", img)
	}
	mounts := func(svc string) []string { return toStrings(nested(svcs, svc, "volumes")) }
	for svc, file := range map[string]string{"envoy": "./envoy-compose.yaml:", "switchyard": "./compose-config.yaml:"} {
		found := false
		for _, m := range mounts(svc) {
			if strings.HasPrefix(m, file) {
				found = true
			}
		}
		if !found {
			t.Errorf("service %s does not mount %s", svc, file)
		}
	}
	if nested(svcs, "switchyard", "build", "dockerfile") != "Dockerfile" {
		t.Errorf("switchyard is not built from the repository Dockerfile")
	}

	// The compose config and the compose bootstrap agree with the network
	// (generated here; TestGeneratedFiles keeps the files equal to these).
	src, err := composeConfig(config.DefaultYAML())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(src, "compose-config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	aliases := map[string]bool{}
	for _, a := range toStrings(nested(svcs, "fakeprovider", "networks", "default", "aliases")) {
		aliases[a] = true
	}
	for name, p := range cfg.Providers {
		host, port, _ := net.SplitHostPort(p.Address)
		if !aliases[host] || port != composeProviderPort || p.TLS {
			t.Errorf("provider %s address %s (tls %v) is not a fake provider alias", name, p.Address, p.TLS)
		}
	}
	swHost, _, _ := net.SplitHostPort(cfg.Envoy.SwitchyardAddr)
	if _, ok := svcs[swHost]; !ok {
		t.Errorf("envoy.switchyard_addr %s names no compose service", cfg.Envoy.SwitchyardAddr)
	}
	snap, err := config.Compile(cfg, "compose-config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Bootstrap(snap)
	if err != nil {
		t.Fatal(err)
	}
	lp := b.GetStaticResources().GetListeners()[0].GetAddress().GetSocketAddress().GetPortValue()
	if !slices.Contains(toStrings(nested(svcs, "envoy", "ports")), itoa(int(lp))+":"+itoa(int(lp))) {
		t.Errorf("envoy listener port %d is not published", lp)
	}
}

func toStrings(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func itoa(i int) string { return strconv.Itoa(i) }
