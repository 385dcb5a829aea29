package plan

import (
	"fmt"
	"slices"
	"strings"

	"github.com/k3sctl/k3sctl/internal/k3s"
)

// ClusterNode is a Node registered in a cluster, as removal planning needs
// it.
type ClusterNode struct {
	Name string
	// Server: the node runs the control plane; Etcd: it is a member of
	// the cluster's embedded etcd.
	Server bool
	Etcd   bool
	Ready  bool
	// Address is the node's InternalIP; "" when it reports none.
	Address string
}

// Removal is a node registered in a cluster whose host is no longer in
// the inventory. apply --prune drains it, uninstalls K3s from its host
// and deletes its Node (K3s then removes its etcd member).
type Removal struct {
	Node    string   `json:"node"`
	Address string   `json:"address,omitempty"`
	Role    k3s.Role `json:"role"`
	// Action is ActionRemove, or ActionRefuse when removing the node
	// would leave etcd without a quorum of healthy members.
	Action  Action   `json:"action"`
	Reasons []string `json:"reasons,omitempty"`
	// Pruned: apply was asked to remove (--prune); without it the
	// removal is only shown.
	Pruned bool   `json:"pruned"`
	Steps  []Step `json:"steps,omitempty"`
}

// ActionRemove drains a node, deletes it from the cluster and uninstalls
// K3s from its host.
const ActionRemove Action = "remove"

// PruneHint says how to carry out removals that the plan only shows.
const PruneHint = "not in the inventory: apply --prune removes it"

// Removals lists the removals of the plan, refused ones included.
func (p *Plan) Removals() []Removal {
	var out []Removal
	for _, c := range p.Clusters {
		out = append(out, c.Removals...)
	}
	return out
}

// RefusedRemovals lists removals that would leave etcd without a quorum
// of healthy members; apply --prune touches nothing while there is one.
func (p *Plan) RefusedRemovals() []Removal {
	var out []Removal
	for _, r := range p.Removals() {
		if r.Action == ActionRefuse {
			out = append(out, r)
		}
	}
	return out
}

// planRemovals finds the nodes of cluster c registered in the API that no
// host of the inventory claims, and decides whether each can go: agents
// always; servers of an embedded-etcd cluster one at a time, each only
// while the members that remain keep a quorum of healthy ones. A refused
// server refuses every removal of the cluster, so that nothing is touched.
func planRemovals(in Input, c *Cluster) []Removal {
	nodes, ok := in.Nodes[c.Name]
	if !ok || c.Partial {
		return nil
	}
	claimed := func(n ClusterNode) bool {
		for _, h := range clusterHosts(c) {
			if f := in.Facts[h.Address]; f != nil && f.Node != nil && f.Node.Name == n.Name {
				return true
			}
			if h.NodeName != "" && h.NodeName == n.Name {
				return true
			}
			if n.Address != "" && (h.NetworkAddress() == n.Address || h.PrivateAddress == n.Address) {
				return true
			}
		}
		return n.Address != "" && n.Address == c.JoinServer
	}
	var gone []ClusterNode
	for _, n := range nodes {
		if !claimed(n) {
			gone = append(gone, n)
		}
	}
	if len(gone) == 0 {
		return nil
	}
	// Agents first, then servers, each by name (the API's order).
	slices.SortStableFunc(gone, func(a, b ClusterNode) int {
		switch {
		case a.Server == b.Server:
			return strings.Compare(a.Name, b.Name)
		case !a.Server:
			return -1
		}
		return 1
	})
	refusal := QuorumRefusal(nodes, gone)
	for _, h := range clusterHosts(c) {
		if f := in.Facts[h.Address]; f == nil || f.Err != "" || f.Hostname == "" {
			// Its node cannot be told from the others: one of those
			// that look gone may be it.
			refusal = fmt.Sprintf("host %s of the inventory could not be inspected, so which node is its own is unknown: removals wait until it is reachable", h.Address)
			break
		}
	}
	var out []Removal
	for _, n := range gone {
		r := Removal{Node: n.Name, Address: n.Address, Role: k3s.Agent, Action: ActionRemove, Pruned: in.Prune}
		if n.Server {
			r.Role = k3s.Server
		}
		switch {
		case refusal != "":
			r.Action = ActionRefuse
			r.Reasons = []string{refusal}
		case !in.Prune:
			r.Reasons = []string{PruneHint}
		default:
			r.Reasons = []string{"not in the inventory"}
		}
		if !n.Ready && r.Action == ActionRemove {
			r.Reasons = append(r.Reasons, "the node is not Ready: nothing to drain")
		}
		if r.Action == ActionRemove {
			r.Steps = removalSteps(r, n)
		}
		out = append(out, r)
	}
	return out
}

// QuorumRefusal says why removing the servers in gone would leave the
// cluster's etcd without a quorum of healthy members, or "". Servers go
// one at a time: after each, the members left need a majority that is
// Ready.
func QuorumRefusal(nodes, gone []ClusterNode) string {
	members := 0
	healthy := 0
	for _, n := range nodes {
		if n.Etcd {
			members++
			if n.Ready {
				healthy++
			}
		}
	}
	for _, n := range gone {
		if !n.Etcd {
			continue
		}
		members--
		if n.Ready {
			healthy--
		}
		if members == 0 {
			return fmt.Sprintf("removing server %s would leave no etcd member: the cluster would be gone (uninstall it with k3sctl reset instead)", n.Name)
		}
		if need := members/2 + 1; healthy < need {
			return fmt.Sprintf("removing server %s would leave %d etcd member(s) of which %d Ready, short of the quorum of %d: bring the stopped servers back first (kubectl get nodes shows which are NotReady)", n.Name, members, healthy, need)
		}
	}
	return ""
}

func removalSteps(r Removal, n ClusterNode) []Step {
	host := r.Address
	if host == "" {
		host = r.Node
	}
	var steps []Step
	add := func(k StepKind, reason string) {
		steps = append(steps, Step{Kind: k, Host: host, Reason: reason, Changes: true})
	}
	if n.Ready {
		add(StepDrain, "cordons node "+r.Node+" and evicts its pods, respecting PodDisruptionBudgets")
	}
	// K3s is uninstalled before its Node is deleted: a kubelet that
	// still runs registers its Node again.
	if r.Address != "" {
		add(StepUninstall, "uninstalls K3s on "+r.Address+" when it is reachable")
	} else {
		add(StepUninstall, "the node reports no address: K3s stays installed on its host")
	}
	del := "deletes node " + r.Node
	if n.Etcd {
		del += "; K3s removes its etcd member"
	}
	add(StepDeleteNode, del)
	return steps
}

// clusterHosts are c's servers and agents.
func clusterHosts(c *Cluster) []Host {
	return append(append([]Host{}, c.Servers...), c.Agents...)
}
