package apply

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/k3sctl/k3sctl/internal/kube"
	"github.com/k3sctl/k3sctl/internal/node"
	"github.com/k3sctl/k3sctl/internal/plan"
)

// controlPlaneLabel marks the Nodes of servers; etcdLabel those of
// embedded-etcd members.
const (
	controlPlaneLabel = "node-role.kubernetes.io/control-plane"
	etcdLabel         = "node-role.kubernetes.io/etcd"
)

// clusterAPI is the cluster's API for the drain, uncordon and removal
// steps, which cannot go on without it.
func (r *runner) clusterAPI(ctx context.Context, cluster string) (NodeAPI, error) {
	if r.o.API == nil {
		return nil, ErrNoAPI
	}
	return r.o.API(ctx, cluster)
}

// drain cordons j's node and evicts its pods before K3s restarts there.
// A server of an embedded-etcd cluster is drained only while the other
// servers are Ready: its restart takes one member away.
func (r *runner) drain(ctx context.Context, j *job) (bool, error) {
	api, err := r.clusterAPI(ctx, j.cplan.Name)
	if err != nil {
		return false, fmt.Errorf("drain node %s before the restart: %w", j.hp.Node, err)
	}
	if err := othersReady(ctx, api, j.hp.Node); err != nil {
		return false, &StepError{Host: j.hp.Address, Step: plan.StepDrain, Err: err,
			Hint: "bring the other servers back to Ready first (kubectl get nodes), then run apply again"}
	}
	return r.drainNode(ctx, j, api, j.hp.Node)
}

func (r *runner) drainNode(ctx context.Context, j *job, api NodeAPI, name string) (bool, error) {
	res, err := api.Drain(ctx, name, r.o.DrainTimeout, r.o.ForceDrain)
	for _, p := range res.Evicted {
		r.emit(j, Event{Type: EventLog, Step: plan.StepDrain, Message: "evicted " + p})
	}
	if err != nil {
		var de *kube.DrainError
		if errors.As(err, &de) {
			return true, &StepError{Host: j.hp.Address, Step: plan.StepDrain, Err: err,
				Hint: fmt.Sprintf("the node stays cordoned; after fixing, run apply again, or use --force-drain to restart with the pods left (kubectl uncordon %s undoes the cordon)", name)}
		}
		return true, err
	}
	if len(res.Left) > 0 {
		r.emit(j, Event{Type: EventLog, Step: plan.StepDrain, Message: fmt.Sprintf("--force-drain: going on after %s with %d pod(s) left on the node: %s",
			r.o.DrainTimeout, len(res.Left), strings.Join(res.Left, ", "))})
	}
	return true, nil
}

// othersReady checks, when name is a server of an embedded-etcd cluster,
// that every other server is Ready.
func othersReady(ctx context.Context, api NodeAPI, name string) error {
	nodes, err := api.ListNodes(ctx)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(nodes, func(n kube.Node) bool { return n.Name == name })
	if i < 0 {
		return nil // not registered: nothing to take away
	}
	if _, etcd := nodes[i].Labels[etcdLabel]; !etcd {
		return nil
	}
	var down []string
	for _, n := range nodes {
		if _, ok := n.Labels[controlPlaneLabel]; ok && n.Name != name && !n.Ready {
			down = append(down, n.Name)
		}
	}
	if len(down) > 0 {
		return fmt.Errorf("server %s is not restarted while server(s) %s are not Ready: etcd could lose its quorum", name, strings.Join(down, ", "))
	}
	return nil
}

// uncordon makes j's node schedulable again once it is Ready.
func (r *runner) uncordon(ctx context.Context, j *job) (bool, error) {
	api, err := r.clusterAPI(ctx, j.cplan.Name)
	if err != nil {
		return false, fmt.Errorf("uncordon node %s: %w; run kubectl uncordon %s", j.hp.Node, err, j.hp.Node)
	}
	if err := api.Uncordon(ctx, j.hp.Node); err != nil {
		return false, fmt.Errorf("%w; run kubectl uncordon %s", err, j.hp.Node)
	}
	return true, nil
}

// restarts reports whether hp restarts K3s on a node that may be serving:
// those count against MaxUnavailable.
func restarts(hp plan.HostPlan) bool {
	switch hp.Action {
	case plan.ActionInstall, plan.ActionStart:
		return false
	}
	return slices.ContainsFunc(hp.Steps, func(s plan.Step) bool {
		switch s.Kind {
		case plan.StepStartServer, plan.StepStartAgent, plan.StepRepair:
			return true
		}
		return false
	})
}

// runRemovals removes the nodes of a cluster that are no longer in the
// inventory, one at a time, once the cluster's hosts are done. It returns
// one result per removal.
func (r *runner) runRemovals(ctx context.Context, cp *plan.ClusterPlan, cs *clusterState) []HostResult {
	var out []HostResult
	failed := false
	for _, rm := range cp.Removals {
		if rm.Action != plan.ActionRemove || !rm.Pruned {
			continue
		}
		host := rm.Address
		if host == "" {
			host = rm.Node
		}
		j := &job{cluster: cs, cplan: cp, hp: plan.HostPlan{Address: host, Role: rm.Role, Action: plan.ActionRemove, Node: rm.Node, Steps: rm.Steps}}
		res := HostResult{Cluster: cp.Name, Host: host, Role: string(rm.Role), Action: string(plan.ActionRemove)}
		start := r.o.Now()
		var err error
		changed := false
		switch {
		case ctx.Err() != nil:
			res.Status, err = StatusCancelled, ctx.Err()
		case failed:
			res.Status, err = StatusSkipped, errors.New("not started: an earlier removal of the cluster failed")
			r.emit(j, Event{Type: EventHostFailed, Error: err.Error()})
		default:
			changed, err = r.remove(ctx, j, rm)
			switch {
			case err != nil && ctx.Err() != nil:
				res.Status = StatusCancelled
			case err != nil:
				res.Status = StatusFailed
				ev := Event{Type: EventHostFailed, Error: err.Error()}
				var se *StepError
				if errors.As(err, &se) {
					ev.Step, ev.Hint = se.Step, se.Hint
				}
				r.emit(j, ev)
			default:
				res.Status = StatusDone
				r.emit(j, Event{Type: EventHostDone, Changed: changed})
			}
		}
		if err != nil {
			res.Error = err.Error()
			failed = true
		}
		res.Changed = changed
		res.Elapsed = r.o.Now().Sub(start)
		out = append(out, res)
	}
	return out
}

// remove drains a node, deletes it and uninstalls K3s on its host.
func (r *runner) remove(ctx context.Context, j *job, rm plan.Removal) (bool, error) {
	changed := false
	var api NodeAPI
	for _, s := range rm.Steps {
		c, err := r.step(ctx, j, s.Kind, func(ctx context.Context) (bool, error) {
			if s.Kind != plan.StepUninstall && api == nil {
				a, err := r.clusterAPI(ctx, j.cplan.Name)
				if err != nil {
					return false, err
				}
				api = a
			}
			switch s.Kind {
			case plan.StepDrain:
				return r.drainNode(ctx, j, api, rm.Node)
			case plan.StepDeleteNode:
				return r.deleteNode(ctx, j, api, rm)
			case plan.StepUninstall:
				return r.uninstallRemoved(ctx, j, rm)
			}
			return false, fmt.Errorf("this k3sctl cannot run step %q; update k3sctl", s.Kind)
		})
		changed = changed || c
		if err != nil {
			return changed, err
		}
	}
	return changed, nil
}

// deleteNode deletes the Node; for a server it checks again that the
// members left keep a healthy quorum, then waits until the Node is gone.
func (r *runner) deleteNode(ctx context.Context, j *job, api NodeAPI, rm plan.Removal) (bool, error) {
	nodes, err := api.ListNodes(ctx)
	if err != nil {
		return false, err
	}
	var cn []plan.ClusterNode
	var gone []plan.ClusterNode
	for _, n := range nodes {
		c := ClusterNodeOf(n)
		cn = append(cn, c)
		if n.Name == rm.Node {
			gone = append(gone, c)
		}
	}
	if len(gone) == 0 {
		r.emit(j, Event{Type: EventLog, Step: plan.StepDeleteNode, Message: "node " + rm.Node + " is already gone"})
		return false, nil
	}
	if why := plan.QuorumRefusal(cn, gone); why != "" {
		return false, &StepError{Host: j.hp.Address, Step: plan.StepDeleteNode, Err: errors.New(why),
			Hint: "kubectl uncordon " + rm.Node + " undoes the drain"}
	}
	if err := api.DeleteNode(ctx, rm.Node); err != nil {
		return false, err
	}
	deadline := time.Now().Add(r.o.ReadyTimeout)
	for {
		nodes, err := api.ListNodes(ctx)
		if err == nil && !slices.ContainsFunc(nodes, func(n kube.Node) bool { return n.Name == rm.Node }) {
			return true, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return true, fmt.Errorf("node %s is still listed %s after its deletion", rm.Node, r.o.ReadyTimeout)
		}
		sleep(ctx, r.o.PollInterval)
	}
}

// uninstallRemoved uninstalls K3s on a removed node's host when k3sctl
// reaches it; otherwise it says how to do it by hand, and the removal
// still counts as done: the node is out of the cluster.
func (r *runner) uninstallRemoved(ctx context.Context, j *job, rm plan.Removal) (bool, error) {
	byHand := func(why string) (bool, error) {
		where := rm.Address
		if where == "" {
			where = "the host of node " + rm.Node
		}
		r.emit(j, Event{Type: EventLog, Step: plan.StepUninstall, Message: fmt.Sprintf("%s: %s keeps K3s installed; uninstall it with k3sctl uninstall --ip <address> or /usr/local/bin/k3s-uninstall.sh (k3s-agent-uninstall.sh on an agent) there", why, where)})
		return false, nil
	}
	if rm.Address == "" {
		return byHand("the node reported no address")
	}
	if r.o.Dial == nil {
		return byHand("no connection to " + rm.Address)
	}
	conn, closeConn, err := r.o.Dial(ctx, j.cplan.Name, rm.Address)
	if err != nil {
		return byHand(fmt.Sprintf("cannot reach %s (%v)", rm.Address, err))
	}
	defer closeConn()
	return node.Uninstall(ctx, conn)
}

// ClusterNodeOf is a Node as removal planning sees it.
func ClusterNodeOf(n kube.Node) plan.ClusterNode {
	c := plan.ClusterNode{Name: n.Name, Ready: n.Ready}
	_, c.Server = n.Labels[controlPlaneLabel]
	_, c.Etcd = n.Labels[etcdLabel]
	for _, a := range n.Addresses {
		if a.Type == "InternalIP" && c.Address == "" {
			c.Address = a.Address
		}
	}
	return c
}
