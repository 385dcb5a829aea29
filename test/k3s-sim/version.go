package main

import (
	"crypto/sha1"
	"encoding/hex"
	"runtime"
	"strings"
)

// version is set at build time: -ldflags "-X main.version=v1.31.4+k3s1".
var version = "v1.31.4+k3s1"

// gitCommit stands in for the commit a release was built from; it is
// derived from the version so that a given version always reports the same.
func gitCommit() string {
	d := sha1.Sum([]byte("k3s " + version))
	return hex.EncodeToString(d[:])
}

func shortCommit() string { return gitCommit()[:8] }

func versionLines() string {
	return "k3s version " + version + " (" + shortCommit() + ")\ngo version " + runtime.Version() + "\n"
}

// kubeMinor splits "v1.31.4+k3s1" into "1" and "31".
func kubeMajorMinor() (string, string) {
	v := strings.TrimPrefix(version, "v")
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return "1", "0"
	}
	return parts[0], parts[1]
}

const containerRuntime = "containerd://1.7.23-k3s2"
