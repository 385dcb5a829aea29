package kube

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/k3sctl/k3sctl/internal/kube/kubetest"
)

// A watch sees the list, then each change as it happens, and ends when
// the caller has what it waited for.
func TestWatchNodesSeesChangesUntilDone(t *testing.T) {
	c, api := start(t)
	api.Lock()
	api.Nodes["s1"] = kubetest.Node("s1", true, nil)
	api.Unlock()
	calls := 0
	changed := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- c.WatchNodes(context.Background(), func(nodes map[string]Node) bool {
			calls++
			switch calls {
			case 1:
				if len(nodes) != 1 || !nodes["s1"].Ready {
					t.Errorf("listed %+v, want s1 Ready", nodes)
				}
				close(changed)
			}
			a1, ok := nodes["a1"]
			return ok && a1.Ready
		})
	}()
	<-changed
	api.Lock()
	api.Nodes["a1"] = kubetest.Node("a1", false, nil)
	api.Unlock()
	// The watch reports a1 not Ready and goes on; then Ready ends it.
	for api.Watching() == 0 {
		time.Sleep(time.Millisecond)
	}
	api.Lock()
	api.Nodes["a1"] = kubetest.Node("a1", true, nil)
	api.Unlock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if calls < 2 {
		t.Errorf("fn called %d times, want the list and the changes", calls)
	}
	api.Lock()
	defer api.Unlock()
	if api.Watches != 1 {
		t.Errorf("%d watches opened, want 1", api.Watches)
	}
}

func TestWatchNodesEndsWithItsContext(t *testing.T) {
	c, api := start(t)
	ctx, cancel := context.WithCancel(context.Background())
	listed := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- c.WatchNodes(ctx, func(map[string]Node) bool {
			select {
			case <-listed:
			default:
				close(listed)
			}
			return false
		})
	}()
	<-listed
	for api.Watching() == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want the context's", err)
	}
}

func TestWatchNodesRefused(t *testing.T) {
	api := kubetest.New(t)
	other := kubetest.New(t)
	cfg, _ := ParseKubeconfig(api.Kubeconfig())
	otherCfg, _ := ParseKubeconfig(other.Kubeconfig())
	cfg.Cert, cfg.Key = otherCfg.Cert, otherCfg.Key // a client the API does not know
	c, err := New("edge", "10.0.0.5", cfg, api.Dial)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.WatchNodes(context.Background(), func(map[string]Node) bool { return true })
	if err == nil {
		t.Fatal("a watch with an unknown client certificate succeeded")
	}
}

// A watch the API no longer serves from the listed version lists again.
func TestWatchNodesListsAgainWhenGone(t *testing.T) {
	c, api := start(t)
	api.Lock()
	api.WatchGone = 1
	api.Nodes["s1"] = kubetest.Node("s1", false, nil)
	api.Unlock()
	done := make(chan error, 1)
	go func() {
		done <- c.WatchNodes(context.Background(), func(nodes map[string]Node) bool {
			return nodes["s1"].Ready
		})
	}()
	for api.Watching() == 0 {
		time.Sleep(time.Millisecond)
	}
	api.Lock()
	api.Nodes["s1"] = kubetest.Node("s1", true, nil)
	api.Unlock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	api.Lock()
	defer api.Unlock()
	listed := 0
	for _, r := range api.Requests {
		if r == "GET /api/v1/nodes" {
			listed++
		}
	}
	// Watches are GETs of the same path: two lists, and two watches (the
	// first answered 410 Gone).
	if api.Watches != 2 || listed != 4 {
		t.Errorf("%d watches, %d node requests; want 2 watches after 2 lists", api.Watches, listed)
	}
}
