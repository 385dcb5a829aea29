package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
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
	fs.BoolVar(&kf.diff, "diff", false, "show the content change of each delivered file (never of files marked secret)")
	fs.BoolVar(&kf.fixCgroups, "fix-cgroups", false, "on hosts without the memory cgroup (Raspberry Pi), add cgroup_memory=1 cgroup_enable=memory to the boot command line and reboot them before installing (as fixBoot: true)")
}

// fleetRun reads the inventory and builds the run. kube is nil for no
// kubeconfig merge.
func fleetRun(fac *Factory, file string, force bool, sub *subsetFlags, sf *sshFlags, kf *k3sFlags, kube *rollout.KubeconfigOptions) (*rolloutRun, error) {
	inv, err := loadSelected(file, sub)
	if err != nil {
		return nil, err
	}
	return fleetRunOf(fac, inv, force, sf, kf, kube), nil
}

// loadSelected reads the inventory and keeps the clusters the flags choose.
func loadSelected(file string, sub *subsetFlags) (*inventory.Inventory, error) {
	inv, err := loadInventory(file)
	if err != nil {
		return nil, err
	}
	return selectClusters(inv, sub)
}

// fleetRunOf builds the run of a loaded inventory.
func fleetRunOf(fac *Factory, inv *inventory.Inventory, force bool, sf *sshFlags, kf *k3sFlags, kube *rollout.KubeconfigOptions) *rolloutRun {
	res := sf.resolver(fac)
	spec, versions, sshFor := rollout.FromInventory(inv, res.options)
	spec.AllowDowngrade = kf.allowDowngrade
	spec.Force = force
	if kf.fixCgroups {
		for i := range spec.Clusters {
			spec.Clusters[i].FixBoot = true
		}
	}
	return &rolloutRun{io: fac.IO, spec: spec, sshFunc: sshFor, k3s: kf, versions: versions, kube: kube, inv: inv}
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
	Subset           subsetFlags
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
Delivered files (files: in the inventory) are compared by sha256 and mode
and listed with their sizes and sha256; --diff adds their content change,
except for files marked secret (registries.yaml by default).

` + exitCodeHelp(ExitOK, ExitError, ExitUsage, ExitHostsFailed, ExitChangesPending, ExitPreflight, ExitInterrupted),
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
	addSubsetFlags(fs, &opts.Subset)
	addSSHFlags(fs, &opts.SSH)
	return cmd
}

func planRun(ctx context.Context, opts *PlanOptions) error {
	r, err := fleetRun(opts.Factory, opts.File, opts.Force, &opts.Subset, &opts.SSH, &opts.K3s, nil)
	if err != nil {
		return err
	}
	// apply merges into the default kubeconfig: plan shows its problems too.
	r.kubeconfigCheck = opts.K3s.kubeconfigFile()
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
	Prune          bool
	DrainTimeout   time.Duration
	ForceDrain     bool
	NoKubeconfig   bool
	Subset         subsetFlags
	Rollout        rolloutFlags
	SSH            sshFlags
	K3s            k3sFlags

	flags *pflag.FlagSet
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

Before K3s restarts on a Ready node of a multi-node cluster (a config
change, an upgrade), the node is drained: cordoned and its pods evicted,
respecting PodDisruptionBudgets, for at most --drain-timeout (--force-drain
goes on with pods left); once Ready again it is uncordoned. At most
--max-unavailable nodes of a cluster restart at once; a server of an
embedded-etcd cluster restarts only while the other servers are Ready.

A node registered in a cluster whose host is no longer in the inventory is
shown by the plan and removed only with --prune: drained, its Node deleted
(K3s removes its etcd member), K3s uninstalled on its host when reachable.
Servers go one at a time; a removal that would leave etcd without a quorum
of Ready members is refused before anything is changed.

--cluster and --selector choose some clusters; the others' hosts are not
connected to. With a rollout: section in the inventory, or --canary,
--wave-size and the other rollout flags, clusters are worked on in waves:
the canary first, then each wave once the one before finished, and no new
cluster is started once more clusters failed than the failure budget allows.

Before the first change every host is checked and locked for the run; the
problems found (a kubeconfig that cannot be written, an address that does
not resolve, sudo that does not work, two hosts of a cluster with one
hostname, a host another k3sctl run holds) are listed together, and
nothing is changed.

` + exitCodeHelp(ExitOK, ExitError, ExitUsage, ExitHostsFailed, ExitPreflight, ExitInterrupted),
		Example: `  # Roll out the fleet with a live view of every host
  $ k3sctl apply -f fleet.yaml

  # Plain log lines (also the default when stderr is not a terminal)
  $ k3sctl apply -f fleet.yaml --plain

  # Upgrade: change version in the file, then
  $ k3sctl apply -f fleet.yaml --max-unavailable 2

  # Only the shops
  $ k3sctl apply -f fleet.yaml --cluster 'shop-*'

  # shop-01 first, then waves of two clusters; stop at the first failure
  $ k3sctl apply -f fleet.yaml --canary shop-01 --wave-size 2 --failure-budget 0`,
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
			if opts.DrainTimeout <= 0 {
				return flagErrorf("--drain-timeout must be positive, not %s", opts.DrainTimeout)
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
	fs.IntVar(&opts.MaxUnavailable, "max-unavailable", 1, "nodes of one cluster restarting K3s at once (upgrades, config changes, repairs)")
	fs.BoolVar(&opts.Prune, "prune", false, "remove the nodes registered in a cluster whose hosts are no longer in the inventory: drain, delete the node, uninstall K3s")
	fs.DurationVar(&opts.DrainTimeout, "drain-timeout", 5*time.Minute, "how long to evict a node's pods (respecting PodDisruptionBudgets) before a restart or removal")
	fs.BoolVar(&opts.ForceDrain, "force-drain", false, "go on when pods could not be evicted within --drain-timeout")
	fs.DurationVar(&opts.K3s.timeout, "timeout", 5*time.Minute, "how long to wait for each node to become ready")
	fs.IntVar(&opts.K3s.concurrentUploads, "concurrent-uploads", 5, "binary uploads at once")
	addTraceFlag(fs, &opts.K3s)
	fs.StringVarP(&opts.K3s.output, "output", "o", "", "output: json for JSON (default: terminal view or plain lines)")
	fs.BoolVar(&opts.K3s.plain, "plain", false, "plain log lines instead of the terminal view")
	fs.BoolVar(&opts.K3s.dryRun, "dry-run", false, "print the plan and change nothing")
	fs.BoolVar(&opts.NoKubeconfig, "no-kubeconfig", false, "do not merge the clusters' kubeconfigs")
	fs.BoolVar(&opts.K3s.noSnapshot, "no-snapshot", false, "upgrade embedded-etcd clusters without taking an etcd snapshot first")
	fs.StringVar(&opts.K3s.kubeconfigPath, "kubeconfig", "", "kubeconfig file to merge into (default: $KUBECONFIG or ~/.kube/config)")
	addSubsetFlags(fs, &opts.Subset)
	addRolloutFlags(fs, &opts.Rollout)
	addSSHFlags(fs, &opts.SSH)
	opts.flags = fs
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
	inv, err := loadSelected(opts.File, &opts.Subset)
	if err != nil {
		return err
	}
	fs := opts.flags
	if fs == nil {
		fs = pflag.NewFlagSet("apply", pflag.ContinueOnError)
	}
	// Every mistake in the flags is found before anything connects.
	pol, err := opts.Rollout.policy(fs, inv)
	if err != nil {
		return err
	}
	if pol != nil && pol.Confirm && !opts.Rollout.yes && !opts.K3s.dryRun && !opts.IO.IsStdinTTY() {
		return flagErrorf("the rollout asks before each wave (--confirm or rollout.pause: confirm), but stdin is not a terminal; pass --yes to go on without asking")
	}
	r := fleetRunOf(opts.Factory, inv, opts.Force, &opts.SSH, &opts.K3s, kube)
	r.concurrency, r.maxUnavailable = opts.Concurrency, opts.MaxUnavailable
	r.prune, r.drainTimeout, r.forceDrain = opts.Prune, opts.DrainTimeout, opts.ForceDrain
	if pol != nil {
		return r.progressive(ctx, pol, opts.Rollout.yes)
	}
	return r.execute(ctx)
}

// NewCmdReset is the reset command.
func NewCmdReset(f *Factory) *cobra.Command {
	var (
		file string
		yes  bool
		sub  subsetFlags
		sf   sshFlags
	)
	cmd := &cobra.Command{
		Use:   "reset -f <inventory> [flags]",
		Short: "Uninstall K3s from every host of the inventory",
		Long: `Stop K3s and remove it from every host of the inventory, agents first. This
destroys the clusters and their data. Asks first unless --yes is given.

Every host is locked for the run before anything is removed: when another
k3sctl run holds a host, nothing is removed and the holder is named.

` + exitCodeHelp(ExitOK, ExitError, ExitUsage, ExitHostsFailed, ExitPreflight, ExitInterrupted),
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
			if inv, err = selectClusters(inv, &sub); err != nil {
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
			failed, err := rollout.Reset(cmd.Context(), inv, sshFor, rollout.NewLockOptions(os.Args), func(host string, removed bool, err error) {
				switch {
				case err != nil:
					fmt.Fprintf(io.Err, "✗ %v\n", err)
				case removed:
					fmt.Fprintf(io.Err, "✓ %s: K3s removed\n", host)
				default:
					fmt.Fprintf(io.Err, "✓ %s: K3s was not installed\n", host)
				}
			})
			if err != nil {
				return err // hosts locked by another run, or sudo problems: nothing was removed
			}
			if failed > 0 {
				fmt.Fprintf(io.Err, "%d host(s) failed; run reset again once they are reachable\n", failed)
				return &SilentError{Code: ExitHostsFailed}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "inventory file (required)")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask")
	addSubsetFlags(cmd.Flags(), &sub)
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
