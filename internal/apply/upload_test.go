package apply

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/node"
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

type commandsConn struct {
	*fakeConn
	mu   sync.Mutex
	cmds []string
}

func (c *commandsConn) Run(ctx context.Context, cmd string, o ssh.RunOptions) (ssh.Result, error) {
	c.mu.Lock()
	c.cmds = append(c.cmds, cmd)
	c.mu.Unlock()
	return c.fakeConn.Run(ctx, cmd, o)
}

func (c *commandsConn) Upload(ctx context.Context, src, dst string, o ssh.UploadOptions) (ssh.UploadResult, error) {
	res, err := c.fakeConn.Upload(ctx, src, dst, o)
	res.SHA256 = o.SHA256
	return res, err
}

// After the binary is in place its sha256 is recorded on the host, for the
// next run's facts.
func TestUploadedBinaryIsStamped(t *testing.T) {
	f := newTestFleet(nil)
	p := f.plan(t)
	sum := strings.Repeat("ab", 32)
	conns := map[string]Conn{}
	cc := map[string]*commandsConn{}
	names := map[string]string{}
	for a, c := range f.conns {
		cc[a] = &commandsConn{fakeConn: c}
		conns[a], names[a] = cc[a], a
	}
	key := plan.BinaryKey{Version: "v1.31.4+k3s1", Arch: k3s.AMD64}
	_, err := Run(context.Background(), Options{Plan: p, Spec: f.spec, Conns: conns, Hostnames: names, Tokens: f.tokens,
		PollInterval: time.Millisecond, BinarySHA256: map[plan.BinaryKey]string{key: sum},
		Binary: func(ctx context.Context, key plan.BinaryKey, progress func(done, total int64)) (string, error) {
			return "/bin/true", nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	for a, c := range cc {
		stamped := false
		for _, cmd := range c.cmds {
			if strings.Contains(cmd, node.BinaryStampPath) && strings.Contains(cmd, sum) {
				stamped = true
			}
		}
		if !stamped {
			t.Errorf("%s: binary not stamped; commands %q", a, c.cmds)
		}
	}
}
