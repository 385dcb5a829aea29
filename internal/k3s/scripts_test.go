package k3s

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestScriptsGolden(t *testing.T) {
	golden(t, "k3s-killall.sh", KillallScript())
	golden(t, "k3s-uninstall.sh", UninstallScript(Server))
	golden(t, "k3s-agent-uninstall.sh", UninstallScript(Agent))
}

func TestScriptsParse(t *testing.T) {
	scripts := map[string][]byte{
		"k3s-killall.sh":         KillallScript(),
		"k3s-uninstall.sh":       UninstallScript(Server),
		"k3s-agent-uninstall.sh": UninstallScript(Agent),
		"openrc-k3s":             OpenRCScript(Server),
		"openrc-k3s-agent":       OpenRCScript(Agent),
	}
	dir := t.TempDir()
	shellcheck, _ := exec.LookPath("shellcheck")
	if shellcheck == "" && os.Getenv("CI") != "" {
		t.Log("shellcheck not installed; only sh -n is checked")
	}
	for name, b := range scripts {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o755); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("sh", "-n", p).CombinedOutput(); err != nil {
			t.Errorf("sh -n %s: %v\n%s", name, err, out)
		}
		if shellcheck != "" && !strings.HasPrefix(name, "openrc") {
			if out, err := exec.Command(shellcheck, "-s", "sh", p).CombinedOutput(); err != nil {
				t.Errorf("shellcheck %s: %v\n%s", name, err, out)
			}
		}
	}
}

// scratchNode lays out a fake node under a temporary directory, with
// stand-ins for the commands that would change the machine running the
// test. The scripts run for real against it.
type scratchNode struct {
	t      *testing.T
	root   string
	layout scriptLayout
	stubs  string // stand-in commands, first in PATH
	tools  string // the real commands the scripts may use
	log    string // what the stand-ins were asked to do
}

func newScratchNode(t *testing.T) *scratchNode {
	if runtime.GOOS != "linux" {
		t.Skip("the scripts read /proc")
	}
	root := t.TempDir()
	n := &scratchNode{t: t, root: root, stubs: filepath.Join(root, "stubs"), tools: filepath.Join(root, "tools"), log: filepath.Join(root, "calls.log")}
	n.layout = scriptLayout{
		BinDir:        root + "/usr/local/bin",
		DataDir:       root + "/var/lib/rancher/k3s",
		ConfigDir:     root + "/etc/rancher/k3s",
		UnitDir:       root + "/etc/systemd/system",
		InitDir:       root + "/etc/init.d",
		KubeletDir:    root + "/var/lib/kubelet",
		RunDir:        root + "/run/k3s",
		FlannelRunDir: root + "/run/flannel",
		CNIDir:        root + "/var/lib/cni",
		NetnsDir:      root + "/run/netns",
		NodeDir:       root + "/etc/rancher/node",
	}
	// Only these real commands are reachable, so a missing stand-in fails
	// the test instead of touching the host.
	for _, tool := range []string{"sh", "ls", "rm", "readlink", "sort", "grep", "umount", "cat", "sleep"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Skipf("%s not installed", tool)
		}
		n.link(p, filepath.Join(n.tools, tool))
	}
	n.stub("id", `echo 0`)
	n.stub("systemctl", `echo "systemctl $*" >>`+n.log)
	return n
}

func (n *scratchNode) link(target, path string) {
	n.t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		n.t.Fatal(err)
	}
	if err := os.Symlink(target, path); err != nil {
		n.t.Fatal(err)
	}
}

func (n *scratchNode) stub(name, body string) {
	n.write(filepath.Join(n.stubs, name), "#!/bin/sh\n"+body+"\n", 0o755)
}

func (n *scratchNode) write(path, content string, mode fs.FileMode) {
	n.t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		n.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		n.t.Fatal(err)
	}
}

// install puts what an install of role leaves.
func (n *scratchNode) install(r Role) {
	l := n.layout
	n.write(l.BinDir+"/k3s", "binary", 0o755)
	n.write(l.BinDir+"/k3s-killall.sh", string(l.render(killallTemplate, Server)), 0o755)
	n.write(l.BinDir+"/"+filepath.Base(UninstallPath(r)), string(l.render(uninstallTemplate, r)), 0o755)
	n.write(l.UnitDir+"/"+ServiceName(r)+".service", string(SystemdUnit(r)), 0o644)
	n.write(l.UnitDir+"/"+ServiceName(r)+".service.env", "K3S_X=1\n", 0o600)
	n.write(l.ConfigDir+"/config.yaml", "token: x\n", 0o600)
	n.write(l.DataDir+"/server/token", "x", 0o600)
	n.write(l.KubeletDir+"/pods/uid/data", "x", 0o644)
	n.write(l.RunDir+"/containerd/state", "x", 0o644)
	n.write(l.FlannelRunDir+"/subnet.env", "x", 0o644)
	n.write(l.CNIDir+"/networks/cbr0/10.42.0.5", "x", 0o644)
	n.write(l.NodeDir+"/password", "0123456789abcdef0123456789abcdef", 0o600)
}

func (n *scratchNode) run(script string) (string, error) {
	cmd := exec.Command(n.tools+"/sh", script)
	cmd.Env = []string{"PATH=" + n.stubs + ":" + n.tools, "LC_ALL=C"}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (n *scratchNode) calls() string {
	b, _ := os.ReadFile(n.log)
	return string(b)
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func TestUninstallScriptRemovesInstall(t *testing.T) {
	n := newScratchNode(t)
	l := n.layout
	n.install(Server)
	// The fixed set of stand-ins the killall script may call; the real ones
	// would change this machine's network.
	n.stub("ip", `echo "ip $*" >>`+n.log+`; [ "$2" = show ] && [ "$3" = cni0 ]`)
	rules := "*filter\n:INPUT ACCEPT [0:0]\n:KUBE-FIREWALL - [0:0]\n-A INPUT -j KUBE-FIREWALL\n-A FORWARD -s 10.42.0.0/16 -m comment --comment \"flanneld forward\" -j ACCEPT\n-A CNI-FORWARD -j ACCEPT\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n"
	n.write(n.root+"/rules", rules, 0o644)
	for _, fam := range []string{"iptables", "ip6tables"} {
		n.stub(fam+"-save", "cat "+n.root+"/rules")
		n.stub(fam+"-restore", "cat >"+n.root+"/"+fam+".restored")
	}
	n.link("k3s", l.BinDir+"/kubectl")                // the installer's relative link
	n.link(l.BinDir+"/k3s", l.BinDir+"/crictl")       // an absolute one
	n.write(l.BinDir+"/ctr", "the user's own", 0o755) // not ours
	n.link("/usr/bin/true", n.root+"/other-link")
	n.write(n.root+"/keep-me", "x", 0o644)

	out, err := n.run(l.BinDir + "/k3s-uninstall.sh")
	if err != nil {
		t.Fatalf("uninstall failed: %v\n%s", err, out)
	}
	for _, gone := range []string{
		l.BinDir + "/k3s", l.BinDir + "/k3s-killall.sh", l.BinDir + "/k3s-uninstall.sh",
		l.BinDir + "/kubectl", l.BinDir + "/crictl",
		l.UnitDir + "/k3s.service", l.UnitDir + "/k3s.service.env",
		l.ConfigDir, l.DataDir, l.KubeletDir, l.RunDir, l.FlannelRunDir, l.CNIDir,
	} {
		if exists(gone) {
			t.Errorf("%s is still there", strings.TrimPrefix(gone, n.root))
		}
	}
	for _, kept := range []string{l.NodeDir + "/password", l.BinDir + "/ctr", n.root + "/keep-me"} {
		if !exists(kept) {
			t.Errorf("%s was removed", strings.TrimPrefix(kept, n.root))
		}
	}
	calls := n.calls()
	for _, want := range []string{"systemctl stop k3s.service", "systemctl disable k3s", "systemctl daemon-reload", "systemctl reset-failed k3s", "ip link delete cni0"} {
		if !strings.Contains(calls, want+"\n") {
			t.Errorf("no %q in calls:\n%s", want, calls)
		}
	}
	if strings.Contains(calls, "ip link delete flannel.1") {
		t.Error("deleted an interface that does not exist")
	}
	for _, fam := range []string{"iptables", "ip6tables"} {
		restored, err := os.ReadFile(n.root + "/" + fam + ".restored")
		if err != nil {
			t.Fatalf("%s rules were not restored: %v", fam, err)
		}
		want := "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n"
		if string(restored) != want {
			t.Errorf("%s rules after cleanup:\n%s\nwant\n%s", fam, restored, want)
		}
	}
	// A second run on a clean node is harmless.
	n.install(Server)
	if out, err := n.run(l.BinDir + "/k3s-uninstall.sh"); err != nil {
		t.Fatalf("second uninstall: %v\n%s", err, out)
	}
}

func TestKillallWithoutNetworkTools(t *testing.T) {
	n := newScratchNode(t)
	l := n.layout
	n.install(Agent)
	// As on an OpenRC node.
	n.write(l.InitDir+"/k3s-agent", "#!/bin/sh\necho \"init.d/k3s-agent $*\" >>"+n.log+"\n", 0o755)
	out, err := n.run(l.BinDir + "/k3s-killall.sh")
	if err != nil {
		t.Fatalf("killall failed without ip and iptables: %v\n%s", err, out)
	}
	if exists(l.RunDir) || exists(l.CNIDir) {
		t.Error("killall left /run/k3s or /var/lib/cni")
	}
	if !exists(l.DataDir+"/server/token") || !exists(l.BinDir+"/k3s") {
		t.Error("killall removed what only uninstall should")
	}
	for _, want := range []string{"systemctl stop k3s-agent.service\n", "init.d/k3s-agent stop\n"} {
		if !strings.Contains(n.calls(), want) {
			t.Errorf("agent not stopped (no %q):\n%s", want, n.calls())
		}
	}
}

func TestAgentUninstallLeavesServer(t *testing.T) {
	n := newScratchNode(t)
	l := n.layout
	n.install(Server)
	n.install(Agent)
	out, err := n.run(l.BinDir + "/k3s-agent-uninstall.sh")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, "Additional k3s services installed, skipping uninstall of k3s") {
		t.Errorf("output:\n%s", out)
	}
	if exists(l.UnitDir+"/k3s-agent.service") || exists(l.BinDir+"/k3s-agent-uninstall.sh") {
		t.Error("the agent's own files stayed")
	}
	for _, kept := range []string{l.BinDir + "/k3s", l.UnitDir + "/k3s.service", l.DataDir, l.ConfigDir, l.BinDir + "/k3s-uninstall.sh"} {
		if !exists(kept) {
			t.Errorf("%s removed though the server still needs it", strings.TrimPrefix(kept, n.root))
		}
	}
}

func TestScriptsBecomeRoot(t *testing.T) {
	n := newScratchNode(t)
	n.stub("id", "echo 1000")
	n.stub("sudo", `echo "sudo $*" >>`+n.log)
	n.install(Server)
	script := n.layout.BinDir + "/k3s-uninstall.sh"
	if out, err := n.run(script); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if got := n.calls(); got != "sudo "+script+"\n" {
		t.Errorf("calls = %q, want the script re-run through sudo and nothing else", got)
	}
	if !exists(n.layout.BinDir + "/k3s") {
		t.Error("removed files without being root")
	}
	os.Remove(n.stubs + "/sudo")
	out, err := n.run(script)
	if err == nil || !strings.Contains(out, "must run as root") {
		t.Errorf("without sudo: %v\n%s", err, out)
	}
}

func TestKillallKillsShimsAndContainers(t *testing.T) {
	n := newScratchNode(t)
	l := n.layout
	n.install(Server)
	// A fake shim: a shell run from the data dir's bin, with two children
	// standing in for containers.
	shim := l.DataDir + "/data/0123abcd/bin/containerd-shim-runc-v2"
	shPath, _ := filepath.EvalSymlinks(n.tools + "/sh")
	b, err := os.ReadFile(shPath)
	if err != nil {
		t.Fatal(err)
	}
	n.write(shim, string(b), 0o755)
	cmd := exec.Command(shim, "-c", "sleep 300 & sleep 300 & wait")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	var children []int
	for deadline := time.Now().Add(5 * time.Second); len(children) < 2 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		children = childrenOf(cmd.Process.Pid)
	}
	if len(children) < 2 {
		t.Fatalf("fake shim has children %v", children)
	}
	// An unrelated process running the same binary elsewhere survives.
	bystander := exec.Command("sleep", "300")
	if err := bystander.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bystander.Process.Kill(); bystander.Wait() })

	if out, err := n.run(l.BinDir + "/k3s-killall.sh"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the shim survived killall")
	}
	for _, pid := range children {
		if alive(pid) {
			t.Errorf("container process %d survived its shim", pid)
		}
	}
	if !alive(bystander.Process.Pid) {
		t.Error("killall killed a process that is not K3s's")
	}
}

func childrenOf(pid int) []int {
	var out []int
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, s := range stats {
		b, err := os.ReadFile(s)
		if err != nil {
			continue
		}
		line := string(b)
		f := strings.Fields(line[strings.LastIndex(line, ")")+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			p, _ := strconv.Atoi(filepath.Base(filepath.Dir(s)))
			out = append(out, p)
		}
	}
	return out
}

// alive reports whether pid runs; a zombie waiting for a parent that does
// not reap it counts as dead.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	line := string(b)
	f := strings.Fields(line[strings.LastIndex(line, ")")+1:])
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

func TestKillallUnmounts(t *testing.T) {
	n := newScratchNode(t)
	l := n.layout
	n.install(Server)
	mounts := []string{l.RunDir + "/containerd/io.containerd.runtime.v2.task/k8s.io/abc/rootfs", l.KubeletDir + "/pods/uid/volumes/kubernetes.io~empty-dir/cache"}
	for _, m := range mounts {
		if err := os.MkdirAll(m, 0o755); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("mount", "-t", "tmpfs", "tmpfs", m).CombinedOutput(); err != nil {
			t.Skipf("cannot mount here (%v: %s)", err, out)
		}
		t.Cleanup(func() { exec.Command("umount", "-l", m).Run() })
	}
	// Something mounted elsewhere in the kubelet dir is not K3s's to touch.
	other := l.KubeletDir + "/other"
	os.MkdirAll(other, 0o755)
	if err := exec.Command("mount", "-t", "tmpfs", "tmpfs", other).Run(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", other).Run() })
	n.write(other+"/precious", "x", 0o644)

	if out, err := n.run(l.BinDir + "/k3s-killall.sh"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	b, _ := os.ReadFile("/proc/self/mounts")
	for _, m := range mounts {
		if strings.Contains(string(b), " "+m+" ") {
			t.Errorf("%s is still mounted", m)
		}
		if exists(m) {
			t.Errorf("mount point %s not removed", m)
		}
	}
	// Uninstall must not delete through the mount that stays.
	out, err := n.run(l.BinDir + "/k3s-uninstall.sh")
	if err == nil || !strings.Contains(out, "still mounted") {
		t.Errorf("uninstall with a foreign mount under the kubelet dir: %v\n%s", err, out)
	}
	if !exists(other + "/precious") {
		t.Error("uninstall deleted files on a mounted file system")
	}
	if exists(l.BinDir + "/k3s") {
		t.Error("the rest of the uninstall did not happen")
	}
}

func TestScriptsUseNodePaths(t *testing.T) {
	k := string(KillallScript())
	u := string(UninstallScript(Server))
	a := string(UninstallScript(Agent))
	for _, want := range []string{"/run/k3s", "/var/lib/kubelet/pods", "/var/lib/kubelet/plugins", "/run/netns'/cni-*'", "cni0 flannel.1 flannel-v6.1 kube-ipvs0 flannel-wg flannel-wg-v6", "/var/lib/cni", "data_dir=/var/lib/rancher/k3s", "PATH=\"$PATH:/usr/local/sbin:/usr/sbin:/sbin\""} {
		if !strings.Contains(k, want) {
			t.Errorf("killall lacks %q", want)
		}
	}
	for _, want := range []string{"systemctl disable k3s ", "rm -f /etc/systemd/system/k3s.service /etc/systemd/system/k3s.service.env /etc/init.d/k3s /usr/local/bin/k3s-uninstall.sh", "/var/lib/rancher/k3s /var/lib/kubelet"} {
		if !strings.Contains(u, want) {
			t.Errorf("uninstall lacks %q", want)
		}
	}
	if !strings.Contains(a, "rc-update delete k3s-agent default") || !strings.Contains(a, "/usr/local/bin/k3s-agent-uninstall.sh") {
		t.Error("agent uninstall does not act on k3s-agent")
	}
	for name, s := range map[string]string{"killall": k, "uninstall": u, "agent-uninstall": a} {
		for _, line := range strings.Split(s, "\n") {
			if strings.Contains(line, "rm ") && (strings.Contains(line, "/etc/rancher/node") || strings.Contains(line, "/etc/rancher ")) {
				t.Errorf("%s removes the node password: %s", name, line)
			}
		}
	}
}
