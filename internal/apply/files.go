package apply

import (
	"context"
	"os"

	"github.com/k3sctl/k3sctl/internal/node"
	"github.com/k3sctl/k3sctl/internal/plan"
)

// writeFiles puts every small file of a host in place in one round trip
// (node.WriteFiles) and returns the paths that changed.
func writeFiles(ctx context.Context, conn Conn, files []plan.RemoteFile, after string) ([]string, error) {
	nf := make([]node.File, len(files))
	for i, f := range files {
		nf[i] = node.File{Path: f.Path, Mode: os.FileMode(f.Mode), Data: f.Data}
	}
	return node.WriteFiles(ctx, conn, nf, after)
}
