package envoyconf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sort"
	"strconv"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	yamlv3 "go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"sigs.k8s.io/yaml"

	"github.com/switchyard-llm/switchyard/internal/config"
)

// IstioOptions places the generated Istio resources. Zero fields take the
// defaults shown.
type IstioOptions struct {
	// Namespace is Switchyard's namespace ("switchyard"); ServiceEntry and
	// DestinationRule objects go there too.
	Namespace string
	// Service and GRPCPort name Switchyard's Kubernetes Service ("switchyard", 50051).
	Service  string
	GRPCPort int
	// GatewayNamespace holds the gateway workload and the EnvoyFilters ("istio-system").
	GatewayNamespace string
	// GatewayLabels select the gateway pods ({istio: ingressgateway}).
	GatewayLabels map[string]string
	// GatewayPort is the Gateway server port the routes are added to (80).
	GatewayPort int
	// ListenerPort is the gateway pod's listener port for that server, which
	// gets the body buffer limit (8080 in the default ingress gateway).
	ListenerPort int
	// CAFile verifies provider certificates (DefaultCAFile).
	CAFile string
}

func (o IstioOptions) withDefaults() IstioOptions {
	if o.Namespace == "" {
		o.Namespace = "switchyard"
	}
	if o.Service == "" {
		o.Service = "switchyard"
	}
	if o.GRPCPort == 0 {
		o.GRPCPort = 50051
	}
	if o.GatewayNamespace == "" {
		o.GatewayNamespace = "istio-system"
	}
	if len(o.GatewayLabels) == 0 {
		o.GatewayLabels = map[string]string{"istio": "ingressgateway"}
	}
	if o.GatewayPort == 0 {
		o.GatewayPort = 80
	}
	if o.ListenerPort == 0 {
		o.ListenerPort = 8080
	}
	return o
}

// ExtProcCluster is the name Istio gives the outbound cluster of
// Switchyard's gRPC port.
func (o IstioOptions) ExtProcCluster() string {
	o = o.withDefaults()
	return fmt.Sprintf("outbound|%d||%s.%s.svc.cluster.local", o.GRPCPort, o.Service, o.Namespace)
}

// GenerateIstio renders the Istio resources for namespace with the other
// options at their defaults. It is the CLI entry point.
func GenerateIstio(snap *config.Snapshot, namespace string) ([]byte, error) {
	return Istio(snap, IstioOptions{Namespace: namespace})
}

// Istio renders, as multi-document YAML, what attaches Switchyard to an
// Istio ingress gateway (envoy-ext-proc.md §7):
//   - EnvoyFilter switchyard-ext-proc: the router-role ext_proc inserted
//     before the router of every gateway HCM, and the listener's buffer limit;
//   - EnvoyFilter switchyard-clusters: the target clusters, ADDed whole
//     (priorities, endpoint metadata, TLS, upstream ext_proc) because Istio's
//     own per-service clusters cannot carry per-target endpoint metadata;
//   - EnvoyFilter switchyard-routes: the x-switchyard-target routes inserted
//     first into the gateway's virtual host;
//   - Gateway and VirtualService switchyard: the server whose virtual host the
//     routes join, with the no-target 503 as the VirtualService route;
//   - a ServiceEntry (and a DestinationRule for TLS origination) per external
//     provider, for mesh workloads that call providers themselves.
//
// Every embedded Envoy value is produced by the same builders as the
// bootstrap and checked with ValidateIstio before it is returned.
func Istio(snap *config.Snapshot, opts IstioOptions) ([]byte, error) {
	opts = opts.withDefaults()
	g, err := newGenerator(snap, Options{CAFile: opts.CAFile, ExtProcCluster: opts.ExtProcCluster()})
	if err != nil {
		return nil, err
	}
	docs, err := g.istioDocs(opts)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.WriteString(GeneratedHeader)
	buf.WriteString(istioPreamble)
	for _, d := range docs {
		y, err := yaml.Marshal(d.obj)
		if err != nil {
			return nil, fmt.Errorf("render istio %s: %w", d.name, err)
		}
		buf.WriteString("---\n")
		for _, c := range d.comments {
			buf.WriteString("# " + c + "\n")
		}
		buf.Write(y)
	}
	out := buf.Bytes()
	if err := ValidateIstio(out); err != nil {
		return nil, fmt.Errorf("generated istio resources failed validation (a generator bug): %w", err)
	}
	return out, nil
}

const istioPreamble = `# Switchyard on an Istio ingress gateway. What is not confirmed against a
# running Istio is marked UNCONFIRMED below (README "Envoy and Istio").
# Apply after Switchyard's Deployment and Service (envoy/k8s/).
`

type doc struct {
	name     string
	comments []string
	obj      map[string]any
}

func (g *generator) istioDocs(o IstioOptions) ([]doc, error) {
	limit, err := g.bodyLimit()
	if err != nil {
		return nil, err
	}
	selector := map[string]any{"labels": o.GatewayLabels}
	filters, err := g.hcmFilters()
	if err != nil {
		return nil, err
	}
	extProc, err := toValue(filters[0])
	if err != nil {
		return nil, err
	}
	extProcDoc := envoyFilter("switchyard-ext-proc", o.GatewayNamespace, selector, []any{
		map[string]any{
			"applyTo": "HTTP_FILTER",
			"match": map[string]any{"context": "GATEWAY", "listener": map[string]any{"filterChain": map[string]any{"filter": map[string]any{
				"name": hcmName, "subFilter": map[string]any{"name": routerName},
			}}}},
			"patch": map[string]any{"operation": "INSERT_BEFORE", "value": extProc},
		},
		map[string]any{
			"applyTo": "LISTENER",
			"match":   map[string]any{"context": "GATEWAY", "listener": map[string]any{"portNumber": o.ListenerPort}},
			"patch": map[string]any{"operation": "MERGE", "value": map[string]any{
				"per_connection_buffer_limit_bytes": limit,
			}},
		},
	})

	var clusterPatches []any
	clusters, err := g.targetClusters()
	if err != nil {
		return nil, err
	}
	for _, c := range clusters {
		v, err := toValue(c)
		if err != nil {
			return nil, err
		}
		clusterPatches = append(clusterPatches, map[string]any{
			"applyTo": "CLUSTER",
			"match":   map[string]any{"context": "GATEWAY"},
			"patch":   map[string]any{"operation": "ADD", "value": v},
		})
	}
	clusterDoc := envoyFilter("switchyard-clusters", o.GatewayNamespace, selector, clusterPatches)

	// INSERT_FIRST puts each route at the head, so insert in reverse to keep
	// target order; all of them precede the VirtualService's routes.
	vhost := fmt.Sprintf("*:%d", o.GatewayPort)
	var routePatches []any
	for i := len(g.snap.TargetNames) - 1; i >= 0; i-- {
		t, _ := g.snap.Target(g.snap.TargetNames[i])
		r, err := g.targetRoute(t)
		if err != nil {
			return nil, err
		}
		v, err := toValue(r)
		if err != nil {
			return nil, err
		}
		routePatches = append(routePatches, map[string]any{
			"applyTo": "HTTP_ROUTE",
			"match": map[string]any{"context": "GATEWAY", "routeConfiguration": map[string]any{
				"portNumber": o.GatewayPort, "vhost": map[string]any{"name": vhost},
			}},
			"patch": map[string]any{"operation": "INSERT_FIRST", "value": v},
		})
	}
	routeDoc := envoyFilter("switchyard-routes", o.GatewayNamespace, selector, routePatches)

	docs := []doc{
		{name: "ext-proc", obj: extProcDoc, comments: []string{
			"Router-role ext_proc before the router of every gateway HTTP connection manager.",
			fmt.Sprintf("It dials Istio's cluster for Switchyard's grpc port: %s.", o.ExtProcCluster()),
			"UNCONFIRMED: the gateway has that cluster only if its config scope includes the",
			"switchyard Service (default; not with a Sidecar or PILOT_FILTER_GATEWAY_CLUSTER_CONFIG),",
			"and Istio speaks HTTP/2 to it because the port is named grpc / appProtocol grpc.",
			fmt.Sprintf("UNCONFIRMED: listener portNumber %d is the gateway pod's port for server port %d.", o.ListenerPort, o.GatewayPort),
		}},
		{name: "clusters", obj: clusterDoc, comments: []string{
			"One cluster per target, identical to the standalone bootstrap's (envoy/envoy.yaml).",
			"UNCONFIRMED: an in-mesh on-prem endpoint with STRICT mTLS needs PERMISSIVE on its port:",
			"these clusters do not use Istio's mTLS certificates.",
		}},
		{name: "routes", obj: routeDoc, comments: []string{
			"x-switchyard-target routes, inserted before the VirtualService's routes.",
			fmt.Sprintf("UNCONFIRMED: the virtual host name %q (check: istioctl proxy-config routes <gateway-pod>).", vhost),
		}},
		{name: "gateway", obj: gateway(o), comments: []string{
			"The gateway server the routes join. Use your own Gateway if you have one and set",
			"IstioOptions.GatewayPort / the vhost name to match it.",
		}},
		{name: "virtualservice", obj: virtualService(o), comments: []string{
			"Makes the virtual host exist and answers /v1/ requests no target was chosen for.",
		}},
	}
	ext, err := g.providerDocs(o)
	if err != nil {
		return nil, err
	}
	return append(docs, ext...), nil
}

func envoyFilter(name, ns string, selector map[string]any, patches []any) map[string]any {
	return map[string]any{
		"apiVersion": "networking.istio.io/v1alpha3",
		"kind":       "EnvoyFilter",
		"metadata":   map[string]any{"name": name, "namespace": ns, "labels": map[string]any{"app.kubernetes.io/part-of": "switchyard"}},
		"spec":       map[string]any{"workloadSelector": selector, "configPatches": patches},
	}
}

func gateway(o IstioOptions) map[string]any {
	return map[string]any{
		"apiVersion": "networking.istio.io/v1",
		"kind":       "Gateway",
		"metadata":   map[string]any{"name": "switchyard", "namespace": o.GatewayNamespace},
		"spec": map[string]any{
			"selector": o.GatewayLabels,
			"servers": []any{map[string]any{
				"port":  map[string]any{"number": o.GatewayPort, "name": "http-llm", "protocol": "HTTP"},
				"hosts": []any{"*"},
			}},
		},
	}
}

func virtualService(o IstioOptions) map[string]any {
	return map[string]any{
		"apiVersion": "networking.istio.io/v1",
		"kind":       "VirtualService",
		"metadata":   map[string]any{"name": "switchyard", "namespace": o.GatewayNamespace},
		"spec": map[string]any{
			"hosts":    []any{"*"},
			"gateways": []any{"switchyard"},
			"http": []any{map[string]any{
				"name":  "no-target",
				"match": []any{map[string]any{"uri": map[string]any{"prefix": apiPrefix}}},
				"directResponse": map[string]any{
					"status": 503,
					"body":   map[string]any{"string": NoTargetBody},
				},
				"headers": map[string]any{"response": map[string]any{"set": map[string]any{"content-type": "application/json"}}},
			}},
		},
	}
}

// providerDocs registers every provider outside the cluster. The gateway's
// target clusters do not use these (they dial and verify providers
// themselves); they let mesh workloads — Switchyard's optional LLM
// classifier, or anything in a REGISTRY_ONLY mesh — reach the provider, and
// the DestinationRule originates TLS for workloads that call it over plain
// HTTP on port 80 (Istio's egress TLS origination pattern).
func (g *generator) providerDocs(o IstioOptions) ([]doc, error) {
	type ext struct {
		host string
		port int
		tls  bool
	}
	seen := map[string]ext{}
	for _, m := range g.snap.Models() {
		if m.OnPrem || m.Provider.OnPrem {
			continue
		}
		host, portS, err := net.SplitHostPort(m.Addr)
		if err != nil {
			return nil, fmt.Errorf("%w: model %q address %q: %w", ErrInvalid, m.Name, m.Addr, err)
		}
		port, _ := strconv.Atoi(portS)
		if m.Provider.TLS {
			host = tlsServerName(m)
		}
		seen[host] = ext{host: host, port: port, tls: m.Provider.TLS}
	}
	hosts := make([]string, 0, len(seen))
	for h := range seen {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	var docs []doc
	for _, h := range hosts {
		e := seen[h]
		name := "llm-" + dnsLabel(h)
		ports := []any{}
		if e.tls {
			ports = append(ports,
				map[string]any{"number": 80, "name": "http", "protocol": "HTTP", "targetPort": e.port},
				map[string]any{"number": e.port, "name": "tls", "protocol": "TLS"})
		} else {
			ports = append(ports, map[string]any{"number": e.port, "name": "http", "protocol": "HTTP"})
		}
		docs = append(docs, doc{name: name, comments: []string{"External provider " + h + "."}, obj: map[string]any{
			"apiVersion": "networking.istio.io/v1",
			"kind":       "ServiceEntry",
			"metadata":   map[string]any{"name": name, "namespace": o.Namespace},
			"spec": map[string]any{
				"hosts":      []any{h},
				"location":   "MESH_EXTERNAL",
				"resolution": "DNS",
				"ports":      ports,
			},
		}})
		if !e.tls {
			continue
		}
		docs = append(docs, doc{name: name + "-tls", comments: []string{
			"TLS origination for mesh workloads calling http://" + h + " (port 80).",
		}, obj: map[string]any{
			"apiVersion": "networking.istio.io/v1",
			"kind":       "DestinationRule",
			"metadata":   map[string]any{"name": name, "namespace": o.Namespace},
			"spec": map[string]any{
				"host": h,
				"trafficPolicy": map[string]any{"portLevelSettings": []any{map[string]any{
					"port": map[string]any{"number": 80},
					"tls":  map[string]any{"mode": "SIMPLE", "sni": h},
				}}},
			},
		}})
	}
	return docs, nil
}

// dnsLabel turns a host name into a Kubernetes object name.
func dnsLabel(h string) string {
	b := []byte(h)
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '.':
		case c >= 'A' && c <= 'Z':
			b[i] = c + 'a' - 'A'
		default:
			b[i] = '-'
		}
	}
	return string(b)
}

// ValidateIstio checks rendered Istio YAML: every document parses, every
// EnvoyFilter patch has an applyTo, a match context and an operation, and
// every Envoy value embedded in a patch decodes strictly (unknown fields are
// errors) into the go-control-plane type its applyTo implies and passes the
// same checks as the bootstrap (ValidateAll inside every Any, durations).
// Listener MERGE values are partial listeners and are decoded, not
// required to be complete.
func ValidateIstio(data []byte) error {
	dec := yamlv3.NewDecoder(bytes.NewReader(data))
	var problems []error
	for i := 0; ; i++ {
		var node map[string]any
		err := dec.Decode(&node)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("istio document %d: %w", i, err)
		}
		if node == nil {
			continue
		}
		kind, _ := node["kind"].(string)
		name, _ := nested(node, "metadata", "name").(string)
		if kind == "" || name == "" {
			problems = append(problems, fmt.Errorf("istio document %d: missing kind or metadata.name", i))
			continue
		}
		if kind != "EnvoyFilter" {
			continue
		}
		patches, _ := nested(node, "spec", "configPatches").([]any)
		if len(patches) == 0 {
			problems = append(problems, fmt.Errorf("EnvoyFilter %s: no configPatches", name))
		}
		for j, p := range patches {
			if err := validatePatch(p); err != nil {
				problems = append(problems, fmt.Errorf("EnvoyFilter %s configPatches[%d]: %w", name, j, err))
			}
		}
	}
	return errors.Join(problems...)
}

func validatePatch(p any) error {
	m, ok := p.(map[string]any)
	if !ok {
		return errors.New("not a mapping")
	}
	applyTo, _ := m["applyTo"].(string)
	op, _ := nested(m, "patch", "operation").(string)
	ctx, _ := nested(m, "match", "context").(string)
	if applyTo == "" || op == "" || ctx == "" {
		return fmt.Errorf("applyTo %q, match.context %q and patch.operation %q must all be set", applyTo, ctx, op)
	}
	if !slices.Contains([]string{"GATEWAY", "SIDECAR_INBOUND", "SIDECAR_OUTBOUND", "ANY"}, ctx) {
		return fmt.Errorf("match.context %q is not an Istio patch context", ctx)
	}
	value := nested(m, "patch", "value")
	js, err := yaml.Marshal(value)
	if err != nil {
		return err
	}
	if js, err = yaml.YAMLToJSON(js); err != nil {
		return err
	}
	switch applyTo {
	case "HTTP_FILTER":
		var f hcmv3.HttpFilter
		if err := decodeStrict(js, &f); err != nil {
			return err
		}
		if f.GetTypedConfig() == nil {
			return errors.New("http filter without typed_config")
		}
		if _, err := anypb.UnmarshalNew(f.GetTypedConfig(), protoUnmarshal); err != nil {
			return err
		}
	case "CLUSTER":
		var c clusterv3.Cluster
		if err := decodeStrict(js, &c); err != nil {
			return err
		}
		// The gateway has Istio's own clusters too; only check ours.
		v := &validation{}
		v.cluster(&c, "cluster", map[string]bool{c.GetName(): true, clusterNameOf(&c): true})
		if err := v.err(); err != nil {
			return err
		}
	case "HTTP_ROUTE":
		var r routev3.Route
		if err := decodeStrict(js, &r); err != nil {
			return err
		}
	case "LISTENER":
		var l listenerv3.Listener
		// Partial (MERGE) values: strict field names, no completeness check.
		if err := protoUnmarshalJSON(js, &l); err != nil {
			return err
		}
	default:
		return fmt.Errorf("applyTo %q is not checked by ValidateIstio", applyTo)
	}
	return nil
}

// clusterNameOf returns the ext_proc cluster a target cluster's upstream
// filter names, which is Istio's and not in the patch.
func clusterNameOf(c *clusterv3.Cluster) string {
	opts := c.GetTypedExtensionProtocolOptions()[httpOptionsKey]
	if opts == nil {
		return ""
	}
	hpo, err := anypb.UnmarshalNew(opts, protoUnmarshal)
	if err != nil {
		return ""
	}
	type filters interface{ GetHttpFilters() []*hcmv3.HttpFilter }
	f, ok := hpo.(filters)
	if !ok {
		return ""
	}
	for _, hf := range f.GetHttpFilters() {
		if ep := extProcOf(hf); ep != nil {
			return ep.GetGrpcService().GetEnvoyGrpc().GetClusterName()
		}
	}
	return ""
}

func nested(m any, keys ...string) any {
	for _, k := range keys {
		mm, ok := m.(map[string]any)
		if !ok {
			return nil
		}
		m = mm[k]
	}
	return m
}
