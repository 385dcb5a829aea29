package apply

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/kube"
	"github.com/k3sctl/k3sctl/internal/plan"
	"github.com/k3sctl/k3sctl/internal/ssh"
)

// NodeAPI is what apply needs of a cluster's Kubernetes API;
// *kube.Client is one.
type NodeAPI interface {
	ListNodes(ctx context.Context) ([]kube.Node, error)
	PatchNode(ctx context.Context, name string, p kube.NodePatch) (kube.Node, error)
	Drain(ctx context.Context, name string, timeout time.Duration, force bool) (kube.DrainResult, error)
	Uncordon(ctx context.Context, name string) error
	DeleteNode(ctx context.Context, name string) error
}

var _ NodeAPI = (*kube.Client)(nil)

// ErrNoAPI says that k3sctl has no connection to a server of the cluster
// to reach its API through (k3sctl join with --token does not connect to
// the server). K3s applied node-label and node-taint at registration;
// only later changes need the API.
var ErrNoAPI = errors.New("no SSH connection to a server of the cluster to reach its API through")

// repair restarts a service whose node did not register or is not Ready;
// the wait-for-ready step after it names the cause from the service log
// when the join fails again.
func (r *runner) repair(ctx context.Context, j *job, hr *hostRun) (bool, error) {
	cmd, _ := serviceCommand(hr.initSystem, k3s.ServiceName(j.hp.Role), true)
	if _, err := hr.conn.Run(ctx, cmd, ssh.RunOptions{Sudo: true}); err != nil {
		return false, err
	}
	return true, nil
}

// labelNode brings the node's labels and taints to the inventory through
// the API and records the entries k3sctl manages in its annotations, so
// that a key the inventory drops later is removed and keys set by others
// are left alone.
func (r *runner) labelNode(ctx context.Context, j *job) (bool, error) {
	if r.o.API == nil {
		r.emit(j, Event{Type: EventLog, Step: plan.StepLabels, Message: "skipped: no access to the cluster's API"})
		return false, nil
	}
	api, err := r.o.API(ctx, j.cplan.Name)
	if errors.Is(err, ErrNoAPI) {
		r.emit(j, Event{Type: EventLog, Step: plan.StepLabels, Message: "skipped: " + err.Error() + "; the labels and taints were set when the node registered"})
		return false, nil
	}
	if err != nil {
		return false, err
	}
	spec := specHost(j)
	name, suffixed := plan.NodeName(j.cluster.spec, spec, r.o.Hostnames[j.hp.Address])
	// The node was Ready for the server that answered the wait; another
	// server may see it a moment later.
	deadline := time.Now().Add(r.o.ReadyTimeout)
	var n *kube.Node
	for n == nil {
		nodes, err := api.ListNodes(ctx)
		if err != nil {
			return false, err
		}
		for i := range nodes {
			if plan.NodeNameIs(nodes[i].Name, name, suffixed) {
				n = &nodes[i]
			}
		}
		if n == nil {
			if time.Now().After(deadline) || ctx.Err() != nil {
				return false, fmt.Errorf("node %s is not registered in cluster %s", name, j.cplan.Name)
			}
			sleep(ctx, r.o.PollInterval)
		}
	}
	labels, taints := plan.NodeLabels(j.cluster.spec, spec)
	lc := plan.DiffLabels(labels, taints, NodeFactsOf(*n))
	if lc.Empty() {
		return false, nil
	}
	patch, err := nodePatch(lc)
	if err != nil {
		return false, err
	}
	if _, err := api.PatchNode(ctx, n.Name, patch); err != nil {
		return false, err
	}
	r.emit(j, Event{Type: EventLog, Step: plan.StepLabels, Message: "node " + n.Name + ": " + strings.Join(lc.Summary, ", ")})
	return true, nil
}

// NodeFactsOf is a Node as planning sees it.
func NodeFactsOf(n kube.Node) *plan.NodeFacts {
	nf := &plan.NodeFacts{
		Registered: true,
		Name:       n.Name,
		Ready:      n.Ready,
		Version:    n.KubeletVersion,
		Labels:     n.Labels,
	}
	if !n.Ready {
		nf.NotReadyReason = n.ReadyReason
		if n.ReadyMessage != "" {
			nf.NotReadyReason += ": " + n.ReadyMessage
		}
		if nf.NotReadyReason == "" {
			nf.NotReadyReason = "no Ready condition"
		}
	}
	for _, t := range n.Taints {
		nf.Taints = append(nf.Taints, t.String())
	}
	ml, mt := n.Annotations[plan.ManagedLabelsAnnotation], n.Annotations[plan.ManagedTaintsAnnotation]
	nf.ManagedLabels, nf.ManagedTaints = plan.SplitManaged(ml), plan.SplitManaged(mt)
	return nf
}

// nodePatch is the API patch of a label change.
func nodePatch(lc plan.LabelChange) (kube.NodePatch, error) {
	var p kube.NodePatch
	if len(lc.Set) > 0 || len(lc.Remove) > 0 {
		p.Labels = map[string]*string{}
		for k, v := range lc.Set {
			p.Labels[k] = &v
		}
		for _, k := range lc.Remove {
			p.Labels[k] = nil
		}
	}
	if len(lc.Annotations) > 0 {
		p.Annotations = map[string]*string{}
		for k, v := range lc.Annotations {
			p.Annotations[k] = &v
		}
	}
	if lc.TaintsChanged {
		taints := []kube.Taint{}
		for _, s := range lc.Taints {
			t, err := parseTaint(s)
			if err != nil {
				return p, err
			}
			taints = append(taints, t)
		}
		p.Taints = &taints
	}
	return p, nil
}

// parseTaint reads key[=value]:Effect.
func parseTaint(s string) (kube.Taint, error) {
	kv, effect, ok := strings.Cut(s, ":")
	if !ok || effect == "" {
		return kube.Taint{}, errors.New("taint " + s + ": want key=value:Effect (NoSchedule, PreferNoSchedule or NoExecute)")
	}
	k, v, _ := strings.Cut(kv, "=")
	return kube.Taint{Key: k, Value: v, Effect: effect}, nil
}
