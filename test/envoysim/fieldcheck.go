package envoysim

import (
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// onlyFields returns an error naming the first populated field of m that is
// not in allowed. envoysim must never silently ignore configuration it does
// not emulate: a test that relies on an unemulated field would pass here and
// fail against a real Envoy.
func onlyFields(m proto.Message, path string, allowed ...string) error {
	if m == nil {
		return nil
	}
	rm := m.ProtoReflect()
	if !rm.IsValid() {
		return nil
	}
	var bad []string
	rm.Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		name := string(fd.Name())
		if !slices.Contains(allowed, name) {
			bad = append(bad, name)
		}
		return true
	})
	if len(rm.GetUnknown()) > 0 {
		bad = append(bad, "<unknown fields>")
	}
	if len(bad) == 0 {
		return nil
	}
	slices.Sort(bad)
	for i, b := range bad {
		bad[i] = path + "." + b
	}
	return fmt.Errorf("%w: %s", ErrUnsupported, strings.Join(bad, ", "))
}
