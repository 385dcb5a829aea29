package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/plan"
	"github.com/k3sctl/k3sctl/internal/rollout"
)

// InstallOptions are what install was asked to do, checked.
type InstallOptions struct {
	IO      *IO
	Factory *Factory

	Address string // --ip or --host
	Cluster bool
	SSH     sshFlags
	K3s     k3sFlags
	// Config and Files come from --k3s-config/--k3s-extra-args and
	// --airgap-images.
	Config map[string]any
	Files  []plan.File
	// Proxy comes from --http-proxy, --https-proxy and --no-proxy.
	Proxy *plan.Proxy
}

// NewCmdInstall is the install command; runF replaces installRun in tests.
func NewCmdInstall(f *Factory, runF func(*InstallOptions) error) *cobra.Command {
	opts := &InstallOptions{IO: f.IO, Factory: f}
	var ip, host string
	cmd := &cobra.Command{
		Use:   "install --ip <address> [flags]",
		Short: "Install a K3s server on a host and merge its kubeconfig",
		Long: `Install K3s as a server on one host over SSH and add a context for it to
your kubeconfig. Running it again changes nothing if nothing changed; a newer
--k3s-version upgrades the node.

` + exitCodeHelp(ExitOK, ExitError, ExitUsage, ExitHostsFailed, ExitPreflight, ExitInterrupted),
		Example: `  # A single-node cluster on a Raspberry Pi
  $ k3sctl install --ip 192.168.1.50 --user pi

  # The first server of an HA cluster (embedded etcd), with an extra API name
  $ k3sctl install --ip 10.0.0.10 --user ubuntu --cluster --tls-san k3s.example.lan

  # A pinned version without Traefik, showing the plan only
  $ k3sctl install --ip 10.0.0.10 --k3s-version v1.31.4+k3s1 --k3s-extra-args '--disable traefik' --dry-run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if opts.Address, err = requireOne(ip, host); err != nil {
				return err
			}
			if err := opts.K3s.validate(); err != nil {
				return err
			}
			if err := opts.K3s.loadToken(opts.IO.In); err != nil {
				return err
			}
			if opts.Config, err = opts.K3s.nodeConfig(); err != nil {
				return err
			}
			if _, ok := opts.Config[k3s.DatastoreKey]; ok && opts.Cluster {
				return flagErrorf("--cluster starts embedded etcd, and the K3s settings give %s: a server on an external datastore needs no --cluster; leave it out", k3s.DatastoreKey)
			}
			if opts.Proxy, err = opts.K3s.proxy(); err != nil {
				return err
			}
			if opts.Files, err = opts.K3s.files(); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return installRun(cmd.Context(), opts)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&ip, "ip", "", "address of the host")
	fs.StringVar(&host, "host", "", "name of the host (DNS name or ~/.ssh/config Host alias)")
	fs.BoolVar(&opts.Cluster, "cluster", false, "start an HA cluster with embedded etcd (cluster-init) that more servers can join")
	addSSHFlags(fs, &opts.SSH)
	addK3sFlags(fs, &opts.K3s, true)
	return cmd
}

func installRun(ctx context.Context, opts *InstallOptions) error {
	kf := &opts.K3s
	name := contextName(kf.context, opts.Address)
	spec := &plan.Spec{AllowDowngrade: kf.allowDowngrade, Clusters: []plan.Cluster{{
		Name:         name,
		Partial:      true,
		Version:      kf.version,
		Token:        kf.tokenValue(),
		HA:           opts.Cluster,
		TLSSANs:      kf.tlsSANs,
		Servers:      []plan.Host{{Address: opts.Address, Role: k3s.Server}},
		ServerConfig: opts.Config,
		Files:        opts.Files,
		Proxy:        opts.Proxy,
		Airgap:       kf.airgap,
		FixBoot:      kf.fixCgroups,
	}}}
	r := &rolloutRun{io: opts.IO, spec: spec, sshFunc: opts.SSH.resolver(opts.Factory).options, k3s: kf,
		versions: map[string]string{name: versionOrChannel(kf)}, tokens: []givenToken{kf.k3sToken()}}
	r.kube = &rollout.KubeconfigOptions{
		Path:          kf.kubeconfigFile(),
		Context:       func(string) string { return name },
		SwitchContext: !kf.noSwitchContext,
	}
	return r.execute(ctx)
}

func versionOrChannel(f *k3sFlags) string {
	if f.version != "" {
		return f.version
	}
	return f.channel
}
