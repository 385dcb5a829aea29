package rollout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/k3sctl/k3sctl/internal/apply"
	"github.com/k3sctl/k3sctl/internal/kube"
	"github.com/k3sctl/k3sctl/internal/node"
	"github.com/k3sctl/k3sctl/internal/plan"
)

// RemoveOptions says how RemoveNode reaches the removed node's host and
// drains it.
type RemoveOptions struct {
	// Dial connects to the removed node's host (its InternalIP) to
	// uninstall K3s; nil or failing: K3s stays installed there.
	Dial         Dialer
	DrainTimeout time.Duration
	ForceDrain   bool
	// Progress receives people-talk about each step.
	Progress func(format string, a ...any)
}

// RemoveNode removes one node from the cluster of the server k3sctl is
// connected to (via): drains it when it is Ready, uninstalls K3s on its
// host when reachable and deletes its Node (K3s then removes its etcd
// member). A server whose removal would leave etcd without a quorum of
// Ready members is refused before anything is touched.
func RemoveNode(ctx context.Context, via Conn, name string, o RemoveOptions) error {
	if o.Progress == nil {
		o.Progress = func(string, ...any) {}
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 5 * time.Minute
	}
	apis := newClusterAPIs(map[string]Conn{via.Host(): via})
	defer apis.close()
	c, nodes, err := apis.nodes(ctx, "the cluster", []string{via.Host()})
	if err != nil {
		return err
	}
	var all, gone []plan.ClusterNode
	var names []string
	for _, n := range nodes {
		cn := apply.ClusterNodeOf(n)
		all = append(all, cn)
		names = append(names, n.Name)
		if n.Name == name {
			gone = append(gone, cn)
		}
	}
	if len(gone) == 0 {
		return fmt.Errorf("node %s is not in the cluster of %s (its nodes: %s)", name, via.Host(), strings.Join(names, ", "))
	}
	rm := gone[0]
	if rm.Address == via.Host() {
		return fmt.Errorf("node %s is the server k3sctl reaches the cluster through (%s): give another server with --ip", name, via.Host())
	}
	if why := plan.QuorumRefusal(all, gone); why != "" {
		return fmt.Errorf("refused, nothing changed: %s", why)
	}
	if rm.Ready {
		o.Progress("%s: draining", name)
		res, err := c.Drain(ctx, name, o.DrainTimeout, o.ForceDrain)
		if err != nil {
			return err
		}
		if len(res.Left) > 0 {
			o.Progress("%s: --force-drain: going on with %s left", name, strings.Join(res.Left, ", "))
		}
	}
	switch {
	case rm.Address == "" || o.Dial == nil:
		o.Progress("%s: the node reports no address; K3s stays installed on its host: run k3sctl uninstall --ip <address>", name)
	default:
		conn, err := o.Dial(ctx, rm.Address)
		if err != nil {
			o.Progress("%s: cannot reach %s (%v): K3s stays installed there; uninstall it with k3sctl uninstall --ip %s once reachable", name, rm.Address, err, rm.Address)
			break
		}
		removed, err := node.Uninstall(ctx, conn)
		_ = conn.Close()
		if err != nil {
			return err
		}
		if removed {
			o.Progress("%s: K3s uninstalled on %s", name, rm.Address)
		}
	}
	if err := c.DeleteNode(ctx, name); err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		nodes, err := c.ListNodes(ctx)
		if err == nil && !slices.ContainsFunc(nodes, func(n kube.Node) bool { return n.Name == name }) {
			o.Progress("%s: node deleted", name)
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("node " + name + " is still listed 2m after its deletion")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
