package cli

import (
	"bufio"
	"encoding/json"
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
	"golang.org/x/term"
)

func init() {
	extraCommands = append(extraCommands, newPlanCmd, newApplyCmd, newResetCmd)
}

// fleetFlags are what plan and apply share.
type fleetFlags struct {
	file           string
	concurrency    int
	maxUnavailable int
	force          bool
	noKubeconfig   bool
	k3s            k3sFlags
}

func addFleetFlags(fs *pflag.FlagSet, f *fleetFlags) {
	fs.StringVarP(&f.file, "file", "f", "", "inventory file (required)")
	fs.IntVar(&f.concurrency, "concurrency", 20, "hosts worked on at once")
	fs.IntVar(&f.maxUnavailable, "max-unavailable", 1, "agents of one cluster upgraded at once")
	fs.BoolVar(&f.force, "force", false, "allow upgrades that skip a minor version")
	fs.BoolVar(&f.k3s.allowDowngrade, "allow-downgrade", false, "allow installing an older K3s version than a node has")
	fs.StringVar(&f.k3s.downloadURL, "download-url", "", downloadURLUsage)
	fs.StringVar(&f.k3s.channelURL, "channel-url", "", channelURLUsage)
	fs.StringVar(&f.k3s.binary, "k3s-binary", "", "install this local k3s binary on every host (air-gapped sites)")
	fs.DurationVar(&f.k3s.timeout, "timeout", 5*time.Minute, "how long to wait for each node to become ready")
	fs.IntVar(&f.k3s.concurrentUploads, "concurrent-uploads", 5, "binary uploads at once")
	fs.StringVarP(&f.k3s.output, "output", "o", "", "output: json for JSON (default: terminal view or plain lines)")
	fs.BoolVar(&f.k3s.plain, "plain", false, "plain log lines instead of the terminal view")
}

// load reads the inventory and builds the run.
func (f *fleetFlags) load(io IO, sf *sshFlags) (*rolloutRun, *inventory.Inventory, error) {
	if f.file == "" {
		return nil, nil, flagErrorf("which inventory? give -f <file> (k3sctl init writes a starter)")
	}
	if err := f.k3s.validate(); err != nil {
		return nil, nil, err
	}
	inv, err := loadInventory(io, f.file)
	if err != nil {
		return nil, nil, err
	}
	res := sf.resolver()
	spec, versions, sshFor := rollout.FromInventory(inv, res.options)
	spec.AllowDowngrade = f.k3s.allowDowngrade
	spec.Force = f.force
	r := &rolloutRun{io: io, spec: spec, sshFunc: sshFor, k3s: &f.k3s, versions: versions,
		concurrency: f.concurrency, maxUnavailable: f.maxUnavailable}
	if !f.noKubeconfig {
		r.kube = &rollout.KubeconfigOptions{
			Path:    f.k3s.kubeconfigFile(),
			Context: func(c string) string { return c },
		}
	}
	return r, inv, nil
}

func newPlanCmd(io IO) *cobra.Command {
	var (
		ff       fleetFlags
		sf       sshFlags
		detailed bool
	)
	cmd := &cobra.Command{
		Use:   "plan -f <inventory> [flags]",
		Short: "Show what apply would change, host by host",
		Long: `Gather facts from every host of the inventory in parallel (read-only) and
print, per cluster and host, what apply would do and in which order:
install, upgrade from → to, reconfigure, start, nothing, or refuse.`,
		Example: `  # What would change?
  $ k3sctl plan -f fleet.yaml

  # In a script: exit 0 when nothing changes, 2 when something would
  $ k3sctl plan -f fleet.yaml --detailed-exitcode

  # The plan as JSON
  $ k3sctl plan -f fleet.yaml -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ff.noKubeconfig = true
			r, _, err := ff.load(io, &sf)
			if err != nil {
				return err
			}
			ff.k3s.dryRun = true
			p, err := r.prepare(cmd.Context())
			if err != nil {
				return err
			}
			defer p.Close()
			if ff.k3s.output == "json" {
				enc := json.NewEncoder(io.Out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(p.Plan); err != nil {
					return err
				}
			} else {
				plan.Print(io.Out, p.Plan)
			}
			switch {
			case len(p.Plan.Refused()) > 0:
				return &SilentError{Code: ExitHostsFailed}
			case detailed && p.Plan.Changes():
				return &SilentError{Code: 2}
			}
			return nil
		},
	}
	addFleetFlags(cmd.Flags(), &ff)
	cmd.Flags().BoolVar(&detailed, "detailed-exitcode", false, "exit 0 when nothing would change, 2 when something would, 3 when hosts are refused or unreachable")
	addSSHFlags(cmd.Flags(), &sf)
	return cmd
}

func newApplyCmd(io IO) *cobra.Command {
	var (
		ff fleetFlags
		sf sshFlags
	)
	cmd := &cobra.Command{
		Use:   "apply -f <inventory> [flags]",
		Short: "Make every cluster of the inventory as described, in parallel",
		Long: `Run the plan: per cluster the first server, then further servers one at a
time, then agents in parallel; clusters in parallel, at most --concurrency
hosts at once. A failed host fails only what depends on it. Run it again at
any time: what is already right is left alone, and a failed run picks up
where it stopped. Each cluster's kubeconfig is merged as a context named
after the cluster.`,
		Example: `  # Roll out the fleet with a live view of every host
  $ k3sctl apply -f fleet.yaml

  # Plain log lines (also the default when stderr is not a terminal)
  $ k3sctl apply -f fleet.yaml --plain

  # Upgrade: change version in the file, then
  $ k3sctl apply -f fleet.yaml --max-unavailable 2`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, _, err := ff.load(io, &sf)
			if err != nil {
				return err
			}
			return r.execute(cmd.Context())
		},
	}
	addFleetFlags(cmd.Flags(), &ff)
	cmd.Flags().BoolVar(&ff.k3s.dryRun, "dry-run", false, "print the plan and change nothing")
	cmd.Flags().BoolVar(&ff.noKubeconfig, "no-kubeconfig", false, "do not merge the clusters' kubeconfigs")
	cmd.Flags().StringVar(&ff.k3s.kubeconfigPath, "kubeconfig", "", "kubeconfig file to merge into (default: $KUBECONFIG or ~/.kube/config)")
	addSSHFlags(cmd.Flags(), &sf)
	return cmd
}

func newResetCmd(io IO) *cobra.Command {
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
			if file == "" {
				return flagErrorf("which inventory? give -f <file>")
			}
			inv, err := loadInventory(io, file)
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
				if !term.IsTerminal(int(os.Stdin.Fd())) {
					return flagErrorf("reset removes K3s and all cluster data from %d host(s); run with --yes to confirm without a terminal", n)
				}
				fmt.Fprintf(io.Err, "This removes K3s and all cluster data from %d host(s) of %s.\nType yes to go on: ", n, strings.Join(names, ", "))
				answer, _ := bufio.NewReader(io.In).ReadString('\n')
				if strings.TrimSpace(answer) != "yes" {
					fmt.Fprintln(io.Err, "Nothing changed.")
					return &SilentError{Code: ExitError}
				}
			}
			res := sf.resolver()
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

// loadInventory reads an inventory; validation problems are printed one
// per line with their position, and the exit code says usage error.
func loadInventory(io IO, path string) (*inventory.Inventory, error) {
	inv, err := inventory.Load(path)
	if err != nil {
		var ve *inventory.ValidationError
		if errors.As(err, &ve) {
			fmt.Fprintln(io.Err, ve.Error())
			return nil, &SilentError{Code: ExitUsage}
		}
		return nil, err
	}
	return inv, nil
}
