package apply

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/k3sctl/k3sctl/internal/kube"
)

// NodeWatcher is a NodeAPI that can watch the cluster's nodes;
// *kube.Client is one (kube.Client.WatchNodes).
type NodeWatcher interface {
	WatchNodes(ctx context.Context, fn func(nodes map[string]kube.Node) bool) error
}

var _ NodeWatcher = (*kube.Client)(nil)

// nodeWatches is one watch of each cluster's nodes, shared by every host
// of the cluster waiting for its node to be Ready: however many join at
// once, the server sees one request that stays open. A watch starts with
// its first waiter and ends with its last.
type nodeWatches struct {
	mu      sync.Mutex
	m       map[string]*nodeWatch // by cluster
	running sync.WaitGroup        // the watches' goroutines, which Run waits for
}

// nodeWatch is what one cluster's watch knows.
type nodeWatch struct {
	mu    sync.Mutex
	users int
	stop  context.CancelFunc
	nodes map[string]kube.Node
	// live: the watch runs and nodes is what it saw. off: this run cannot
	// watch the cluster (no API, or one that cannot watch).
	live, off bool
	// tried: an attempt to watch has ended (failed) at least once.
	tried   bool
	changed chan struct{} // closed and replaced on every change
}

// join returns the cluster's watch, starting it when no host is waiting
// yet; leave when done.
func (r *runner) joinWatch(cluster string) (w *nodeWatch, leave func()) {
	ws := &r.watches
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.m == nil {
		ws.m = map[string]*nodeWatch{}
	}
	w = ws.m[cluster]
	if w == nil {
		ctx, cancel := context.WithCancel(context.Background())
		w = &nodeWatch{stop: cancel, changed: make(chan struct{})}
		ws.m[cluster] = w
		ws.running.Add(1)
		go func() {
			defer ws.running.Done()
			r.watch(ctx, cluster, w)
		}()
	}
	w.users++
	return w, func() {
		ws.mu.Lock()
		defer ws.mu.Unlock()
		w.users--
		if w.users == 0 {
			w.stop()
			if ws.m[cluster] == w {
				delete(ws.m, cluster)
			}
		}
	}
}

// watch keeps w up to date until ctx ends. The API is asked for again
// after a failure: the first server's admin kubeconfig exists only once
// K3s has started, and a server may go away; meanwhile w is not live and
// its waiters ask a server with kubectl.
func (r *runner) watch(ctx context.Context, cluster string, w *nodeWatch) {
	interval := retryIntervals(r.o.PollInterval)
	for ctx.Err() == nil {
		var err error
		var watcher NodeWatcher
		if r.o.API == nil {
			err = ErrNoAPI
		} else {
			var api NodeAPI
			api, err = r.o.API(ctx, cluster)
			if err == nil {
				var ok bool
				if watcher, ok = api.(NodeWatcher); !ok {
					err = ErrNoAPI
				}
			}
		}
		if errors.Is(err, ErrNoAPI) {
			w.set(nil, false, true)
			return
		}
		if err == nil {
			// However the watch ends, its waiters ask kubectl until the
			// next one runs; one that ran is tried again soon.
			went := false
			_ = watcher.WatchNodes(ctx, func(nodes map[string]kube.Node) bool {
				went = true
				w.set(nodes, true, false)
				return false
			})
			if went {
				interval = retryIntervals(r.o.PollInterval)
			}
		}
		w.set(nil, false, false)
		if ctx.Err() != nil {
			return
		}
		sleep(ctx, interval())
	}
}

func (w *nodeWatch) set(nodes map[string]kube.Node, live, off bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.nodes, w.live, w.off = nodes, live, off
	if !live {
		w.tried = true
	}
	close(w.changed)
	w.changed = make(chan struct{})
}

// state is what the watch knows now, and a channel closed at its next
// change.
func (w *nodeWatch) state() (nodes map[string]kube.Node, live, starting bool, changed <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.nodes, w.live, !w.live && !w.tried, w.changed
}

// retryIntervals starts at limit and doubles to ten times it: a cluster
// whose API cannot be reached (TCP forwarding off on its servers) is not
// asked every second for the whole wait.
func retryIntervals(limit time.Duration) func() time.Duration {
	d := limit
	return func() time.Duration {
		cur := d
		d = min(d*2, 10*limit)
		return cur
	}
}
