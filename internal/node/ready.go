package node

import (
	"context"
	"strings"

	"github.com/k3sctl/k3sctl/internal/ssh"
)

// NodeStatus is one line of `k3s kubectl get nodes`.
type NodeStatus struct {
	Name    string
	Ready   bool
	Version string
}

// NodesCommand lists the cluster's nodes through a server's own API.
func NodesCommand() string { return Command("k3s", "kubectl", "get", "nodes") }

// Nodes asks a server's own API for the cluster's nodes.
func Nodes(ctx context.Context, c Conn) ([]NodeStatus, error) {
	res, err := c.Run(ctx, NodesCommand(), ssh.RunOptions{Sudo: true})
	if err != nil {
		return nil, err
	}
	return ParseNodes(string(res.Stdout)), nil
}

// ParseNodes reads the table `kubectl get nodes` prints:
// NAME STATUS ROLES AGE VERSION. The header and short lines are skipped.
func ParseNodes(out string) []NodeStatus {
	var nodes []NodeStatus
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 5 || (f[0] == "NAME" && f[1] == "STATUS") {
			continue
		}
		// A cordoned node is "Ready,SchedulingDisabled".
		status, _, _ := strings.Cut(f[1], ",")
		nodes = append(nodes, NodeStatus{Name: f[0], Ready: status == "Ready", Version: f[4]})
	}
	return nodes
}
