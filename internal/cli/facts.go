package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/k3sctl/k3sctl/internal/node"
	"github.com/k3sctl/k3sctl/internal/ssh"
)

// FactsOptions are what facts was asked to do, checked.
type FactsOptions struct {
	IO      *IO
	Factory *Factory

	Address string // --ip or --host
	Output  string // "text" or "json"
	SSH     sshFlags
}

// NewCmdFacts is the facts command; runF replaces factsRun in tests.
func NewCmdFacts(f *Factory, runF func(*FactsOptions) error) *cobra.Command {
	opts := &FactsOptions{IO: f.IO, Factory: f}
	var ip, host string
	cmd := &cobra.Command{
		Use:   "facts --ip <address> [flags]",
		Short: "Show what k3sctl sees on a host",
		Long: `Connect to one host over SSH, exactly as install and join would, and print
what k3sctl reads there: OS, architecture, init system, sudo, K3s version and
services, memory, disk and the memory cgroup. Nothing on the host changes.
Run it first to check that k3sctl reaches your hosts.`,
		Example: `  # A Raspberry Pi on the local network
  $ k3sctl facts --ip 192.168.1.50 --user pi

  # A Host alias from ~/.ssh/config (HostName, User, Port, ProxyJump apply)
  $ k3sctl facts --host pi-kitchen

  # Through a bastion, as JSON
  $ k3sctl facts --ip 10.0.0.5 --ssh-jump ops@bastion.example.com:2222 --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if opts.Address, err = requireOne(ip, host); err != nil {
				return err
			}
			if opts.Output != "text" && opts.Output != "json" {
				return flagErrorf("--output must be text or json, not %q", opts.Output)
			}
			if runF != nil {
				return runF(opts)
			}
			return factsRun(cmd.Context(), opts)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&ip, "ip", "", "address of the host")
	fs.StringVar(&host, "host", "", "name of the host (DNS name or ~/.ssh/config Host alias)")
	fs.StringVarP(&opts.Output, "output", "o", "text", "output format: text or json")
	addSSHFlags(fs, &opts.SSH)
	return cmd
}

func factsRun(ctx context.Context, opts *FactsOptions) error {
	c, err := ssh.Dial(ctx, opts.SSH.resolver(opts.Factory).options(opts.Address))
	if err != nil {
		return err
	}
	defer c.Close()
	f, err := node.GatherFacts(ctx, c, node.FactsOptions{})
	if err != nil {
		return err
	}
	if opts.Output == "json" {
		return encodeIndented(opts.IO.Out, f)
	}
	printFacts(opts.IO.Out, f)
	for _, h := range f.Hints() {
		fmt.Fprintf(opts.IO.Err, "hint: %s\n", h)
	}
	return nil
}

func printFacts(w io.Writer, f *node.Facts) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	yesNo := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	row("Host", f.Host)
	row("Hostname", f.Hostname)
	os := f.OS.PrettyName
	if os == "" {
		os = f.OS.ID + " " + f.OS.VersionID
	}
	row("OS", os)
	arch := string(f.Arch)
	if arch == "" {
		arch = "unsupported"
	}
	row("Architecture", fmt.Sprintf("%s (K3s: %s)", f.Machine, arch))
	row("Kernel", f.Kernel)
	row("Init system", orNone(f.InitSystem))
	row("User", fmt.Sprintf("%s (sudo: %s)", f.User, f.Sudo))
	if f.K3sVersion == "" {
		row("K3s", "not installed")
	} else {
		row("K3s", f.K3sVersion)
	}
	if f.K3sBinarySHA256 != "" {
		row("K3s binary sha256", f.K3sBinarySHA256)
	}
	row("k3s service", serviceState(f.Services.K3s))
	row("k3s-agent service", serviceState(f.Services.K3sAgent))
	if f.Privileged {
		row("Server token", yesNo(f.ServerTokenExists))
		row("Admin kubeconfig", yesNo(f.KubeconfigExists))
	} else {
		row("Server token", "unknown (no sudo)")
		row("Admin kubeconfig", "unknown (no sudo)")
	}
	row("Memory", humanBytes(f.MemTotalBytes))
	row("Disk free", fmt.Sprintf("%s (%s)", humanBytes(f.DiskFreeBytes), f.DiskFreePath))
	if f.MemoryCgroup {
		row("Memory cgroup", "enabled")
	} else {
		row("Memory cgroup", "disabled")
	}
	row("Primary IP", orNone(f.PrimaryIP))
	if len(f.Interfaces) == 0 {
		row("Interfaces", "unknown (no ip command)")
	}
	for _, ifc := range f.Interfaces {
		v := strings.Join(ifc.Addresses, " ")
		if ifc.Name == f.DefaultInterface {
			v += " (default route)"
		}
		row("Interface "+ifc.Name, v)
	}
	tw.Flush()
}

func serviceState(s node.ServiceState) string {
	switch {
	case !s.Installed:
		return "not installed"
	case s.Active:
		return "installed, running"
	}
	return "installed, stopped"
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
