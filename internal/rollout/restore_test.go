package rollout

import (
	"context"
	"strings"
	"testing"

	"github.com/k3sctl/k3sctl/internal/backup"
	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/plan"
	"github.com/k3sctl/k3sctl/internal/secret"
)

// testBackup writes and opens a backup of cluster home.
func testBackup(t *testing.T, ds backup.Datastore) *backup.Backup {
	t.Helper()
	root := t.TempDir()
	w, err := backup.Create(root, backup.Meta{Cluster: "home", K3sVersion: "v1.31.4+k3s1", Datastore: ds,
		Source: backup.Source{Address: "10.0.0.10", Node: "pi1"}}, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	part := backup.PartSnapshot
	if ds == backup.SQLite {
		part = backup.PartDB
	}
	if err := w.AddPart(part, strings.NewReader("data")); err != nil {
		t.Fatal(err)
	}
	if err := w.AddPart(PartNodePassword, strings.NewReader("node-pw\n")); err != nil {
		t.Fatal(err)
	}
	if err := w.AddToken(secret.New(testToken)); err != nil {
		t.Fatal(err)
	}
	info, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	b, err := backup.Open(info.Dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func prepareRestore(t *testing.T, b *backup.Backup, force bool, servers ...*fakeServer) *Restore {
	t.Helper()
	byAddr := map[string]*fakeServer{}
	c := plan.Cluster{Name: "home", Version: "v1.31.9+k3s1"}
	for _, s := range servers {
		byAddr[s.addr] = s
		c.Servers = append(c.Servers, plan.Host{Address: s.addr, Role: k3s.Server})
	}
	r, err := PrepareRestore(context.Background(), RestoreOptions{
		Options: Options{
			Spec: &plan.Spec{Clusters: []plan.Cluster{c}},
			Dial: func(ctx context.Context, addr string) (Conn, error) { return &fakeServerConn{s: byAddr[addr]}, nil },
			Fetch: func(ctx context.Context, key plan.BinaryKey) (Fetched, error) {
				return Fetched{Path: "/tmp/k3s-" + key.Version, SHA256: strings.Repeat("1", 64)}, nil
			},
		},
		Backup: b, Force: force,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

func stepList(p *RestorePlan) string {
	var out []string
	for _, s := range p.Steps {
		out = append(out, s.Host+" "+string(s.Kind))
	}
	return strings.Join(out, ", ")
}

func TestRestorePlanRefusesARunningClusterUnlessForced(t *testing.T) {
	b := testBackup(t, backup.Etcd)
	running := func() []*fakeServer {
		return []*fakeServer{
			{addr: "10.0.0.10", datastore: "etcd", active: true, apiUp: true},
			{addr: "10.0.0.11", datastore: "etcd", active: true, apiUp: true},
		}
	}
	r := prepareRestore(t, b, false, running()...)
	if len(r.Plan.Refused) != 2 || !strings.Contains(r.Plan.Refused[0], "--force") {
		t.Errorf("refused %q, want both running servers with a hint to --force", r.Plan.Refused)
	}
	if _, err := r.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("Run of a refused restore: %v", err)
	}

	r = prepareRestore(t, b, true, running()...)
	if len(r.Plan.Refused) != 0 {
		t.Errorf("refused with --force: %q", r.Plan.Refused)
	}
	want := "10.0.0.11 stop k3s, 10.0.0.11 clear etcd data, 10.0.0.10 stop k3s, 10.0.0.10 upload k3s, 10.0.0.10 write config, " +
		"10.0.0.10 restore data, 10.0.0.10 start k3s, 10.0.0.10 wait for ready"
	if got := stepList(r.Plan); got != want {
		t.Errorf("steps\n got %s\nwant %s", got, want)
	}
	if r.Plan.K3sVersion != "v1.31.4+k3s1" || r.Plan.Then.Clusters[0].Version != "v1.31.4+k3s1" {
		t.Errorf("restore installs %s / plans %s, want the backup's version", r.Plan.K3sVersion, r.Plan.Then.Clusters[0].Version)
	}
	// The first server is pi1, the node the backup was taken from: it gets
	// the node password back.
	if !strings.Contains(r.Plan.Steps[4].Reason, "node password of pi1") {
		t.Errorf("write config reason %q does not mention the node password", r.Plan.Steps[4].Reason)
	}
}

func TestRestorePlanSQLiteOntoFreshServer(t *testing.T) {
	b := testBackup(t, backup.SQLite)
	r := prepareRestore(t, b, false, &fakeServer{addr: "10.0.0.10", datastore: "none"})
	if len(r.Plan.Refused) != 0 {
		t.Fatalf("refused: %q", r.Plan.Refused)
	}
	if got := stepList(r.Plan); got != "10.0.0.10 restore data" {
		t.Errorf("steps %s", got)
	}
	// The fake server reports K3s at the backup's version but no checksum
	// of its binary, so the plan puts the binary in place again.
	if h := r.Plan.Then.Clusters[0].Hosts[0]; h.Action != plan.ActionUpgrade || !h.First || h.To != "v1.31.4+k3s1" {
		t.Errorf("then: %s to %s for the first server, want the backup's binary put in place", h.Action, h.To)
	}
}
