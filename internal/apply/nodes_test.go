package apply

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/k3sctl/k3sctl/internal/ssh"
)

// countingConn counts the node lists asked of it at once.
type countingConn struct {
	*fakeConn
	mu           sync.Mutex
	now, most, n int
}

func (c *countingConn) Run(ctx context.Context, cmd string, o ssh.RunOptions) (ssh.Result, error) {
	if !strings.Contains(cmd, "kubectl get nodes") {
		return c.fakeConn.Run(ctx, cmd, o)
	}
	c.mu.Lock()
	c.now++
	c.n++
	c.most = max(c.most, c.now)
	c.mu.Unlock()
	time.Sleep(5 * time.Millisecond) // lets the callers overlap
	defer func() {
		c.mu.Lock()
		c.now--
		c.mu.Unlock()
	}()
	return c.fakeConn.Run(ctx, cmd, o)
}

// Many hosts waiting for their node ask the server one at a time, and each
// gets the list.
func TestNodeListIsShared(t *testing.T) {
	server := &countingConn{fakeConn: &fakeConn{addr: "s1", log: &eventLog{}}}
	r := &runner{}
	var wg sync.WaitGroup
	errs := make(chan string, 100)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < 5; k++ {
				if ready, v := r.nodeStatus(context.Background(), server, "a1", false); !ready || v != "v1.31.4+k3s1" {
					errs <- "a1 not ready"
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	if server.most != 1 {
		t.Errorf("%d node lists ran at once on the server, want 1", server.most)
	}
	if server.n < 1 {
		t.Errorf("%d node lists", server.n)
	}
}

func TestPollIntervalsGrowToTheLimit(t *testing.T) {
	next := pollIntervals(time.Second)
	prev := time.Duration(0)
	var last time.Duration
	for i := 0; i < 20; i++ {
		d := next()
		if d < prev || d > time.Second {
			t.Fatalf("interval %d: %v after %v", i, d, prev)
		}
		prev, last = d, d
	}
	if first := pollIntervals(time.Second)(); first >= time.Second || last != time.Second {
		t.Errorf("first %v, last %v: want shorter first, then the limit", first, last)
	}
}
