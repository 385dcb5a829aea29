package cli

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/kubeconfig"
	"github.com/k3sctl/k3sctl/internal/plan"
	"github.com/k3sctl/k3sctl/internal/rollout"
	"github.com/k3sctl/k3sctl/internal/ssh"
	"github.com/spf13/cobra"
)

// dialOne connects to the one host a command works on.
func dialOne(ctx context.Context, f *Factory, sf *sshFlags, addr string) (*ssh.Client, error) {
	return ssh.Dial(ctx, sf.resolver(f).options(addr))
}

// NewCmdNodeToken is the node-token command.
func NewCmdNodeToken(f *Factory) *cobra.Command {
	io := f.IO
	var (
		ip, host string
		sf       sshFlags
	)
	cmd := &cobra.Command{
		Use:   "node-token --ip <server> [flags]",
		Short: "Print a server's join token",
		Long:  "Print the cluster's join token, read from a server over SSH. Nothing else goes to stdout.",
		Example: `  # Keep the token in a file readable only by you
  $ (umask 077; k3sctl node-token --ip 192.168.1.50 > token)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			addr, err := requireOne(ip, host)
			if err != nil {
				return err
			}
			c, err := dialOne(cmd.Context(), f, &sf, addr)
			if err != nil {
				return err
			}
			defer c.Close()
			data, err := c.ReadFile(cmd.Context(), k3s.TokenPath)
			if err != nil {
				return fmt.Errorf("%s: read token: %w\n  hint: is K3s installed as a server there? (k3sctl facts --ip %s)", addr, err, addr)
			}
			fmt.Fprintln(io.Out, strings.TrimSpace(string(data)))
			return nil
		},
	}
	cmd.Flags().StringVar(&ip, "ip", "", "address of a server")
	cmd.Flags().StringVar(&host, "host", "", "name of a server")
	addSSHFlags(cmd.Flags(), &sf)
	return cmd
}

// NewCmdKubeconfig is the kubeconfig command.
func NewCmdKubeconfig(f *Factory) *cobra.Command {
	io := f.IO
	var (
		ip, host, file string
		sub            subsetFlags
		sf             sshFlags
		kf             k3sFlags
	)
	cmd := &cobra.Command{
		Use:   "kubeconfig (--ip <server> | -f <inventory>) [flags]",
		Short: "Fetch a server's kubeconfig and merge it into yours",
		Long: `Fetch the admin kubeconfig of a server, point it at the address you gave and
merge it into your kubeconfig as one context. Other contexts, users, clusters
and comments are kept; an older entry of the same name is replaced.

With -f, do so for every cluster of an inventory: the context is named after
the cluster and points at its apiAddress, else at the first server that
answers.`,
		Example: `  # Use server B of an HA cluster, e.g. while A is down for maintenance
  $ k3sctl kubeconfig --ip 10.0.0.11 --context edge

  # Write to a separate file and leave the current context alone
  $ k3sctl kubeconfig --ip 192.168.1.50 --kubeconfig ./pi.yaml --no-switch-context

  # A context for every cluster of a fleet
  $ k3sctl kubeconfig -f fleet.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			path := kf.kubeconfigFile()
			if file != "" {
				if ip != "" || host != "" {
					return flagErrorf("give --ip/--host or -f, not both")
				}
				inv, err := loadInventory(file)
				if err != nil {
					return err
				}
				if inv, err = selectClusters(inv, &sub); err != nil {
					return err
				}
				res := sf.resolver(f)
				spec, _, sshFor := rollout.FromInventory(inv, res.options)
				failed := 0
				for _, c := range spec.Clusters {
					var lastErr error
					done := false
					for _, s := range c.Servers {
						server := c.APIAddress
						if server == "" {
							server = s.NetworkAddress()
						}
						if lastErr = mergeKubeconfig(ctx, sshFor(s.Address), server, c.Name, path, false); lastErr == nil {
							fmt.Fprintf(io.Err, "✓ %s: context %q from %s\n", c.Name, c.Name, s.Address)
							done = true
							break
						}
					}
					if !done {
						failed++
						fmt.Fprintf(io.Err, "✗ %s: %v\n", c.Name, lastErr)
					}
				}
				if failed > 0 {
					return &SilentError{Code: ExitHostsFailed}
				}
				fmt.Fprintf(io.Err, "Merged into %s\n", path)
				return nil
			}
			if len(sub.clusters) > 0 || sub.selector != "" {
				return flagErrorf("--cluster and --selector choose clusters of an inventory: give -f <inventory>")
			}
			addr, err := requireOne(ip, host)
			if err != nil {
				return err
			}
			name := contextName(kf.context, addr)
			if err := mergeKubeconfig(ctx, sf.resolver(f).options(addr), addr, name, path, !kf.noSwitchContext); err != nil {
				return err
			}
			fmt.Fprintf(io.Err, "Merged context %q into %s: kubectl --context %s get nodes\n", name, path, name)
			return nil
		},
	}
	cmd.Flags().StringVar(&ip, "ip", "", "address of a server")
	cmd.Flags().StringVar(&host, "host", "", "name of a server")
	cmd.Flags().StringVarP(&file, "file", "f", "", "inventory: merge a context for every cluster")
	addSubsetFlags(cmd.Flags(), &sub)
	addSSHFlags(cmd.Flags(), &sf)
	addKubeconfigFlags(cmd.Flags(), &kf)
	return cmd
}

// mergeKubeconfig reads a server's admin kubeconfig over SSH and merges it
// as context name, pointing at server.
func mergeKubeconfig(ctx context.Context, so ssh.Options, server, name, path string, switchContext bool) error {
	c, err := ssh.Dial(ctx, so)
	if err != nil {
		return err
	}
	defer c.Close()
	data, err := c.ReadFile(ctx, k3s.KubeconfigPath)
	if err != nil {
		return fmt.Errorf("%s: read %s: %w\n  hint: is K3s installed as a server there? (k3sctl facts --ip %s)", so.Address, k3s.KubeconfigPath, err, so.Address)
	}
	err = kubeconfig.MergeFile(path, data, kubeconfig.MergeOptions{Name: name, Server: plan.ServerURL(server), SwitchContext: switchContext})
	if err != nil {
		return fmt.Errorf("merge into %s: %w", path, err)
	}
	return nil
}

// NewCmdUninstall is the uninstall command.
func NewCmdUninstall(f *Factory) *cobra.Command {
	io := f.IO
	var (
		ip, host string
		sf       sshFlags
	)
	cmd := &cobra.Command{
		Use:   "uninstall --ip <address> [flags]",
		Short: "Stop K3s on a host and remove it",
		Long: `Stop K3s on a host and remove it with the node's own uninstall script
(k3s-uninstall.sh or k3s-agent-uninstall.sh). /etc/rancher/node stays, as
with K3s's own script, so the node keeps its identity if reinstalled.`,
		Example: `  $ k3sctl uninstall --ip 192.168.1.51 --user pi`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			addr, err := requireOne(ip, host)
			if err != nil {
				return err
			}
			c, err := dialOne(cmd.Context(), f, &sf, addr)
			if err != nil {
				return err
			}
			defer c.Close()
			removed, err := rollout.UninstallOne(cmd.Context(), c, rollout.NewLockOptions(os.Args))
			if err != nil {
				return err
			}
			if !removed {
				fmt.Fprintf(io.Err, "%s: K3s is not installed; nothing to do\n", addr)
				return nil
			}
			fmt.Fprintf(io.Err, "%s: K3s removed\n", addr)
			return nil
		},
	}
	cmd.Flags().StringVar(&ip, "ip", "", "address of the host")
	cmd.Flags().StringVar(&host, "host", "", "name of the host")
	addSSHFlags(cmd.Flags(), &sf)
	return cmd
}

// NewCmdNodeRemove is the node-remove command.
func NewCmdNodeRemove(f *Factory) *cobra.Command {
	io := f.IO
	var (
		ip, host, name string
		timeout        time.Duration
		force          bool
		sf             sshFlags
	)
	cmd := &cobra.Command{
		Use:   "node-remove --ip <server> --node <name> [flags]",
		Short: "Remove a node from its cluster: drain, uninstall K3s, delete the node",
		Long: `Remove one node from the cluster of a server, as apply --prune does for
nodes no longer in an inventory: drain it (respecting PodDisruptionBudgets,
for at most --drain-timeout; --force-drain goes on with pods left), uninstall
K3s on its host (reached at the node's InternalIP with the same SSH settings)
when k3sctl can reach it, and delete its Node, after which K3s removes its
etcd member. Removing a server that would leave etcd without a quorum of
Ready members is refused before anything is touched.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			addr, err := requireOne(ip, host)
			if err != nil {
				return err
			}
			if name == "" {
				return flagErrorf("which node? give --node <name> (kubectl get nodes lists them)")
			}
			if timeout <= 0 {
				return flagErrorf("--drain-timeout must be positive, not %s", timeout)
			}
			c, err := dialOne(cmd.Context(), f, &sf, addr)
			if err != nil {
				return err
			}
			defer c.Close()
			res := sf.resolver(f)
			dial := func(ctx context.Context, a string) (rollout.Conn, error) {
				o := res.options(addr)
				o.Address = a
				o.ConnectRetry = 10 * time.Second
				return ssh.Dial(ctx, o)
			}
			err = rollout.RemoveNode(cmd.Context(), c, name, rollout.RemoveOptions{Dial: dial, DrainTimeout: timeout, ForceDrain: force,
				Progress: func(format string, a ...any) { fmt.Fprintf(io.Err, format+"\n", a...) }})
			if err != nil {
				return fmt.Errorf("%s: node-remove %s: %w", addr, name, err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&ip, "ip", "", "address of a server of the cluster")
	cmd.Flags().StringVar(&host, "host", "", "name of a server of the cluster")
	cmd.Flags().StringVar(&name, "node", "", "name of the node to remove, as kubectl get nodes shows it")
	cmd.Flags().DurationVar(&timeout, "drain-timeout", 5*time.Minute, "how long to evict the node's pods")
	cmd.Flags().BoolVar(&force, "force-drain", false, "go on when pods could not be evicted within --drain-timeout")
	addSSHFlags(cmd.Flags(), &sf)
	return cmd
}
