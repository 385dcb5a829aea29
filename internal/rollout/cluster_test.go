package rollout

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/kube/kubetest"
	"github.com/k3sctl/k3sctl/internal/plan"
)

// apiConn is a server connection through which a fake API answers, as
// through SSH to the server's 127.0.0.1:6443.
type apiConn struct {
	*fakeConn
	api      *kubetest.Server
	dialErr  error
	kcReads  int
	tunneled int
}

func (c *apiConn) ReadFile(ctx context.Context, path string) ([]byte, error) {
	if path == k3s.KubeconfigPath {
		c.kcReads++
		return c.api.Kubeconfig(), nil
	}
	return c.fakeConn.ReadFile(ctx, path)
}

func (c *apiConn) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c.tunneled++
	if c.dialErr != nil {
		return nil, c.dialErr
	}
	return c.api.Dial(ctx, network, addr)
}

func TestReadClusters(t *testing.T) {
	api := kubetest.New(t)
	api.Nodes["pi-1"] = kubetest.Node("pi-1", true, nil)
	w1 := kubetest.Node("w1-0a1b2c3d", false, map[string]string{"zone": "a"})
	w1["metadata"].(map[string]any)["annotations"] = map[string]any{plan.ManagedLabelsAnnotation: "zone=a", plan.ManagedTaintsAnnotation: ""}
	w1["spec"] = map[string]any{"taints": []any{map[string]any{"key": "gpu", "effect": "NoSchedule"}}}
	api.Nodes["w1-0a1b2c3d"] = w1

	hosts := newFakeHosts()
	stopped := &apiConn{fakeConn: &fakeConn{w: hosts, addr: "10.0.0.1"}, api: api, dialErr: errors.New("must not be used")}
	running := &apiConn{fakeConn: &fakeConn{w: hosts, addr: "10.0.0.2"}, api: api}
	conns := map[string]Conn{"10.0.0.1": stopped, "10.0.0.2": running, "10.0.0.3": &fakeConn{w: hosts, addr: "10.0.0.3"}, "10.0.0.4": &fakeConn{w: hosts, addr: "10.0.0.4"}}
	facts := map[string]*plan.HostFacts{
		"10.0.0.1": {Hostname: "Pi-0", Active: map[k3s.Role]bool{}},
		"10.0.0.2": {Hostname: "Pi-1", Active: map[k3s.Role]bool{k3s.Server: true}},
		"10.0.0.3": {Hostname: "W1", Active: map[k3s.Role]bool{k3s.Agent: true}},
		"10.0.0.4": {Hostname: "w2", Active: map[k3s.Role]bool{k3s.Agent: true}},
	}
	clusters := []plan.Cluster{{Name: "edge",
		Servers:     []plan.Host{{Address: "10.0.0.1", Role: k3s.Server}, {Address: "10.0.0.2", Role: k3s.Server}},
		Agents:      []plan.Host{{Address: "10.0.0.3", Role: k3s.Agent}, {Address: "10.0.0.4", Role: k3s.Agent}},
		AgentConfig: map[string]any{"with-node-id": true}}}
	apis := newClusterAPIs(conns)
	defer apis.close()
	var notes []string
	o := Options{Progress: func(f string, a ...any) { notes = append(notes, fmt.Sprintf(f, a...)) }}
	readClusters(context.Background(), o, apis, clusters, facts)

	if stopped.tunneled != 0 || running.kcReads != 1 || len(api.Dialed()) == 0 {
		t.Errorf("want the API read through the running server only: stopped %d dials, running %d kubeconfig reads", stopped.tunneled, running.kcReads)
	}
	if len(notes) != 0 {
		t.Errorf("notes: %v", notes)
	}
	n0 := facts["10.0.0.1"].Node
	if n0 == nil || n0.Registered || n0.Name != "pi-0" {
		t.Errorf("10.0.0.1: %+v, want not registered as pi-0", n0)
	}
	if n := facts["10.0.0.2"].Node; n == nil || !n.Registered || !n.Ready || n.Name != "pi-1" || n.Version != "v1.31.4+k3s1" {
		t.Errorf("10.0.0.2: %+v", n)
	}
	n := facts["10.0.0.3"].Node
	if n == nil || !n.Registered || n.Ready || n.Name != "w1-0a1b2c3d" || n.Labels["zone"] != "a" ||
		strings.Join(n.Taints, ",") != "gpu:NoSchedule" || strings.Join(n.ManagedLabels, ",") != "zone=a" ||
		n.NotReadyReason != "NodeStatusUnknown: Kubelet stopped posting node status." {
		t.Errorf("10.0.0.3: %+v", n)
	}
	if n := facts["10.0.0.4"].Node; n == nil || n.Registered {
		t.Errorf("10.0.0.4: %+v, want not registered", n)
	}

	// The same client serves apply, without reading the kubeconfig again.
	pl := &plan.Plan{Clusters: []plan.ClusterPlan{{Name: "edge", Hosts: []plan.HostPlan{
		{Address: "10.0.0.1", Role: k3s.Server, Action: plan.ActionStart}, {Address: "10.0.0.2", Role: k3s.Server}}}}}
	c, err := apis.api(pl)(context.Background(), "edge")
	if err != nil {
		t.Fatal(err)
	}
	if nodes, err := c.ListNodes(context.Background()); err != nil || len(nodes) != 2 || running.kcReads != 1 {
		t.Errorf("apply's client: %d nodes, %v, %d kubeconfig reads", len(nodes), err, running.kcReads)
	}
}

func TestReadClustersSkipsClustersWithoutARunningServer(t *testing.T) {
	hosts := newFakeHosts()
	conns := map[string]Conn{"10.0.0.1": &fakeConn{w: hosts, addr: "10.0.0.1"}}
	facts := map[string]*plan.HostFacts{"10.0.0.1": {Hostname: "pi", Active: map[k3s.Role]bool{}}}
	clusters := []plan.Cluster{{Name: "new", Servers: []plan.Host{{Address: "10.0.0.1", Role: k3s.Server}}}}
	var notes []string
	o := Options{Progress: func(f string, a ...any) { notes = append(notes, fmt.Sprintf(f, a...)) }}
	readClusters(context.Background(), o, newClusterAPIs(conns), clusters, facts)
	if facts["10.0.0.1"].Node != nil || len(notes) != 0 {
		t.Errorf("a first install: node %+v, notes %v", facts["10.0.0.1"].Node, notes)
	}

	// A running server whose API cannot be reached: noted, not checked.
	facts["10.0.0.1"].Active[k3s.Server] = true
	api := kubetest.New(t)
	conns["10.0.0.1"] = &apiConn{fakeConn: &fakeConn{w: hosts, addr: "10.0.0.1"}, api: api,
		dialErr: errors.New("10.0.0.1: connect to 127.0.0.1:6443 through SSH: connection refused")}
	readClusters(context.Background(), o, newClusterAPIs(conns), clusters, facts)
	if facts["10.0.0.1"].Node != nil || len(notes) != 1 || !strings.Contains(notes[0], "cluster new: cannot read the nodes through 10.0.0.1") ||
		!strings.Contains(notes[0], "connection refused") {
		t.Errorf("unreachable API: node %+v, notes %v", facts["10.0.0.1"].Node, notes)
	}
}
