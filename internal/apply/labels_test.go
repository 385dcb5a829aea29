package apply

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/kube"
	"github.com/k3sctl/k3sctl/internal/plan"
	"gopkg.in/yaml.v3"
)

// fakeAPI is the clusters' API over the fake hosts: a host whose service
// runs registers a Node named after it, with the node-label and
// node-taint of its config.yaml, once, as K3s does.
type fakeAPI struct {
	mu      sync.Mutex
	conns   map[string]*fakeConn
	nodes   map[string]*kube.Node
	patches []string // node names patched
	// unregistered hosts do not register even when their service runs
	// (a failed join).
	unregistered map[string]bool
	// err is what reaching the API fails with, when set.
	err error
}

func (a *fakeAPI) register() {
	for name, c := range a.conns {
		c.mu.Lock()
		running, cfg := c.running, c.files[k3s.ConfigPath]
		c.mu.Unlock()
		if !running || a.nodes[name] != nil || a.unregistered[name] {
			continue
		}
		var keys struct {
			Labels []string `yaml:"node-label"`
			Taints []string `yaml:"node-taint"`
		}
		_ = yaml.Unmarshal(cfg, &keys)
		n := &kube.Node{Name: name, Ready: true, KubeletVersion: "v1.31.4+k3s1",
			Labels: map[string]string{"kubernetes.io/hostname": name}, Annotations: map[string]string{}}
		for _, l := range keys.Labels {
			k, v, _ := strings.Cut(l, "=")
			n.Labels[k] = v
		}
		for _, s := range keys.Taints {
			t, _ := parseTaint(s)
			n.Taints = append(n.Taints, t)
		}
		a.nodes[name] = n
	}
}

func (a *fakeAPI) ListNodes(ctx context.Context) ([]kube.Node, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.register()
	var out []kube.Node
	for _, n := range a.nodes {
		out = append(out, copyNode(*n))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (a *fakeAPI) PatchNode(ctx context.Context, name string, p kube.NodePatch) (kube.Node, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := a.nodes[name]
	if n == nil {
		return kube.Node{}, &kube.APIError{Cluster: "fake", Op: "patch node " + name, Code: 404, Reason: "NotFound"}
	}
	a.patches = append(a.patches, name)
	for k, v := range p.Labels {
		if v == nil {
			delete(n.Labels, k)
		} else {
			n.Labels[k] = *v
		}
	}
	for k, v := range p.Annotations {
		if v == nil {
			delete(n.Annotations, k)
		} else {
			n.Annotations[k] = *v
		}
	}
	if p.Taints != nil {
		n.Taints = append([]kube.Taint{}, (*p.Taints)...)
	}
	return copyNode(*n), nil
}

func copyNode(n kube.Node) kube.Node {
	c := n
	c.Labels, c.Annotations = map[string]string{}, map[string]string{}
	for k, v := range n.Labels {
		c.Labels[k] = v
	}
	for k, v := range n.Annotations {
		c.Annotations[k] = v
	}
	c.Taints = append([]kube.Taint{}, n.Taints...)
	return c
}

// nodeFacts is what rollout's cluster read gives planning.
func (a *fakeAPI) nodeFacts(name string) *plan.NodeFacts {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.register()
	if n := a.nodes[name]; n != nil {
		return NodeFactsOf(copyNode(*n))
	}
	return &plan.NodeFacts{Name: name}
}

func TestLabelChangeGoesThroughTheAPIWithoutRestart(t *testing.T) {
	f := newTestFleet(nil)
	a1 := &f.spec.Clusters[0].Agents[0]
	a1.Labels = map[string]string{"zone": "hall-2", "rack": "r1"}
	a1.Taints = []string{"dedicated=edge:NoSchedule"}
	p := f.plan(t)
	if _, events, err := f.run(t, p); err != nil {
		t.Fatalf("first run: %v", err)
	} else {
		checkRunMatchesPlan(t, p, events)
	}
	n := f.api.nodes["a1"]
	if n.Labels["zone"] != "hall-2" || n.Annotations[plan.ManagedLabelsAnnotation] != "rack=r1,zone=hall-2" ||
		n.Annotations[plan.ManagedTaintsAnnotation] != "dedicated=edge:NoSchedule" {
		t.Fatalf("after install: labels %v annotations %v", n.Labels, n.Annotations)
	}
	// Someone else labels the node; the inventory changes one label and
	// drops another and the taint.
	f.api.nodes["a1"].Labels["team"] = "ops"
	a1.Labels = map[string]string{"zone": "hall-3"}
	a1.Taints = nil
	starts := len(f.log.lines)
	p = f.plan(t)
	hp := hostPlan(p, "a1")
	if hp.Action != plan.ActionLabel || !slices.Equal(hp.Changes, []string{k3s.ConfigPath}) {
		t.Fatalf("a1: action %s changes %v, want label and config.yaml", hp.Action, hp.Changes)
	}
	var kinds []plan.StepKind
	for _, s := range hp.Steps {
		kinds = append(kinds, s.Kind)
	}
	if !slices.Equal(kinds, []plan.StepKind{plan.StepWriteConfig, plan.StepLabels}) {
		t.Errorf("a1 steps %v", kinds)
	}
	if want := "label zone=hall-3, remove label rack, remove taint dedicated=edge:NoSchedule"; strings.Join(hp.Labels, ", ") != want {
		t.Errorf("a1 label summary %q, want %q", strings.Join(hp.Labels, ", "), want)
	}
	for _, c := range p.Clusters {
		for _, h := range c.Hosts {
			if h.Address != "a1" && h.Action != plan.ActionNothing {
				t.Errorf("%s: %s, want nothing", h.Address, h.Action)
			}
		}
	}
	_, events, err := f.run(t, p)
	if err != nil {
		t.Fatal(err)
	}
	checkRunMatchesPlan(t, p, events)
	if again := f.log.lines[starts:]; len(again) > 0 {
		t.Errorf("a label change restarted services: %v", again)
	}
	n = f.api.nodes["a1"]
	if n.Labels["zone"] != "hall-3" || n.Labels["rack"] != "" || n.Labels["team"] != "ops" || len(n.Taints) != 0 {
		t.Errorf("a1 labels %v taints %v", n.Labels, n.Taints)
	}
	if p := f.plan(t); p.Changes() {
		t.Errorf("plan after the label change still changes:\n%s", printed(p))
	}
}

func TestRepairRestartsANodeThatIsNotRegistered(t *testing.T) {
	f := newTestFleet(nil)
	if _, _, err := f.run(t, f.plan(t)); err != nil {
		t.Fatal(err)
	}
	delete(f.api.nodes, "a2")
	f.api.unregistered = map[string]bool{"a2": true}
	p := f.plan(t)
	hp := hostPlan(p, "a2")
	if hp.Action != plan.ActionRepair || len(hp.Reasons) == 0 || !strings.Contains(hp.Reasons[0], "not registered") {
		t.Fatalf("a2: %s %v", hp.Action, hp.Reasons)
	}
	starts := len(f.log.lines)
	f.api.unregistered = nil
	_, events, err := f.run(t, p)
	if err != nil {
		t.Fatal(err)
	}
	checkRunMatchesPlan(t, p, events)
	if again := f.log.lines[starts:]; !slices.Equal(again, []string{"a2 start"}) {
		t.Errorf("starts %v, want a2 restarted", again)
	}
}

func hostPlan(p *plan.Plan, addr string) plan.HostPlan {
	for _, c := range p.Clusters {
		for _, h := range c.Hosts {
			if h.Address == addr {
				return h
			}
		}
	}
	return plan.HostPlan{}
}

func TestLabelStepWithoutAPIAccess(t *testing.T) {
	f := newTestFleet(nil)
	f.spec.Clusters[1].Agents[0].Labels = map[string]string{"zone": "a"} // t2
	f.api.err = fmt.Errorf("cluster shop: %w", ErrNoAPI)
	p := f.plan(t)
	_, events, err := f.run(t, p)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	skipped := false
	for _, e := range events {
		if e.Host == "t2" && e.Step == plan.StepLabels && e.Type == EventLog && strings.Contains(e.Message, "skipped: cluster shop: no SSH connection to a server") {
			skipped = true
		}
		if e.Type == EventStepDone && e.Step == plan.StepLabels && e.Changed {
			t.Errorf("%s: label step reports a change without the API", e.Host)
		}
	}
	if !skipped {
		t.Error("t2: the label step does not say why it was skipped")
	}
	// Other API failures fail the host.
	f2 := newTestFleet(nil)
	f2.spec.Clusters[1].Agents[0].Labels = map[string]string{"zone": "a"}
	f2.api.err = errors.New("cluster shop (API through t1): list nodes: connection refused")
	res, _, err := f2.run(t, f2.plan(t))
	if err == nil {
		t.Fatalf("want a failure, got %v", res)
	}
	for _, r := range res {
		if r.Host == "t2" && (r.Status != StatusFailed || !strings.Contains(r.Error, "label node: cluster shop (API through t1): list nodes: connection refused")) {
			t.Errorf("t2: %s %q", r.Status, r.Error)
		}
	}
}
