package apply

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/k3sctl/k3sctl/internal/plan"
	"github.com/k3sctl/k3sctl/internal/ssh"
)

// failedConn is a host whose wait loop sees K3s fail and stay failed.
type failedConn struct{ *fakeConn }

func (c *failedConn) Run(ctx context.Context, cmd string, o ssh.RunOptions) (ssh.Result, error) {
	if isWait(cmd) {
		for _, s := range []string{"activating", "failed"} {
			o.OnLine("stdout", s)
		}
		return ssh.Result{Stdout: []byte("activating\nfailed\n")}, nil
	}
	if strings.Contains(cmd, "journalctl") {
		return ssh.Result{Stdout: []byte("level=fatal msg=\"starting kubernetes: preparing server: bootstrap data already found and encrypted with different token\"\n")}, nil
	}
	return c.fakeConn.Run(ctx, cmd, o)
}

// The state the host's loop ended in is the answer: a unit that stays
// failed fails the wait without waiting out the timeout, with each
// state shown and the log's tail.
func TestWaitEndsWithTheHostsLoop(t *testing.T) {
	f := newTestFleet(nil)
	f.spec.Clusters = f.spec.Clusters[1:]
	p := f.plan(t)
	conns := map[string]Conn{}
	names := map[string]string{}
	for a, c := range f.conns {
		conns[a], names[a] = c, a
	}
	conns["t1"] = &failedConn{f.conns["t1"]}
	rec := &Recorder{}
	res, err := Run(context.Background(), Options{
		Plan: p, Spec: f.spec, Conns: conns, Hostnames: names, Tokens: f.tokens, Sink: rec,
		PollInterval: time.Millisecond, ReadyTimeout: time.Hour,
		Binary: func(ctx context.Context, key plan.BinaryKey, progress func(done, total int64)) (string, error) {
			return "/bin/true", nil
		},
	})
	if !errors.Is(err, ErrHostsFailed) {
		t.Fatalf("err = %v", err)
	}
	r := resultOf(res, "t1")
	if r.Status != StatusFailed || !strings.Contains(r.Error, "(state: failed)") {
		t.Errorf("t1: %s %q", r.Status, r.Error)
	}
	var lines []string
	var failed Event
	for _, e := range rec.Events() {
		if e.Host != "t1" || e.Step != plan.StepWaitReady {
			continue
		}
		switch e.Type {
		case EventLog:
			lines = append(lines, e.Message)
		case EventStepFailed:
			failed = e
		}
	}
	if strings.Join(lines, "|") != "k3s activating|k3s failed" {
		t.Errorf("log lines %q, want each state once", lines)
	}
	if len(failed.LogTail) == 0 || failed.Hint == "" {
		t.Errorf("step failure without the log tail or a hint: %+v", failed)
	}
}
