package apply

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/kube"
	"github.com/k3sctl/k3sctl/internal/kube/kubetest"
	"github.com/k3sctl/k3sctl/internal/plan"
	"github.com/k3sctl/k3sctl/internal/ssh"
)

// kubectlCounter counts the node lists asked of a host with kubectl.
type kubectlCounter struct {
	*fakeConn
	mu *sync.Mutex
	n  *int
}

func (c *kubectlCounter) Run(ctx context.Context, cmd string, o ssh.RunOptions) (ssh.Result, error) {
	if strings.Contains(cmd, "kubectl get nodes") {
		c.mu.Lock()
		*c.n++
		c.mu.Unlock()
	}
	return c.fakeConn.Run(ctx, cmd, o)
}

// Agents joining together wait for their nodes through one watch of the
// cluster's API, not one query each: a node becomes Ready here only in
// the watch (kubectl would say Ready at once, and is never asked).
func TestJoiningHostsShareOneNodeWatch(t *testing.T) {
	f := newTestFleet(nil)
	c := f.spec.Clusters[1]
	c.Agents = nil
	for _, a := range []string{"a1", "a2", "a3", "a4", "a5"} {
		c.Agents = append(c.Agents, plan.Host{Address: a, Role: k3s.Agent})
		f.conns[a] = &fakeConn{addr: a, node: a, log: f.log}
	}
	f.spec.Clusters = []plan.Cluster{c}
	p := f.plan(t)

	api := kubetest.New(t)
	cfg, err := kube.ParseKubeconfig(api.Kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	client, err := kube.New(c.Name, "t1", cfg, api.Dial)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	// A host's node registers once its K3s runs and a watch is open to
	// see it.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			if api.Watching() == 0 {
				continue
			}
			for name, conn := range f.conns {
				conn.mu.Lock()
				running := conn.running
				conn.mu.Unlock()
				api.Lock()
				if running && api.Nodes[name] == nil {
					api.Nodes[name] = kubetest.Node(name, true, nil)
				}
				api.Unlock()
			}
		}
	}()

	var mu sync.Mutex
	queries := 0
	conns := map[string]Conn{}
	names := map[string]string{}
	for a, fc := range f.conns {
		conns[a] = &kubectlCounter{fakeConn: fc, mu: &mu, n: &queries}
		names[a] = a
	}
	res, err := Run(context.Background(), Options{
		Plan: p, Spec: f.spec, Conns: conns, Hostnames: names, Tokens: f.tokens,
		// Long enough that nothing but the watch can end a wait.
		PollInterval: time.Minute,
		Binary: func(ctx context.Context, key plan.BinaryKey, progress func(done, total int64)) (string, error) {
			return "/bin/true", nil
		},
		API: func(ctx context.Context, cluster string) (NodeAPI, error) { return client, nil },
	})
	if err != nil {
		t.Fatalf("%v: %+v", err, res)
	}
	for _, r := range res {
		if r.Status != StatusDone {
			t.Errorf("%s: %s %s", r.Host, r.Status, r.Error)
		}
	}
	if queries != 0 {
		t.Errorf("%d kubectl node lists, want none: the watch answers", queries)
	}
	api.Lock()
	defer api.Unlock()
	if api.MostWatching != 1 {
		t.Errorf("%d watches open at once, want one for the cluster", api.MostWatching)
	}
	if len(api.Nodes) != 6 {
		t.Errorf("%d nodes registered, want 6", len(api.Nodes))
	}
}

// Without a way to watch, the wait asks the server with kubectl, as
// before.
func TestNodeWaitFallsBackToKubectl(t *testing.T) {
	f := newTestFleet(nil)
	f.spec.Clusters = f.spec.Clusters[1:]
	p := f.plan(t)
	var mu sync.Mutex
	queries := 0
	conns := map[string]Conn{}
	names := map[string]string{}
	for a, fc := range f.conns {
		conns[a] = &kubectlCounter{fakeConn: fc, mu: &mu, n: &queries}
		names[a] = a
	}
	res, err := Run(context.Background(), Options{
		Plan: p, Spec: f.spec, Conns: conns, Hostnames: names, Tokens: f.tokens, PollInterval: time.Millisecond,
		Binary: func(ctx context.Context, key plan.BinaryKey, progress func(done, total int64)) (string, error) {
			return "/bin/true", nil
		},
		API: func(ctx context.Context, cluster string) (NodeAPI, error) { return nil, ErrNoAPI },
	})
	if err != nil {
		t.Fatalf("%v: %+v", err, res)
	}
	if queries < 2 {
		t.Errorf("%d kubectl node lists, want the server's and the agent's", queries)
	}
}
