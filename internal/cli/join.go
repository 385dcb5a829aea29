package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/plan"
	"github.com/k3sctl/k3sctl/internal/secret"
)

// JoinOptions are what join was asked to do, checked.
type JoinOptions struct {
	IO      *IO
	Factory *Factory

	Address    string // --ip or --host
	Server     string // --server-ip or --server-host
	ServerUser string
	AsServer   bool
	NodeToken  secret.Value
	SSH        sshFlags
	K3s        k3sFlags
	// Version is what the node installs: --k3s-version, else a
	// --k3s-channel given, else "" (whatever the server runs).
	Version string
	Config  map[string]any
	Files   []plan.File
	// Proxy comes from --http-proxy, --https-proxy and --no-proxy.
	Proxy *plan.Proxy
}

// NewCmdJoin is the join command; runF replaces joinRun in tests.
func NewCmdJoin(f *Factory, runF func(*JoinOptions) error) *cobra.Command {
	opts := &JoinOptions{IO: f.IO, Factory: f}
	var ip, host, serverIP, serverHost, nodeToken string
	cmd := &cobra.Command{
		Use:   "join --ip <address> --server-ip <address> [flags]",
		Short: "Join a host to a running K3s cluster as an agent or another server",
		Long: `Install K3s on a host and join it to the cluster of a running server. The
token is read from the server over SSH unless --token-file (or --node-token)
gives it.

` + exitCodeHelp(ExitOK, ExitError, ExitUsage, ExitHostsFailed, ExitPreflight, ExitInterrupted),
		Example: `  # Add a worker to the Pi cluster
  $ k3sctl join --ip 192.168.1.51 --server-ip 192.168.1.50 --user pi

  # Add a second and third server to an HA cluster started with install --cluster
  $ k3sctl join --ip 10.0.0.11 --server-ip 10.0.0.10 --server
  $ k3sctl join --ip 10.0.0.12 --server-ip 10.0.0.10 --server

  # Join with a token you already have, without SSH to the server
  $ (umask 077; k3sctl node-token --ip 10.0.0.10 > token)
  $ k3sctl join --ip 10.0.0.20 --server-ip 10.0.0.10 --token-file token`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if opts.Address, err = requireOne(ip, host); err != nil {
				return err
			}
			if opts.Server, err = requireOne(serverIP, serverHost); err != nil {
				return flagErrorf("which server? give --server-ip <address> or --server-host <name>")
			}
			if opts.Server == opts.Address {
				return flagErrorf("--ip and --server-ip are the same host %s", opts.Address)
			}
			if err := opts.K3s.validate(); err != nil {
				return err
			}
			other := ""
			if nodeToken != "" {
				other = "--node-token"
			}
			if err := opts.K3s.loadToken(opts.IO.In, other); err != nil {
				return err
			}
			if opts.Config, err = opts.K3s.nodeConfig(); err != nil {
				return err
			}
			if opts.Proxy, err = opts.K3s.proxy(); err != nil {
				return err
			}
			if opts.Files, err = opts.K3s.files(); err != nil {
				return err
			}
			opts.NodeToken = secret.New(nodeToken)
			opts.Version = opts.K3s.version
			if opts.Version == "" && cmd.Flags().Changed("k3s-channel") {
				opts.Version = opts.K3s.channel
			}
			if runF != nil {
				return runF(opts)
			}
			return joinRun(cmd.Context(), opts)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&ip, "ip", "", "address of the host to join")
	fs.StringVar(&host, "host", "", "name of the host to join (DNS name or ~/.ssh/config Host alias)")
	fs.StringVar(&serverIP, "server-ip", "", "address of a running server of the cluster")
	fs.StringVar(&serverHost, "server-host", "", "name of a running server of the cluster")
	fs.StringVar(&opts.ServerUser, "server-user", "", "SSH user on the server (default: --user)")
	fs.BoolVar(&opts.AsServer, "server", false, "join as another server (HA, embedded etcd) instead of an agent")
	fs.StringVar(&nodeToken, "node-token", "", "the cluster's token (default: read from the server over SSH); prefer --token-file, which keeps it off the command line")
	addSSHFlags(fs, &opts.SSH)
	addK3sFlags(fs, &opts.K3s, false)
	return cmd
}

func joinRun(ctx context.Context, opts *JoinOptions) error {
	kf := &opts.K3s
	given := givenToken{"--node-token", opts.NodeToken}
	if given.value.IsZero() {
		given = kf.k3sToken()
	}
	token := given.value
	role := k3s.Agent
	if opts.AsServer {
		role = k3s.Server
	}
	c := plan.Cluster{
		Name: opts.Server, Partial: true, Version: kf.version, Token: token, JoinServer: opts.Server,
		TLSSANs: kf.tlsSANs, Files: opts.Files, Proxy: opts.Proxy, Airgap: kf.airgap, FixBoot: kf.fixCgroups,
	}
	h := plan.Host{Address: opts.Address, Role: role}
	if opts.AsServer {
		c.Servers = []plan.Host{h}
		c.ServerConfig = opts.Config
	} else {
		c.Agents = []plan.Host{h}
		c.AgentConfig = opts.Config
	}
	spec := &plan.Spec{AllowDowngrade: kf.allowDowngrade, Clusters: []plan.Cluster{c}}
	res := opts.SSH.resolver(opts.Factory)
	if opts.ServerUser != "" {
		res.override(opts.Server, opts.ServerUser)
	}
	r := &rolloutRun{io: opts.IO, spec: spec, sshFunc: res.options, k3s: kf,
		versions: map[string]string{opts.Server: opts.Version}, tokens: []givenToken{given}}
	return r.execute(ctx)
}
