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

// staleConn is a host where an interrupted run left temporary files.
type staleConn struct {
	*fakeConn
	mu      sync.Mutex
	cleaned []string // cleanup commands run, in order with the others
	ran     []string
}

func (c *staleConn) Run(ctx context.Context, cmd string, o ssh.RunOptions) (ssh.Result, error) {
	c.mu.Lock()
	c.ran = append(c.ran, cmd)
	c.mu.Unlock()
	if strings.Contains(cmd, "k3sctl-upload-*") {
		c.mu.Lock()
		c.cleaned = append(c.cleaned, cmd)
		c.mu.Unlock()
		if !o.Sudo {
			return ssh.Result{ExitCode: 1}, nil
		}
		return ssh.Result{Stdout: []byte("removed /usr/local/bin/.k3sctl-0a1b-k3s.tmp\nremoved /tmp/k3sctl-upload-0a1b2c\n")}, nil
	}
	return c.fakeConn.Run(ctx, cmd, o)
}

func (c *staleConn) Upload(ctx context.Context, src, dst string, o ssh.UploadOptions) (ssh.UploadResult, error) {
	c.mu.Lock()
	c.ran = append(c.ran, "upload "+dst)
	c.mu.Unlock()
	return c.fakeConn.Upload(ctx, src, dst, o)
}

func TestStaleTemporaryFilesAreRemovedBeforeTheFirstWrite(t *testing.T) {
	f := newTestFleet(nil)
	p := f.plan(t)
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
		if len(sc.cleaned) != 1 {
			t.Fatalf("%s: cleanup ran %d times", a, len(sc.cleaned))
		}
		if sc.ran[0] != sc.cleaned[0] {
			t.Errorf("%s: first command %q, want the cleanup", a, sc.ran[0])
		}
		for _, dir := range []string{" /usr/local/bin ", " /etc/rancher/k3s ", " /tmp;"} {
			if !strings.Contains(sc.cleaned[0], dir) {
				t.Errorf("%s: cleanup does not look in %s", a, dir)
			}
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
