package plan

import (
	"slices"
	"strings"
	"testing"

	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/secret"
)

func TestNodeName(t *testing.T) {
	c := &Cluster{AgentConfig: map[string]any{"with-node-id": true}}
	cases := []struct {
		h        Host
		name     string
		suffixed bool
	}{
		{Host{Role: k3s.Server}, "pi-one", false},
		{Host{Role: k3s.Server, NodeName: "kitchen"}, "kitchen", false},
		{Host{Role: k3s.Server, Config: map[string]any{"node-name": "hall"}}, "hall", false},
		{Host{Role: k3s.Agent}, "pi-one", true},
		{Host{Role: k3s.Agent, Config: map[string]any{"with-node-id": false}}, "pi-one", false},
	}
	for _, tc := range cases {
		name, suffixed := NodeName(c, tc.h, "Pi-One")
		if name != tc.name || suffixed != tc.suffixed {
			t.Errorf("%+v: %q %v, want %q %v", tc.h, name, suffixed, tc.name, tc.suffixed)
		}
	}
	for _, tc := range []struct {
		got, want string
		suffixed  bool
		match     bool
	}{
		{"w1", "w1", false, true},
		{"w1-0a1b2c3d", "w1", false, false},
		{"w1-0a1b2c3d", "w1", true, true},
		{"w1-0A1B2C3D", "w1", true, false},
		{"w1-abc", "w1", true, false},
		{"w10-0a1b2c3d", "w1", true, false},
	} {
		if NodeNameIs(tc.got, tc.want, tc.suffixed) != tc.match {
			t.Errorf("NodeNameIs(%q, %q, %v) != %v", tc.got, tc.want, tc.suffixed, tc.match)
		}
	}
}

func TestNodeLabelsFollowConfig(t *testing.T) {
	c := &Cluster{AgentConfig: map[string]any{"node-label": []any{"fleet=shops"}, "node-taint": "spot=true:PreferNoSchedule"}}
	h := Host{Role: k3s.Agent, Labels: map[string]string{"zone": "a", "disk": "ssd"}, Taints: []string{"gpu=yes:NoSchedule"}}
	labels, taints := NodeLabels(c, h)
	if want := []string{"disk=ssd", "zone=a", "fleet=shops"}; !slices.Equal(labels, want) {
		t.Errorf("labels %q, want %q", labels, want)
	}
	if want := []string{"gpu=yes:NoSchedule", "spot=true:PreferNoSchedule"}; !slices.Equal(taints, want) {
		t.Errorf("taints %q, want %q", taints, want)
	}
}

func TestDiffLabels(t *testing.T) {
	n := &NodeFacts{Registered: true, Name: "w1",
		Labels:        map[string]string{"kubernetes.io/hostname": "w1", "zone": "a", "rack": "r1", "team": "ops"},
		Taints:        []string{"gpu=yes:NoSchedule", "node.kubernetes.io/unreachable:NoExecute", "other=x:NoSchedule"},
		ManagedLabels: []string{"rack=r1", "zone=a"}, ManagedTaints: []string{"gpu=yes:NoSchedule"}}

	same := DiffLabels([]string{"rack=r1", "zone=a"}, []string{"gpu=yes:NoSchedule"}, n)
	if !same.Empty() {
		t.Errorf("no change expected: %+v", same)
	}

	lc := DiffLabels([]string{"zone=b", "team=dev"}, []string{"gpu=no:NoSchedule", "spot:PreferNoSchedule"}, n)
	if lc.Set["zone"] != "b" || lc.Set["team"] != "dev" || len(lc.Set) != 2 {
		t.Errorf("set %v", lc.Set)
	}
	if !slices.Equal(lc.Remove, []string{"rack"}) {
		t.Errorf("remove %v: only rack was set by k3sctl and is no longer wanted", lc.Remove)
	}
	// Taints not set by k3sctl stay, in place; managed ones are replaced.
	want := []string{"gpu=no:NoSchedule", "node.kubernetes.io/unreachable:NoExecute", "other=x:NoSchedule", "spot:PreferNoSchedule"}
	if !lc.TaintsChanged || !slices.Equal(lc.Taints, want) {
		t.Errorf("taints %v, want %v", lc.Taints, want)
	}
	if lc.Annotations[ManagedLabelsAnnotation] != "zone=b,team=dev" || lc.Annotations[ManagedTaintsAnnotation] != "gpu=no:NoSchedule,spot:PreferNoSchedule" {
		t.Errorf("annotations %v", lc.Annotations)
	}
	if got := strings.Join(lc.Summary, "; "); got != "label zone=b; label team=dev; remove label rack; taint gpu=no:NoSchedule; taint spot:PreferNoSchedule" {
		t.Errorf("summary %q", got)
	}

	// Nothing wanted, nothing recorded: a node without labels needs no
	// annotations.
	bare := &NodeFacts{Registered: true, Labels: map[string]string{"team": "ops"}}
	if lc := DiffLabels(nil, nil, bare); !lc.Empty() {
		t.Errorf("bare node: %+v", lc)
	}
	// Labels already there (set at registration) only need the record.
	fresh := &NodeFacts{Registered: true, Labels: map[string]string{"zone": "a"}}
	lc = DiffLabels([]string{"zone=a"}, nil, fresh)
	if lc.Empty() || len(lc.Set) != 0 || lc.TaintsChanged || lc.Annotations[ManagedLabelsAnnotation] != "zone=a" {
		t.Errorf("fresh node: %+v", lc)
	}
}

// runningAgent is a converged agent of c whose node the API reports.
func runningAgent(c *Cluster, h Host, token secret.Value, n *NodeFacts) *HostFacts {
	f := converged(c, h, false, token, c.Version)
	f.Node = n
	return f
}

func labelCluster(labels map[string]string) (Cluster, Host) {
	h := Host{Address: "10.0.0.20", Role: k3s.Agent, Labels: labels, Taints: []string{"edge:NoSchedule"}}
	return Cluster{Name: "edge", Version: "v1.31.4+k3s1",
		Servers: []Host{{Address: "10.0.0.10", Role: k3s.Server}}, Agents: []Host{h}}, h
}

func planFor(t *testing.T, c Cluster, facts map[string]*HostFacts, token secret.Value) HostPlan {
	t.Helper()
	p, err := Build(Input{Spec: Spec{Clusters: []Cluster{c}}, Facts: facts,
		Tokens: map[string]secret.Value{c.Name: token}, Binaries: bins(c.Version)})
	if err != nil {
		t.Fatal(err)
	}
	return p.Clusters[0].Hosts[1]
}

func stepKinds(hp HostPlan) []StepKind {
	var out []StepKind
	for _, s := range hp.Steps {
		out = append(out, s.Kind)
	}
	return out
}

func TestLabelChangeDoesNotRestart(t *testing.T) {
	token := secret.New(fullTk)
	old, h := labelCluster(map[string]string{"zone": "a", "rack": "r1"})
	server := old.Servers[0]
	node := &NodeFacts{Registered: true, Ready: true, Name: "w1",
		Labels:        map[string]string{"zone": "a", "rack": "r1"},
		Taints:        []string{"edge:NoSchedule"},
		ManagedLabels: []string{"rack=r1", "zone=a"}, ManagedTaints: []string{"edge:NoSchedule"}}
	facts := map[string]*HostFacts{
		server.Address: converged(&old, server, true, token, old.Version),
		h.Address:      runningAgent(&old, h, token, node),
	}
	if hp := planFor(t, old, facts, token); hp.Action != ActionNothing || len(hp.Steps) != 0 {
		t.Fatalf("converged: %s %v", hp.Action, hp.Steps)
	}

	changed, _ := labelCluster(map[string]string{"zone": "b"})
	hp := planFor(t, changed, facts, token)
	if hp.Action != ActionLabel || !slices.Equal(stepKinds(hp), []StepKind{StepWriteConfig, StepLabels}) {
		t.Errorf("label change: %s %v", hp.Action, stepKinds(hp))
	}
	if !slices.Equal(hp.Changes, []string{k3s.ConfigPath}) {
		t.Errorf("changes %v", hp.Changes)
	}

	// A label change with another config change drains the Ready node,
	// restarts, uncordons and labels the node after it is Ready.
	changed.Agents[0].Config = map[string]any{"node-ip": "10.0.0.20"}
	hp = planFor(t, changed, facts, token)
	if hp.Action != ActionReconfigure || hp.Node != "w1" || !slices.Equal(stepKinds(hp), []StepKind{StepWriteConfig, StepDrain, StepStartAgent, StepWaitReady, StepUncordon, StepLabels}) {
		t.Errorf("label and node-ip change: %s %v", hp.Action, stepKinds(hp))
	}

	// Without k3sctl's record the old config cannot be told: restart.
	unrecorded := *node
	unrecorded.ManagedLabels, unrecorded.ManagedTaints = nil, nil
	facts[h.Address] = runningAgent(&old, h, token, &unrecorded)
	changed.Agents[0].Config = nil
	if hp = planFor(t, changed, facts, token); hp.Action != ActionReconfigure {
		t.Errorf("label change on a node without the record: %s, want reconfigure", hp.Action)
	}
}

func TestRepair(t *testing.T) {
	token := secret.New(fullTk)
	c, h := labelCluster(nil)
	server := c.Servers[0]
	facts := map[string]*HostFacts{server.Address: converged(&c, server, true, token, c.Version)}
	for _, tc := range []struct {
		name   string
		node   *NodeFacts
		active bool
		action Action
		reason string
	}{
		{"not registered", &NodeFacts{Name: "w1"}, true, ActionRepair, "k3s-agent runs but node w1 is not registered in the cluster (the join failed)"},
		{"not ready", &NodeFacts{Name: "w1", Registered: true, NotReadyReason: "NodeStatusUnknown: Kubelet stopped posting node status.",
			Labels: map[string]string{}, ManagedTaints: []string{"edge:NoSchedule"}, Taints: []string{"edge:NoSchedule"}}, true, ActionRepair,
			"node w1 is not Ready (NodeStatusUnknown: Kubelet stopped posting node status.)"},
		{"cluster not read", nil, true, ActionNothing, ""},
		{"stopped", &NodeFacts{Name: "w1"}, false, ActionStart, "k3s-agent is not running and node w1 is not registered in the cluster (a failed join?)"},
		{"stopped, registered", &NodeFacts{Name: "w1", Registered: true, Ready: true, Taints: []string{"edge:NoSchedule"}, ManagedTaints: []string{"edge:NoSchedule"}},
			false, ActionStart, "k3s-agent is not running"},
	} {
		f := runningAgent(&c, h, token, tc.node)
		f.Active[k3s.Agent] = tc.active
		facts[h.Address] = f
		hp := planFor(t, c, facts, token)
		if hp.Action != tc.action || (tc.reason != "" && !slices.Contains(hp.Reasons, tc.reason)) {
			t.Errorf("%s: %s %q, want %s %q", tc.name, hp.Action, hp.Reasons, tc.action, tc.reason)
		}
		if tc.action == ActionRepair {
			want := []StepKind{StepWriteConfig, StepRepair, StepWaitReady}
			if !tc.node.Registered {
				// The taint is set at registration and then recorded.
				want = append(want, StepLabels)
			}
			if !slices.Equal(stepKinds(hp), want) {
				t.Errorf("%s: steps %v, want %v", tc.name, stepKinds(hp), want)
			}
		}
	}
}
