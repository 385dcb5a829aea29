package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/k3sctl/k3sctl/internal/ssh"
)

const systemdOutput = "user\tpi\nhostname\tpi-kitchen\nmachineid\t0123456789abcdef0123456789abcdef\nmachine\taarch64\nkernel\t6.6.31+rpt-rpi-v8\n" +
	"os\tPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nos\tID=debian\nos\tVERSION_ID=\"12\"\n" +
	"init\tsystemd\nk3sversion\tk3s version v1.31.4+k3s1 (94e29e2e)\nmemtotal\t3885740\n" +
	"diskpath\t/var/lib\ndiskfree\t25000000\ncgroupmem\t0\n" +
	"route\t1.1.1.1 via 192.168.1.1 dev eth0 src 192.168.1.50 uid 1000\n" +
	"addr\t2: eth0    inet 192.168.1.50/24 brd 192.168.1.255 scope global eth0\n" +
	"ifaddr\t2: eth0    inet 192.168.1.50/24 brd 192.168.1.255 scope global eth0\\       valid_lft forever preferred_lft forever\n" +
	"ifaddr\t3: wlan0@if9    inet 10.9.0.7/16 brd 10.9.255.255 scope global dynamic wlan0\\       valid_lft 86000sec\n" +
	"ifaddr\t2: eth0    inet6 fd00::50/64 scope global\\       valid_lft forever\n" +
	"sshconn\t192.168.1.9 50122 192.168.1.50 22\nsshclient\t1\n" +
	"sudo\tnopasswd\nk3ssha\tabc123\ntoken\t1\n" +
	"systemd\tId=k3s.service\nsystemd\tLoadState=loaded\nsystemd\tActiveState=active\nsystemd\t\n" +
	"systemd\tId=k3s-agent.service\nsystemd\tLoadState=not-found\nsystemd\tActiveState=inactive\n" +
	"hash.0\tdeadbeef\nhash.0.stat\t120 600\nprivileged\tdone\n"

func TestParseFactsSystemdPi(t *testing.T) {
	f, _ := parseFacts(systemdOutput, FactsOptions{HashFiles: []string{"/etc/rancher/k3s/config.yaml", "/missing"}})
	want := Facts{
		Hostname: "pi-kitchen", MachineID: "0123456789abcdef0123456789abcdef", OS: OSRelease{ID: "debian", VersionID: "12", PrettyName: "Debian GNU/Linux 12 (bookworm)"},
		Machine: "aarch64", Arch: "arm64", Kernel: "6.6.31+rpt-rpi-v8", InitSystem: "systemd", Sudo: ssh.SudoNoPassword,
		User: "pi", K3sVersion: "v1.31.4+k3s1", K3sBinarySHA256: "abc123",
		Services:          Services{K3s: ServiceState{Installed: true, Active: true, State: "active"}, K3sAgent: ServiceState{State: "inactive"}},
		ServerTokenExists: true, MemTotalBytes: 3885740 * 1024, DiskFreeBytes: 25000000 * 1024, DiskFreePath: "/var/lib",
		MemoryCgroup: false, PrimaryIP: "192.168.1.50", Privileged: true,
		Interfaces: []Interface{
			{Name: "eth0", Addresses: []string{"192.168.1.50/24", "fd00::50/64"}},
			{Name: "wlan0", Addresses: []string{"10.9.0.7/16"}},
		},
		DefaultInterface: "eth0",
		SSHServerAddress: "192.168.1.50", SSHServerPort: 22, SSHClient: true,
		FileHashes: map[string]string{"/etc/rancher/k3s/config.yaml": "deadbeef", "/missing": ""},
		FileStats:  map[string]FileStat{"/etc/rancher/k3s/config.yaml": {Size: 120, Mode: 0o600}},
	}
	if !reflect.DeepEqual(*f, want) {
		t.Errorf("\n got %+v\nwant %+v", *f, want)
	}
	hints := strings.Join(f.Hints(), "\n")
	if !strings.Contains(hints, "cgroup_memory=1 cgroup_enable=memory") || !strings.Contains(hints, "/boot/firmware/cmdline.txt") {
		t.Errorf("hints: %s", hints)
	}
}

func TestParseFactsOpenRCCgroupV2AndOddArch(t *testing.T) {
	out := "machine\triscv64\ninit\topenrc\nsvc.k3s-agent.installed\t1\ncgroup2\tcpuset cpu io memory pids\n" +
		"addr\t2: eth0    inet 10.0.0.9/24 scope global eth0\nsudo\troot\nprivileged\tdone\n"
	f, _ := parseFacts(out, FactsOptions{})
	if f.Arch != "" || !strings.Contains(f.ArchError, "riscv64") {
		t.Errorf("arch %q, error %q", f.Arch, f.ArchError)
	}
	if !f.MemoryCgroup || f.PrimaryIP != "10.0.0.9" || !f.Services.K3sAgent.Installed || f.Services.K3sAgent.Active || f.Services.K3s.Installed {
		t.Errorf("%+v", f)
	}
	if f.K3sVersion != "" {
		t.Errorf("k3s version %q without a binary", f.K3sVersion)
	}
}

func TestFactsScriptsAreValidShell(t *testing.T) {
	for _, sh := range []string{"/bin/sh", "dash", "bash", "busybox"} {
		path, err := exec.LookPath(sh)
		if err != nil {
			continue
		}
		args := []string{"-n", "-c"}
		if sh == "busybox" {
			args = []string{"sh", "-n", "-c"}
		}
		for _, s := range []string{factsScript(FactsOptions{HashFiles: []string{"/a b", "it's"}, ReadFiles: []string{"/r x"}}), factsPrivilegedScript(FactsOptions{})} {
			if out, err := exec.Command(path, append(args, s)...).CombinedOutput(); err != nil {
				t.Errorf("%s -n: %v: %s\n%s", sh, err, out, s)
			}
		}
	}
}

// On this machine the facts script runs for real through a local shell: a
// smoke test of the one-round-trip contract.
func TestFactsOneRoundTrip(t *testing.T) {
	c := &localConn{}
	dir := t.TempDir()
	delivered := filepath.Join(dir, "app file.yaml")
	if err := os.WriteFile(delivered, []byte("kind: Namespace\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	record := filepath.Join(dir, "files.json")
	recordText := "{\"version\":1,\n \"files\":[]}" // no newline at the end
	if err := os.WriteFile(record, []byte(recordText), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := GatherFacts(context.Background(), c, FactsOptions{
		HashFiles: []string{"/etc/hostname", "/nonexistent", delivered},
		ReadFiles: []string{record, filepath.Join(dir, "none.json")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.runs != 1 {
		t.Errorf("%d commands, want 1", c.runs)
	}
	if f.Host != "local" || f.Hostname == "" || f.Machine == "" || f.User == "" || f.MemTotalBytes == 0 || f.DiskFreePath == "" {
		t.Errorf("%+v", f)
	}
	if !f.Privileged {
		t.Errorf("not privileged as root: %+v", f)
	}
	if id, err := os.ReadFile("/etc/machine-id"); err == nil && f.MachineID != strings.TrimSpace(string(id)) {
		t.Errorf("machine-id %q, /etc/machine-id has %q", f.MachineID, id)
	}
	if c.noted != f.Sudo {
		t.Errorf("sudo mode noted %q, facts say %q", c.noted, f.Sudo)
	}
	if f.FileHashes["/nonexistent"] != "" || len(f.FileHashes) != 3 {
		t.Errorf("hashes %v", f.FileHashes)
	}
	// sha256 of "kind: Namespace\n"
	if got := f.FileHashes[delivered]; got != sha256Hex("kind: Namespace\n") {
		t.Errorf("hash of %s: %q", delivered, got)
	}
	if st, ok := f.FileStats[delivered]; !ok || st.Size != 16 || st.Mode != 0o640 {
		t.Errorf("stat of %s: %+v %v", delivered, st, ok)
	}
	if _, ok := f.FileStats["/nonexistent"]; ok {
		t.Errorf("a missing file has a stat: %v", f.FileStats)
	}
	if got := f.FileContents[record]; got != recordText+"\n" {
		t.Errorf("content of %s: %q", record, got)
	}
	if _, ok := f.FileContents[filepath.Join(dir, "none.json")]; ok {
		t.Errorf("a missing file has content: %v", f.FileContents)
	}
}

// sudoConn answers the facts script as a password-sudo user would.
type sudoConn struct {
	scriptedConn
	known    bool
	runs     []ssh.RunOptions
	noted    ssh.SudoMode
	accepted bool
}

func (c *sudoConn) SudoPasswordKnown() bool { return c.known }

func (c *sudoConn) NoteSudo(m ssh.SudoMode, ok bool) { c.noted, c.accepted = m, ok }

func (c *sudoConn) Run(ctx context.Context, cmd string, o ssh.RunOptions) (ssh.Result, error) {
	c.runs = append(c.runs, o)
	c.cmds = append(c.cmds, cmd)
	if o.Sudo { // the root-only part alone, after sudo asked
		return ssh.Result{Stdout: []byte("k3ssha\tabc\ntoken\t1\nprivileged\tdone\n")}, nil
	}
	if strings.HasSuffix(cmd, " pw") {
		return ssh.Result{Stdout: []byte("user\tops\nsudo\tpassword\nk3ssha\tabc\nprivileged\tdone\n")}, nil
	}
	return ssh.Result{Stdout: []byte("user\tops\nsudo\tpassword\nprivileged\tneeds-password\n")}, nil
}

func TestGatherFactsWithPasswordSudo(t *testing.T) {
	// Password not known: a second round trip through Sudo, which asks.
	c := &sudoConn{}
	f, err := GatherFacts(context.Background(), c, FactsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.runs) != 2 || c.runs[0].PasswordFirst || !c.runs[1].Sudo {
		t.Errorf("runs %+v", c.runs)
	}
	if !f.Privileged || !f.ServerTokenExists || f.K3sBinarySHA256 != "abc" || f.Sudo != ssh.SudoWithPassword {
		t.Errorf("%+v", f)
	}
	if c.noted != ssh.SudoWithPassword || c.accepted {
		t.Errorf("noted %q accepted %v", c.noted, c.accepted)
	}

	// Password known: one round trip, the password first on stdin.
	c = &sudoConn{known: true}
	f, err = GatherFacts(context.Background(), c, FactsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.runs) != 1 || !c.runs[0].PasswordFirst || !f.Privileged || !c.accepted {
		t.Errorf("runs %+v, facts %+v, accepted %v", c.runs, f, c.accepted)
	}
	for _, cmd := range c.cmds {
		if !strings.HasPrefix(cmd, "sh -c ") {
			t.Errorf("facts command %q", cmd)
		}
	}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// The facts name the temporary files an interrupted run left, in the
// directories asked about only (not below), and no other file.
func TestFactsFindStaleTemporaryFiles(t *testing.T) {
	a, b := t.TempDir(), filepath.Join(t.TempDir(), "with space")
	stale := []string{
		filepath.Join(a, ".k3s.k3sctl-0a1b2c3d4e5f"),
		filepath.Join(a, ".k3sctl-0a1b2c-k3s.tmp"),
		filepath.Join(b, "config.yaml.k3sctl-new"),
		filepath.Join(b, "k3sctl-upload-0a1b2c3d4e5f"),
	}
	keep := []string{
		filepath.Join(a, "k3s"),
		filepath.Join(a, ".k3sctl-lock"),
		filepath.Join(b, "k3sctl.yaml"),
		filepath.Join(a, "sub", ".k3sctl-1-x.tmp"),
	}
	for _, p := range append(append([]string{}, stale...), keep...) {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	f, err := GatherFacts(context.Background(), &localConn{}, FactsOptions{StaleDirs: []string{a, b, filepath.Join(a, "missing")}})
	if err != nil {
		t.Fatal(err)
	}
	got := append([]string{}, f.Stale...)
	sort.Strings(got)
	if strings.Join(got, "\n") != strings.Join(stale, "\n") {
		t.Errorf("stale %q, want %q", got, stale)
	}
}
