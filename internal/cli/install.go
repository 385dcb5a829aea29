package cli

import (
	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/plan"
	"github.com/k3sctl/k3sctl/internal/rollout"
	"github.com/spf13/cobra"
)

func init() { extraCommands = append(extraCommands, newInstallCmd) }

func newInstallCmd(io IO) *cobra.Command {
	var (
		ip, host string
		cluster  bool
		sf       sshFlags
		kf       k3sFlags
	)
	cmd := &cobra.Command{
		Use:   "install --ip <address> [flags]",
		Short: "Install a K3s server on a host and merge its kubeconfig",
		Long: `Install K3s as a server on one host over SSH and add a context for it to
your kubeconfig. Running it again changes nothing if nothing changed; a newer
--k3s-version upgrades the node.`,
		Example: `  # A single-node cluster on a Raspberry Pi
  $ k3sctl install --ip 192.168.1.50 --user pi

  # The first server of an HA cluster (embedded etcd), with an extra API name
  $ k3sctl install --ip 10.0.0.10 --user ubuntu --cluster --tls-san k3s.example.lan

  # A pinned version without Traefik, showing the plan only
  $ k3sctl install --ip 10.0.0.10 --k3s-version v1.31.4+k3s1 --k3s-extra-args '--disable traefik' --dry-run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			addr, err := requireOne(cmd, ip, host)
			if err != nil {
				return err
			}
			if err := kf.validate(); err != nil {
				return err
			}
			cfg, err := kf.nodeConfig()
			if err != nil {
				return err
			}
			files, err := kf.files()
			if err != nil {
				return err
			}
			name := contextName(kf.context, addr)
			spec := &plan.Spec{AllowDowngrade: kf.allowDowngrade, Clusters: []plan.Cluster{{
				Name:         name,
				Version:      kf.version,
				Token:        kf.tokenValue(),
				HA:           cluster,
				TLSSANs:      kf.tlsSANs,
				Servers:      []plan.Host{{Address: addr, Role: k3s.Server}},
				ServerConfig: cfg,
				Files:        files,
			}}}
			r := &rolloutRun{io: io, spec: spec, sshFunc: sf.resolver().options, k3s: &kf,
				versions: map[string]string{name: versionOrChannel(&kf)}}
			r.kube = &rollout.KubeconfigOptions{
				Path:          kf.kubeconfigFile(),
				Context:       func(string) string { return name },
				SwitchContext: !kf.noSwitchContext,
			}
			return r.execute(cmd.Context())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&ip, "ip", "", "address of the host")
	fs.StringVar(&host, "host", "", "name of the host (DNS name or ~/.ssh/config Host alias)")
	fs.BoolVar(&cluster, "cluster", false, "start an HA cluster with embedded etcd (cluster-init) that more servers can join")
	addSSHFlags(fs, &sf)
	addK3sFlags(fs, &kf, true)
	return cmd
}

func versionOrChannel(f *k3sFlags) string {
	if f.version != "" {
		return f.version
	}
	return f.channel
}
