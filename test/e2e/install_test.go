package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/k3sctl/k3sctl/test/e2e/world"
)

const (
	v1 = "v1.31.4+k3s1"
	v2 = "v1.31.5+k3s1"
)

// sshArgs are the flags every k3sctl call in these tests uses.
func sshArgs(w *world.World) []string {
	return []string{"--user", "pi", "--ssh-key", w.Key}
}

// args puts the subcommand first, then the common flags, then the call's
// own flags, so that the call's own win.
func args(base []string, cmd string, more ...string) []string {
	return append(append([]string{cmd}, base...), more...)
}

func TestInstallJoinAgents(t *testing.T) {
	t.Parallel()
	w := world.New(t)
	m := startMirror(t)
	hs := w.Start(t, "a", "b", "c")
	a, b, c := hs[0], hs[1], hs[2]
	u := newUser(t)
	common := append(sshArgs(w), "--download-url", m.DownloadURL, "--channel-url", m.ChannelURL, "--timeout", "90s")

	// A kubeconfig the user already has: other contexts and comments stay.
	existing := `# my clusters, hand-kept
apiVersion: v1
kind: Config
clusters:
- cluster:
    server: https://office.example:6443 # the office box
  name: office
contexts:
- context:
    cluster: office
    user: office-admin
  name: office
current-context: office
users:
- name: office-admin
  user:
    token: not-a-real-token
`
	if err := os.MkdirAll(filepath.Dir(u.kubeconfig()), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(u.kubeconfig(), []byte(existing), 0o600); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	r := u.mustK3sctl(args(common, "install", "--ip", a.IP, "--context", "home", "--k3s-version", v1)...)
	t.Logf("install took %s", time.Since(start).Round(time.Millisecond))
	nodes := u.waitNodes("home", 1)
	if n := nodes["a"]; n == nil || n[2] != v1 {
		t.Fatalf("node a missing or wrong version: %v", nodes)
	}
	if strings.Contains(r.stdout+r.stderr, "K10") {
		t.Errorf("install output shows the token:\n%s", r)
	}
	// Every step of a fresh install that can change the host did.
	if strings.Contains(r.stderr, "(no change)") {
		t.Errorf("a fresh install reports a step that changed nothing:\n%s", r)
	}
	kc, _ := os.ReadFile(u.kubeconfig())
	for _, keep := range []string{"# my clusters, hand-kept", "# the office box", "name: office", "token: not-a-real-token"} {
		if !strings.Contains(string(kc), keep) {
			t.Errorf("kubeconfig lost %q:\n%s", keep, kc)
		}
	}
	if !strings.Contains(string(kc), "current-context: home") {
		t.Errorf("current context not switched to home:\n%s", kc)
	}
	if fi, _ := os.Stat(u.kubeconfig()); fi.Mode().Perm() != 0o600 {
		t.Errorf("kubeconfig mode %v, want 0600", fi.Mode().Perm())
	}
	// The token never reaches the unit or a command line.
	unit := a.Exec(t, "cat /etc/systemd/system/k3s.service")
	if strings.Contains(unit, "K10") || strings.Contains(unit, "token") {
		t.Errorf("unit mentions the token:\n%s", unit)
	}
	if mode := strings.TrimSpace(a.Exec(t, "stat -c %a /etc/rancher/k3s/config.yaml")); mode != "600" {
		t.Errorf("config.yaml mode %s, want 600", mode)
	}

	// Re-running changes nothing and restarts nothing.
	before := strings.TrimSpace(a.Exec(t, "systemctl show k3s -p InvocationID --value"))
	r = u.mustK3sctl(args(common, "install", "--ip", a.IP, "--context", "home", "--k3s-version", v1)...)
	if !strings.Contains(r.stderr, "No changes") {
		t.Errorf("second install did not report no changes:\n%s", r)
	}
	after := strings.TrimSpace(a.Exec(t, "systemctl show k3s -p InvocationID --value"))
	if before == "" || before != after {
		t.Errorf("k3s was restarted by a no-change install: invocation %q → %q", before, after)
	}

	// Two agents.
	u.mustK3sctl(args(common, "join", "--ip", b.IP, "--server-ip", a.IP)...)
	u.mustK3sctl(args(common, "join", "--ip", c.IP, "--server-ip", a.IP)...)
	nodes = u.waitNodes("home", 3)
	for _, n := range []string{"b", "c"} {
		if nodes[n] == nil || nodes[n][2] != v1 {
			t.Errorf("agent %s: %v (want version %s, the server's)", n, nodes[n], v1)
		}
	}
	if env := b.Exec(t, "cat /etc/systemd/system/k3s-agent.service"); strings.Contains(env, "K10") {
		t.Errorf("agent unit holds the token")
	}

	// node-token prints the token and nothing else on stdout.
	r = u.mustK3sctl(args(sshArgs(w), "node-token", "--ip", a.IP)...)
	tok := strings.TrimSpace(r.stdout)
	if !strings.HasPrefix(tok, "K10") || strings.Count(r.stdout, "\n") != 1 {
		t.Errorf("node-token stdout = %q", r.stdout)
	}
	want := strings.TrimSpace(a.Exec(t, "cat /var/lib/rancher/k3s/server/token"))
	if tok != want {
		t.Errorf("node-token = %q, server has %q", tok, want)
	}

	// Uninstall an agent: gone from the host, run again is a no-op.
	u.mustK3sctl(args(sshArgs(w), "uninstall", "--ip", c.IP)...)
	if out, err := c.ExecErr(t.Context(), "test -e /usr/local/bin/k3s && echo present || echo absent"); err != nil || strings.TrimSpace(out) != "absent" {
		t.Errorf("after uninstall k3s is %q (%v)", out, err)
	}
	r = u.mustK3sctl(args(sshArgs(w), "uninstall", "--ip", c.IP)...)
	if !strings.Contains(r.stderr, "nothing to do") {
		t.Errorf("second uninstall: %s", r)
	}
}

func TestInstallHAAndWrongToken(t *testing.T) {
	t.Parallel()
	w := world.New(t)
	m := startMirror(t)
	hs := w.Start(t, "s1", "s2", "s3", "w1", "w2")
	s1, s2, s3, w1, w2 := hs[0], hs[1], hs[2], hs[3], hs[4]
	u := newUser(t)
	common := append(sshArgs(w), "--download-url", m.DownloadURL, "--channel-url", m.ChannelURL, "--timeout", "90s")

	u.mustK3sctl(args(common, "install", "--ip", s1.IP, "--cluster", "--context", "edge")...)
	u.mustK3sctl(args(common, "join", "--ip", s2.IP, "--server-ip", s1.IP, "--server")...)
	u.mustK3sctl(args(common, "join", "--ip", s3.IP, "--server-ip", s1.IP, "--server")...)
	u.mustK3sctl(args(common, "join", "--ip", w1.IP, "--server-ip", s1.IP)...)
	nodes := u.waitNodes("edge", 4)
	cp := 0
	for _, n := range nodes {
		if strings.Contains(n[1], "control-plane") {
			cp++
		}
	}
	if cp != 3 || !strings.Contains(nodes["w1"][1], "none") {
		t.Errorf("want 3 control-plane nodes and one worker, have %v", nodes)
	}

	// With s1 down, a kubeconfig pointing at s2 still works.
	s1.Stop(t)
	u.mustK3sctl(args(sshArgs(w), "kubeconfig", "--ip", s2.IP, "--context", "edge-b")...)
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, err := u.kubectl("--context", "edge-b", "get", "nodes")
		if err == nil && strings.Contains(out, "s2") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("kubectl via s2 with s1 stopped: %v\n%s", err, out)
		}
		time.Sleep(2 * time.Second)
	}
	s1.Restart(t)

	// A wrong token fails within the deadline and says why.
	bad := "K10" + strings.Repeat("0", 64) + "::server:0123456789abcdef"
	start := time.Now()
	r := u.k3sctl(args(common, "join", "--ip", w2.IP, "--server-ip", s1.IP, "--node-token", bad, "--timeout", "30s", "--k3s-version", v1)...)
	if r.code != 3 {
		t.Errorf("join with a wrong token: exit %d, want 3\n%s", r.code, r)
	}
	if !strings.Contains(r.stderr, "token CA hash does not match") {
		t.Errorf("join with a wrong token does not name the k3s reason:\n%s", r)
	}
	if strings.Contains(r.stderr+r.stdout, "0123456789abcdef") {
		t.Errorf("output shows the token")
	}
	if d := time.Since(start); d > 2*time.Minute {
		t.Errorf("wrong-token join took %s", d)
	}
}
