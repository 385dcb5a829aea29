package apply

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/kube"
	"github.com/k3sctl/k3sctl/internal/plan"
)

func (a *fakeAPI) logf(name, what string) {
	for _, c := range a.conns {
		c.log.add(name + " " + what)
		return
	}
}

func (a *fakeAPI) Drain(ctx context.Context, name string, timeout time.Duration, force bool) (kube.DrainResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := a.nodes[name]
	if n == nil {
		return kube.DrainResult{}, &kube.APIError{Cluster: "fake", Op: "patch node " + name, Code: 404, Reason: "NotFound"}
	}
	n.Unschedulable = true
	a.logf(name, "drain")
	return kube.DrainResult{Evicted: []string{"default/pod-on-" + name}}, nil
}

func (a *fakeAPI) Uncordon(ctx context.Context, name string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if n := a.nodes[name]; n != nil {
		n.Unschedulable = false
	}
	a.logf(name, "uncordon")
	return nil
}

func (a *fakeAPI) DeleteNode(ctx context.Context, name string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.nodes, name)
	a.unregistered[name] = true // its service was stopped: it does not come back
	a.logf(name, "delete")
	return nil
}

// setRoles labels the fake nodes as K3s labels servers of an
// embedded-etcd cluster.
func (a *fakeAPI) setRoles(servers ...string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.register()
	for _, s := range servers {
		if n := a.nodes[s]; n != nil {
			n.Labels[controlPlaneLabel] = "true"
			n.Labels[etcdLabel] = "true"
			n.Addresses = []kube.Address{{Type: "InternalIP", Address: s}}
		}
	}
}

func indexOf(lines []string, s string) int { return slices.Index(lines, s) }

func TestConfigChangeDrainsOneNodeAtATime(t *testing.T) {
	f := newTestFleet(nil)
	f.api.unregistered = map[string]bool{}
	if _, _, err := f.run(t, f.plan(t)); err != nil {
		t.Fatal(err)
	}
	f.log.mu.Lock()
	f.log.lines = nil
	f.log.mu.Unlock()
	f.spec.Clusters[0].AgentConfig = map[string]any{"kubelet-arg": []any{"max-pods=50"}}
	p := f.plan(t)
	for _, h := range p.Clusters[0].Hosts {
		if h.Role != k3s.Agent {
			continue
		}
		kinds := stepKindsOf(h)
		want := []plan.StepKind{plan.StepWriteConfig, plan.StepDrain, plan.StepStartAgent, plan.StepWaitReady, plan.StepUncordon}
		if !slices.Equal(kinds[:len(want)], want) || h.Node != h.Address {
			t.Fatalf("%s: steps %v, node %q", h.Address, kinds, h.Node)
		}
	}
	if _, _, err := f.run(t, p); err != nil {
		t.Fatal(err)
	}
	f.log.mu.Lock()
	lines := slices.Clone(f.log.lines)
	f.log.mu.Unlock()
	for _, a := range []string{"a1", "a2"} {
		d, s, u := indexOf(lines, a+" drain"), indexOf(lines, a+" start"), indexOf(lines, a+" uncordon")
		if d < 0 || !(d < s && s < u) {
			t.Fatalf("%s: want drain, start, uncordon in that order: %v", a, lines)
		}
	}
	// --max-unavailable 1: the second agent is drained only once the first
	// is uncordoned.
	first, second := "a1", "a2"
	if indexOf(lines, "a2 drain") < indexOf(lines, "a1 drain") {
		first, second = second, first
	}
	if indexOf(lines, second+" drain") < indexOf(lines, first+" uncordon") {
		t.Errorf("two agents drained at once: %v", lines)
	}
	// The single-node cluster is not drained (its pods have nowhere to go).
	for _, l := range lines {
		if strings.HasPrefix(l, "t") && strings.Contains(l, "drain") {
			t.Errorf("single-node cluster drained: %v", lines)
		}
	}
}

func stepKindsOf(h plan.HostPlan) []plan.StepKind {
	var out []plan.StepKind
	for _, s := range h.Steps {
		out = append(out, s.Kind)
	}
	return out
}

func TestPruneRemovesAgentThenServer(t *testing.T) {
	f := newTestFleet(nil)
	f.api.unregistered = map[string]bool{}
	if _, _, err := f.run(t, f.plan(t)); err != nil {
		t.Fatal(err)
	}
	f.api.setRoles("s1", "s2", "s3")
	c := &f.spec.Clusters[0]
	c.Servers = c.Servers[:2]
	c.Agents = c.Agents[:1]
	nodes := func() []plan.ClusterNode {
		list, _ := f.api.ListNodes(context.Background())
		var out []plan.ClusterNode
		for _, n := range list {
			if !strings.HasPrefix(n.Name, "t") {
				out = append(out, ClusterNodeOf(n))
			}
		}
		return out
	}
	build := func(prune bool) *plan.Plan {
		facts := map[string]*plan.HostFacts{}
		for _, h := range f.hosts() {
			facts[h.Address] = f.conns[h.Address].facts(h.Role)
			facts[h.Address].Node = f.api.nodeFacts(h.Address)
		}
		p, err := plan.Build(plan.Input{Spec: *f.spec, Facts: facts, Tokens: f.tokens, Prune: prune,
			Nodes:    map[string][]plan.ClusterNode{"ha": nodes()},
			Binaries: map[plan.BinaryKey]plan.Binary{{Version: "v1.31.4+k3s1", Arch: k3s.AMD64}: {Version: "v1.31.4+k3s1", SHA256: fakeBinarySHA}}})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	shown := build(false)
	rs := shown.Clusters[0].Removals
	if len(rs) != 2 || rs[0].Node != "a2" || rs[1].Node != "s3" || rs[0].Pruned || !shown.Changes() {
		t.Fatalf("removals %+v", rs)
	}
	// Without --prune, apply leaves them.
	if _, _, err := f.run(t, shown); err != nil {
		t.Fatal(err)
	}
	if len(nodes()) != 5 {
		t.Fatalf("removed without --prune: %v", nodes())
	}
	res, _, err := f.run(t, build(true))
	if err != nil {
		t.Fatal(err)
	}
	var removed []string
	for _, r := range res {
		if r.Action == string(plan.ActionRemove) && r.Status == StatusDone {
			removed = append(removed, r.Host)
		}
	}
	if !slices.Equal(removed, []string{"a2", "s3"}) {
		t.Errorf("removed %v", removed)
	}
	var names []string
	for _, n := range nodes() {
		names = append(names, n.Name)
	}
	if !slices.Equal(names, []string{"a1", "s1", "s2"}) {
		t.Errorf("nodes left %v", names)
	}
	f.log.mu.Lock()
	lines := slices.Clone(f.log.lines)
	f.log.mu.Unlock()
	if !(indexOf(lines, "a2 drain") >= 0 && indexOf(lines, "a2 drain") < indexOf(lines, "a2 delete") && indexOf(lines, "a2 delete") < indexOf(lines, "s3 drain") && indexOf(lines, "s3 drain") < indexOf(lines, "s3 delete")) {
		t.Errorf("order: %v", lines)
	}
	if p := build(true); len(p.Clusters[0].Removals) != 0 {
		t.Errorf("after prune: %+v", p.Clusters[0].Removals)
	}
}

func TestRefusedRemovalTouchesNothing(t *testing.T) {
	f := newTestFleet(nil)
	f.api.unregistered = map[string]bool{}
	if _, _, err := f.run(t, f.plan(t)); err != nil {
		t.Fatal(err)
	}
	f.api.setRoles("s1", "s2", "s3")
	f.api.mu.Lock()
	f.api.nodes["s2"].Ready = false
	f.api.mu.Unlock()
	c := &f.spec.Clusters[0]
	c.Servers = []plan.Host{c.Servers[0], c.Servers[1]}
	c.AgentConfig = map[string]any{"kubelet-arg": []any{"max-pods=50"}} // a change that would restart the agents
	facts := map[string]*plan.HostFacts{}
	for _, h := range f.hosts() {
		facts[h.Address] = f.conns[h.Address].facts(h.Role)
		facts[h.Address].Node = f.api.nodeFacts(h.Address)
	}
	list, _ := f.api.ListNodes(context.Background())
	var nodes []plan.ClusterNode
	for _, n := range list {
		if !strings.HasPrefix(n.Name, "t") {
			nodes = append(nodes, ClusterNodeOf(n))
		}
	}
	p, err := plan.Build(plan.Input{Spec: *f.spec, Facts: facts, Tokens: f.tokens, Prune: true,
		Nodes:    map[string][]plan.ClusterNode{"ha": nodes},
		Binaries: map[plan.BinaryKey]plan.Binary{{Version: "v1.31.4+k3s1", Arch: k3s.AMD64}: {Version: "v1.31.4+k3s1", SHA256: fakeBinarySHA}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.RefusedRemovals()) != 1 || p.RefusedRemovals()[0].Node != "s3" {
		t.Fatalf("refused %+v", p.Clusters[0].Removals)
	}
	f.log.mu.Lock()
	f.log.lines = nil
	f.log.mu.Unlock()
	_, _, err = f.run(t, p)
	if err == nil || !strings.Contains(err.Error(), "removal of node s3 refused, nothing changed") {
		t.Fatalf("run: %v", err)
	}
	if len(f.log.lines) != 0 {
		t.Errorf("a refused removal let the run touch hosts: %v", f.log.lines)
	}
}

func TestServerRestartsOnlyWhileOthersReady(t *testing.T) {
	f := newTestFleet(nil)
	f.api.unregistered = map[string]bool{}
	if _, _, err := f.run(t, f.plan(t)); err != nil {
		t.Fatal(err)
	}
	f.api.setRoles("s1", "s2", "s3")
	ctx := context.Background()
	if err := othersReady(ctx, f.api, "s1"); err != nil {
		t.Errorf("all Ready: %v", err)
	}
	f.api.mu.Lock()
	f.api.nodes["s2"].Ready = false
	f.api.mu.Unlock()
	if err := othersReady(ctx, f.api, "s1"); err == nil || !strings.Contains(err.Error(), "server s1 is not restarted while server(s) s2 are not Ready") {
		t.Errorf("s2 NotReady: %v", err)
	}
	if err := othersReady(ctx, f.api, "a1"); err != nil {
		t.Errorf("an agent does not wait for the servers: %v", err)
	}
	// Apply stops at s1's drain and restarts nothing.
	f.spec.Clusters[0].ServerConfig = map[string]any{"kubelet-arg": []any{"max-pods=50"}}
	f.log.mu.Lock()
	f.log.lines = nil
	f.log.mu.Unlock()
	res, _, err := f.run(t, f.plan(t))
	if !errors.Is(err, ErrHostsFailed) {
		t.Fatalf("run: %v", err)
	}
	for _, r := range res {
		if r.Host == "s1" && (r.Status != StatusFailed || !strings.Contains(r.Error, "drain node")) {
			t.Errorf("s1: %+v", r)
		}
	}
	for _, l := range f.log.lines {
		if strings.HasPrefix(l, "s") && strings.HasSuffix(l, " start") {
			t.Errorf("a server restarted while s2 is not Ready: %v", f.log.lines)
		}
	}
}
