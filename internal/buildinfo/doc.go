// Package buildinfo reports which k3sctl this is: version and commit set at
// link time, falling back to what the Go toolchain recorded for `go install`.
package buildinfo
