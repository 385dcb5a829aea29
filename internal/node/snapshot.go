package node

import (
	"context"
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/ssh"
)

// SnapshotDir is where K3s writes etcd snapshots unless configured
// otherwise (etcd-snapshot-dir).
const SnapshotDir = k3s.DataDir + "/server/db/snapshots"

var snapshotSavedRe = regexp.MustCompile(`Snapshot (\S+) saved`)

// HasEtcdCommand succeeds when the server keeps its datastore in embedded
// etcd.
func HasEtcdCommand() string { return Command("test", "-d", k3s.EtcdDir) }

// TakeSnapshot runs `k3s etcd-snapshot save --name <name>` on a server and
// returns the name K3s gave the snapshot (<name>-<node>-<unix time>) and
// its path there.
func TakeSnapshot(ctx context.Context, c Conn, name string) (snapshot, file string, err error) {
	res, err := c.Run(ctx, Command(k3s.BinaryPath, "etcd-snapshot", "save", "--name", name), ssh.RunOptions{Sudo: true})
	if err != nil {
		return "", "", fmt.Errorf("k3s etcd-snapshot save: %w", err)
	}
	m := snapshotSavedRe.FindStringSubmatch(string(res.Stdout) + string(res.Stderr))
	if m == nil {
		out := strings.Split(strings.TrimSpace(string(res.Stderr)), "\n")
		return "", "", fmt.Errorf("k3s etcd-snapshot save did not name the snapshot it saved: %s", out[len(out)-1])
	}
	snapshot = path.Base(strings.Trim(m[1], `"'.`))
	return snapshot, SnapshotDir + "/" + snapshot, nil
}
