package node

import (
	"context"
	"fmt"
	"strings"

	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/ssh"
)

// UninstallCommand runs whichever of the node's uninstall scripts exist,
// the agent's first, stops at the first that fails, and prints "removed"
// for each one it runs.
func UninstallCommand() string {
	var steps []string
	for _, r := range []k3s.Role{k3s.Agent, k3s.Server} {
		s := k3s.UninstallPath(r)
		steps = append(steps, Group(If(Command("test", "-x", s), And(Command("echo", "removed"), Command(s)), "")))
	}
	return And(steps...)
}

// Uninstall removes K3s from the node with its own uninstall scripts and
// reports whether anything was removed.
func Uninstall(ctx context.Context, c Conn) (bool, error) {
	res, err := c.Run(ctx, UninstallCommand(), ssh.RunOptions{Sudo: true})
	if err != nil {
		return false, fmt.Errorf("%s: uninstall: %w", c.Host(), err)
	}
	return strings.Contains(string(res.Stdout), "removed"), nil
}
