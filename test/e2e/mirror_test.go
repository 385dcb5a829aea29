package e2e

import (
	"testing"

	"github.com/k3sctl/k3sctl/test/mirror"
)

// startMirror serves simulator releases v1 and v2 for amd64 on loopback;
// stable points at v2.
func startMirror(t *testing.T, opts ...mirror.Option) *mirror.Mirror {
	t.Helper()
	dir := t.TempDir()
	mirror.Build(t, dir, []string{v1, v2}, []string{"amd64"})
	return mirror.Start(t, dir, opts...)
}
