package cli

import (
	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/plan"
	"github.com/k3sctl/k3sctl/internal/secret"
	"github.com/spf13/cobra"
)

func init() { extraCommands = append(extraCommands, newJoinCmd) }

func newJoinCmd(io IO) *cobra.Command {
	var (
		ip, host             string
		serverIP, serverHost string
		serverUser           string
		asServer             bool
		nodeToken            string
		sf                   sshFlags
		kf                   k3sFlags
	)
	cmd := &cobra.Command{
		Use:   "join --ip <address> --server-ip <address> [flags]",
		Short: "Join a host to a running K3s cluster as an agent or another server",
		Long: `Install K3s on a host and join it to the cluster of a running server. The
token is read from the server over SSH unless --node-token is given.`,
		Example: `  # Add a worker to the Pi cluster
  $ k3sctl join --ip 192.168.1.51 --server-ip 192.168.1.50 --user pi

  # Add a second and third server to an HA cluster started with install --cluster
  $ k3sctl join --ip 10.0.0.11 --server-ip 10.0.0.10 --server
  $ k3sctl join --ip 10.0.0.12 --server-ip 10.0.0.10 --server

  # Join with a token you already have, without SSH to the server
  $ k3sctl node-token --ip 10.0.0.10 > token
  $ k3sctl join --ip 10.0.0.20 --server-ip 10.0.0.10 --node-token "$(cat token)"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			addr, err := requireOne(cmd, ip, host)
			if err != nil {
				return err
			}
			server, err := requireOne(cmd, serverIP, serverHost)
			if err != nil {
				return flagErrorf("which server? give --server-ip <address> or --server-host <name>")
			}
			if server == addr {
				return flagErrorf("--ip and --server-ip are the same host %s", addr)
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
			token := secret.New(nodeToken)
			if token.IsZero() {
				token = kf.tokenValue()
			}
			role := k3s.Agent
			if asServer {
				role = k3s.Server
			}
			c := plan.Cluster{
				Name: server, Version: kf.version, Token: token, JoinServer: server,
				TLSSANs: kf.tlsSANs, Files: files,
			}
			h := plan.Host{Address: addr, Role: role}
			if asServer {
				c.Servers = []plan.Host{h}
				c.ServerConfig = cfg
			} else {
				c.Agents = []plan.Host{h}
				c.AgentConfig = cfg
			}
			spec := &plan.Spec{AllowDowngrade: kf.allowDowngrade, Clusters: []plan.Cluster{c}}
			res := sf.resolver()
			if serverUser != "" {
				res.override(server, serverUser)
			}
			r := &rolloutRun{io: io, spec: spec, sshFunc: res.options, k3s: &kf,
				versions: map[string]string{server: joinVersion(cmd, &kf)}}
			return r.execute(cmd.Context())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&ip, "ip", "", "address of the host to join")
	fs.StringVar(&host, "host", "", "name of the host to join (DNS name or ~/.ssh/config Host alias)")
	fs.StringVar(&serverIP, "server-ip", "", "address of a running server of the cluster")
	fs.StringVar(&serverHost, "server-host", "", "name of a running server of the cluster")
	fs.StringVar(&serverUser, "server-user", "", "SSH user on the server (default: --user)")
	fs.BoolVar(&asServer, "server", false, "join as another server (HA, embedded etcd) instead of an agent")
	fs.StringVar(&nodeToken, "node-token", "", "the cluster's token (default: read from the server over SSH)")
	addSSHFlags(fs, &sf)
	addK3sFlags(fs, &kf, false)
	return cmd
}

// joinVersion is what a joining node installs: the given version or
// channel, else whatever the server runs (empty: decided from its facts).
func joinVersion(cmd *cobra.Command, f *k3sFlags) string {
	if f.version != "" {
		return f.version
	}
	if cmd.Flags().Changed("k3s-channel") {
		return f.channel
	}
	return ""
}
