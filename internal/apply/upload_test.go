package apply

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/plan"
	"github.com/k3sctl/k3sctl/internal/ssh"
)

type optionsConn struct {
	*fakeConn
	mu   sync.Mutex
	seen []ssh.UploadOptions
}

func (c *optionsConn) Upload(ctx context.Context, src, dst string, o ssh.UploadOptions) (ssh.UploadResult, error) {
	if dst == k3s.BinaryPath {
		c.mu.Lock()
		c.seen = append(c.seen, o)
		c.mu.Unlock()
	}
	return c.fakeConn.Upload(ctx, src, dst, o)
}

// The binary's sha256 known from fetching it, and the facts' finding that
// the host has another binary, go to the upload: neither side hashes again
// before sending.
func TestUploadUsesKnownSums(t *testing.T) {
	f := newTestFleet(nil)
	p := f.plan(t)
	conns := map[string]Conn{}
	var oc []*optionsConn
	for a, c := range f.conns {
		w := &optionsConn{fakeConn: c}
		oc = append(oc, w)
		conns[a] = w
	}
	names := map[string]string{}
	for a := range f.conns {
		names[a] = a
	}
	key := plan.BinaryKey{Version: "v1.31.4+k3s1", Arch: k3s.AMD64}
	_, err := Run(context.Background(), Options{Plan: p, Spec: f.spec, Conns: conns, Hostnames: names, Tokens: f.tokens,
		PollInterval: time.Millisecond, BinarySHA256: map[plan.BinaryKey]string{key: "abc123"},
		Binary: func(ctx context.Context, key plan.BinaryKey, progress func(done, total int64)) (string, error) {
			return "/bin/true", nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range oc {
		if len(c.seen) != 1 {
			t.Errorf("%s: %d binary uploads, want 1", c.addr, len(c.seen))
			continue
		}
		if o := c.seen[0]; o.SHA256 != "abc123" || !o.Differs {
			t.Errorf("%s: upload options %+v, want the known sha256 and Differs", c.addr, o)
		}
	}
}
