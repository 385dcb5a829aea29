package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/k3sctl/k3sctl/internal/apply"
	"github.com/k3sctl/k3sctl/internal/backup"
	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/plan"
	"github.com/k3sctl/k3sctl/internal/rollout"
	"github.com/k3sctl/k3sctl/internal/ssh"
	"github.com/k3sctl/k3sctl/internal/ui"
)

// defaultBackupDir is the backup root when --dir is not given.
const defaultBackupDir = "backups"

// backupTarget is how backup and restore find their hosts: an inventory
// (with an optional cluster name), or one server.
type backupTarget struct {
	file, cluster, ip, host string
}

func addBackupTargetFlags(fs *pflag.FlagSet, t *backupTarget) {
	fs.StringVarP(&t.file, "file", "f", "", "inventory file")
	fs.StringVar(&t.cluster, "cluster", "", "with -f: only this cluster of the inventory; with --ip: the cluster's name (default: the address)")
	fs.StringVar(&t.ip, "ip", "", "address of a server, instead of an inventory")
	fs.StringVar(&t.host, "host", "", "name of a server, instead of an inventory")
}

func (t *backupTarget) validate() error {
	single := t.ip != "" || t.host != ""
	switch {
	case t.file != "" && single:
		return flagErrorf("give -f <inventory> or --ip <server>, not both")
	case t.file == "" && !single:
		return flagErrorf("which cluster? give -f <inventory> [--cluster <name>] or --ip <server>")
	case single:
		_, err := requireOne(t.ip, t.host)
		return err
	}
	return nil
}

// specs returns one Spec per cluster to work on, with each host's SSH
// options.
func (t *backupTarget) specs(fac *Factory, sf *sshFlags) ([]plan.Cluster, func(string) ssh.Options, error) {
	// The resolver (and the terminal it may ask on) is made on first use,
	// so a backup refused before any connection opens nothing.
	var (
		once sync.Once
		res  sshResolver
	)
	base := func(addr string) ssh.Options {
		once.Do(func() { res = sf.resolver(fac) })
		return res.options(addr)
	}
	if t.file == "" {
		addr, _ := requireOne(t.ip, t.host)
		name := t.cluster
		if name == "" {
			name = contextName("", addr)
		}
		c := plan.Cluster{Name: name, Servers: []plan.Host{{Address: addr, Role: k3s.Server}}}
		return []plan.Cluster{c}, base, nil
	}
	inv, err := loadInventory(t.file)
	if err != nil {
		return nil, nil, err
	}
	spec, _, sshFor := rollout.FromInventory(inv, base)
	var out []plan.Cluster
	var names []string
	for _, c := range spec.Clusters {
		names = append(names, c.Name)
		if t.cluster == "" || c.Name == t.cluster {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return nil, nil, flagErrorf("--cluster %s: %s has no such cluster; it has %s", t.cluster, t.file, strings.Join(names, ", "))
	}
	return out, sshFor, nil
}

// outputMode is plain lines on stderr, or JSON lines on stdout.
func outputMode(output string) string {
	if output == "json" {
		return ui.ModeJSON
	}
	return ui.ModePlain
}

// BackupOptions are what backup was asked to do, checked.
type BackupOptions struct {
	IO      *IO
	Factory *Factory

	Target    backupTarget
	Dir       string
	Keep      int
	EncryptTo []string
	Timeout   time.Duration
	Output    string
	SSH       sshFlags
}

// NewCmdBackup is the backup command; runF replaces backupRun in tests.
func NewCmdBackup(f *Factory, runF func(*BackupOptions) error) *cobra.Command {
	opts := &BackupOptions{IO: f.IO, Factory: f}
	cmd := &cobra.Command{
		Use:   "backup (-f <inventory> [--cluster <name>] | --ip <server>) [flags]",
		Short: "Back up a cluster's datastore and token to a local directory",
		Long: `Take a backup of each cluster from its first healthy server and store it
under --dir/<cluster>/<cluster>-<UTC time>/ with a manifest of sha256 sums.

Embedded etcd: k3s etcd-snapshot save runs on the server, the snapshot is
downloaded and then deleted on the server. SQLite: K3s is stopped for the
copy of server/db and started again; the command waits until the node is
Ready. The cluster token, which a restore needs, is part of every backup;
--encrypt-to encrypts every part to age recipients.

` + exitCodeHelp(ExitOK, ExitError, ExitUsage, ExitHostsFailed, ExitInterrupted),
		Example: `  # Back up every cluster of an inventory, keeping the newest 7 of each
  $ k3sctl backup -f shop.yaml --keep 7

  # One cluster of the inventory, into another directory
  $ k3sctl backup -f fleet.yaml --cluster factory --dir /srv/backups`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.Target.validate(); err != nil {
				return err
			}
			if opts.Keep < 0 {
				return flagErrorf("--keep must be 0 (keep all) or more, not %d", opts.Keep)
			}
			if opts.Output != "" && opts.Output != "json" && opts.Output != "text" {
				return flagErrorf("--output must be json or text, not %q", opts.Output)
			}
			if _, err := backup.ParseRecipients(opts.EncryptTo); err != nil {
				return flagErrorf("--encrypt-to: %v", err)
			}
			if runF != nil {
				return runF(opts)
			}
			return backupRun(cmd.Context(), opts)
		},
	}
	fs := cmd.Flags()
	addBackupTargetFlags(fs, &opts.Target)
	fs.StringVar(&opts.Dir, "dir", defaultBackupDir, "backup root: each cluster's backups go to <dir>/<cluster>/")
	fs.IntVar(&opts.Keep, "keep", 0, "keep the newest N backups of each cluster and remove older ones (0: keep all)")
	fs.StringArrayVar(&opts.EncryptTo, "encrypt-to", nil, "age public key (age1…) to encrypt the backup to, repeatable")
	fs.DurationVar(&opts.Timeout, "timeout", 5*time.Minute, "how long to wait for a server to be Ready again after an SQLite copy")
	fs.StringVarP(&opts.Output, "output", "o", "", "output: json for JSON lines of events (default: plain lines)")
	addSSHFlags(fs, &opts.SSH)
	return cmd
}

// backupEvent is the last JSON line of a successful backup of a cluster.
type backupEvent struct {
	Schema     string            `json:"schema"`
	Time       time.Time         `json:"time"`
	Type       string            `json:"type"`
	Cluster    string            `json:"cluster"`
	Backup     string            `json:"backup"`
	Dir        string            `json:"dir"`
	Datastore  backup.Datastore  `json:"datastore"`
	K3sVersion string            `json:"k3sVersion"`
	Host       string            `json:"host"`
	Snapshot   string            `json:"snapshot,omitempty"`
	Parts      []backup.PartInfo `json:"parts"`
	Pruned     []string          `json:"pruned,omitempty"`
}

// EventBackup is the type of the JSON line that reports a finished backup.
const EventBackup = "backup"

func backupRun(ctx context.Context, opts *BackupOptions) error {
	recipients, _ := backup.ParseRecipients(opts.EncryptTo)
	clusters, sshOf, err := opts.Target.specs(opts.Factory, &opts.SSH)
	if err != nil {
		return err
	}
	mode := outputMode(opts.Output)
	renderer := opts.IO.Renderer(mode, func() {})
	_ = renderer.Start()
	var failed []string
	for _, c := range clusters {
		var servers []string
		for _, s := range c.Servers {
			servers = append(servers, s.Address)
		}
		res, err := rollout.Backup(ctx, rollout.BackupOptions{
			Cluster: c.Name, Servers: servers, SSH: sshOf,
			Root: opts.Dir, Recipients: recipients, Keep: opts.Keep, ReadyTimeout: opts.Timeout, Sink: renderer,
		})
		if err != nil {
			if ctx.Err() != nil {
				renderer.Close()
				return &SilentError{Code: ExitInterrupted}
			}
			if len(clusters) == 1 {
				renderer.Close()
				_ = renderer.Wait()
				return err
			}
			failed = append(failed, c.Name)
			if mode == ui.ModeJSON {
				renderer.Event(apply.Event{Time: time.Now(), Type: apply.EventStepFailed, Cluster: c.Name, Step: plan.StepDownload, Error: err.Error()})
			} else {
				fmt.Fprintf(opts.IO.Err, "cluster %s: backup failed: %v\n", c.Name, err)
			}
			continue
		}
		report(opts.IO, mode, res)
	}
	renderer.Close()
	_ = renderer.Wait()
	if len(failed) > 0 {
		return &CodeError{Code: ExitHostsFailed, Err: fmt.Errorf("%d of %d cluster(s) not backed up: %s", len(failed), len(clusters), strings.Join(failed, ", "))}
	}
	return nil
}

func report(io *IO, mode string, res *rollout.BackupResult) {
	m := res.Backup.Manifest
	var pruned []string
	for _, p := range res.Pruned {
		pruned = append(pruned, p.Name)
	}
	if mode == ui.ModeJSON {
		line, _ := json.Marshal(backupEvent{Schema: ui.Schema, Time: time.Now(), Type: EventBackup, Cluster: m.Cluster,
			Backup: res.Backup.Name, Dir: res.Backup.Dir, Datastore: m.Datastore, K3sVersion: m.K3sVersion, Host: res.Server,
			Snapshot: res.Snapshot, Parts: m.Parts, Pruned: pruned})
		_, _ = io.Out.Write(append(line, '\n'))
		return
	}
	var size int64
	for _, p := range m.Parts {
		size += p.Size
	}
	enc := ""
	if len(m.Recipients) > 0 {
		enc = ", encrypted"
	}
	fmt.Fprintf(io.Out, "cluster %s: backup %s (%s, K3s %s, %d bytes%s) from %s in %s\n",
		m.Cluster, res.Backup.Name, m.Datastore, m.K3sVersion, size, enc, res.Server, res.Backup.Dir)
	for _, p := range pruned {
		fmt.Fprintf(io.Out, "cluster %s: removed older backup %s\n", m.Cluster, p)
	}
}
