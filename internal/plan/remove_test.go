package plan

import (
	"strings"
	"testing"
)

func TestQuorumRefusal(t *testing.T) {
	srv := func(name string, ready bool) ClusterNode {
		return ClusterNode{Name: name, Server: true, Etcd: true, Ready: ready, Address: "10.0.0." + name[1:]}
	}
	agent := ClusterNode{Name: "w1", Ready: true}
	three := []ClusterNode{srv("s1", true), srv("s2", true), srv("s3", true), agent}
	for _, tc := range []struct {
		name  string
		nodes []ClusterNode
		gone  []ClusterNode
		want  string // "" or part of the refusal
	}{
		{"an agent", three, []ClusterNode{agent}, ""},
		{"one of three healthy", three, []ClusterNode{srv("s3", true)}, ""},
		{"a stopped one of three", []ClusterNode{srv("s1", true), srv("s2", false), srv("s3", true)}, []ClusterNode{srv("s2", false)}, ""},
		{"one of three while another is stopped", []ClusterNode{srv("s1", true), srv("s2", false), srv("s3", true)}, []ClusterNode{srv("s3", true)},
			"removing server s3 would leave 2 etcd member(s) of which 1 Ready, short of the quorum of 2"},
		{"two of three, one at a time", three, []ClusterNode{srv("s2", true), srv("s3", true)}, ""},
		{"the last member", []ClusterNode{srv("s1", true)}, []ClusterNode{srv("s1", true)}, "would leave no etcd member"},
	} {
		got := QuorumRefusal(tc.nodes, tc.gone)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%s: refusal %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestRemovalsOnlyForNodesNoHostClaims(t *testing.T) {
	c := Cluster{Name: "c", Servers: []Host{{Address: "10.0.0.1", Role: "server"}}, Agents: []Host{{Address: "10.0.0.2", Role: "agent", NodeName: "named"}}}
	facts := map[string]*HostFacts{
		"10.0.0.1": {Hostname: "s1", Node: &NodeFacts{Name: "s1", Registered: true, Ready: true}},
		"10.0.0.2": {Hostname: "w9", Node: &NodeFacts{Name: "named", Registered: true, Ready: true}},
	}
	nodes := []ClusterNode{
		{Name: "s1", Server: true, Ready: true, Address: "10.0.0.1"},
		{Name: "named", Ready: true, Address: "10.0.0.2"},
		{Name: "old", Ready: true, Address: "10.0.0.3"},
		{Name: "dead", Ready: false, Address: "10.0.0.4"},
	}
	in := Input{Spec: Spec{Clusters: []Cluster{c}}, Facts: facts, Nodes: map[string][]ClusterNode{"c": nodes}}
	rs := planRemovals(in, &c)
	if len(rs) != 2 || rs[0].Node != "dead" || rs[1].Node != "old" || rs[0].Pruned {
		t.Fatalf("removals %+v", rs)
	}
	if len(rs[0].Steps) != 2 || rs[0].Steps[0].Kind != StepUninstall {
		t.Errorf("a node that is not Ready is not drained: %+v", rs[0].Steps)
	}
	if k := rs[1].Steps; len(k) != 3 || k[0].Kind != StepDrain || k[1].Kind != StepUninstall || k[2].Kind != StepDeleteNode {
		t.Errorf("steps %+v", k)
	}
	if !strings.Contains(rs[1].Reasons[0], "--prune") {
		t.Errorf("without --prune the plan says the flag is needed: %v", rs[1].Reasons)
	}
	// A host that cannot be inspected might be one of them: nothing goes.
	facts["10.0.0.2"] = &HostFacts{Err: "unreachable"}
	in.Prune = true
	for _, r := range planRemovals(in, &c) {
		if r.Action != ActionRefuse || !strings.Contains(r.Reasons[0], "10.0.0.2") {
			t.Errorf("with an uninspected host: %+v", r)
		}
	}
}

// install and join name one host of a cluster: its other nodes are not
// removals.
func TestNoRemovalsForAPartialCluster(t *testing.T) {
	c := Cluster{Name: "c", Partial: true, JoinServer: "10.0.0.1", Agents: []Host{{Address: "10.0.0.2", Role: "agent"}}}
	facts := map[string]*HostFacts{"10.0.0.2": {Hostname: "w2", Node: &NodeFacts{Name: "w2", Registered: true, Ready: true}}}
	nodes := []ClusterNode{
		{Name: "s1", Server: true, Ready: true, Address: "10.0.0.1"},
		{Name: "w2", Ready: true, Address: "10.0.0.2"},
		{Name: "w3", Ready: true, Address: "10.0.0.3"},
	}
	in := Input{Spec: Spec{Clusters: []Cluster{c}}, Facts: facts, Nodes: map[string][]ClusterNode{"c": nodes}, Prune: true}
	if rs := planRemovals(in, &c); len(rs) != 0 {
		t.Errorf("removals of a partial cluster: %+v", rs)
	}
	c.Partial = false
	if rs := planRemovals(in, &c); len(rs) != 1 || rs[0].Node != "w3" {
		t.Errorf("removals of a whole cluster: %+v", rs)
	}
}
