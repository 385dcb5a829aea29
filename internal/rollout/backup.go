package rollout

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/k3sctl/k3sctl/internal/apply"
	"github.com/k3sctl/k3sctl/internal/backup"
	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/node"
	"github.com/k3sctl/k3sctl/internal/plan"
	"github.com/k3sctl/k3sctl/internal/ssh"
)

// PartNodePassword is the backup part with the source server's node
// password (k3s.NodePasswordPath).
const PartNodePassword = "node-password"

// SnapshotName is the --name k3sctl gives the etcd snapshots it takes; K3s
// names the file <name>-<node>-<unix time>.
const SnapshotName = "k3sctl"

// SnapshotDir is where K3s writes etcd snapshots (node.SnapshotDir).
const SnapshotDir = node.SnapshotDir

// ServerDir holds a server's datastore (db) and token.
const ServerDir = k3s.DataDir + "/server"

// BackupOptions says which cluster to back up and where to.
type BackupOptions struct {
	Cluster string
	// Servers are the cluster's servers, in inventory order; the first
	// healthy one is backed up.
	Servers []string
	SSH     func(address string) ssh.Options
	Dial    Dialer // nil: ssh.Dial with SSH

	Root       string // backup root; the backup goes to <Root>/<Cluster>/
	Recipients []age.Recipient
	// Keep, when above 0, removes all but the newest Keep backups of the
	// cluster afterwards.
	Keep         int
	ReadyTimeout time.Duration
	Sink         apply.Sink
	Now          func() time.Time
}

// BackupResult is a backup taken.
type BackupResult struct {
	Backup backup.Info
	Server string // address of the server it was taken from
	// Snapshot is the name K3s gave the etcd snapshot (removed from the
	// server once downloaded); empty for SQLite.
	Snapshot string
	Pruned   []backup.Info
}

// serverState is what backup and restore learn about a server.
type serverState struct {
	addr      string
	conn      Conn
	facts     *node.Facts
	datastore backup.Datastore // "" when K3s has no data there; "external" otherwise
	healthy   bool             // k3s active and its API lists nodes
}

// external marks a server whose datastore is neither embedded etcd nor
// SQLite (datastore-endpoint).
const external backup.Datastore = "external"

// datastoreCommand prints etcd, sqlite, external (K3s data but neither) or
// none.
func datastoreCommand() string {
	return node.If(node.Command("test", "-d", k3s.EtcdDir), node.Command("echo", "etcd"),
		node.If(node.Command("test", "-f", k3s.SQLitePath), node.Command("echo", "sqlite"),
			node.If(node.Command("test", "-d", ServerDir+"/tls"), node.Command("echo", "external"), node.Command("echo", "none"))))
}

// inspectServer reads what backup and restore need of a server.
func inspectServer(ctx context.Context, c Conn) (*serverState, error) {
	s := &serverState{addr: c.Host(), conn: c}
	f, err := node.GatherFacts(ctx, c, node.FactsOptions{})
	if err != nil {
		return s, err
	}
	s.facts = f
	if !f.Privileged {
		return s, fmt.Errorf("cannot read root-only files: user %s has no usable sudo (log in as root, or give the sudo password)", f.User)
	}
	res, err := c.Run(ctx, datastoreCommand(), ssh.RunOptions{Sudo: true})
	if err != nil {
		return s, fmt.Errorf("look for the datastore: %w", err)
	}
	switch ds := backup.Datastore(strings.TrimSpace(string(res.Stdout))); ds {
	case backup.Etcd, backup.SQLite, external:
		s.datastore = ds
	}
	if f.Services.K3s.Active {
		if nodes, err := node.Nodes(ctx, c); err == nil && len(nodes) > 0 {
			s.healthy = true
		}
	}
	return s, nil
}

func dialer(d Dialer, sshFor func(string) ssh.Options) Dialer {
	if d != nil {
		return d
	}
	return withDefaults(Options{SSH: sshFor}).Dial
}

// emitter sends the events of backup and restore, which run outside apply.
type emitter struct {
	sink    apply.Sink
	now     func() time.Time
	cluster string
}

func (e emitter) event(ev apply.Event) {
	if e.sink == nil {
		return
	}
	ev.Time = e.now()
	ev.Cluster = e.cluster
	if ev.Role == "" && ev.Host != "" {
		ev.Role = string(k3s.Server)
	}
	e.sink.Event(ev)
}

// step runs fn as one reported step on host.
func (e emitter) step(host string, role k3s.Role, kind plan.StepKind, fn func() (string, error)) error {
	e.event(apply.Event{Type: apply.EventStepStart, Host: host, Role: string(role), Step: kind})
	msg, err := fn()
	if err != nil {
		se := &apply.StepError{Host: host, Step: kind, Err: err, Hint: ssh.HintOf(err)}
		var inner *apply.StepError
		if errors.As(err, &inner) {
			se = &apply.StepError{Host: host, Step: kind, Err: inner.Err, Hint: inner.Hint, LogTail: inner.LogTail}
		}
		e.event(apply.Event{Type: apply.EventStepFailed, Host: host, Role: string(role), Step: kind, Error: se.Err.Error(), Hint: se.Hint, LogTail: se.LogTail})
		return se
	}
	if msg != "" {
		e.event(apply.Event{Type: apply.EventLog, Host: host, Role: string(role), Step: kind, Message: msg})
	}
	e.event(apply.Event{Type: apply.EventStepDone, Host: host, Role: string(role), Step: kind, Changed: kind.MayChange()})
	return nil
}

func (e emitter) log(host string, kind plan.StepKind, msg string) {
	e.event(apply.Event{Type: apply.EventLog, Host: host, Step: kind, Message: msg})
}

// Backup takes a backup of one cluster from its first healthy server: an
// etcd snapshot (k3s etcd-snapshot save, downloaded, then deleted on the
// server) or a copy of the SQLite database taken while K3s is stopped, and
// in both cases the cluster token.
func Backup(ctx context.Context, o BackupOptions) (*BackupResult, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = 5 * time.Minute
	}
	em := emitter{sink: o.Sink, now: o.Now, cluster: o.Cluster}
	dial := dialer(o.Dial, o.SSH)
	var (
		src      *serverState
		problems []string
	)
	for _, addr := range o.Servers {
		c, err := dial(ctx, addr)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", addr, err))
			continue
		}
		s, err := inspectServer(ctx, c)
		s.addr = addr // the host's key: hosts sharing an address differ in it
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("%s: %v", addr, err))
		case s.datastore == external:
			_ = c.Close()
			return nil, fmt.Errorf("cluster %s: %s: the datastore is external (datastore-endpoint): back it up with that database's own tools", o.Cluster, addr)
		case s.datastore == "" || s.datastore == "none":
			problems = append(problems, fmt.Sprintf("%s: no K3s server data there", addr))
		case !s.healthy:
			problems = append(problems, fmt.Sprintf("%s: k3s is not running or its API does not answer", addr))
		default:
			src = s
		}
		if src != nil {
			break
		}
		_ = c.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	if src == nil {
		return nil, fmt.Errorf("cluster %s: no healthy server to back up:\n  %s\n  hint: check the servers with k3sctl facts, and that k3s runs on one of them",
			o.Cluster, strings.Join(problems, "\n  "))
	}
	defer src.conn.Close()
	version := src.facts.K3sVersion
	if version == "" {
		return nil, fmt.Errorf("%s: cannot tell the installed K3s version (%s --version)", src.addr, k3s.BinaryPath)
	}
	token, err := node.ReadToken(ctx, src.conn)
	if err != nil {
		return nil, fmt.Errorf("%s: read the cluster token %s: %w", src.addr, k3s.TokenPath, err)
	}
	w, err := backup.Create(o.Root, backup.Meta{
		Cluster: o.Cluster, K3sVersion: version, Datastore: src.datastore,
		Source:  backup.Source{Address: src.addr, Node: strings.ToLower(src.facts.Hostname)},
		Created: o.Now(),
	}, backup.Options{Recipients: o.Recipients})
	if err != nil {
		return nil, err
	}
	defer w.Abort()
	res := &BackupResult{Server: src.addr}
	switch src.datastore {
	case backup.Etcd:
		res.Snapshot, err = backupEtcd(ctx, em, src, w)
	default:
		err = backupSQLite(ctx, em, src, w, o.ReadyTimeout)
	}
	if err != nil {
		return nil, err
	}
	if err := w.AddToken(token); err != nil {
		return nil, err
	}
	// The server's node password is in the datastore too: a new machine
	// with the same node name must present the same one.
	pw, err := src.conn.ReadFile(ctx, k3s.NodePasswordPath)
	switch {
	case err == nil:
		if err := w.AddPart(PartNodePassword, bytes.NewReader(pw)); err != nil {
			return nil, err
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%s: read %s: %w", src.addr, k3s.NodePasswordPath, err)
	}
	info, err := w.Commit()
	if err != nil {
		return nil, err
	}
	res.Backup = info
	if o.Keep > 0 {
		res.Pruned, err = backup.Prune(o.Root, o.Cluster, o.Keep)
		if err != nil {
			return res, fmt.Errorf("backup %s written, but removing older ones failed: %w", info.Name, err)
		}
	}
	return res, nil
}

// backupEtcd saves a snapshot, streams it into the backup and deletes it on
// the server, so that backups do not fill the server's disk.
func backupEtcd(ctx context.Context, em emitter, src *serverState, w *backup.Writer) (string, error) {
	var name, file string
	err := em.step(src.addr, k3s.Server, plan.StepSnapshot, func() (string, error) {
		var err error
		name, file, err = node.TakeSnapshot(ctx, src.conn, SnapshotName)
		if err != nil {
			return "", err
		}
		return "snapshot " + name, nil
	})
	if err != nil {
		return "", err
	}
	err = em.step(src.addr, k3s.Server, plan.StepDownload, func() (string, error) {
		sumRes, err := src.conn.Run(ctx, node.Command("sha256sum", "--", file), ssh.RunOptions{Sudo: true})
		if err != nil {
			return "", fmt.Errorf("snapshot %s: %w (is etcd-snapshot-dir set in config.yaml? k3sctl reads snapshots from %s)", name, err, SnapshotDir)
		}
		want := strings.Fields(string(sumRes.Stdout))
		n, have, err := stream(ctx, src.conn, node.Command("cat", "--", file), func(r io.Reader) error { return w.AddPart(backup.PartSnapshot, r) })
		if err != nil {
			return "", fmt.Errorf("download snapshot %s: %w", name, err)
		}
		if len(want) == 0 || want[0] != have {
			return "", fmt.Errorf("download snapshot %s: sha256 differs from the server's: run the backup again", name)
		}
		return fmt.Sprintf("snapshot %s, %d bytes", name, n), nil
	})
	if err != nil {
		return "", err
	}
	// The backup holds it now; a copy left behind would fill small disks.
	if _, err := src.conn.Run(ctx, node.Command(k3s.BinaryPath, "etcd-snapshot", "delete", name), ssh.RunOptions{Sudo: true}); err != nil {
		em.log(src.addr, plan.StepDownload, fmt.Sprintf("snapshot %s left on the server: delete it with k3s etcd-snapshot delete %s: %v", name, name, err))
	}
	return name, nil
}

// backupSQLite stops K3s, streams a tar of server/db into the backup and
// starts K3s again, waiting until the node is Ready.
func backupSQLite(ctx context.Context, em emitter, src *serverState, w *backup.Writer, timeout time.Duration) (err error) {
	m := node.ManagerFor(src.facts.InitSystem)
	if err := em.step(src.addr, k3s.Server, plan.StepStopServer, func() (string, error) {
		return "k3s stopped so the database is copied at rest", stopService(ctx, src.conn, m, k3s.ServiceName(k3s.Server))
	}); err != nil {
		return err
	}
	defer func() {
		// Start it again even when the copy failed or was interrupted.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		serr := em.step(src.addr, k3s.Server, plan.StepStartServer, func() (string, error) {
			if _, err := node.StartService(sctx, src.conn, m, k3s.ServiceName(k3s.Server), false); err != nil {
				return "", err
			}
			return "", nil
		})
		if serr == nil {
			serr = em.step(src.addr, k3s.Server, plan.StepWaitReady, func() (string, error) {
				return "", WaitServerReady(sctx, src.conn, m, strings.ToLower(src.facts.Hostname))
			})
		}
		if err == nil {
			err = serr
		}
	}()
	return em.step(src.addr, k3s.Server, plan.StepDownload, func() (string, error) {
		n, _, err := stream(ctx, src.conn, node.Command("tar", "-C", ServerDir, "-cf", "-", "db"), func(r io.Reader) error { return w.AddPart(backup.PartDB, r) })
		if err != nil {
			return "", fmt.Errorf("copy %s/db: %w", ServerDir, err)
		}
		return fmt.Sprintf("%s/db, %d bytes", ServerDir, n), nil
	})
}

func stopService(ctx context.Context, c apply.Conn, m node.ServiceManager, service string) error {
	cmd := node.Command("systemctl", "stop", service)
	if m.Name() == k3s.OpenRC {
		cmd = node.QuietOut(node.Command("rc-service", service, "stop"))
	}
	_, err := c.Run(ctx, cmd, ssh.RunOptions{Sudo: true})
	return err
}

// WaitServerReady waits until a server's service is active and its node
// (nodeName; any node when empty) is Ready in its own API.
func WaitServerReady(ctx context.Context, c apply.Conn, m node.ServiceManager, nodeName string) error {
	last := ""
	for {
		state, err := node.ServiceStatus(ctx, c, m, k3s.ServiceName(k3s.Server))
		if err == nil {
			last = state
		}
		if err == nil && state == "active" {
			nodes, err := node.Nodes(ctx, c)
			if err == nil {
				for _, n := range nodes {
					if n.Ready && (nodeName == "" || n.Name == nodeName || strings.HasPrefix(n.Name, nodeName+"-")) {
						return nil
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			if last == "" {
				last = "unknown"
			}
			tail := node.LogTail(context.Background(), c, m, k3s.ServiceName(k3s.Server), 8)
			return &apply.StepError{Host: c.Host(), Step: plan.StepWaitReady,
				Err:  fmt.Errorf("k3s not ready (state: %s): %w", last, ctx.Err()),
				Hint: k3s.DiagnoseLog(tail), LogTail: tail}
		case <-time.After(time.Second):
		}
	}
}

// stream runs cmd as root and hands its output to consume as it arrives;
// it returns the bytes and their sha256.
func stream(ctx context.Context, c apply.Conn, cmd string, consume func(io.Reader) error) (int64, string, error) {
	pr, pw := io.Pipe()
	h := sha256.New()
	cw := &counter{}
	done := make(chan error, 1)
	go func() {
		_, err := c.Run(ctx, cmd, ssh.RunOptions{Sudo: true, Stdout: io.MultiWriter(pw, h, cw)})
		pw.CloseWithError(err)
		done <- err
	}()
	cerr := consume(pr)
	// Whatever consume left unread is drained, so the command ends.
	pr.CloseWithError(errors.New("backup stopped reading"))
	rerr := <-done
	if rerr != nil {
		return cw.n, "", rerr
	}
	if cerr != nil {
		return cw.n, "", cerr
	}
	return cw.n, hex.EncodeToString(h.Sum(nil)), nil
}

type counter struct{ n int64 }

func (c *counter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }
