package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/k3sctl/k3sctl/internal/cli"
	"github.com/k3sctl/k3sctl/test/e2e/world"
)

// writeInventory writes a one-cluster inventory and returns its path.
func writeClusterInventory(t *testing.T, dir, key, cluster, version string, servers, agents []string) string {
	t.Helper()
	inv := "apiVersion: k3sctl.io/v1alpha1\nkind: Inventory\ndefaults:\n  ssh:\n    user: pi\n    keyFile: " + key +
		"\n  version: " + version + "\nclusters:\n  - name: " + cluster + "\n    servers: [" + strings.Join(servers, ", ") + "]\n"
	if len(agents) > 0 {
		inv += "    agents: [" + strings.Join(agents, ", ") + "]\n"
	}
	path := filepath.Join(dir, "inventory.yaml")
	if err := os.WriteFile(path, []byte(inv), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// psSampler runs `ps -eo args` on hosts every few hundred milliseconds and
// keeps every distinct line, so a secret on a command line, however short
// lived, is likely seen.
type psSampler struct {
	mu    sync.Mutex
	lines map[string]bool
	n     int
	stop  chan struct{}
	done  chan struct{}
}

func samplePS(hosts ...*world.Host) *psSampler {
	s := &psSampler{lines: map[string]bool{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			var wg sync.WaitGroup
			for _, h := range hosts {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					out, err := h.ExecErr(ctx, "ps -eo args")
					if err != nil {
						return
					}
					s.mu.Lock()
					s.n++
					for _, l := range strings.Split(out, "\n") {
						s.lines[l] = true
					}
					s.mu.Unlock()
				}()
			}
			wg.Wait()
			select {
			case <-s.stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	return s
}

// finish stops sampling and fails the test if any line held secret.
func (s *psSampler) finish(t *testing.T, secret string) {
	t.Helper()
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n == 0 {
		t.Fatal("ps was never sampled")
	}
	sawK3s := false
	for l := range s.lines {
		if strings.Contains(l, secret) {
			t.Errorf("a remote command line shows the token: %q", l)
		}
		if strings.Contains(l, "k3s") {
			sawK3s = true
		}
	}
	if !sawK3s {
		t.Errorf("%d ps samples never showed a k3s process: sampling did not see the hosts", s.n)
	}
	t.Logf("%d ps samples, %d distinct lines", s.n, len(s.lines))
}

func fileSum(t *testing.T, h *world.Host, path string) string {
	t.Helper()
	return strings.Fields(h.Exec(t, "sha256sum "+path))[0]
}

// forgetHostKey removes a replaced host's old key, as a user would with
// ssh-keygen -R after swapping the hardware.
func forgetHostKey(t *testing.T, u *user, addr string) {
	t.Helper()
	out, err := exec.Command("ssh-keygen", "-R", addr, "-f", filepath.Join(u.home, ".ssh", "known_hosts")).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen -R %s: %v\n%s", addr, err, out)
	}
}

// waitConfigMap waits until kubectl reads key of a ConfigMap.
func waitConfigMap(t *testing.T, u *user, context, name, key string) string {
	t.Helper()
	var out string
	var err error
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Second) {
		out, err = u.kubectl("--context", context, "get", "configmap", name, "-o", "jsonpath={.data."+key+"}")
		if err == nil {
			return out
		}
	}
	t.Fatalf("kubectl --context %s get configmap %s: %v\n%s", context, name, err, out)
	return ""
}

// flipByte changes one byte in the middle of a file.
func flipByte(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// copyDir copies a backup directory (flat: files only).
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// onlyBackup is the one backup directory of cluster under root.
func onlyBackup(t *testing.T, root, cluster string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(root, cluster, cluster+"-*"))
	if len(m) != 1 {
		t.Fatalf("want one backup of %s under %s, have %v", cluster, root, m)
	}
	return m[0]
}

// TestBackupRestoreSDCardReplaced: a single-server SQLite cluster with an
// agent loses its server; a fresh host at the same address gets the backup
// and the agent comes back without being touched.
func TestBackupRestoreSDCardReplaced(t *testing.T) {
	t.Parallel()
	w := world.New(t)
	m := startMirror(t)
	hs := w.Start(t, "pi1", "pi2")
	srv, agent := hs[0], hs[1]
	u := newUser(t)
	dir := t.TempDir()
	inv := writeClusterInventory(t, dir, w.Key, "home", v1, []string{srv.IP}, []string{agent.IP})
	mirrorFlags := []string{"--download-url", m.DownloadURL, "--channel-url", m.ChannelURL, "--timeout", "90s"}
	u.mustK3sctl(args(mirrorFlags, "apply", "-f", inv)...)
	u.waitNodes("home", 2)
	if out, err := u.kubectl("--context", "home", "create", "configmap", "sd-card", "--from-literal=answer=42"); err != nil {
		t.Fatalf("kubectl create configmap: %v\n%s", err, out)
	}
	token := strings.TrimSpace(srv.Exec(t, "cat /var/lib/rancher/k3s/server/token"))
	if !strings.HasPrefix(token, "K10") {
		t.Fatalf("server token %q", token)
	}
	agentBinary := fileSum(t, agent, "/usr/local/bin/k3s")
	agentConfig := fileSum(t, agent, "/etc/rancher/k3s/config.yaml")
	agentRun := invocation(t, agent, "k3s-agent")

	ps := samplePS(srv, agent)
	root := filepath.Join(dir, "backups")
	b := u.mustK3sctl("backup", "-f", inv, "--dir", root, "--keep", "3", "-o", "json")
	var done struct {
		Type, Cluster, Backup, Datastore string
		Parts                            []struct{ Name string }
	}
	lines := strings.Split(strings.TrimSpace(b.stdout), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &done); err != nil || done.Type != cli.EventBackup || done.Datastore != "sqlite" || len(done.Parts) != 3 {
		t.Fatalf("backup's last JSON line: %+v (%v)\n%s", done, err, b)
	}
	evs := parseEvents(t, strings.Join(lines[:len(lines)-1], "\n"))
	steps := map[string]bool{}
	for _, e := range evs {
		if e.Type == "step_done" {
			steps[e.Step] = true
		}
	}
	for _, s := range []string{"stop k3s", "download backup", "start k3s", "wait for ready"} {
		if !steps[s] {
			t.Errorf("backup of SQLite: no step_done for %q in %v", s, steps)
		}
	}
	first := onlyBackup(t, root, "home")
	// A second backup, of the server alone (--ip), with --keep 1 removes the first.
	b2 := u.mustK3sctl(args(sshArgs(w), "backup", "--ip", srv.IP, "--cluster", "home", "--dir", root, "--keep", "1")...)
	if !strings.Contains(b2.stdout, "removed older backup "+filepath.Base(first)) {
		t.Errorf("backup --keep 1 does not report removing %s:\n%s", filepath.Base(first), b2)
	}
	backupDir := onlyBackup(t, root, "home")
	if backupDir == first {
		t.Errorf("backup --keep 1 kept the older backup %s", first)
	}
	for _, f := range []string{"manifest.json", "db", "token", "node-password"} {
		fi, err := os.Stat(filepath.Join(backupDir, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want mode 0600", f, fi, err)
		}
	}
	// The server runs again after the copy.
	u.waitNodes("home", 2)

	// The SD card dies: a fresh host at the same address, nothing installed.
	srv.Recreate(t)
	forgetHostKey(t, u, srv.IP)

	// A backup with one byte changed is refused before anything is touched.
	damaged := filepath.Join(dir, "damaged", "home", filepath.Base(backupDir))
	copyDir(t, backupDir, damaged)
	flipByte(t, filepath.Join(damaged, "db"))
	r := u.k3sctl(args(mirrorFlags, "restore", "-f", inv, "--from", damaged)...)
	if r.code != cli.ExitError || !strings.Contains(r.stderr, `part "db" sha256 mismatch`) {
		t.Errorf("restore of a changed backup: want exit %d naming part \"db\":\n%s", cli.ExitError, r)
	}
	if out, _ := srv.ExecErr(context.Background(), "test -e /usr/local/bin/k3s && echo installed"); strings.Contains(out, "installed") {
		t.Error("a refused restore installed k3s")
	}

	dry := u.mustK3sctl(args(mirrorFlags, "restore", "-f", inv, "--dir", root, "--dry-run")...)
	if !strings.Contains(dry.stdout, "restore data") || !strings.Contains(dry.stdout, filepath.Base(backupDir)) || !strings.Contains(dry.stdout, "node password of pi1") {
		t.Errorf("restore --dry-run does not show the plan:\n%s", dry)
	}
	if out, _ := srv.ExecErr(context.Background(), "test -e /usr/local/bin/k3s && echo installed"); strings.Contains(out, "installed") {
		t.Error("restore --dry-run installed k3s")
	}

	rs := u.mustK3sctl(args(mirrorFlags, "restore", "-f", inv, "--dir", root)...)
	ps.finish(t, token)
	for _, res := range []result{b, b2, r, dry, rs} {
		if strings.Contains(res.stdout+res.stderr, token) {
			t.Errorf("k3sctl output shows the token:\n%s", res)
		}
	}
	if got := waitConfigMap(t, u, "home", "sd-card", "answer"); got != "42" {
		t.Errorf("configmap sd-card answer = %q after restore, want 42", got)
	}
	nodes := u.waitNodes("home", 2)
	if nodes["pi2"] == nil {
		t.Errorf("agent pi2 missing after restore: %v", nodes)
	}
	if got := strings.TrimSpace(srv.Exec(t, "cat /var/lib/rancher/k3s/server/token")); got != token {
		t.Error("the restored server has another token")
	}
	if fileSum(t, agent, "/usr/local/bin/k3s") != agentBinary || fileSum(t, agent, "/etc/rancher/k3s/config.yaml") != agentConfig {
		t.Error("restore changed the agent's k3s binary or config.yaml")
	}
	if invocation(t, agent, "k3s-agent") != agentRun {
		t.Error("restore restarted the agent")
	}

	// The cluster runs and answers now: a second restore is refused.
	again := u.k3sctl(args(mirrorFlags, "restore", "-f", inv, "--dir", root)...)
	if again.code != cli.ExitHostsFailed || !strings.Contains(again.stderr, "--force") {
		t.Errorf("restore over a running cluster: want exit %d and a hint to --force:\n%s", cli.ExitHostsFailed, again)
	}
}

// TestBackupRestoreEtcdNewFirstServer: a 3-server etcd cluster is restored
// from its backup onto a new first server at a new address; the other two
// servers rejoin.
func TestBackupRestoreEtcdNewFirstServer(t *testing.T) {
	t.Parallel()
	w := world.New(t)
	m := startMirror(t)
	hs := w.Start(t, "s1", "s2", "s3", "n1")
	s1, s2, s3, n1 := hs[0], hs[1], hs[2], hs[3]
	u := newUser(t)
	dir := t.TempDir()
	inv := writeClusterInventory(t, dir, w.Key, "factory", v1, []string{s1.IP, s2.IP, s3.IP}, nil)
	mirrorFlags := []string{"--download-url", m.DownloadURL, "--channel-url", m.ChannelURL, "--timeout", "90s"}
	u.mustK3sctl(args(mirrorFlags, "apply", "-f", inv)...)
	u.waitNodes("factory", 3)
	if out, err := u.kubectl("--context", "factory", "create", "configmap", "plant", "--from-literal=line=7"); err != nil {
		t.Fatalf("kubectl create configmap: %v\n%s", err, out)
	}
	token := strings.TrimSpace(s1.Exec(t, "cat /var/lib/rancher/k3s/server/token"))

	// An upgrade takes an etcd snapshot on the first server before any
	// host changes, and names it.
	inv = writeClusterInventory(t, dir, w.Key, "factory", v2, []string{s1.IP, s2.IP, s3.IP}, nil)
	up := u.mustK3sctl(args(mirrorFlags, "apply", "-f", inv)...)
	saved := regexp.MustCompile(`snapshot (k3sctl-pre-upgrade-s1-[0-9]+) saved`).FindStringSubmatch(up.stderr)
	if saved == nil {
		t.Fatalf("the upgrade does not name an etcd snapshot:\n%s", up)
	}
	if ls := s1.Exec(t, "k3s etcd-snapshot ls"); !strings.Contains(ls, saved[1]) {
		t.Errorf("k3s etcd-snapshot ls on s1 does not list %s:\n%s", saved[1], ls)
	}
	if i, j := strings.Index(up.stderr, saved[0]), strings.Index(up.stderr, "→ upload k3s"); i < 0 || j < 0 || i > j {
		t.Errorf("the snapshot was not taken before the first upload:\n%s", up.stderr)
	}
	u.waitNodes("factory", 3)

	ps := samplePS(s1, s2, s3, n1)
	root := filepath.Join(dir, "backups")
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	idFile := filepath.Join(dir, "backup.key")
	if err := os.WriteFile(idFile, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b := u.mustK3sctl("backup", "-f", inv, "--cluster", "factory", "--dir", root, "--encrypt-to", id.Recipient().String())
	if !strings.Contains(b.stdout, "(etcd, K3s "+v2) {
		t.Errorf("backup output does not name an etcd backup:\n%s", b)
	}
	if out := s1.Exec(t, "ls /var/lib/rancher/k3s/server/db/snapshots/"); strings.Contains(out, "k3sctl-s1-") || !strings.Contains(out, saved[1]) {
		t.Errorf("the snapshot was left on the server: %s", out)
	}
	backupDir := onlyBackup(t, root, "factory")
	for _, f := range []string{"snapshot.age", "token.age"} {
		raw, err := os.ReadFile(filepath.Join(backupDir, f))
		if err != nil || !strings.HasPrefix(string(raw), "age-encryption.org/v1") || strings.Contains(string(raw), token) {
			t.Errorf("%s: not an age file, or it holds the token (%v)", f, err)
		}
	}

	// s1 is lost; n1 takes its place at a new address.
	s1.Kill(t)
	inv = writeClusterInventory(t, dir, w.Key, "factory", v2, []string{n1.IP, s2.IP, s3.IP}, nil)

	// s2 and s3 still have quorum and answer: refused without --force.
	r := u.k3sctl(args(mirrorFlags, "restore", "-f", inv, "--dir", root, "--identity", idFile)...)
	if r.code != cli.ExitHostsFailed || !strings.Contains(r.stderr, "--force") {
		t.Errorf("restore over a running cluster: want exit %d and a hint to --force:\n%s", cli.ExitHostsFailed, r)
	}

	// Without the identity the encrypted backup is refused, naming its recipient.
	noID := u.k3sctl(args(mirrorFlags, "restore", "-f", inv, "--dir", root, "--force")...)
	if noID.code != cli.ExitError || !strings.Contains(noID.stderr, id.Recipient().String()) {
		t.Errorf("restore of an encrypted backup without --identity: want exit %d naming the recipient:\n%s", cli.ExitError, noID)
	}

	// One byte of the snapshot changed: refused, naming the part.
	damaged := filepath.Join(dir, "damaged", "factory", filepath.Base(backupDir))
	copyDir(t, backupDir, damaged)
	flipByte(t, filepath.Join(damaged, "snapshot.age"))
	bad := u.k3sctl(args(mirrorFlags, "restore", "-f", inv, "--from", damaged, "--force", "--identity", idFile)...)
	if bad.code != cli.ExitError || !strings.Contains(bad.stderr, `part "snapshot" sha256 mismatch`) {
		t.Errorf("restore of a changed backup: want exit %d naming part \"snapshot\":\n%s", cli.ExitError, bad)
	}

	rs := u.mustK3sctl(args(mirrorFlags, "restore", "-f", inv, "--dir", root, "--force", "--identity", idFile, "-o", "json")...)
	ps.finish(t, token)
	for _, res := range []result{up, b, r, noID, bad, rs} {
		if strings.Contains(res.stdout+res.stderr, token) {
			t.Errorf("k3sctl output shows the token:\n%s", res)
		}
	}
	var sawReset bool
	restoreEvents := parseEvents(t, rs.stdout)
	if len(restoreEvents) == 0 || restoreEvents[0].Type != cli.EventRestorePlan {
		t.Errorf("restore -o json: the first line is not a %s event:\n%s", cli.EventRestorePlan, rs.stdout)
	}
	for _, e := range restoreEvents {
		if e.Type == "step_done" && e.Step == "restore data" && e.Host == n1.IP {
			sawReset = true
		}
	}
	if !sawReset {
		t.Errorf("no restore data step on the new first server %s:\n%s", n1.IP, rs.stdout)
	}
	if got := waitConfigMap(t, u, "factory", "plant", "line"); got != "7" {
		t.Errorf("configmap plant line = %q after restore, want 7", got)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		nodes, err := u.nodes("factory")
		ready := 0
		for _, n := range []string{"n1", "s2", "s3"} {
			if nodes[n] != nil && nodes[n][0] == "Ready" {
				ready++
			}
		}
		if err == nil && ready == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after restore: want n1, s2, s3 Ready, have %v (%v)", nodes, err)
		}
		time.Sleep(2 * time.Second)
	}
	if got := strings.TrimSpace(n1.Exec(t, "cat /var/lib/rancher/k3s/server/token")); got != token {
		t.Error("the new first server has another token")
	}
}
