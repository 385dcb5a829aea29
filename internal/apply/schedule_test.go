package apply

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/plan"
	"github.com/k3sctl/k3sctl/internal/ssh"
)

// gatedConn holds a server's readiness check until released.
type gatedConn struct {
	*fakeConn
	release <-chan struct{}
}

func (c *gatedConn) Run(ctx context.Context, cmd string, o ssh.RunOptions) (ssh.Result, error) {
	if isWait(cmd) {
		select {
		case <-c.release:
		case <-ctx.Done():
			return ssh.Result{}, ctx.Err()
		}
	}
	return c.fakeConn.Run(ctx, cmd, o)
}

// signalConn reports when its binary upload begins.
type signalConn struct {
	*fakeConn
	uploading chan<- struct{}
}

func (c *signalConn) Upload(ctx context.Context, src, dst string, o ssh.UploadOptions) (ssh.UploadResult, error) {
	if dst == k3s.BinaryPath {
		select {
		case c.uploading <- struct{}{}:
		default:
		}
	}
	return c.fakeConn.Upload(ctx, src, dst, o)
}

// An agent's binary goes up while its server is still coming up: the
// server's readiness is held until the agent's upload has begun, which
// deadlocks (and times out) when agents wait for the server to finish.
func TestAgentUploadsWhileServerStarts(t *testing.T) {
	f := newTestFleet(nil)
	p := f.plan(t)
	uploading := make(chan struct{}, 1)
	conns := map[string]Conn{}
	for a, c := range f.conns {
		conns[a] = c
	}
	conns["t1"] = &gatedConn{fakeConn: f.conns["t1"], release: uploading}
	conns["t2"] = &signalConn{fakeConn: f.conns["t2"], uploading: uploading}
	// A guard against a hang, not a time limit on the run.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rec := &Recorder{}
	names := map[string]string{}
	for a := range f.conns {
		names[a] = a
	}
	_, err := Run(ctx, Options{Plan: p, Spec: f.spec, Conns: conns, Hostnames: names, Tokens: f.tokens, Sink: rec,
		PollInterval: time.Millisecond,
		Binary: func(ctx context.Context, key plan.BinaryKey, progress func(done, total int64)) (string, error) {
			return "/bin/true", nil
		}})
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("the agent's upload did not start while its server was coming up")
	}
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	// In the events: t2's upload starts before t1 is done, and its start
	// after t1 is done.
	var t1Done, t2Upload, t2Start = -1, -1, -1
	for i, e := range rec.Events() {
		switch {
		case e.Host == "t1" && e.Type == EventHostDone:
			t1Done = i
		case e.Host == "t2" && e.Type == EventStepStart && e.Step == plan.StepUploadBinary:
			t2Upload = i
		case e.Host == "t2" && e.Type == EventStepStart && e.Step == plan.StepStartAgent:
			t2Start = i
		}
	}
	if t2Upload < 0 || t1Done < 0 || t2Start < 0 || !(t2Upload < t1Done && t1Done < t2Start) {
		t.Errorf("event order: t2 upload %d, t1 done %d, t2 start %d; want upload < done < start", t2Upload, t1Done, t2Start)
	}
}

// The hosts that wait for a server which fails get their binary but are
// never configured or started.
func TestEarlyStepsStopAtTheToken(t *testing.T) {
	res, _, events, err := runFleet(t, map[string]string{"t1": "--no-block"})
	if !errors.Is(err, ErrHostsFailed) {
		t.Fatalf("err = %v", err)
	}
	for _, r := range res {
		if r.Host == "t2" && r.Status != StatusSkipped {
			t.Errorf("t2: %s, want skipped", r.Status)
		}
	}
	for _, e := range events {
		if e.Host == "t2" && e.Type == EventStepStart && e.Step != plan.StepUploadBinary {
			t.Errorf("t2 ran %q although its server failed", e.Step)
		}
	}
}

// Each step_done and step_failed carries the step's time by the run's clock.
func TestStepEventsCarryTheirTime(t *testing.T) {
	f := newTestFleet(map[string]string{"t2": "--no-block"})
	p := f.plan(t)
	conns := map[string]Conn{}
	names := map[string]string{}
	for a, c := range f.conns {
		conns[a], names[a] = c, a
	}
	var mu sync.Mutex
	clock := time.Unix(0, 0)
	now := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		clock = clock.Add(time.Millisecond)
		return clock
	}
	rec := &Recorder{}
	_, err := Run(context.Background(), Options{Plan: p, Spec: f.spec, Conns: conns, Hostnames: names, Tokens: f.tokens, Sink: rec,
		PollInterval: time.Millisecond, Now: now,
		Binary: func(ctx context.Context, key plan.BinaryKey, progress func(done, total int64)) (string, error) {
			return "/bin/true", nil
		}})
	if !errors.Is(err, ErrHostsFailed) {
		t.Fatalf("err = %v", err)
	}
	done, failed := 0, 0
	for _, e := range rec.Events() {
		switch e.Type {
		case EventStepDone, EventStepFailed:
			if e.Elapsed <= 0 {
				t.Errorf("%s %s %s: elapsed %v", e.Type, e.Host, e.Step, e.Elapsed)
			}
			if e.Type == EventStepDone {
				done++
			} else {
				failed++
			}
		case EventStepStart, EventHostDone:
			if e.Elapsed != 0 {
				t.Errorf("%s carries a time: %v", e.Type, e.Elapsed)
			}
		}
	}
	if done == 0 || failed != 1 {
		t.Errorf("%d step_done, %d step_failed; want some and one", done, failed)
	}
}

// The hosts others wait for get their binary first: an agent's upload
// begins once its server's upload has ended, not beside it.
func TestDependenciesUploadFirst(t *testing.T) {
	_, _, events, err := runFleet(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	at := map[string]int{}
	for i, e := range events {
		if e.Step != plan.StepUploadBinary {
			continue
		}
		switch e.Type {
		case EventStepStart:
			at[e.Host+" start"] = i
		case EventStepDone:
			at[e.Host+" done"] = i
		}
	}
	for _, pair := range [][2]string{{"t1", "t2"}, {"s1", "s2"}, {"s2", "s3"}, {"s3", "a1"}, {"s3", "a2"}} {
		done, ok1 := at[pair[0]+" done"]
		start, ok2 := at[pair[1]+" start"]
		if !ok1 || !ok2 || start < done {
			t.Errorf("%s's upload started at event %d, before %s's ended at %d", pair[1], start, pair[0], done)
		}
	}
}
