package envoyconf

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	upstreamsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
)

// ErrValidation wraps every problem Validate finds.
var ErrValidation = errors.New("envoy config invalid")

// maxEnvoyDurationSeconds is the largest duration Envoy accepts
// (DurationUtil: 10,000 years, as protobuf's own limit).
const maxEnvoyDurationSeconds = 315576000000

// knownAttributes are the attribute names of Envoy's
// docs/root/intro/arch_overview/advanced/attributes.rst. request_attributes
// may extend one with a path (".field" or "['key']").
var knownAttributes = []string{
	"request.path", "request.url_path", "request.host", "request.scheme", "request.method",
	"request.headers", "request.referer", "request.useragent", "request.time", "request.id",
	"request.protocol", "request.query", "request.duration", "request.size", "request.total_size",
	"response.code", "response.code_details", "response.flags", "response.grpc_status",
	"response.headers", "response.trailers", "response.size", "response.total_size",
	"response.backend_latency",
	"source.address", "source.port", "destination.address", "destination.port",
	"connection.id", "connection.mtls", "connection.requested_server_name", "connection.tls_version",
	"connection.termination_details",
	"upstream.address", "upstream.port", "upstream.num_endpoints", "upstream.tls_version",
	"upstream.local_address", "upstream.transport_failure_reason",
	"upstream.request_attempt_count", "upstream.cx_pool_ready_duration", "upstream.locality",
	"metadata", "filter_state", "upstream_filter_state",
	"xds.node", "xds.cluster_name", "xds.cluster_metadata", "xds.listener_direction",
	"xds.listener_metadata", "xds.route_name", "xds.route_metadata", "xds.virtual_host_name",
	"xds.virtual_host_metadata", "xds.upstream_host_metadata",
	"xds.upstream_host_locality_metadata", "xds.filter_chain_name",
}

// Validate checks a bootstrap the way Envoy would and more:
//   - ValidateAll on the bootstrap and on every message packed in a
//     google.protobuf.Any, recursively (ValidateAll stops at Any);
//   - every Any resolves to a known type and carries no unknown fields;
//   - every Duration is valid, non-negative and within Envoy's range
//     (PGV has no rule on per_try_timeout or route timeouts);
//   - the Switchyard contract: router last in the HCM, upstream_codec last in
//     cluster http_filters, the router-role ext_proc asks for no attributes
//     and the upstream role does (the server tells them apart by that),
//     attribute names exist, clusters named by routes and ext_proc exist,
//     endpoints that select a TLS socket find one, cluster names are unique.
//
// All problems are returned joined, each naming the field path.
func Validate(b *bootstrapv3.Bootstrap) error {
	if b == nil {
		return fmt.Errorf("%w: nil bootstrap", ErrValidation)
	}
	v := &validation{}
	if err := b.ValidateAll(); err != nil {
		v.add("bootstrap", "%v", err)
	}
	v.walk(b.ProtoReflect(), "bootstrap")
	v.contract(b)
	return v.err()
}

type validation struct{ problems []string }

func (v *validation) add(path, format string, args ...any) {
	v.problems = append(v.problems, path+": "+fmt.Sprintf(format, args...))
}

func (v *validation) err() error {
	if len(v.problems) == 0 {
		return nil
	}
	return fmt.Errorf("%w:\n  %s", ErrValidation, strings.Join(v.problems, "\n  "))
}

// walk visits every message below m, opening Any values.
func (v *validation) walk(m protoreflect.Message, path string) {
	switch x := m.Interface().(type) {
	case *anypb.Any:
		v.walkAny(x, path)
		return
	case *durationpb.Duration:
		checkDuration(v, x, path)
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, val protoreflect.Value) bool {
		name := path + "." + string(fd.Name())
		switch {
		case fd.IsList() && fd.Message() != nil:
			l := val.List()
			for i := 0; i < l.Len(); i++ {
				v.walk(l.Get(i).Message(), fmt.Sprintf("%s[%d]", name, i))
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			keys := make([]string, 0, val.Map().Len())
			vals := map[string]protoreflect.Value{}
			val.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				ks := k.String()
				keys = append(keys, ks)
				vals[ks] = mv
				return true
			})
			sort.Strings(keys)
			for _, k := range keys {
				v.walk(vals[k].Message(), fmt.Sprintf("%s[%s]", name, k))
			}
		case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
			v.walk(val.Message(), name)
		}
		return true
	})
	if len(m.GetUnknown()) > 0 {
		v.add(path, "unknown fields present")
	}
}

func (v *validation) walkAny(a *anypb.Any, path string) {
	inner, err := a.UnmarshalNew()
	if err != nil {
		v.add(path, "typed_config %q cannot be decoded: %v", a.GetTypeUrl(), err)
		return
	}
	p := fmt.Sprintf("%s(%s)", path, strings.TrimPrefix(a.GetTypeUrl(), "type.googleapis.com/"))
	if vv, ok := inner.(interface{ ValidateAll() error }); ok {
		if err := vv.ValidateAll(); err != nil {
			v.add(p, "%v", err)
		}
	}
	v.walk(inner.ProtoReflect(), p)
}

func checkDuration(v *validation, d *durationpb.Duration, path string) {
	if err := d.CheckValid(); err != nil {
		v.add(path, "invalid duration: %v", err)
		return
	}
	if d.GetSeconds() < 0 || d.GetNanos() < 0 {
		v.add(path, "negative duration %s (Envoy rejects it)", d.AsDuration())
		return
	}
	if d.GetSeconds() > maxEnvoyDurationSeconds {
		v.add(path, "duration %ds is beyond Envoy's range", d.GetSeconds())
	}
}

// contract checks what PGV cannot express.
func (v *validation) contract(b *bootstrapv3.Bootstrap) {
	sr := b.GetStaticResources()
	clusters := map[string]bool{}
	for i, c := range sr.GetClusters() {
		path := fmt.Sprintf("bootstrap.static_resources.clusters[%d]", i)
		switch {
		case c.GetName() == "":
			v.add(path+".name", "empty cluster name")
		case clusters[c.GetName()]:
			v.add(path+".name", "duplicate cluster %q", c.GetName())
		}
		clusters[c.GetName()] = true
	}
	for i, c := range sr.GetClusters() {
		v.cluster(c, fmt.Sprintf("bootstrap.static_resources.clusters[%d]", i), clusters)
	}
	for i, l := range sr.GetListeners() {
		for j, fc := range l.GetFilterChains() {
			for k, f := range fc.GetFilters() {
				path := fmt.Sprintf("bootstrap.static_resources.listeners[%d].filter_chains[%d].filters[%d]", i, j, k)
				if f.GetTypedConfig().GetTypeUrl() != typeHCM {
					continue
				}
				var hcm hcmv3.HttpConnectionManager
				if err := f.GetTypedConfig().UnmarshalTo(&hcm); err != nil {
					continue // reported by walk
				}
				v.hcm(&hcm, path+".typed_config", clusters)
			}
		}
	}
}

// HCM checks the downstream filter chain and the routes.
func (v *validation) hcm(h *hcmv3.HttpConnectionManager, path string, clusters map[string]bool) {
	fs := h.GetHttpFilters()
	for i, f := range fs {
		fp := fmt.Sprintf("%s.http_filters[%d]", path, i)
		isRouter := f.GetName() == routerName
		if isRouter && i != len(fs)-1 {
			v.add(fp, "envoy.filters.http.router must be the last http filter")
		}
		if ep := extProcOf(f); ep != nil {
			if len(ep.GetRequestAttributes()) > 0 {
				v.add(fp+".request_attributes", "the router-role ext_proc must not request attributes (Switchyard tells the roles apart by their presence)")
			}
			v.extProcCluster(ep, fp, clusters)
		}
	}
	if n := len(fs); n == 0 || fs[n-1].GetName() != routerName {
		v.add(path+".http_filters", "the last http filter must be envoy.filters.http.router")
	}
	for i, vh := range h.GetRouteConfig().GetVirtualHosts() {
		for j, r := range vh.GetRoutes() {
			c := r.GetRoute().GetCluster()
			if r.GetRoute() != nil && c != "" && !clusters[c] {
				v.add(fmt.Sprintf("%s.route_config.virtual_hosts[%d].routes[%d].route.cluster", path, i, j), "unknown cluster %q", c)
			}
		}
	}
}

func (v *validation) cluster(c *clusterv3.Cluster, path string, clusters map[string]bool) {
	la := c.GetLoadAssignment()
	if la != nil && la.GetClusterName() != c.GetName() {
		v.add(path+".load_assignment.cluster_name", "%q differs from the cluster name %q", la.GetClusterName(), c.GetName())
	}
	if c.GetType() == clusterv3.Cluster_LOGICAL_DNS {
		n := 0
		for _, lle := range la.GetEndpoints() {
			n += len(lle.GetLbEndpoints())
		}
		if n != 1 {
			v.add(path, "a LOGICAL_DNS cluster must have exactly one endpoint (has %d)", n)
		}
	}
	// An endpoint that asks for a transport socket no match provides would
	// silently get the cluster default (plaintext) and send API keys in clear.
	var matches []map[string]string
	for _, m := range c.GetTransportSocketMatches() {
		want := map[string]string{}
		for k, f := range m.GetMatch().GetFields() {
			want[k] = f.GetStringValue()
		}
		matches = append(matches, want)
	}
	for i, lle := range la.GetEndpoints() {
		for j, lbe := range lle.GetLbEndpoints() {
			md := lbe.GetMetadata().GetFilterMetadata()[transportSocketMatchNS]
			if md == nil {
				continue
			}
			if !anyMatch(matches, md.GetFields()) {
				v.add(fmt.Sprintf("%s.load_assignment.endpoints[%d].lb_endpoints[%d].metadata", path, i, j),
					"transport socket match metadata %v selects no transport_socket_matches entry (the endpoint would fall back to plaintext)", md.AsMap())
			}
		}
	}
	opts := c.GetTypedExtensionProtocolOptions()[httpOptionsKey]
	if opts == nil {
		return
	}
	var hpo upstreamsv3.HttpProtocolOptions
	if err := opts.UnmarshalTo(&hpo); err != nil {
		return // reported by walk
	}
	hp := fmt.Sprintf("%s.typed_extension_protocol_options[%s]", path, httpOptionsKey)
	fs := hpo.GetHttpFilters()
	for i, f := range fs {
		fp := fmt.Sprintf("%s.http_filters[%d]", hp, i)
		if f.GetName() == upstreamCodecName && i != len(fs)-1 {
			v.add(fp, "envoy.filters.http.upstream_codec must be the last upstream http filter")
		}
		if ep := extProcOf(f); ep != nil {
			if len(ep.GetRequestAttributes()) == 0 {
				v.add(fp+".request_attributes", "the upstream-role ext_proc must request attributes (the server tells the roles apart by their presence)")
			}
			for k, a := range ep.GetRequestAttributes() {
				if !knownAttribute(a) {
					v.add(fmt.Sprintf("%s.request_attributes[%d]", fp, k), "%q is not an Envoy attribute", a)
				}
			}
			v.extProcCluster(ep, fp, clusters)
		}
	}
	if n := len(fs); n > 0 && fs[n-1].GetName() != upstreamCodecName {
		v.add(hp+".http_filters", "the last upstream http filter must be envoy.filters.http.upstream_codec")
	}
}

func (v *validation) extProcCluster(ep *extprocv3.ExternalProcessor, path string, clusters map[string]bool) {
	name := ep.GetGrpcService().GetEnvoyGrpc().GetClusterName()
	if name != "" && !clusters[name] {
		v.add(path+".grpc_service.envoy_grpc.cluster_name", "unknown cluster %q", name)
	}
}

func extProcOf(f *hcmv3.HttpFilter) *extprocv3.ExternalProcessor {
	tc := f.GetTypedConfig()
	if tc == nil {
		return nil
	}
	var ep extprocv3.ExternalProcessor
	if tc.MessageIs(&ep) && tc.UnmarshalTo(&ep) == nil {
		return &ep
	}
	return nil
}

func anyMatch(matches []map[string]string, have map[string]*structpb.Value) bool {
	for _, want := range matches {
		ok := true
		for k, wv := range want {
			if hv, found := have[k]; !found || hv.GetStringValue() != wv {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func knownAttribute(a string) bool {
	return slices.ContainsFunc(knownAttributes, func(k string) bool {
		return a == k || strings.HasPrefix(a, k+".") || strings.HasPrefix(a, k+"[")
	})
}

// validMessage applies the Validate walk (ValidateAll inside every Any,
// durations) to any message; Istio patches use it for their embedded values.
func validMessage(m proto.Message) error {
	v := &validation{}
	if vv, ok := m.(interface{ ValidateAll() error }); ok {
		if err := vv.ValidateAll(); err != nil {
			v.add(string(m.ProtoReflect().Descriptor().FullName()), "%v", err)
		}
	}
	v.walk(m.ProtoReflect(), string(m.ProtoReflect().Descriptor().Name()))
	return v.err()
}
