package apply

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/k3sctl/k3sctl/internal/plan"
	"github.com/k3sctl/k3sctl/internal/ssh"
)

// staleConn records the commands a host is asked to run, in order.
type staleConn struct {
	*fakeConn
	mu  sync.Mutex
	ran []string
}

func (c *staleConn) Run(ctx context.Context, cmd string, o ssh.RunOptions) (ssh.Result, error) {
	c.mu.Lock()
	c.ran = append(c.ran, cmd)
	c.mu.Unlock()
	return c.fakeConn.Run(ctx, cmd, o)
}

func (c *staleConn) Upload(ctx context.Context, src, dst string, o ssh.UploadOptions) (ssh.UploadResult, error) {
	c.mu.Lock()
	c.ran = append(c.ran, "upload "+dst)
	c.mu.Unlock()
	return c.fakeConn.Upload(ctx, src, dst, o)
}

// The temporary files the facts found are removed before the host's first
// write, and said; a host without any is not asked.
func TestStaleTemporaryFilesAreRemovedBeforeTheFirstWrite(t *testing.T) {
	f := newTestFleet(nil)
	p := f.plan(t)
	leftovers := []string{"/usr/local/bin/.k3sctl-0a1b-k3s.tmp", "/tmp/k3sctl-upload-0a1b2c"}
	for ci := range p.Clusters {
		for hi := range p.Clusters[ci].Hosts {
			if p.Clusters[ci].Hosts[hi].Address == "t1" {
				p.Clusters[ci].Hosts[hi].Stale = leftovers
			}
		}
	}
	conns := map[string]Conn{}
	names := map[string]string{}
	stale := map[string]*staleConn{}
	for a, c := range f.conns {
		sc := &staleConn{fakeConn: c}
		stale[a], conns[a], names[a] = sc, sc, a
	}
	rec := &Recorder{}
	_, err := Run(context.Background(), Options{
		Plan: p, Spec: f.spec, Conns: conns, Hostnames: names, Tokens: f.tokens, Sink: rec, PollInterval: time.Millisecond,
		Binary: func(ctx context.Context, key plan.BinaryKey, progress func(done, total int64)) (string, error) {
			return "/bin/true", nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	for a, sc := range stale {
		var cleanups int
		for _, cmd := range sc.ran {
			if strings.HasPrefix(cmd, "rm -f -- ") {
				cleanups++
			}
		}
		if a != "t1" {
			if cleanups != 0 {
				t.Errorf("%s: cleanup ran without stale files: %q", a, sc.ran)
			}
			continue
		}
		if cleanups != 1 || sc.ran[0] != "rm -f -- "+strings.Join(leftovers, " ") {
			t.Fatalf("%s: commands %q, want the cleanup first", a, sc.ran)
		}
	}
	var logged []string
	for _, e := range rec.Events() {
		if e.Type == EventLog && e.Host == "t1" && strings.HasPrefix(e.Message, "removed ") {
			logged = append(logged, e.Message)
			if e.Step != plan.StepUploadBinary {
				t.Errorf("cleanup reported under step %q", e.Step)
			}
		}
	}
	if len(logged) != 2 || !strings.Contains(logged[1], "/tmp/k3sctl-upload-0a1b2c") {
		t.Errorf("logged %q", logged)
	}
}
