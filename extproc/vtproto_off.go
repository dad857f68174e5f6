//go:build !vtprotobuf

package extproc

// vtprotobufBuild: see vtproto_on.go.
const vtprotobufBuild = false
