package rollout

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/k3sctl/k3sctl/internal/apply"
	"github.com/k3sctl/k3sctl/internal/backup"
	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/node"
	"github.com/k3sctl/k3sctl/internal/plan"
	"github.com/k3sctl/k3sctl/internal/secret"
	"github.com/k3sctl/k3sctl/internal/ssh"
)

// Paths on the first server while a restore runs; both are removed once
// used.
const (
	restoreSnapshotPath = ServerDir + "/k3sctl-restore-snapshot"
	restoreDBPath       = ServerDir + "/k3sctl-restore-db.tar"
)

// RestoreOptions says which backup goes onto which hosts. Options.Spec holds
// exactly one cluster, its first server first; its token and version are
// replaced by the backup's.
type RestoreOptions struct {
	Options
	Backup *backup.Backup
	// Force replaces a cluster whose servers run and answer.
	Force bool
}

// RestorePlan is what a restore will do, before it does anything.
type RestorePlan struct {
	Cluster    string           `json:"cluster"`
	Backup     string           `json:"backup"`
	Datastore  backup.Datastore `json:"datastore"`
	K3sVersion string           `json:"k3sVersion"`
	Created    time.Time        `json:"created"`
	Source     backup.Source    `json:"source"`
	// Steps are what restore does before the cluster is brought to the
	// inventory as apply does (Then).
	Steps []plan.Step `json:"steps"`
	Then  *plan.Plan  `json:"then"`
	// Refused says why the restore will not run; empty when it will.
	Refused []string `json:"refused,omitempty"`
}

// Restore is a prepared restore: Plan says what Run will do.
type Restore struct {
	Plan  *RestorePlan
	o     RestoreOptions
	prep  *Prepared
	token secret.Value
	spec  *plan.Spec
	stop  map[string]bool // servers whose k3s runs and is stopped first
	clear map[string]bool // other servers whose etcd data is cleared
}

// Close closes the connections.
func (r *Restore) Close() {
	if r.prep != nil {
		r.prep.Close()
	}
}

// PrepareRestore gathers facts from every host and builds the restore
// plan. It changes nothing.
func PrepareRestore(ctx context.Context, o RestoreOptions) (*Restore, error) {
	if len(o.Spec.Clusters) != 1 || len(o.Spec.Clusters[0].Servers) == 0 {
		return nil, fmt.Errorf("restore needs one cluster with at least one server")
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = 5 * time.Minute
	}
	m := o.Backup.Manifest()
	token, err := o.Backup.Token()
	if err != nil {
		return nil, err
	}
	spec := copySpec(o.Spec)
	c := spec.Clusters[0]
	note := ""
	if c.Version != "" && c.Version != m.K3sVersion {
		note = fmt.Sprintf(" (the inventory says %s; the backup's version is installed)", c.Version)
	}
	c.Version, c.Token = m.K3sVersion, token
	c.HA = c.HA || m.Datastore == backup.Etcd
	spec.Clusters[0] = c
	spec.AllowDowngrade = spec.AllowDowngrade || o.Force
	po := o.Options
	po.Spec = spec
	po.VersionOrChannel = map[string]string{c.Name: m.K3sVersion}
	prep, err := Prepare(ctx, po)
	if err != nil {
		return nil, err
	}
	r := &Restore{o: o, prep: prep, token: token, spec: prep.Spec, stop: map[string]bool{}, clear: map[string]bool{}}
	r.Plan = &RestorePlan{Cluster: c.Name, Backup: o.Backup.Name(), Datastore: m.Datastore, K3sVersion: m.K3sVersion,
		Created: m.Created, Source: m.Source, Then: prep.Plan}
	first := c.Servers[0].Address
	add := func(k plan.StepKind, host, reason string) {
		r.Plan.Steps = append(r.Plan.Steps, plan.Step{Kind: k, Host: host, Reason: reason, Changes: k.MayChange()})
	}
	for _, h := range c.Servers {
		f := prep.Facts[h.Address]
		if f == nil || f.Err != "" {
			why := "unreachable"
			if f != nil {
				why = f.Err
			}
			if h.Address == first {
				r.Plan.Refused = append(r.Plan.Refused, fmt.Sprintf("%s: the first server cannot be reached: %s", first, why))
			}
			continue
		}
		if f.Active[k3s.Server] {
			if nodes, err := node.Nodes(ctx, prep.Conns[h.Address]); err == nil && len(nodes) > 0 && !o.Force {
				r.Plan.Refused = append(r.Plan.Refused, fmt.Sprintf("%s: k3s runs and its API answers: restore would replace a running cluster; give --force to do so", h.Address))
			}
			r.stop[h.Address] = true
		}
	}
	if m.Datastore == backup.Etcd {
		for _, h := range c.Servers[1:] {
			if f := prep.Facts[h.Address]; f != nil && f.Err == "" && (f.Installed[k3s.Server] || f.K3sVersion != "") {
				if r.stop[h.Address] {
					add(plan.StepStopServer, h.Address, "k3s runs: stopped before it rejoins")
				}
				r.clear[h.Address] = true
				add(plan.StepClearEtcd, h.Address, "removes "+k3s.EtcdDir+" so the server joins the restored cluster afresh")
			}
		}
	}
	if r.stop[first] {
		add(plan.StepStopServer, first, "k3s runs: stopped before its data is replaced")
	}
	pwNote := ""
	if pw, err := r.nodePassword(); err == nil && len(pw) > 0 {
		pwNote = ", and the node password of " + m.Source.Node
	}
	if m.Datastore == backup.Etcd {
		add(plan.StepUploadBinary, first, "k3s "+m.K3sVersion+", the backup's version"+note)
		add(plan.StepWriteConfig, first, "config.yaml with the backup's token, the service files"+pwNote)
		add(plan.StepRestore, first, "etcd snapshot of "+o.Backup.Name()+" through k3s server --cluster-reset")
		add(plan.StepStartServer, first, "starts k3s on the restored data")
		add(plan.StepWaitReady, first, "k3s active and the node Ready")
	} else {
		add(plan.StepRestore, first, "server/db and server/token of "+o.Backup.Name()+pwNote+", before K3s starts"+note)
	}
	return r, nil
}

// Run restores. Apply's events go to o.Sink; the steps before apply too.
func (r *Restore) Run(ctx context.Context) ([]apply.HostResult, error) {
	if len(r.Plan.Refused) > 0 {
		return nil, fmt.Errorf("restore refused:\n  %s", strings.Join(r.Plan.Refused, "\n  "))
	}
	c := r.spec.Clusters[0]
	first := c.Servers[0]
	em := emitter{sink: r.o.Sink, now: time.Now, cluster: c.Name}
	conn := r.prep.Conns[first.Address]
	m := node.ManagerFor(r.prep.inits[first.Address])
	service := k3s.ServiceName(k3s.Server)
	for _, h := range c.Servers[1:] {
		hc := r.prep.Conns[h.Address]
		if hc == nil || !r.clear[h.Address] {
			continue
		}
		hm := node.ManagerFor(r.prep.inits[h.Address])
		if r.stop[h.Address] {
			if err := em.step(h.Address, k3s.Server, plan.StepStopServer, func() (string, error) {
				return "", stopService(ctx, hc, hm, service)
			}); err != nil {
				return nil, err
			}
		}
		if err := em.step(h.Address, k3s.Server, plan.StepClearEtcd, func() (string, error) {
			_, err := hc.Run(ctx, node.Command("rm", "-rf", "--", k3s.EtcdDir), ssh.RunOptions{Sudo: true})
			return "", err
		}); err != nil {
			return nil, err
		}
	}
	if r.stop[first.Address] {
		if err := em.step(first.Address, k3s.Server, plan.StepStopServer, func() (string, error) {
			return "", stopService(ctx, conn, m, service)
		}); err != nil {
			return nil, err
		}
	}
	var err error
	if r.Plan.Datastore == backup.Etcd {
		err = r.restoreEtcd(ctx, em, conn, m, first)
	} else {
		err = em.step(first.Address, k3s.Server, plan.StepRestore, func() (string, error) {
			return r.restoreSQLite(ctx, conn)
		})
	}
	if err != nil {
		return nil, err
	}
	// The hosts changed: plan again from fresh facts, then run it.
	r.prep.Close()
	r.prep = nil
	o := r.o.Options
	o.Spec = r.spec
	o.VersionOrChannel = map[string]string{c.Name: c.Version}
	prep, err := Prepare(ctx, o)
	if err != nil {
		return nil, err
	}
	r.prep = prep
	return prep.Apply(ctx)
}

// nodePassword is the node password file to write on the first server:
// the backup's, when the first server takes the node name the backup was
// taken from (the same machine, or its replacement), else none.
func (r *Restore) nodePassword() ([]node.File, error) {
	m := r.o.Backup.Manifest()
	if _, ok := m.Part(PartNodePassword); !ok || m.Source.Node == "" {
		return nil, nil
	}
	first := r.spec.Clusters[0].Servers[0]
	name := first.NodeName
	if f := r.prep.Facts[first.Address]; name == "" && f != nil {
		name = strings.ToLower(f.Hostname)
	}
	if name != m.Source.Node {
		return nil, nil
	}
	rc, err := r.o.Backup.Part(PartNodePassword)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, 4096))
	if err != nil {
		return nil, err
	}
	return []node.File{{Path: k3s.NodePasswordPath, Mode: k3s.SecretFileMode, Data: data}}, nil
}

// partFile copies a backup part to a private local temporary file.
func partFile(b *backup.Backup, part string) (string, error) {
	rc, err := b.Part(part)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	f, err := os.CreateTemp("", "k3sctl-restore-")
	if err != nil {
		return "", err
	}
	_, err = io.Copy(f, rc)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// restoreSQLite puts server/db (the old one moved aside) and server/token
// in place; K3s is not running.
func (r *Restore) restoreSQLite(ctx context.Context, conn Conn) (string, error) {
	local, err := partFile(r.o.Backup, backup.PartDB)
	if err != nil {
		return "", err
	}
	defer os.Remove(local)
	if _, err := conn.Upload(ctx, local, restoreDBPath, ssh.UploadOptions{Mode: 0o600}); err != nil {
		return "", fmt.Errorf("upload the database: %w", err)
	}
	aside := fmt.Sprintf("db.k3sctl-old-%d", time.Now().Unix())
	script := node.And(
		node.Command("mkdir", "-p", ServerDir),
		node.Command("cd", ServerDir),
		node.If(node.Command("test", "-e", "db"), node.Command("mv", "db", aside), node.Command("true")),
		node.Command("tar", "-xf", restoreDBPath),
		node.Command("rm", "-f", restoreDBPath),
	)
	if _, err := conn.Run(ctx, script, ssh.RunOptions{Sudo: true}); err != nil {
		return "", fmt.Errorf("unpack the database: %w", err)
	}
	files := []node.File{{Path: k3s.TokenPath, Mode: k3s.SecretFileMode, Data: []byte(r.token.Reveal() + "\n")}}
	pw, err := r.nodePassword()
	if err != nil {
		return "", err
	}
	files = append(files, pw...)
	if _, err := node.WriteFiles(ctx, conn, files, ""); err != nil {
		return "", fmt.Errorf("write %s: %w", k3s.TokenPath, err)
	}
	return ServerDir + "/db and token in place", nil
}

// restoreEtcd installs K3s on the first server, restores the snapshot with
// a cluster reset, and starts K3s on it.
func (r *Restore) restoreEtcd(ctx context.Context, em emitter, conn Conn, m node.ServiceManager, first plan.Host) error {
	c := &r.spec.Clusters[0]
	f := r.prep.Facts[first.Address]
	bin, ok := r.prep.binaries[plan.BinaryKey{Version: c.Version, Arch: f.Arch}]
	if !ok {
		return fmt.Errorf("%s: no k3s %s binary for %s", first.Address, c.Version, f.Arch)
	}
	if err := em.step(first.Address, k3s.Server, plan.StepUploadBinary, func() (string, error) {
		_, err := conn.Upload(ctx, bin, k3s.BinaryPath, ssh.UploadOptions{Mode: k3s.BinaryMode})
		return "", err
	}); err != nil {
		return err
	}
	if err := em.step(first.Address, k3s.Server, plan.StepWriteConfig, func() (string, error) {
		files, _, err := plan.Files(c, first, true, r.token, r.prep.inits[first.Address])
		if err != nil {
			return "", err
		}
		nf := make([]node.File, len(files))
		for i, f := range files {
			nf[i] = node.File{Path: f.Path, Mode: os.FileMode(f.Mode), Data: f.Data}
		}
		pw, err := r.nodePassword()
		if err != nil {
			return "", err
		}
		_, err = node.WriteFiles(ctx, conn, append(nf, pw...), node.LinksCommand())
		return "", err
	}); err != nil {
		return err
	}
	if err := em.step(first.Address, k3s.Server, plan.StepRestore, func() (string, error) {
		local, err := partFile(r.o.Backup, backup.PartSnapshot)
		if err != nil {
			return "", err
		}
		defer os.Remove(local)
		if _, err := conn.Upload(ctx, local, restoreSnapshotPath, ssh.UploadOptions{Mode: 0o600}); err != nil {
			return "", fmt.Errorf("upload the snapshot: %w", err)
		}
		rctx, cancel := context.WithTimeout(ctx, r.o.ReadyTimeout)
		defer cancel()
		// The token comes from config.yaml (mode 0600), never from the
		// command line.
		res, err := conn.Run(rctx, node.Command(k3s.BinaryPath, "server", "--cluster-reset", "--cluster-reset-restore-path="+restoreSnapshotPath), ssh.RunOptions{Sudo: true})
		_, _ = conn.Run(context.WithoutCancel(ctx), node.Command("rm", "-f", restoreSnapshotPath), ssh.RunOptions{Sudo: true})
		if err != nil {
			tail := strings.Split(strings.TrimSpace(string(res.Stderr)), "\n")
			if len(tail) > 8 {
				tail = tail[len(tail)-8:]
			}
			return "", &apply.StepError{Host: first.Address, Step: plan.StepRestore, Err: fmt.Errorf("k3s server --cluster-reset: %w", err),
				Hint: k3s.DiagnoseLog(tail), LogTail: tail}
		}
		return "etcd restored from " + r.o.Backup.Name(), nil
	}); err != nil {
		return err
	}
	if err := em.step(first.Address, k3s.Server, plan.StepStartServer, func() (string, error) {
		_, err := node.StartService(ctx, conn, m, k3s.ServiceName(k3s.Server), false)
		return "", err
	}); err != nil {
		return err
	}
	return em.step(first.Address, k3s.Server, plan.StepWaitReady, func() (string, error) {
		wctx, cancel := context.WithTimeout(ctx, r.o.ReadyTimeout)
		defer cancel()
		name := strings.ToLower(f.Hostname)
		if first.NodeName != "" {
			name = first.NodeName
		}
		return "", WaitServerReady(wctx, conn, m, name)
	})
}
