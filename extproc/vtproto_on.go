//go:build vtprotobuf

package extproc

// vtprotobufBuild reports whether go-control-plane's vtprotobuf marshalers
// are compiled in (build tag vtprotobuf); without them codec.go falls back
// to the standard proto codec.
const vtprotobufBuild = true
