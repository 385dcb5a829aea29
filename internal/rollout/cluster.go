package rollout

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/k3sctl/k3sctl/internal/apply"
	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/kube"
	"github.com/k3sctl/k3sctl/internal/plan"
)

// tunnel is a connection that can reach a port on its host's loopback;
// *ssh.Client is one.
type tunnel interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// clusterAPIs reaches each cluster's Kubernetes API through the SSH
// connection to one of its servers, with the admin kubeconfig K3s wrote
// there. A client that answered once is kept for the run.
type clusterAPIs struct {
	conns map[string]Conn // read only
	mu    sync.Mutex
	// locks serialise the work on one cluster's client; clusters go on
	// in parallel.
	locks   map[string]*sync.Mutex
	clients map[string]*kube.Client
	// listed and failed are what readClusters found, by cluster.
	listed map[string][]kube.Node
	failed map[string]string
	// kubeconfigs are the admin kubeconfigs read, by server address.
	kubeconfigs map[string][]byte
}

func newClusterAPIs(conns map[string]Conn) *clusterAPIs {
	return &clusterAPIs{conns: conns, locks: map[string]*sync.Mutex{}, clients: map[string]*kube.Client{},
		listed: map[string][]kube.Node{}, failed: map[string]string{}, kubeconfigs: map[string][]byte{}}
}

// noteRead records what reading a cluster's nodes found.
func (a *clusterAPIs) noteRead(cluster string, nodes []kube.Node, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.failed[cluster] = err.Error()
		return
	}
	a.listed[cluster] = nodes
}

// read is what readClusters found: the Nodes of each cluster read, and
// why the others with a running server could not be read.
func (a *clusterAPIs) read() (map[string][]kube.Node, map[string]string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	nodes := map[string][]kube.Node{}
	for k, v := range a.listed {
		nodes[k] = v
	}
	failed := map[string]string{}
	for k, v := range a.failed {
		failed[k] = v
	}
	return nodes, failed
}

func (a *clusterAPIs) lock(cluster string) func() {
	a.mu.Lock()
	l := a.locks[cluster]
	if l == nil {
		l = &sync.Mutex{}
		a.locks[cluster] = l
	}
	a.mu.Unlock()
	l.Lock()
	return l.Unlock
}

func (a *clusterAPIs) client(cluster string) *kube.Client {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.clients[cluster]
}

func (a *clusterAPIs) setClient(cluster string, c *kube.Client) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if old := a.clients[cluster]; old != nil && old != c {
		old.Close()
	}
	if c == nil {
		delete(a.clients, cluster)
		return
	}
	a.clients[cluster] = c
}

// listTimeout bounds one attempt to read a cluster through a server.
const listTimeout = 20 * time.Second

// nodes lists the cluster's nodes through the first of servers that
// answers, and keeps that server's client.
func (a *clusterAPIs) nodes(ctx context.Context, cluster string, servers []string) (*kube.Client, []kube.Node, error) {
	defer a.lock(cluster)()
	if c := a.client(cluster); c != nil {
		lctx, cancel := context.WithTimeout(ctx, listTimeout)
		defer cancel()
		nodes, err := c.ListNodes(lctx)
		if err == nil {
			return c, nodes, nil
		}
		a.setClient(cluster, nil)
	}
	var errs []error
	for _, addr := range servers {
		conn := a.conns[addr]
		t, ok := conn.(tunnel)
		if !ok {
			continue
		}
		c, nodes, err := a.try(ctx, cluster, addr, conn, t)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		a.setClient(cluster, c)
		return c, nodes, nil
	}
	if len(errs) == 0 {
		return nil, nil, fmt.Errorf("cluster %s: %w", cluster, apply.ErrNoAPI)
	}
	return nil, nil, errors.Join(errs...)
}

func (a *clusterAPIs) try(ctx context.Context, cluster, addr string, conn Conn, t tunnel) (*kube.Client, []kube.Node, error) {
	ctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	data, err := conn.ReadFile(ctx, k3s.KubeconfigPath)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: read %s: %w", addr, k3s.KubeconfigPath, err)
	}
	cfg, err := kube.ParseKubeconfig(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %s: %w", addr, k3s.KubeconfigPath, err)
	}
	c, err := kube.New(cluster, addr, cfg, t.DialContext)
	if err != nil {
		return nil, nil, err
	}
	a.mu.Lock()
	a.kubeconfigs[addr] = data
	a.mu.Unlock()
	nodes, err := c.ListNodes(ctx)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return c, nodes, nil
}

// api is the client for apply's label step: through a server of the
// cluster, in plan order, that answers now (servers apply just started
// included).
func (a *clusterAPIs) api(pl *plan.Plan) func(ctx context.Context, cluster string) (apply.NodeAPI, error) {
	return func(ctx context.Context, cluster string) (apply.NodeAPI, error) {
		var servers []string
		for _, cp := range pl.Clusters {
			if cp.Name != cluster {
				continue
			}
			for _, h := range cp.Hosts {
				if h.Role == k3s.Server && h.Action != plan.ActionRefuse && h.Action != plan.ActionUnreachable {
					servers = append(servers, h.Address)
				}
			}
		}
		c, _, err := a.nodes(ctx, cluster, servers)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
}

// known is a copy of the admin kubeconfigs read so far, by address.
func (a *clusterAPIs) known() map[string][]byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string][]byte, len(a.kubeconfigs))
	for k, v := range a.kubeconfigs {
		out[k] = v
	}
	return out
}

func (a *clusterAPIs) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, c := range a.clients {
		c.Close()
		delete(a.clients, k)
	}
}

// readClusters reads each cluster's nodes once, through the first server
// whose K3s runs, and gives every host of the cluster what the API says of
// its node: registered, Ready, version, labels, taints. A cluster without
// a running server (a first install) is left unread; so is one whose API
// does not answer, with a note.
func readClusters(ctx context.Context, o Options, apis *clusterAPIs, clusters []plan.Cluster, facts map[string]*plan.HostFacts) map[string][]plan.ClusterNode {
	var mu sync.Mutex
	all := map[string][]plan.ClusterNode{}
	note := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		o.Progress(format, a...)
	}
	sem := make(chan struct{}, max(o.Concurrency, 20))
	var wg sync.WaitGroup
	for i := range clusters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			nodes, ok := readCluster(ctx, note, apis, &clusters[i], facts)
			if ok {
				mu.Lock()
				all[clusters[i].Name] = nodes
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return all
}

// readCluster is readClusters for one cluster. Only the facts of its own
// hosts are changed. It returns the cluster's nodes, ok when read.
func readCluster(ctx context.Context, note func(string, ...any), apis *clusterAPIs, c *plan.Cluster, facts map[string]*plan.HostFacts) ([]plan.ClusterNode, bool) {
	var running []string
	for _, addr := range append([]string{c.JoinServer}, serverAddrs(c)...) {
		if f := facts[addr]; addr != "" && f != nil && f.Err == "" && f.Active[k3s.Server] {
			running = append(running, addr)
		}
	}
	if len(running) == 0 {
		return nil, false
	}
	_, nodes, err := apis.nodes(ctx, c.Name, running)
	apis.noteRead(c.Name, nodes, err)
	if err != nil {
		note("cluster %s: cannot read the nodes through %s, so node registration and labels are not checked: %v", c.Name, running[0], err)
		return nil, false
	}
	for _, h := range clusterHosts(*c) {
		f := facts[h.Address]
		if f == nil || f.Err != "" || f.Hostname == "" {
			continue
		}
		name, suffixed := plan.NodeName(c, h, f.Hostname)
		f.Node = &plan.NodeFacts{Name: name}
		for _, n := range nodes {
			if plan.NodeNameIs(n.Name, name, suffixed) {
				f.Node = apply.NodeFactsOf(n)
			}
		}
	}
	out := make([]plan.ClusterNode, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, apply.ClusterNodeOf(n))
	}
	return out, true
}

func serverAddrs(c *plan.Cluster) []string {
	var out []string
	for _, h := range c.Servers {
		out = append(out, h.Address)
	}
	return out
}
