package rollout

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/k3sctl/k3sctl/internal/kube/kubetest"
)

func etcdServer(name, ip string, ready bool) map[string]any {
	n := kubetest.Node(name, ready, map[string]string{"node-role.kubernetes.io/control-plane": "true", "node-role.kubernetes.io/etcd": "true"})
	n["status"].(map[string]any)["addresses"] = []any{map[string]any{"type": "InternalIP", "address": ip}}
	return n
}

func TestRemoveNode(t *testing.T) {
	api := kubetest.New(t)
	api.Nodes["s1"] = etcdServer("s1", "10.0.0.1", true)
	api.Nodes["s2"] = etcdServer("s2", "10.0.0.2", false)
	api.Nodes["s3"] = etcdServer("s3", "10.0.0.3", true)
	api.Pods = append(api.Pods, kubetest.Pod("default", "web", "s3", "ReplicaSet", nil))
	hosts := newFakeHosts()
	via := &apiConn{fakeConn: &fakeConn{w: hosts, addr: "10.0.0.1"}, api: api}
	var dialed []string
	o := RemoveOptions{Dial: func(ctx context.Context, address string) (Conn, error) {
		dialed = append(dialed, address)
		hosts.mu.Lock()
		hosts.open++
		hosts.mu.Unlock()
		return &fakeConn{w: hosts, addr: address}, nil
	}}
	changes := func() []string {
		api.Lock()
		defer api.Unlock()
		var out []string
		for _, r := range api.Requests {
			if !strings.HasPrefix(r, "GET ") {
				out = append(out, r)
			}
		}
		return out
	}

	// s2 stopped: s3's removal would leave s1 the only Ready member of two.
	err := RemoveNode(context.Background(), via, "s3", o)
	if err == nil || !strings.Contains(err.Error(), "refused, nothing changed: removing server s3 would leave 2 etcd member(s) of which 1 Ready") {
		t.Fatalf("removal with s2 NotReady: %v", err)
	}
	if c := changes(); len(c) != 0 || len(dialed) != 0 {
		t.Fatalf("a refused removal changed %v, dialed %v", c, dialed)
	}
	if err := RemoveNode(context.Background(), via, "s1", o); err == nil || !strings.Contains(err.Error(), "give another server with --ip") {
		t.Errorf("removing the server k3sctl goes through: %v", err)
	}
	if err := RemoveNode(context.Background(), via, "nope", o); err == nil || !strings.Contains(err.Error(), "its nodes: s1, s2, s3") {
		t.Errorf("an unknown node: %v", err)
	}

	api.Lock()
	api.Nodes["s2"] = etcdServer("s2", "10.0.0.2", true)
	api.Unlock()
	if err := RemoveNode(context.Background(), via, "s3", o); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(dialed, []string{"10.0.0.3"}) {
		t.Errorf("dialed %v, want the node's InternalIP", dialed)
	}
	c := changes()
	if len(c) < 3 || !strings.HasPrefix(c[0], "PATCH /api/v1/nodes/s3") || !strings.HasPrefix(c[1], "POST /api/v1/namespaces/default/pods/web/eviction") || !strings.HasPrefix(c[len(c)-1], "DELETE /api/v1/nodes/s3") {
		t.Errorf("requests %v: want cordon, eviction, then delete", c)
	}
	api.Lock()
	_, left := api.Nodes["s3"]
	api.Unlock()
	if left {
		t.Error("s3 still in the cluster")
	}
	if hosts.open != 0 {
		t.Errorf("%d connection(s) left open", hosts.open)
	}
}
