package apply

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/k3sctl/k3sctl/internal/plan"
	"github.com/k3sctl/k3sctl/internal/ssh"
)

// slowConn is a host whose K3s never becomes ready; cancel, when set, is
// called once the wait on the host has reported K3s activating.
type slowConn struct {
	*fakeConn
	mu     sync.Mutex
	polls  int
	cancel context.CancelFunc
}

func (c *slowConn) Run(ctx context.Context, cmd string, o ssh.RunOptions) (ssh.Result, error) {
	switch {
	case isWait(cmd):
		// The host's loop sees K3s activating until the run gives up.
		c.mu.Lock()
		c.polls++
		c.mu.Unlock()
		o.OnLine("stdout", "activating")
		if c.cancel != nil {
			c.cancel()
		}
		<-ctx.Done()
		return ssh.Result{Stdout: []byte("activating\n")}, ctx.Err()
	case strings.Contains(cmd, "journalctl"):
		return ssh.Result{Stdout: []byte("level=info msg=\"Starting k3s\"\n")}, nil
	}
	return c.fakeConn.Run(ctx, cmd, o)
}

func runSlow(t *testing.T, ctx context.Context, cancel context.CancelFunc, timeout time.Duration) ([]HostResult, []Event, error) {
	t.Helper()
	f := newTestFleet(nil)
	f.spec.Clusters = f.spec.Clusters[1:] // one server, one agent
	p := f.plan(t)
	conns := map[string]Conn{}
	names := map[string]string{}
	for a, c := range f.conns {
		conns[a], names[a] = c, a
	}
	conns["t1"] = &slowConn{fakeConn: f.conns["t1"], cancel: cancel}
	rec := &Recorder{}
	res, err := Run(ctx, Options{
		Plan: p, Spec: f.spec, Conns: conns, Hostnames: names, Tokens: f.tokens, Sink: rec,
		PollInterval: time.Millisecond, ReadyTimeout: timeout,
		Binary: func(ctx context.Context, key plan.BinaryKey, progress func(done, total int64)) (string, error) {
			return "/bin/true", nil
		},
	})
	return res, rec.Events(), err
}

func resultOf(res []HostResult, host string) HostResult {
	for _, r := range res {
		if r.Host == host {
			return r
		}
	}
	return HostResult{}
}

func TestInterruptedWaitSaysSo(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res, events, err := runSlow(t, ctx, cancel, time.Hour)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want the interruption", err)
	}
	r := resultOf(res, "t1")
	if r.Status != StatusCancelled {
		t.Errorf("t1 status %s, want cancelled", r.Status)
	}
	if !strings.Contains(r.Error, "interrupted while waiting for k3s to become ready (state: activating)") || strings.Contains(r.Error, "not ready after") {
		t.Errorf("t1 error %q", r.Error)
	}
	for _, e := range events {
		if e.Type == EventStepFailed && e.Host == "t1" {
			if e.Step != plan.StepWaitReady || strings.Contains(e.Error, "not ready") || e.Hint != "" || len(e.LogTail) != 0 {
				t.Errorf("step failure event %+v", e)
			}
		}
	}
}

func TestWaitTimeoutStillSaysNotReady(t *testing.T) {
	res, _, err := runSlow(t, context.Background(), nil, 20*time.Millisecond)
	if !errors.Is(err, ErrHostsFailed) {
		t.Fatalf("err = %v", err)
	}
	r := resultOf(res, "t1")
	if r.Status != StatusFailed || !strings.Contains(r.Error, "k3s not ready after 20ms (state: activating)") {
		t.Errorf("t1: %s %q", r.Status, r.Error)
	}
}

func TestInterruptedWords(t *testing.T) {
	if err := interrupted("reading x", context.Canceled); !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "interrupted while reading x") {
		t.Errorf("%v", err)
	}
	if err := interrupted("reading x", context.DeadlineExceeded); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "deadline") {
		t.Errorf("%v", err)
	}
}
