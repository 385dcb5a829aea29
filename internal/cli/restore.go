package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/k3sctl/k3sctl/internal/apply"
	"github.com/k3sctl/k3sctl/internal/backup"
	"github.com/k3sctl/k3sctl/internal/plan"
	"github.com/k3sctl/k3sctl/internal/rollout"
	"github.com/k3sctl/k3sctl/internal/ui"
)

// RestoreOptions are what restore was asked to do, checked.
type RestoreOptions struct {
	IO      *IO
	Factory *Factory

	Target     backupTarget
	Dir        string // backup root
	Backup     string // --backup: a backup's name under Dir/<cluster>
	From       string // --from: a backup directory
	Identities []string
	Force      bool
	SSH        sshFlags
	K3s        k3sFlags
}

// NewCmdRestore is the restore command; runF replaces restoreRun in tests.
func NewCmdRestore(f *Factory, runF func(*RestoreOptions) error) *cobra.Command {
	opts := &RestoreOptions{IO: f.IO, Factory: f}
	cmd := &cobra.Command{
		Use:   "restore (-f <inventory> [--cluster <name>] | --ip <server>) [flags]",
		Short: "Restore a cluster from a backup onto the same or new servers",
		Long: `Restore a cluster from the newest backup under --dir/<cluster>/, or the one
named by --backup or --from. Every part's sha256 is checked first; a
changed backup is refused, naming the part.

The restore says what it will do first and refuses to replace a cluster
whose servers run and answer unless --force is given; --dry-run stops
after the plan. The first server of the inventory (or --ip) gets the
backup's K3s version and data: SQLite's server/db and token before K3s
starts, or the etcd snapshot through k3s server --cluster-reset with the
backup's token. Other servers of an etcd cluster lose their old etcd data
and join afresh. Then the cluster is brought to the inventory as apply
does, agents included (left alone when nothing changed), and the
kubeconfig context is merged.

` + exitCodeHelp(ExitOK, ExitError, ExitUsage, ExitHostsFailed, ExitInterrupted),
		Example: `  # Show what a restore of the newest backup would do
  $ k3sctl restore -f shop.yaml --dry-run

  # Replace a cluster that still runs, e.g. with a new first server in the inventory
  $ k3sctl restore -f fleet.yaml --cluster factory --dir /srv/backups --force`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.Target.validate(); err != nil {
				return err
			}
			if opts.Backup != "" && opts.From != "" {
				return flagErrorf("give --backup or --from, not both")
			}
			if err := opts.K3s.validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return restoreRun(cmd.Context(), opts)
		},
	}
	fs := cmd.Flags()
	addBackupTargetFlags(fs, &opts.Target)
	fs.StringVar(&opts.Dir, "dir", defaultBackupDir, "backup root the cluster's backups are under (<dir>/<cluster>/)")
	fs.StringVar(&opts.Backup, "backup", "", "name of the backup to restore, e.g. shop-1-20261202T153000Z (default: the newest)")
	fs.StringVar(&opts.From, "from", "", "directory of the backup to restore, instead of --dir and --backup")
	fs.StringArrayVar(&opts.Identities, "identity", nil, "age identity file for an encrypted backup, repeatable")
	fs.BoolVar(&opts.Force, "force", false, "replace a cluster whose servers run and answer")
	fs.BoolVar(&opts.K3s.dryRun, "dry-run", false, "print what the restore would do and change nothing")
	fs.StringVarP(&opts.K3s.output, "output", "o", "", "output: json for JSON lines (default: plain lines)")
	fs.DurationVar(&opts.K3s.timeout, "timeout", 5*time.Minute, "how long to wait for each node to become ready")
	fs.StringVar(&opts.K3s.downloadURL, "download-url", "", downloadURLUsage)
	fs.StringVar(&opts.K3s.channelURL, "channel-url", "", channelURLUsage)
	fs.StringVar(&opts.K3s.binary, "k3s-binary", "", "install this local k3s binary (air-gapped sites); it must be the backup's version")
	addKubeconfigFlags(fs, &opts.K3s)
	addSSHFlags(fs, &opts.SSH)
	return cmd
}

// restorePlanEvent is the JSON line that carries the restore plan.
type restorePlanEvent struct {
	Schema  string               `json:"schema"`
	Time    time.Time            `json:"time"`
	Type    string               `json:"type"`
	Restore *rollout.RestorePlan `json:"restore"`
}

// EventRestorePlan is the type of the JSON line with the restore plan.
const EventRestorePlan = "restore_plan"

func restoreRun(ctx context.Context, opts *RestoreOptions) error {
	kf := &opts.K3s
	clusters, sshFor, err := opts.Target.specs(opts.Factory, &opts.SSH)
	if err != nil {
		return err
	}
	if len(clusters) != 1 {
		var names []string
		for _, c := range clusters {
			names = append(names, c.Name)
		}
		return flagErrorf("which cluster? %s has %s: give --cluster <name>", opts.Target.file, strings.Join(names, ", "))
	}
	c := clusters[0]
	dir := opts.From
	if dir == "" {
		info, err := backup.Select(opts.Dir, c.Name, opts.Backup)
		if err != nil {
			return err
		}
		dir = info.Dir
	}
	ids, err := backup.ReadIdentities(opts.Identities...)
	if err != nil {
		return flagErrorf("--identity: %v", err)
	}
	b, err := backup.Open(dir, ids)
	if err != nil {
		return err
	}
	if m := b.Manifest(); m.Cluster != c.Name {
		fmt.Fprintf(opts.IO.Err, "note: backup %s is of cluster %s; restoring it as %s\n", b.Name(), m.Cluster, c.Name)
	}
	mode := outputMode(kf.output)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	renderer := opts.IO.Renderer(mode, cancel)
	ctxName := c.Name
	if opts.Target.file == "" {
		ctxName = contextName(kf.context, c.Name)
	}
	var merged []string
	kube := &rollout.KubeconfigOptions{
		Path:          kf.kubeconfigFile(),
		Context:       func(string) string { return ctxName },
		SwitchContext: !kf.noSwitchContext,
		Merged:        func(_, name string) { merged = append(merged, name) },
	}
	progress := func(format string, a ...any) {
		if mode != ui.ModeJSON {
			fmt.Fprintf(opts.IO.Err, format+"\n", a...)
		}
	}
	r, err := rollout.PrepareRestore(ctx, rollout.RestoreOptions{
		Options: rollout.Options{
			Spec: &plan.Spec{Clusters: []plan.Cluster{c}}, SSH: sshFor, Release: kf.release(), LocalBinary: kf.binary,
			Kubeconfig: kube, ReadyTimeout: kf.timeout, Sink: renderer, Progress: progress,
		},
		Backup: b, Force: opts.Force,
	})
	if err != nil {
		return err
	}
	defer r.Close()
	planOut := opts.IO.Err
	if kf.dryRun {
		planOut = opts.IO.Out
	}
	if mode == ui.ModeJSON {
		line, _ := json.Marshal(restorePlanEvent{Schema: ui.Schema, Time: time.Now(), Type: EventRestorePlan, Restore: r.Plan})
		_, _ = opts.IO.Out.Write(append(line, '\n'))
	} else {
		printRestorePlan(planOut, r.Plan)
	}
	if len(r.Plan.Refused) > 0 {
		return &CodeError{Code: ExitHostsFailed, Err: fmt.Errorf("restore of %s refused:\n  %s", c.Name, strings.Join(r.Plan.Refused, "\n  "))}
	}
	if kf.dryRun {
		return nil
	}
	_ = renderer.Start()
	_, err = r.Run(ctx)
	renderer.Close()
	_ = renderer.Wait()
	if mode != ui.ModeJSON {
		for _, m := range merged {
			fmt.Fprintf(opts.IO.Err, "Merged context %q into %s: kubectl --context %s get nodes\n", m, kube.Path, m)
		}
	}
	switch {
	case err == nil:
		if mode != ui.ModeJSON {
			fmt.Fprintf(opts.IO.Out, "cluster %s: restored from %s\n", c.Name, b.Name())
		}
		return nil
	case ctx.Err() != nil:
		return &SilentError{Code: ExitInterrupted}
	case errors.Is(err, apply.ErrHostsFailed):
		return &SilentError{Code: ExitHostsFailed}
	}
	return err
}

// printRestorePlan writes the restore's steps, then the plan that follows.
func printRestorePlan(w io.Writer, p *rollout.RestorePlan) {
	fmt.Fprintf(w, "restore %s from %s (%s, K3s %s, taken %s from %s)\n", p.Cluster, p.Backup, p.Datastore, p.K3sVersion,
		p.Created.UTC().Format("2006-01-02 15:04:05 UTC"), p.Source.Address)
	for i, s := range p.Steps {
		mark := " "
		if s.Changes {
			mark = "+"
		}
		fmt.Fprintf(w, "  %d. %-15s %s %-15s %s\n", i+1, s.Host, mark, s.Kind, s.Reason)
	}
	for _, r := range p.Refused {
		fmt.Fprintf(w, "  refused: %s\n", r)
	}
	if p.Then != nil {
		fmt.Fprintln(w, "then, as apply does:")
		plan.Print(w, p.Then)
	}
}
