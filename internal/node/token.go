package node

import (
	"context"
	"fmt"
	"strings"

	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/secret"
)

// ReadToken reads the cluster's full join token from a server
// (k3s.TokenPath). A missing file matches fs.ErrNotExist; an empty one is
// an error too, since K3s writes the file whole.
func ReadToken(ctx context.Context, c Conn) (secret.Value, error) {
	data, err := c.ReadFile(ctx, k3s.TokenPath)
	if err != nil {
		return secret.Value{}, err
	}
	tok := strings.TrimSpace(string(data))
	if tok == "" {
		return secret.Value{}, fmt.Errorf("%s: read %s: the file is empty", c.Host(), k3s.TokenPath)
	}
	return secret.New(tok), nil
}
