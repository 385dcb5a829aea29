package apply

import (
	"context"
	"sync"
	"time"

	"github.com/k3sctl/k3sctl/internal/node"
)

// nodeLists shares the node list of each cluster's server among the hosts
// waiting for their node to be Ready: however many agents join at once,
// one `kubectl get nodes` at a time runs on the server, over the one
// connection k3sctl has to it.
type nodeLists struct {
	mu    sync.Mutex
	lists map[Conn]*nodeList
}

type nodeList struct {
	mu       sync.Mutex
	inflight chan struct{} // closed when the running fetch ends
	nodes    []node.NodeStatus
	err      error
}

func (n *nodeLists) of(c Conn) *nodeList {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.lists == nil {
		n.lists = map[Conn]*nodeList{}
	}
	l := n.lists[c]
	if l == nil {
		l = &nodeList{}
		n.lists[c] = l
	}
	return l
}

// get returns the server's node list: the one being fetched when a fetch
// is under way, else a new one.
func (l *nodeList) get(ctx context.Context, c Conn) ([]node.NodeStatus, error) {
	l.mu.Lock()
	if ch := l.inflight; ch != nil {
		l.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.nodes, l.err
	}
	ch := make(chan struct{})
	l.inflight = ch
	l.mu.Unlock()
	// A caller that gives up ends the fetch; those waiting for it see the
	// error and poll again.
	nodes, err := node.Nodes(ctx, c)
	l.mu.Lock()
	l.nodes, l.err, l.inflight = nodes, err, nil
	l.mu.Unlock()
	close(ch)
	return nodes, err
}

// pollIntervals starts polling at a fifth of max, since a service often
// comes up within a second, and slows to max.
func pollIntervals(limit time.Duration) func() time.Duration {
	d := limit / 5
	return func() time.Duration {
		cur := max(d, time.Millisecond)
		d = min(d*3/2, limit)
		return cur
	}
}

// nodeStatus asks the server's own API about a node; the hosts of a
// cluster share the question (nodeLists).
func (r *runner) nodeStatus(ctx context.Context, api Conn, name string, suffixed bool) (ready bool, version string) {
	nodes, err := r.nodes.of(api).get(ctx, api)
	if err != nil {
		return false, ""
	}
	for _, n := range nodes {
		if nodeNameIs(n.Name, name, suffixed) {
			return n.Ready, n.Version
		}
	}
	return false, ""
}
