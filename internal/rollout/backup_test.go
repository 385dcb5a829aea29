package rollout

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/k3sctl/k3sctl/internal/apply"
	"github.com/k3sctl/k3sctl/internal/backup"
	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/ssh"
)

const testToken = "K10abc::server:s3cr3t-password"

// fakeServer is one K3s server as backup sees it: it answers the commands
// backup runs and records them.
type fakeServer struct {
	addr      string
	datastore string // etcd, sqlite, none
	active    bool
	apiUp     bool
	snapshot  []byte // content of a saved snapshot
	badSum    bool   // sha256sum reports another sum
	streamErr error  // the download fails halfway
	stopped   bool

	mu   sync.Mutex
	cmds []string
}

type fakeServerConn struct {
	s      *fakeServer
	closed bool
}

func (c *fakeServerConn) Host() string                { return c.s.addr }
func (c *fakeServerConn) SudoPasswordKnown() bool     { return false }
func (c *fakeServerConn) NoteSudo(ssh.SudoMode, bool) {}
func (c *fakeServerConn) Close() error                { c.closed = true; return nil }
func (c *fakeServerConn) WriteFile(context.Context, string, []byte, os.FileMode) (bool, error) {
	return false, errors.New("not expected")
}
func (c *fakeServerConn) Upload(context.Context, string, string, ssh.UploadOptions) (ssh.UploadResult, error) {
	return ssh.UploadResult{}, errors.New("not expected")
}

func (c *fakeServerConn) ReadFile(ctx context.Context, p string) ([]byte, error) {
	switch p {
	case k3s.TokenPath:
		return []byte(testToken + "\n"), nil
	case k3s.NodePasswordPath:
		return []byte("node-pw\n"), nil
	}
	return nil, fs.ErrNotExist
}

func (c *fakeServerConn) Run(ctx context.Context, cmd string, o ssh.RunOptions) (ssh.Result, error) {
	s := c.s
	s.mu.Lock()
	s.cmds = append(s.cmds, cmd)
	s.mu.Unlock()
	ok := func(out string) (ssh.Result, error) { return ssh.Result{Stdout: []byte(out)}, nil }
	switch {
	case strings.HasPrefix(cmd, "sh -c "):
		// Each fake host has its own hostname: pi1 is the backup's node.
		hostname := "pi1"
		if s.addr != "10.0.0.10" {
			hostname = "pi-" + strings.ReplaceAll(s.addr, ".", "-")
		}
		out := "user\troot\nhostname\t" + hostname + "\nmachine\tx86_64\ninit\tsystemd\nsudo\troot\ncgroupmem\t1\n" +
			"k3sversion\tk3s version v1.31.4+k3s1 (abc)\n" +
			"systemd\tId=k3s.service\nsystemd\tLoadState=loaded\n"
		if s.active && !s.stopped {
			out += "systemd\tActiveState=active\n"
		} else {
			out += "systemd\tActiveState=inactive\n"
		}
		return ok(out + "privileged\tdone\n")
	case strings.Contains(cmd, "test -d") && strings.Contains(cmd, "echo etcd"):
		return ok(s.datastore + "\n")
	case strings.Contains(cmd, "kubectl get nodes"):
		if !s.apiUp || s.stopped {
			return ssh.Result{ExitCode: 1}, &ssh.ExitError{Host: s.addr, Cmd: cmd, ExitCode: 1}
		}
		return ok("NAME STATUS ROLES AGE VERSION\npi1 Ready control-plane 1m v1.31.4+k3s1\n")
	case strings.Contains(cmd, "etcd-snapshot save"):
		return ssh.Result{Stderr: []byte(`level=info msg="Snapshot k3sctl-pi1-1700000000 saved."`)}, nil
	case strings.Contains(cmd, "sha256sum"):
		sum := sha256Hex(s.snapshot)
		if s.badSum {
			sum = strings.Repeat("0", 64)
		}
		return ok(sum + "  file\n")
	case strings.HasPrefix(cmd, "cat ") || strings.HasPrefix(cmd, "tar "):
		data := s.snapshot
		if strings.HasPrefix(cmd, "tar ") {
			data = []byte("a tar of server/db")
		}
		if s.streamErr != nil {
			_, _ = o.Stdout.Write(data[:len(data)/2])
			return ssh.Result{}, s.streamErr
		}
		_, err := o.Stdout.Write(data)
		return ssh.Result{}, err
	case strings.HasPrefix(cmd, "systemctl stop"):
		s.stopped = true
		return ok("")
	case strings.Contains(cmd, "systemctl start") || strings.Contains(cmd, "--no-block"):
		s.stopped = false
		return ok("started\n")
	case strings.Contains(cmd, "is-active"):
		if s.stopped {
			return ok("inactive\n")
		}
		return ok("active\n")
	}
	return ok("")
}

func (s *fakeServer) ran(sub string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.cmds {
		if strings.Contains(c, sub) {
			return true
		}
	}
	return false
}

func backupWith(t *testing.T, servers ...*fakeServer) (*BackupResult, string, *apply.Recorder, error) {
	t.Helper()
	root := t.TempDir()
	byAddr := map[string]*fakeServer{}
	var addrs []string
	for _, s := range servers {
		byAddr[s.addr] = s
		addrs = append(addrs, s.addr)
	}
	rec := &apply.Recorder{}
	res, err := Backup(context.Background(), BackupOptions{
		Cluster: "home", Servers: addrs, Root: root, Sink: rec,
		Dial: func(ctx context.Context, addr string) (Conn, error) {
			return &fakeServerConn{s: byAddr[addr]}, nil
		},
	})
	return res, root, rec, err
}

func TestBackupEtcdFromFirstHealthyServer(t *testing.T) {
	down := &fakeServer{addr: "10.0.0.10", datastore: "etcd", active: true, apiUp: false}
	up := &fakeServer{addr: "10.0.0.11", datastore: "etcd", active: true, apiUp: true, snapshot: []byte("etcd snapshot bytes")}
	res, root, _, err := backupWith(t, down, up)
	if err != nil {
		t.Fatal(err)
	}
	if res.Server != up.addr || res.Snapshot != "k3sctl-pi1-1700000000" {
		t.Errorf("backed up from %s, snapshot %q", res.Server, res.Snapshot)
	}
	if down.ran("etcd-snapshot") {
		t.Error("a snapshot was taken on the server whose API does not answer")
	}
	if !up.ran("etcd-snapshot delete k3sctl-pi1-1700000000") {
		t.Error("the snapshot was not deleted on the server after the download")
	}
	b, err := backup.Open(res.Backup.Dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	rc, _ := b.Part(backup.PartSnapshot)
	data, _ := io.ReadAll(rc)
	rc.Close()
	if string(data) != "etcd snapshot bytes" {
		t.Errorf("snapshot part %q", data)
	}
	if tok, _ := b.Token(); tok.Reveal() != testToken {
		t.Error("token part differs")
	}
	if _, ok := b.Manifest().Part(PartNodePassword); !ok {
		t.Error("no node-password part")
	}
	if list, _ := backup.List(root, "home"); len(list) != 1 {
		t.Errorf("%d backups listed", len(list))
	}
}

func TestBackupEtcdChecksumMismatchWritesNothing(t *testing.T) {
	s := &fakeServer{addr: "10.0.0.10", datastore: "etcd", active: true, apiUp: true, snapshot: []byte("etcd snapshot bytes"), badSum: true}
	_, root, _, err := backupWith(t, s)
	if err == nil || !strings.Contains(err.Error(), "sha256 differs") {
		t.Fatalf("err = %v, want a sha256 mismatch", err)
	}
	if list, _ := backup.List(root, "home"); len(list) != 0 {
		t.Errorf("a failed backup is listed: %v", list)
	}
}

func TestBackupSQLiteStartsK3sAgainWhenTheCopyFails(t *testing.T) {
	s := &fakeServer{addr: "10.0.0.10", datastore: "sqlite", active: true, apiUp: true, streamErr: errors.New("connection lost")}
	_, root, rec, err := backupWith(t, s)
	if err == nil || !strings.Contains(err.Error(), "connection lost") {
		t.Fatalf("err = %v, want the copy's failure", err)
	}
	if s.stopped {
		t.Error("k3s was left stopped after a failed copy")
	}
	if list, _ := backup.List(root, "home"); len(list) != 0 {
		t.Errorf("a failed backup is listed: %v", list)
	}
	var steps []string
	for _, e := range rec.Events() {
		if e.Type == apply.EventStepDone || e.Type == apply.EventStepFailed {
			steps = append(steps, fmt.Sprintf("%s %s", e.Type, e.Step))
		}
	}
	want := "step_done stop k3s,step_failed download backup,step_done start k3s,step_done wait for ready"
	if strings.Join(steps, ",") != want {
		t.Errorf("steps %q, want %q", strings.Join(steps, ","), want)
	}
}

func TestBackupRefusesExternalDatastoreAndNoServer(t *testing.T) {
	ext := &fakeServer{addr: "10.0.0.10", datastore: "external", active: true, apiUp: true}
	if _, _, _, err := backupWith(t, ext); err == nil || !strings.Contains(err.Error(), "external") {
		t.Errorf("external datastore: err = %v", err)
	}
	stopped := &fakeServer{addr: "10.0.0.10", datastore: "sqlite", active: false}
	if _, _, _, err := backupWith(t, stopped); err == nil || !strings.Contains(err.Error(), "no healthy server") {
		t.Errorf("no server runs: err = %v", err)
	}
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
