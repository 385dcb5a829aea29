package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/k3sctl/k3sctl/internal/inventory"
	"github.com/k3sctl/k3sctl/internal/plan"
	"github.com/k3sctl/k3sctl/internal/rollout"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// addPlanningFlags are the flags that change what the plan of an
// inventory is: plan and apply both take them.
func addPlanningFlags(fs *pflag.FlagSet, file *string, force *bool, kf *k3sFlags) {
	fs.StringVarP(file, "file", "f", "", "inventory file (required)")
	fs.BoolVar(force, "force", false, "allow upgrades that skip a minor version")
	fs.BoolVar(&kf.allowDowngrade, "allow-downgrade", false, "allow installing an older K3s version than a node has")
	fs.StringVar(&kf.downloadURL, "download-url", "", downloadURLUsage)
	fs.StringVar(&kf.channelURL, "channel-url", "", channelURLUsage)
	fs.StringVar(&kf.binary, "k3s-binary", "", "install this local k3s binary on every host (air-gapped sites)")
	fs.BoolVar(&kf.fixCgroups, "fix-cgroups", false, "on hosts without the memory cgroup (Raspberry Pi), add cgroup_memory=1 cgroup_enable=memory to the boot command line and reboot them before installing (as fixBoot: true)")
}

// fleetRun reads the inventory and builds the run. kube is nil for no
// kubeconfig merge.
func fleetRun(fac *Factory, file string, force bool, sf *sshFlags, kf *k3sFlags, kube *rollout.KubeconfigOptions) (*rolloutRun, error) {
	inv, err := loadInventory(file)
	if err != nil {
		return nil, err
	}
	res := sf.resolver(fac)
	spec, versions, sshFor := rollout.FromInventory(inv, res.options)
	spec.AllowDowngrade = kf.allowDowngrade
	spec.Force = force
	if kf.fixCgroups {
		for i := range spec.Clusters {
			spec.Clusters[i].FixBoot = true
		}
	}
	return &rolloutRun{io: fac.IO, spec: spec, sshFunc: sshFor, k3s: kf, versions: versions, kube: kube}, nil
}

// requireInventory is the check of -f that plan, apply and reset share.
func requireInventory(file string) error {
	if file == "" {
		return flagErrorf("which inventory? give -f <file> (k3sctl init writes a starter)")
	}
	return nil
}

// PlanOptions are what plan was asked to do, checked.
type PlanOptions struct {
	IO      *IO
	Factory *Factory

	File             string
	Force            bool
	DetailedExitCode bool
	SSH              sshFlags
	// K3s holds the planning flags: --allow-downgrade, --download-url,
	// --channel-url, --k3s-binary and --output.
	K3s k3sFlags
}

// NewCmdPlan is the plan command; runF replaces planRun in tests.
func NewCmdPlan(f *Factory, runF func(*PlanOptions) error) *cobra.Command {
	opts := &PlanOptions{IO: f.IO, Factory: f}
	cmd := &cobra.Command{
		Use:   "plan -f <inventory> [flags]",
		Short: "Show what apply would change, host by host",
		Long: `Gather facts from every host of the inventory in parallel (read-only) and
print, per cluster and host, what apply would do and in which order:
install, upgrade from → to, reconfigure, start, nothing, or refuse.

` + exitCodeHelp(ExitOK, ExitError, ExitUsage, ExitHostsFailed, ExitChangesPending, ExitInterrupted),
		Example: `  # What would change?
  $ k3sctl plan -f fleet.yaml

  # In a script: exit 0 when nothing changes, 4 when something would
  $ k3sctl plan -f fleet.yaml --detailed-exitcode

  # The plan as JSON
  $ k3sctl plan -f fleet.yaml -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireInventory(opts.File); err != nil {
				return err
			}
			if err := opts.K3s.validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return planRun(cmd.Context(), opts)
		},
	}
	fs := cmd.Flags()
	addPlanningFlags(fs, &opts.File, &opts.Force, &opts.K3s)
	fs.StringVarP(&opts.K3s.output, "output", "o", "", "output: json for the plan as JSON (default: text)")
	fs.BoolVar(&opts.DetailedExitCode, "detailed-exitcode", false,
		fmt.Sprintf("exit %d when nothing would change, %d when something would, %d when hosts are refused or unreachable", ExitOK, ExitChangesPending, ExitHostsFailed))
	addSSHFlags(fs, &opts.SSH)
	return cmd
}

func planRun(ctx context.Context, opts *PlanOptions) error {
	r, err := fleetRun(opts.Factory, opts.File, opts.Force, &opts.SSH, &opts.K3s, nil)
	if err != nil {
		return err
	}
	p, err := r.prepare(ctx)
	if err != nil {
		return err
	}
	defer p.Close()
	if opts.K3s.output == "json" {
		if err := encodeIndented(opts.IO.Out, p.Plan); err != nil {
			return err
		}
	} else {
		plan.Print(opts.IO.Out, p.Plan)
	}
	switch {
	case len(p.Plan.Refused()) > 0:
		return &SilentError{Code: ExitHostsFailed}
	case opts.DetailedExitCode && p.Plan.Changes():
		return &SilentError{Code: ExitChangesPending}
	}
	return nil
}

// ApplyOptions are what apply was asked to do, checked.
type ApplyOptions struct {
	IO      *IO
	Factory *Factory

	File           string
	Force          bool
	Concurrency    int
	MaxUnavailable int
	NoKubeconfig   bool
	SSH            sshFlags
	K3s            k3sFlags
}

// NewCmdApply is the apply command; runF replaces applyRun in tests.
func NewCmdApply(f *Factory, runF func(*ApplyOptions) error) *cobra.Command {
	opts := &ApplyOptions{IO: f.IO, Factory: f}
	cmd := &cobra.Command{
		Use:   "apply -f <inventory> [flags]",
		Short: "Make every cluster of the inventory as described, in parallel",
		Long: `Run the plan: per cluster the first server, then further servers one at a
time, then agents in parallel; clusters in parallel, at most --concurrency
hosts at once. A failed host fails only what depends on it. Run it again at
any time: what is already right is left alone, and a failed run picks up
where it stopped. Each cluster's kubeconfig is merged as a context named
after the cluster.

` + exitCodeHelp(ExitOK, ExitError, ExitUsage, ExitHostsFailed, ExitInterrupted),
		Example: `  # Roll out the fleet with a live view of every host
  $ k3sctl apply -f fleet.yaml

  # Plain log lines (also the default when stderr is not a terminal)
  $ k3sctl apply -f fleet.yaml --plain

  # Upgrade: change version in the file, then
  $ k3sctl apply -f fleet.yaml --max-unavailable 2`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireInventory(opts.File); err != nil {
				return err
			}
			if opts.Concurrency < 1 {
				return flagErrorf("--concurrency must be at least 1, not %d", opts.Concurrency)
			}
			if opts.MaxUnavailable < 1 {
				return flagErrorf("--max-unavailable must be at least 1, not %d", opts.MaxUnavailable)
			}
			if opts.K3s.concurrentUploads < 1 {
				return flagErrorf("--concurrent-uploads must be at least 1, not %d", opts.K3s.concurrentUploads)
			}
			if err := opts.K3s.validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return applyRun(cmd.Context(), opts)
		},
	}
	fs := cmd.Flags()
	addPlanningFlags(fs, &opts.File, &opts.Force, &opts.K3s)
	fs.IntVar(&opts.Concurrency, "concurrency", 20, "hosts worked on at once")
	fs.IntVar(&opts.MaxUnavailable, "max-unavailable", 1, "agents of one cluster upgraded at once")
	fs.DurationVar(&opts.K3s.timeout, "timeout", 5*time.Minute, "how long to wait for each node to become ready")
	fs.IntVar(&opts.K3s.concurrentUploads, "concurrent-uploads", 5, "binary uploads at once")
	fs.StringVarP(&opts.K3s.output, "output", "o", "", "output: json for JSON (default: terminal view or plain lines)")
	fs.BoolVar(&opts.K3s.plain, "plain", false, "plain log lines instead of the terminal view")
	fs.BoolVar(&opts.K3s.dryRun, "dry-run", false, "print the plan and change nothing")
	fs.BoolVar(&opts.NoKubeconfig, "no-kubeconfig", false, "do not merge the clusters' kubeconfigs")
	fs.StringVar(&opts.K3s.kubeconfigPath, "kubeconfig", "", "kubeconfig file to merge into (default: $KUBECONFIG or ~/.kube/config)")
	addSSHFlags(fs, &opts.SSH)
	return cmd
}

func applyRun(ctx context.Context, opts *ApplyOptions) error {
	var kube *rollout.KubeconfigOptions
	if !opts.NoKubeconfig {
		kube = &rollout.KubeconfigOptions{
			Path:    opts.K3s.kubeconfigFile(),
			Context: func(c string) string { return c },
		}
	}
	r, err := fleetRun(opts.Factory, opts.File, opts.Force, &opts.SSH, &opts.K3s, kube)
	if err != nil {
		return err
	}
	r.concurrency, r.maxUnavailable = opts.Concurrency, opts.MaxUnavailable
	return r.execute(ctx)
}

// NewCmdReset is the reset command.
func NewCmdReset(f *Factory) *cobra.Command {
	var (
		file string
		yes  bool
		sf   sshFlags
	)
	cmd := &cobra.Command{
		Use:   "reset -f <inventory> [flags]",
		Short: "Uninstall K3s from every host of the inventory",
		Long: `Stop K3s and remove it from every host of the inventory, agents first. This
destroys the clusters and their data. Asks first unless --yes is given.`,
		Example: `  $ k3sctl reset -f fleet.yaml
  $ k3sctl reset -f fleet.yaml --yes`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			io := f.IO
			if err := requireInventory(file); err != nil {
				return err
			}
			inv, err := loadInventory(file)
			if err != nil {
				return err
			}
			var names []string
			n := 0
			for _, c := range inv.Clusters {
				names = append(names, c.Name)
				n += len(c.Servers) + len(c.Agents)
			}
			if !yes {
				if !io.IsStdinTTY() {
					return flagErrorf("reset removes K3s and all cluster data from %d host(s); run with --yes to confirm without a terminal", n)
				}
				fmt.Fprintf(io.Err, "This removes K3s and all cluster data from %d host(s) of %s.\nType yes to go on: ", n, strings.Join(names, ", "))
				answer, _ := bufio.NewReader(io.In).ReadString('\n')
				if strings.TrimSpace(answer) != "yes" {
					fmt.Fprintln(io.Err, "Nothing changed.")
					return &SilentError{Code: ExitError}
				}
			}
			res := sf.resolver(f)
			_, _, sshFor := rollout.FromInventory(inv, res.options)
			failed := rollout.Reset(cmd.Context(), inv, sshFor, func(host string, removed bool, err error) {
				switch {
				case err != nil:
					fmt.Fprintf(io.Err, "✗ %v\n", err)
				case removed:
					fmt.Fprintf(io.Err, "✓ %s: K3s removed\n", host)
				default:
					fmt.Fprintf(io.Err, "✓ %s: K3s was not installed\n", host)
				}
			})
			if failed > 0 {
				fmt.Fprintf(io.Err, "%d host(s) failed; run reset again once they are reachable\n", failed)
				return &SilentError{Code: ExitHostsFailed}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "inventory file (required)")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask")
	addSSHFlags(cmd.Flags(), &sf)
	return cmd
}

// loadInventory reads an inventory; validation problems are reported one
// per line with their position, and the exit code says usage error.
func loadInventory(path string) (*inventory.Inventory, error) {
	inv, err := inventory.Load(path)
	if err != nil {
		var ve *inventory.ValidationError
		if errors.As(err, &ve) {
			return nil, &CodeError{Code: ExitUsage, Err: err, Bare: true}
		}
		return nil, err
	}
	return inv, nil
}
