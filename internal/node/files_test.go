package node

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/k3sctl/k3sctl/internal/k3s"
)

// The batch write runs for real through a local shell (as root where the
// tests run): files land with their mode, unchanged ones are left alone,
// and hostile names stay names.
func TestWriteFilesLocally(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the batch write makes root-owned files; run as root")
	}
	dir := t.TempDir()
	odd := filepath.Join(dir, "we'ird $(touch pwned) dir", "-n file\nwith newline")
	files := []File{
		{Path: filepath.Join(dir, "etc", "config.yaml"), Mode: 0o600, Data: []byte("token: s3cret\n")},
		{Path: odd, Mode: 0o644, Data: []byte{0xff, 0x00, 0x01}},
	}
	c := &localConn{}
	changed, err := WriteFiles(context.Background(), c, files, Command("touch", filepath.Join(dir, "after ran")))
	if err != nil {
		t.Fatal(err)
	}
	// Both changed (a path with a newline is reported up to the newline).
	if len(changed) != 2 || changed[0] != files[0].Path || !strings.HasPrefix(odd, changed[1]) {
		t.Errorf("changed %q", changed)
	}
	for _, f := range files {
		data, err := os.ReadFile(f.Path)
		if err != nil || string(data) != string(f.Data) {
			t.Errorf("%s: %q %v", f.Path, data, err)
		}
		if st, _ := os.Stat(f.Path); st == nil || st.Mode().Perm() != f.Mode {
			t.Errorf("%s: mode %v", f.Path, st)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "after ran")); err != nil {
		t.Error("the after command did not run")
	}
	if _, err := os.Stat("pwned"); err == nil {
		t.Error("a path was evaluated by the shell")
	}
	for _, cmd := range c.cmds {
		if strings.Contains(cmd, "s3cret") {
			t.Error("file content in the command line")
		}
	}
	changed, err = WriteFiles(context.Background(), c, files, "")
	if err != nil || len(changed) != 0 {
		t.Errorf("second write: changed %q, %v", changed, err)
	}
	files[0].Mode = 0o640
	changed, err = WriteFiles(context.Background(), c, files, "")
	if err != nil || len(changed) != 1 || changed[0] != files[0].Path {
		t.Errorf("mode change: changed %q, %v", changed, err)
	}
}

func TestScriptsAreValidShell(t *testing.T) {
	script, _, err := writeFilesScript([]File{{Path: "/a b/it's", Mode: 0o600, Data: []byte("x")}}, LinksCommand(), randomTempFor())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{script, LinksCommand(), UninstallCommand(), NodesCommand(),
		Systemd{}.StartCommand("k3s", false), OpenRC{}.StartCommand("k3s", false)} {
		if out, err := exec.Command("/bin/sh", "-n", "-c", s).CombinedOutput(); err != nil {
			t.Errorf("sh -n: %v: %s\n%s", err, out, s)
		}
	}
	for _, l := range k3s.Links() {
		if !strings.Contains(LinksCommand(), Command("ln", "-s", k3s.LinkTarget, l)) {
			t.Errorf("no link for %s", l)
		}
	}
	for _, r := range []k3s.Role{k3s.Agent, k3s.Server} {
		if !strings.Contains(UninstallCommand(), k3s.UninstallPath(r)) {
			t.Errorf("uninstall does not run %s", k3s.UninstallPath(r))
		}
	}
}

func TestUninstall(t *testing.T) {
	c := &scriptedConn{answers: map[string]string{"uninstall": "removed\n"}}
	removed, err := Uninstall(context.Background(), c)
	if err != nil || !removed {
		t.Errorf("removed %v, %v", removed, err)
	}
	c = &scriptedConn{}
	if removed, _ := Uninstall(context.Background(), c); removed {
		t.Error("nothing printed, yet removed")
	}
}

func TestParseNodes(t *testing.T) {
	out := "NAME           STATUS     ROLES                  AGE   VERSION\n" +
		"pi-1           Ready      control-plane,master   5d    v1.31.4+k3s1\n" +
		"pi-2-7a097ee9  NotReady   <none>                 1m    v1.31.4+k3s1\n" +
		"pi-3           Ready,SchedulingDisabled   <none>   1m    v1.31.4+k3s1\n" +
		"garbage\n"
	got := ParseNodes(out)
	want := []NodeStatus{{"pi-1", true, "v1.31.4+k3s1"}, {"pi-2-7a097ee9", false, "v1.31.4+k3s1"}, {"pi-3", true, "v1.31.4+k3s1"}}
	if len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("%+v", got)
	}
	c := &scriptedConn{answers: map[string]string{"kubectl": out}}
	nodes, err := Nodes(context.Background(), c)
	if err != nil || len(nodes) != 3 || c.cmds[0] != "k3s kubectl get nodes" {
		t.Errorf("%+v %v %q", nodes, err, c.cmds)
	}
}

func TestReadToken(t *testing.T) {
	c := &scriptedConn{files: map[string]string{k3s.TokenPath: "K10abc::server:def\n"}}
	tok, err := ReadToken(context.Background(), c)
	if err != nil || tok.Reveal() != "K10abc::server:def" {
		t.Errorf("%v %v", tok, err)
	}
	c.files[k3s.TokenPath] = "\n"
	if _, err := ReadToken(context.Background(), c); err == nil || !strings.Contains(err.Error(), "10.0.0.5") || !strings.Contains(err.Error(), k3s.TokenPath) {
		t.Errorf("empty token: %v", err)
	}
	delete(c.files, k3s.TokenPath)
	if _, err := ReadToken(context.Background(), c); !os.IsNotExist(err) {
		t.Errorf("missing token: %v", err)
	}
}

// runConn is a localConn of a run that names its temporary files.
type runConn struct {
	localConn
	asked []string
}

func (c *runConn) TempFor(target string) string {
	c.asked = append(c.asked, target)
	return filepath.Join(filepath.Dir(target), ".k3sctl-0123456789abcdef-"+filepath.Base(target)+".tmp")
}

// A run's connection names the temporary files; without one each call
// picks its own name, never a fixed one two runs could share.
func TestWriteFilesTempNames(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the batch write makes root-owned files; run as root")
	}
	dir := t.TempDir()
	target := filepath.Join(dir, "config.yaml")
	c := &runConn{}
	if _, err := WriteFiles(context.Background(), c, []File{{Path: target, Mode: 0o600, Data: []byte("a: 1\n")}}, ""); err != nil {
		t.Fatal(err)
	}
	if len(c.asked) != 1 || c.asked[0] != target {
		t.Errorf("TempFor asked for %q", c.asked)
	}
	if !strings.Contains(c.cmds[0], ".k3sctl-0123456789abcdef-config.yaml.tmp") {
		t.Errorf("the run's temporary name is not used:\n%s", c.cmds[0])
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("left behind: %v", entries)
	}
	a, b := randomTempFor()(target), randomTempFor()(target)
	if a == b || filepath.Dir(a) != dir || strings.Contains(a, "k3sctl-new") {
		t.Errorf("random temporary names %q and %q", a, b)
	}
}
