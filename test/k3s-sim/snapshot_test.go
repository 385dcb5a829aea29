package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestEtcdSnapshotAndClusterReset: a snapshot taken through the running
// server restores the datastore with --cluster-reset, on the same host or a
// fresh one, only with the cluster's token.
func TestEtcdSnapshotAndClusterReset(t *testing.T) {
	t.Parallel()
	l := newLo(t)
	root := t.TempDir()
	args := l.serverArgs(1, "--cluster-init", "--token", "snapsecret")
	s := startSim(t, simOpt{root: root, hostname: "a", notify: true}, args...)
	s.waitReady(30 * time.Second)
	k := realKubectl(t, filepath.Join(root, kubeconfigPathK3s))
	k.run("create", "configmap", "keep", "--from-literal=v=1")

	_, errOut, code := runSim(t, root, "", "etcd-snapshot", "save", "--name", "backup", "--server", l.url(1))
	m := regexp.MustCompile(`msg="Snapshot (backup-a-\d{10}) saved."`).FindStringSubmatch(errOut)
	if code != 0 || m == nil {
		t.Fatalf("snapshot save: %d\n%s", code, errOut)
	}
	snapRel := "/var/lib/rancher/k3s/server/db/snapshots/" + m[1]
	if info, err := os.Stat(filepath.Join(root, snapRel)); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("snapshot file: %v %v", err, info)
	}
	s.waitLog("Saving etcd snapshot to "+snapRel, 5*time.Second)
	if out, _, _ := runSim(t, root, "", "etcd-snapshot", "ls"); !strings.Contains(out, m[1]) || !strings.Contains(out, "file://"+snapRel) {
		t.Errorf("etcd-snapshot ls:\n%s", out)
	}
	_, errOut, code = runSim(t, root, "", "etcd-snapshot", "save", "--server", l.url(1))
	if code != 0 || !regexp.MustCompile(`Snapshot on-demand-a-\d{10} saved.`).MatchString(errOut) {
		t.Errorf("snapshot save without --name: %d\n%s", code, errOut)
	}

	k.run("create", "configmap", "later", "--from-literal=v=2")
	k.run("delete", "configmap", "keep")
	s.stop()

	// Another token: refused.
	_, errOut, code = runSim(t, root, "", append(args, "--cluster-reset", "--cluster-reset-restore-path="+snapRel, "--token", "wrongsecret")...)
	if code != 1 || !strings.Contains(errOut, `level=fatal msg="starting kubernetes: preparing server: bootstrap data already found and encrypted with different token"`) {
		t.Errorf("restore with another token: %d\n%s", code, errOut)
	}
	_, errOut, code = runSim(t, root, "", append(args, "--cluster-reset", "--cluster-reset-restore-path="+snapRel)...)
	if code != 0 || !strings.Contains(errOut, "Managed etcd cluster membership has been reset, restart without --cluster-reset flag now.") {
		t.Fatalf("restore: %d\n%s", code, errOut)
	}
	s2 := startSim(t, simOpt{root: root, hostname: "a", notify: true}, args...)
	s2.waitReady(30 * time.Second)
	if out := k.run("get", "configmap", "keep", "-o", "jsonpath={.data.v}"); out != "1" {
		t.Errorf("restored configmap: %q", out)
	}
	if out, err := k.try("get", "configmap", "later"); err == nil {
		t.Errorf("configmap made after the snapshot survived the restore: %s", out)
	}
	s2.stop()

	// A fresh host: only the snapshot file and the token.
	fresh := t.TempDir()
	dst := filepath.Join(fresh, "tmp", "backup")
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(root, snapRel))
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = runSim(t, fresh, "", append(l.serverArgs(2, "--cluster-init"), "--cluster-reset", "--cluster-reset-restore-path=/tmp/backup")...)
	if code != 1 || !strings.Contains(errOut, "bootstrap data already found and encrypted with different token") {
		t.Errorf("restore on a fresh host without the token: %d\n%s", code, errOut)
	}
	_, errOut, code = runSim(t, fresh, "", append(l.serverArgs(2, "--cluster-init", "--token", "snapsecret"), "--cluster-reset", "--cluster-reset-restore-path=/tmp/backup")...)
	if code != 0 {
		t.Fatalf("restore on a fresh host: %d\n%s", code, errOut)
	}
	if a, b := readFile(t, root, caPath), readFile(t, fresh, caPath); a != b {
		t.Error("restored host has another cluster CA")
	}
	s3 := startSim(t, simOpt{root: fresh, hostname: "a2", notify: true}, l.serverArgs(2, "--token", "snapsecret")...)
	s3.waitReady(30 * time.Second)
	k3 := realKubectl(t, filepath.Join(fresh, kubeconfigPathK3s))
	if out := k3.run("get", "configmap", "keep", "-o", "jsonpath={.data.v}"); out != "1" {
		t.Errorf("configmap on the fresh host: %q", out)
	}
}

func readFile(t *testing.T, root, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSnapshotOnSQLite: without embedded etcd the server refuses.
func TestSnapshotOnSQLite(t *testing.T) {
	t.Parallel()
	l := newLo(t)
	root := t.TempDir()
	s := startSim(t, simOpt{root: root, hostname: "lite", notify: true}, l.serverArgs(1)...)
	s.waitReady(30 * time.Second)
	_, errOut, code := runSim(t, root, "", "etcd-snapshot", "save", "--server", l.url(1))
	if code != 1 || !strings.Contains(errOut, `level=fatal msg="see server log for details: etcd datastore disabled"`) {
		t.Errorf("snapshot on sqlite: %d\n%s", code, errOut)
	}
	s.waitLog("etcd datastore disabled", 5*time.Second)

	// A SQLite backup is server/db and server/token, copied while stopped.
	k := realKubectl(t, filepath.Join(root, kubeconfigPathK3s))
	k.run("create", "configmap", "lite", "--from-literal=v=3")
	s.stop()
	fresh := t.TempDir()
	for _, rel := range []string{"/var/lib/rancher/k3s/server/db/state.db", "/var/lib/rancher/k3s/server/token"} {
		dst := filepath.Join(fresh, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, []byte(readFile(t, root, rel)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s2 := startSim(t, simOpt{root: fresh, hostname: "lite", notify: true}, l.serverArgs(1)...)
	s2.waitReady(30 * time.Second)
	if readFile(t, fresh, caPath) != readFile(t, root, caPath) || readFile(t, fresh, tokenPath) != readFile(t, root, tokenPath) {
		t.Error("restored SQLite server has another CA or token")
	}
	k2 := realKubectl(t, filepath.Join(fresh, kubeconfigPathK3s))
	if out := k2.run("get", "configmap", "lite", "-o", "jsonpath={.data.v}"); out != "3" {
		t.Errorf("configmap after SQLite restore: %q", out)
	}
	_, errOut, code = runSim(t, t.TempDir(), "", "etcd-snapshot", "save")
	if code != 1 || !strings.Contains(errOut, "open /var/lib/rancher/k3s/server/token: no such file or directory") {
		t.Errorf("snapshot without a server: %d\n%s", code, errOut)
	}
}
