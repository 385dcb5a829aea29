package main

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	tokenPath         = "/var/lib/rancher/k3s/server/token"
	caPath            = "/var/lib/rancher/k3s/server/tls/server-ca.crt"
	kubeconfigPathK3s = "/etc/rancher/k3s/k3s.yaml"
)

var fastEnv = []string{"K3S_SIM_LEARNER_DELAY=1s", "K3S_SIM_PEER_TIMEOUT=4s"}

func TestVersionAndSubcommands(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	for _, args := range [][]string{{"--version"}, {"-v"}, {"version"}} {
		out, _, code := runSim(t, root, "", args...)
		re := regexp.MustCompile(`^k3s version v1\.31\.4\+k3s1 \([0-9a-f]{8}\)\ngo version go1\.\d+`)
		if code != 0 || !re.MatchString(out) || strings.Count(out, "\n") != 2 {
			t.Errorf("%v: %d %q", args, code, out)
		}
		if f := strings.Fields(out); len(f) < 3 || f[2] != version {
			t.Errorf("%v: third word %v", args, f)
		}
	}
	if out, _, code := runSim(t, root, "", "check-config"); code != 0 || !strings.Contains(out, "STATUS: pass") {
		t.Errorf("check-config: %d %q", code, out)
	}
	if out, _, code := runSim(t, root, "", "token", "list"); code != 0 || !strings.HasPrefix(out, "TOKEN") {
		t.Errorf("token list: %d %q", code, out)
	}
	if _, _, code := runSim(t, root, "", "no-such-command"); code == 0 {
		t.Error("unknown command succeeded")
	}
	_, errOut, code := runSim(t, root, "", "server", "--no-such-flag")
	if code != 1 || !strings.Contains(errOut, "flag provided but not defined: -no-such-flag") {
		t.Errorf("bad flag: %d %q", code, errOut)
	}
	_, errOut, code = runSim(t, root, "", "agent", "--server", "https://127.0.0.1:1")
	if code != 1 || !strings.Contains(errOut, `level=fatal msg="--token is required"`) {
		t.Errorf("agent without token: %d %q", code, errOut)
	}
	_, errOut, code = runSim(t, root, "", "agent", "--token", "x")
	if code != 1 || !strings.Contains(errOut, `level=fatal msg="--server is required"`) {
		t.Errorf("agent without server: %d %q", code, errOut)
	}
}

func servingCert(t *testing.T, addr string) *x509.Certificate {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0]
}

func TestServerFirstStartAndRestart(t *testing.T) {
	t.Parallel()
	l := newLo(t)
	root := t.TempDir()
	args := l.serverArgs(1, "--token", "mysecret", "--tls-san", "sim.example", "--tls-san=192.0.2.7",
		"--write-kubeconfig-mode", "0644", "--node-label", "env=test", "--node-taint", "dedicated=edge:NoSchedule")
	a := startSim(t, simOpt{root: root, hostname: "Host-A", notify: true}, args...)
	took := a.waitReady(30 * time.Second)
	t.Logf("server READY after %s", took)
	logs := a.logs()
	for _, want := range []string{`level=info msg="Starting k3s v1.31.4+k3s1 (`, `msg="k3s is up and running"`,
		`msg="Wrote kubeconfig /etc/rancher/k3s/k3s.yaml"`, `Server node token is available at /var/lib/rancher/k3s/server/token`} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if !regexp.MustCompile(`(?m)^time="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)" level=info msg="k3s is up and running"$`).MatchString(logs) {
		t.Errorf("log line format:\n%s", logs)
	}

	ca := a.file(caPath)
	sum := sha256.Sum256([]byte(ca))
	token := a.file(tokenPath)
	if want := "K10" + hex.EncodeToString(sum[:]) + "::server:mysecret\n"; token != want {
		t.Errorf("token = %q, want %q", token, want)
	}
	for p, mode := range map[string]os.FileMode{tokenPath: 0o600, kubeconfigPathK3s: 0o644, "/etc/rancher/node/password": 0o600} {
		st, err := os.Stat(filepath.Join(root, p))
		if err != nil || st.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, %v; want %v", p, st.Mode().Perm(), err, mode)
		}
	}
	for _, link := range []string{"node-token", "agent-token"} {
		p := filepath.Join(root, "/var/lib/rancher/k3s/server", link)
		st, err := os.Lstat(p)
		if err != nil || st.Mode()&os.ModeSymlink == 0 {
			t.Errorf("%s is not a symlink: %v", link, err)
		}
		if b, _ := os.ReadFile(p); string(b) != token {
			t.Errorf("%s does not lead to the token", link)
		}
	}
	pw := a.file("/etc/rancher/node/password")
	if !regexp.MustCompile(`^[0-9a-f]{32}\n$`).MatchString(pw) {
		t.Errorf("node password %q", pw)
	}
	kc := a.file(kubeconfigPathK3s)
	for _, want := range []string{"current-context: default", "  name: default", "- name: default", "client-certificate-data:",
		"server: " + l.url(1)} {
		if !strings.Contains(kc, want) {
			t.Errorf("kubeconfig lacks %q:\n%s", want, kc)
		}
	}

	cert := servingCert(t, net.JoinHostPort(l.ip(1), strconv.Itoa(l.port)))
	for _, d := range []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "sim.example", "host-a"} {
		if cert.VerifyHostname(d) != nil {
			t.Errorf("serving cert not valid for %s (DNS %v)", d, cert.DNSNames)
		}
	}
	for _, ip := range []string{"127.0.0.1", "10.43.0.1", l.ip(1), "192.0.2.7"} {
		if cert.VerifyHostname(ip) != nil {
			t.Errorf("serving cert not valid for %s (IPs %v)", ip, cert.IPAddresses)
		}
	}
	if cert.VerifyHostname("other.example") == nil {
		t.Error("serving cert valid for a name nobody asked for")
	}

	// /cacerts and /ping need no credentials; the API does.
	insecure := insecureClient
	if b, err := do(insecure, "GET", l.url(1)+"/cacerts", "", "", nil, nil); err != nil || string(b) != ca {
		t.Errorf("/cacerts: %v, same as server-ca.crt: %v", err, string(b) == ca)
	}
	if b, err := do(insecure, "GET", l.url(1)+"/ping", "", "", nil, nil); err != nil || string(b) != "pong" {
		t.Errorf("/ping: %q %v", b, err)
	}
	if _, err := do(insecure, "GET", l.url(1)+"/api/v1/nodes", "", "", nil, nil); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("anonymous API request: %v", err)
	}

	api := kubeconfigClient(t, filepath.Join(root, kubeconfigPathK3s), "")
	nodes := api.nodes()
	n, ok := nodes["host-a"]
	if !ok || len(nodes) != 1 {
		t.Fatalf("nodes = %v", nodes)
	}
	if readyStatus(n) != "True" || n.Status.NodeInfo.KubeletVersion != version || n.Metadata.Labels["env"] != "test" ||
		n.Metadata.Labels["node-role.kubernetes.io/control-plane"] != "true" || n.Metadata.Labels["node-role.kubernetes.io/etcd"] != "" {
		t.Errorf("node = %+v", n)
	}
	if len(n.Spec.Taints) != 1 || n.Spec.Taints[0].Key != "dedicated" || n.Spec.Taints[0].Effect != "NoSchedule" {
		t.Errorf("taints = %+v", n.Spec.Taints)
	}
	if len(n.Status.Addresses) == 0 || n.Status.Addresses[0] != (nodeAddress{"InternalIP", l.ip(1)}) {
		t.Errorf("addresses = %+v", n.Status.Addresses)
	}
	if code, b := api.get("/version"); code != 200 || !strings.Contains(string(b), `"gitVersion":"v1.31.4+k3s1"`) {
		t.Errorf("/version: %d %s", code, b)
	}
	if code, _ := api.get("/api/v1/nodes/nope"); code != 404 {
		t.Errorf("unknown node: %d", code)
	}

	// The node's own kubectl, as "k3s kubectl" and through a kubectl link.
	out, errOut, code := runSim(t, root, "", "kubectl", "get", "nodes")
	if code != 0 || !regexp.MustCompile(`(?m)^NAME\s+STATUS\s+ROLES\s+AGE\s+VERSION\n`+
		`host-a\s+Ready\s+control-plane,master\s+\d+s\s+v1\.31\.4\+k3s1$`).MatchString(out) {
		t.Errorf("k3s kubectl get nodes: %d %q %q", code, out, errOut)
	}
	out, _, code = runSim(t, root, "kubectl", "get", "nodes", "-o", "wide")
	if code != 0 || !strings.Contains(out, "INTERNAL-IP") || !strings.Contains(out, l.ip(1)) {
		t.Errorf("kubectl link get nodes -o wide: %d %q", code, out)
	}
	out, _, _ = runSim(t, root, "", "kubectl", "get", "nodes", "-o", `jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`)
	if out != "host-a=True\n" {
		t.Errorf("jsonpath output %q", out)
	}

	// Restart: same CA, token and node password; nothing regenerated.
	a.stop()
	a2 := startSim(t, simOpt{root: root, hostname: "Host-A", notify: true}, args...)
	a2.waitReady(30 * time.Second)
	if a2.file(caPath) != ca || a2.file(tokenPath) != token || a2.file("/etc/rancher/node/password") != pw {
		t.Error("restart changed the CA, token or node password")
	}
	if !strings.Contains(a2.file(kubeconfigPathK3s), strings.Split(strings.Split(kc, "certificate-authority-data: ")[1], "\n")[0]) {
		t.Error("restart wrote a kubeconfig for another CA")
	}
	if _, err := os.Stat(filepath.Join(root, "/var/lib/rancher/k3s/server/db/state.db")); err != nil {
		t.Errorf("no sqlite datastore: %v", err)
	}
	// The full token read back from the server is accepted on restart.
	a2.stop()
	full := strings.TrimSpace(token)
	a3 := startSim(t, simOpt{root: root, hostname: "Host-A", notify: true}, l.serverArgs(1, "--token", full)...)
	a3.waitReady(30 * time.Second)
	a3.stop()

	// With the server down, the node's kubectl says so as kubectl does.
	_, errOut, code = runSim(t, root, "", "kubectl", "get", "nodes")
	if want := "The connection to the server " + l.ip(1) + ":" + strconv.Itoa(l.port) + " was refused - did you specify the right host or port?"; code != 1 || !strings.Contains(errOut, want) {
		t.Errorf("kubectl with the server down: %d %q", code, errOut)
	}

	// A different token for existing data is refused.
	bad := startSim(t, simOpt{root: root, hostname: "Host-A"}, l.serverArgs(1, "--token", "other-secret")...)
	if code := bad.waitExit(20 * time.Second); code != 1 {
		t.Errorf("exit %d", code)
	}
	if !strings.Contains(bad.logs(), `level=fatal msg="starting kubernetes: preparing server: bootstrap data already found and encrypted with different token"`) {
		t.Errorf("logs:\n%s", bad.logs())
	}
	if bad.file(caPath) != ca {
		t.Error("refused start changed the CA")
	}
}

func TestFirstServerRefusesForeignFullToken(t *testing.T) {
	t.Parallel()
	l := newLo(t)
	foreign := "K10" + strings.Repeat("0f", 32) + "::server:abc"
	p := startSim(t, simOpt{hostname: "a", notify: true}, l.serverArgs(1, "--token", foreign)...)
	if code := p.waitExit(20 * time.Second); code != 1 {
		t.Errorf("exit %d", code)
	}
	if !strings.Contains(p.logs(), "token CA hash does not match the Cluster CA certificate hash: "+strings.Repeat("0f", 32)+" != ") {
		t.Errorf("logs:\n%s", p.logs())
	}
	if p.readyCount() != 0 {
		t.Error("READY sent")
	}
	p2 := startSim(t, simOpt{hostname: "a"}, l.serverArgs(2, "--token", "K10abc::server:x")...)
	p2.waitExit(20 * time.Second)
	if !strings.Contains(p2.logs(), "failed to normalize server token") {
		t.Errorf("logs:\n%s", p2.logs())
	}
}

func TestHAClusterQuorumAndFailover(t *testing.T) {
	t.Parallel()
	l := newLo(t)
	env := append([]string{"K3S_SIM_NODE_MONITOR_GRACE=10s"}, fastEnv...)
	rootA, rootB, rootC, rootD := t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir()
	argsA := l.serverArgs(1, "--cluster-init", "--token", "hasecret", "--tls-san", l.ip(1))
	a := startSim(t, simOpt{root: rootA, hostname: "a", env: env, notify: true}, argsA...)
	a.waitReady(30 * time.Second)
	token := strings.TrimSpace(a.file(tokenPath))
	argsB := l.serverArgs(2, "--server", l.url(1), "--token", token)
	b := startSim(t, simOpt{root: rootB, hostname: "b", env: env, notify: true}, argsB...)
	b.waitReady(30 * time.Second)
	argsC := l.serverArgs(3, "--server", l.url(1), "--token", token)
	c := startSim(t, simOpt{root: rootC, hostname: "c", env: env, notify: true}, argsC...)
	c.waitReady(30 * time.Second)
	argsD := []string{"agent", "--server", l.url(1), "--token", token, "--node-ip", l.ip(4)}
	d := startSim(t, simOpt{root: rootD, hostname: "d", env: env, notify: true}, argsD...)
	took := d.waitReady(30 * time.Second)
	t.Logf("agent READY after %s", took)
	d.waitLog("Starting k3s agent v1.31.4+k3s1", time.Second)

	// Joined servers share the cluster's CA and token.
	for _, p := range []*proc{b, c} {
		if p.file(caPath) != a.file(caPath) || p.file(tokenPath) != a.file(tokenPath) {
			t.Errorf("%s has its own CA or token", p.name)
		}
	}
	// A's kubeconfig works against every server, and each lists all nodes.
	for i := 1; i <= 3; i++ {
		api := kubeconfigClient(t, filepath.Join(rootA, kubeconfigPathK3s), l.url(i))
		eventually(t, 10*time.Second, func() string {
			ns := api.nodes()
			for _, name := range []string{"a", "b", "c", "d"} {
				if readyStatus(ns[name]) != "True" {
					return fmt.Sprintf("server %d: node %s not Ready: %v", i, name, ns[name].Status.Conditions)
				}
			}
			if r := ns["b"].Metadata.Labels["node-role.kubernetes.io/etcd"]; r != "true" {
				return "b lacks the etcd role"
			}
			if ns["d"].Metadata.Labels["node-role.kubernetes.io/control-plane"] != "" {
				return "agent has the control-plane role"
			}
			return ""
		})
	}
	apiB := kubeconfigClient(t, filepath.Join(rootA, kubeconfigPathK3s), l.url(2))
	apiC := kubeconfigClient(t, filepath.Join(rootA, kubeconfigPathK3s), l.url(3))
	eventually(t, 45*time.Second, func() string {
		var lb lbState
		b, err := os.ReadFile(filepath.Join(rootD, "/var/lib/rancher/k3s/agent/etc/k3s-agent-load-balancer.json"))
		if err != nil || json.Unmarshal(b, &lb) != nil || len(lb.ServerAddresses) != 3 {
			return fmt.Sprintf("agent knows servers %s", b)
		}
		return ""
	})

	// A stops: B and C keep quorum and serve; A goes NotReady; the agent
	// moves to another server and stays Ready.
	a.kill()
	eventually(t, 30*time.Second, func() string {
		ns := apiB.nodes()
		if len(ns) != 4 {
			return fmt.Sprintf("B lists %d nodes", len(ns))
		}
		if readyStatus(ns["a"]) != "Unknown" {
			return "a still " + readyStatus(ns["a"])
		}
		if readyStatus(ns["d"]) != "True" || readyStatus(ns["c"]) != "True" {
			return "d or c not Ready"
		}
		return ""
	})
	// B stops too: C alone has no quorum and answers 503.
	b.kill()
	eventually(t, 20*time.Second, func() string {
		if code, body := apiC.get("/api/v1/nodes"); code != 503 {
			return fmt.Sprintf("C answers %d %s", code, body)
		}
		return ""
	})
	if code, _ := apiC.get("/version"); code != 503 {
		t.Errorf("/version without quorum: %d", code)
	}
	// A comes back, with flags that only matter for a new server: ignored.
	a2 := startSim(t, simOpt{root: rootA, hostname: "a", env: env, notify: true},
		l.serverArgs(1, "--cluster-init", "--server", "https://127.0.0.1:1", "--token", "hasecret")...)
	a2.waitReady(30 * time.Second)
	a2.waitLog("Managed etcd cluster bootstrap already complete and initialized", time.Second)
	eventually(t, 20*time.Second, func() string {
		if code, body := apiC.get("/api/v1/nodes"); code != 200 {
			return fmt.Sprintf("C answers %d %s", code, body)
		}
		return ""
	})
	// A restarted server alone, without a majority, does not report READY.
	c.kill()
	a2.kill()
	a3 := startSim(t, simOpt{root: rootA, hostname: "a", env: env, notify: true}, argsA...)
	a3.waitLog("Waiting for API server to become available", 10*time.Second)
	time.Sleep(4 * time.Second)
	if a3.readyCount() != 0 {
		t.Error("a server without quorum sent READY")
	}
	apiA := kubeconfigClient(t, filepath.Join(rootA, kubeconfigPathK3s), l.url(1))
	if code, _ := apiA.get("/api/v1/nodes"); code != 503 {
		t.Errorf("server without quorum answers %d", code)
	}
	b2 := startSim(t, simOpt{root: rootB, hostname: "b", env: env, notify: true}, argsB...)
	b2.waitReady(30 * time.Second)
	a3.waitReady(30 * time.Second)
}

func TestConcurrentJoinTooManyLearners(t *testing.T) {
	t.Parallel()
	l := newLo(t)
	env := []string{"K3S_SIM_LEARNER_DELAY=6s"}
	a := startSim(t, simOpt{hostname: "a", env: env, notify: true}, l.serverArgs(1, "--cluster-init", "--token", "t0ken")...)
	a.waitReady(30 * time.Second)
	b := startSim(t, simOpt{hostname: "b", env: env, notify: true}, l.serverArgs(2, "--server", l.url(1), "--token", "t0ken")...)
	c := startSim(t, simOpt{hostname: "c", env: env, notify: true}, l.serverArgs(3, "--server", l.url(1), "--token", "t0ken")...)
	deadline := time.Now().Add(20 * time.Second)
	var failed, other *proc
	for time.Now().Before(deadline) && failed == nil {
		for _, p := range [][2]*proc{{b, c}, {c, b}} {
			if !p[0].running() {
				failed, other = p[0], p[1]
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if failed == nil {
		t.Fatalf("both joins went on:\n%s\n%s", b.logs(), c.logs())
	}
	if failed.exit != 1 || !strings.Contains(failed.logs(), `level=fatal msg="ETCD join failed: etcdserver: too many learner members in cluster"`) {
		t.Errorf("%s: exit %d:\n%s", failed.name, failed.exit, failed.logs())
	}
	t.Logf("refused: %s; other %s:\n%s", failed.name, other.name, other.logs())
	other.waitReady(30 * time.Second)
	// Once the learner is promoted, the refused server joins on retry.
	retry := startSim(t, simOpt{root: failed.root, hostname: failed.name, env: env, notify: true}, failed.cmd.Args[1:]...)
	retry.waitReady(30 * time.Second)
}

func TestJoinErrors(t *testing.T) {
	t.Parallel()
	l := newLo(t)
	// A first server without cluster-init cannot take servers.
	sqlite := startSim(t, simOpt{hostname: "lite", notify: true}, l.serverArgs(1, "--token", "s3cret")...)
	sqlite.waitReady(30 * time.Second)
	j := startSim(t, simOpt{hostname: "j1"}, l.serverArgs(2, "--server", l.url(1), "--token", "s3cret")...)
	if code := j.waitExit(20 * time.Second); code != 1 {
		t.Errorf("exit %d", code)
	}
	if want := `level=fatal msg="starting kubernetes: preparing server: failed to bootstrap cluster data: ` + l.url(1) + `/v1-k3s/server-bootstrap: 400 Bad Request"`; !strings.Contains(j.logs(), want) {
		t.Errorf("joiner log lacks %s:\n%s", want, j.logs())
	}
	sqlite.waitLog("but embedded etcd is not enabled.", 5*time.Second)

	etcd := startSim(t, simOpt{hostname: "e", notify: true}, l.serverArgs(3, "--cluster-init", "--token", "s3cret", "--disable", "traefik")...)
	etcd.waitReady(30 * time.Second)
	caSum := sha256.Sum256([]byte(etcd.file(caPath)))
	realHash := hex.EncodeToString(caSum[:])
	wrongHash := strings.Repeat("ab", 32)

	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"ca-hash", []string{"--token", "K10" + wrongHash + "::server:s3cret", "--disable", "traefik"},
			[]string{"starting kubernetes: preparing server: failed to validate token: token CA hash does not match the Cluster CA certificate hash: " + wrongHash + " != " + realHash}},
		{"password", []string{"--token", "wrong", "--disable", "traefik"},
			[]string{"failed to bootstrap cluster data: " + l.url(3) + "/v1-k3s/server-bootstrap: 401 Unauthorized"}},
		{"critical", []string{"--token", "s3cret", "--cluster-cidr", "10.99.0.0/16"},
			[]string{`level=warning msg="critical configuration mismatched: cluster-cidr"`, `level=warning msg="critical configuration mismatched: disable"`,
				`level=fatal msg="starting kubernetes: preparing server: failed to validate server configuration: critical configuration value mismatch between servers"`}},
		{"no-token", nil, []string{"token is required to join a cluster"}},
	}
	for i, c := range cases {
		args := l.serverArgs(10+i, append([]string{"--server", l.url(3)}, c.args...)...)
		p := startSim(t, simOpt{hostname: "joiner-" + c.name, notify: true}, args...)
		if code := p.waitExit(20 * time.Second); code != 1 {
			t.Errorf("%s: exit %d", c.name, code)
		}
		for _, w := range c.want {
			if !strings.Contains(p.logs(), w) {
				t.Errorf("%s: log lacks %q:\n%s", c.name, w, p.logs())
			}
		}
		if p.readyCount() != 0 {
			t.Errorf("%s: READY sent", c.name)
		}
	}
	// The same settings join fine.
	ok := startSim(t, simOpt{hostname: "good", notify: true, env: fastEnv}, l.serverArgs(20, "--server", l.url(3), "--token", "s3cret", "--disable=traefik")...)
	ok.waitReady(30 * time.Second)
}

func TestAgentErrorsAndNotReady(t *testing.T) {
	t.Parallel()
	l := newLo(t)
	env := []string{"K3S_SIM_NODE_MONITOR_GRACE=6s"}
	root := t.TempDir()
	s := startSim(t, simOpt{root: root, hostname: "srv", env: env, notify: true}, l.serverArgs(1, "--agent-token", "agentpw")...)
	s.waitReady(30 * time.Second)
	ca := s.file(caPath)
	sum := sha256.Sum256([]byte(ca))
	agentToken := s.file("/var/lib/rancher/k3s/server/agent-token")
	if want := "K10" + hex.EncodeToString(sum[:]) + "::node:agentpw\n"; agentToken != want {
		t.Errorf("agent-token = %q, want %q", agentToken, want)
	}
	api := kubeconfigClient(t, filepath.Join(root, kubeconfigPathK3s), "")

	// Wrong CA hash: errors, retries, never ready.
	wrong := strings.Repeat("cd", 32)
	bad := startSim(t, simOpt{hostname: "badca", notify: true}, "agent", "--server", l.url(1), "--token", "K10"+wrong+"::node:agentpw", "--node-ip", l.ip(9))
	want := `level=error msg="Failed to validate connection to cluster at ` + l.url(1) + `: token CA hash does not match the Cluster CA certificate hash: ` + wrong + " != " + hex.EncodeToString(sum[:]) + `"`
	bad.waitLog(want, 10*time.Second)
	time.Sleep(3 * time.Second)
	if n := bad.countLog("token CA hash does not match"); n < 2 || !bad.running() || bad.readyCount() != 0 {
		t.Errorf("mismatch logged %d times, running=%v, ready=%d", n, bad.running(), bad.readyCount())
	}

	// Two hosts with one name: the second is refused for as long as it tries.
	first := startSim(t, simOpt{hostname: "dup", env: env, notify: true}, "agent", "-s", l.url(1), "-t", strings.TrimSpace(agentToken), "--node-ip", l.ip(2))
	first.waitReady(20 * time.Second)
	second := startSim(t, simOpt{hostname: "DUP", notify: true}, "agent", "--server", l.url(1), "--token", "agentpw", "--node-ip", l.ip(3))
	rejected := "Node password rejected, duplicate hostname or contents of '/etc/rancher/node/password' may not match server node-passwd entry, try enabling a unique node name with the --with-node-id flag"
	second.waitLog(rejected, 10*time.Second)
	second.waitLog("Waiting to retrieve agent configuration; server is not ready: "+rejected, time.Second)
	time.Sleep(6 * time.Second)
	if n := second.countLog(rejected); n < 2 || second.readyCount() != 0 || !second.running() {
		t.Errorf("rejection logged %d times, ready=%d running=%v", n, second.readyCount(), second.running())
	}
	// with-node-id makes the name unique.
	third := startSim(t, simOpt{hostname: "dup", notify: true}, "agent", "--server", l.url(1), "--token", "agentpw", "--node-ip", l.ip(4), "--with-node-id")
	third.waitReady(20 * time.Second)
	nodes := api.nodes()
	var suffixed string
	for name := range nodes {
		if regexp.MustCompile(`^dup-[0-9a-f]{8}$`).MatchString(name) {
			suffixed = name
		}
	}
	if suffixed == "" || len(nodes) != 3 {
		t.Errorf("nodes = %v", keys(nodes))
	}
	// Agents log in as "node" and only the password counts, so the server
	// token joins them too, even beside a separate agent token.
	fourth := startSim(t, simOpt{hostname: "four", notify: true}, "agent", "--server", l.url(1), "--token", strings.TrimSpace(s.file(tokenPath)), "--node-ip", l.ip(5))
	fourth.waitReady(20 * time.Second)

	// An agent that stops goes NotReady after the grace period.
	first.kill()
	eventually(t, 20*time.Second, func() string {
		n := api.nodes()["dup"]
		if readyStatus(n) != "Unknown" {
			return "dup is " + readyStatus(n)
		}
		return ""
	})
	out, _, _ := runSim(t, root, "", "kubectl", "get", "nodes")
	if !regexp.MustCompile(`(?m)^dup\s+NotReady\s+<none>`).MatchString(out) {
		t.Errorf("kubectl get nodes:\n%s", out)
	}
	out, _, code := runSim(t, root, "", "kubectl", "wait", "--for=condition=Ready=Unknown", "node/dup", "--timeout=5s")
	if code != 0 || out != "node/dup condition met\n" {
		t.Errorf("kubectl wait: %d %q", code, out)
	}
	// Deleting a node frees its name.
	out, _, code = runSim(t, root, "", "kubectl", "delete", "node", "four")
	if code != 0 || out != "node \"four\" deleted\n" {
		t.Errorf("kubectl delete: %d %q", code, out)
	}
	if _, ok := api.nodes()["four"]; ok {
		t.Error("deleted node still listed")
	}
	fourth.waitLog(`level=error msg="Error updating node status, will retry: error getting node \"four\": nodes \"four\" not found"`, 15*time.Second)
	// Restarted with the same identity, it is Ready again.
	again := startSim(t, simOpt{root: first.root, hostname: "dup", notify: true}, first.cmd.Args[1:]...)
	again.waitReady(20 * time.Second)
	eventually(t, 10*time.Second, func() string {
		if st := readyStatus(api.nodes()["dup"]); st != "True" {
			return "dup is " + st
		}
		return ""
	})
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestManifestsAndImagesAreNoticed(t *testing.T) {
	t.Parallel()
	l := newLo(t)
	root := t.TempDir()
	writeFile(t, root, "/var/lib/rancher/k3s/agent/images/preloaded.tar.zst", "x")
	s := startSim(t, simOpt{root: root, hostname: "m", notify: true}, l.serverArgs(1, "--disable", "traefik,metrics-server")...)
	s.waitReady(30 * time.Second)
	s.waitLog(`level=info msg="Importing images from /var/lib/rancher/k3s/agent/images/preloaded.tar.zst"`, 5*time.Second)
	s.waitLog(`Applying manifest at \"/var/lib/rancher/k3s/server/manifests/coredns.yaml\"`, 5*time.Second)
	if _, err := os.Stat(filepath.Join(root, "/var/lib/rancher/k3s/server/manifests/traefik.yaml")); err == nil {
		t.Error("disabled traefik manifest written")
	}
	writeFile(t, root, "/var/lib/rancher/k3s/server/manifests/app.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: app\n")
	writeFile(t, root, "/var/lib/rancher/k3s/server/manifests/notes.txt", "not a manifest")
	writeFile(t, root, "/var/lib/rancher/k3s/agent/images/extra.tar", "y")
	line := `level=info msg="Applying manifest at \"/var/lib/rancher/k3s/server/manifests/app.yaml\""`
	s.waitLog(line, 6*time.Second)
	s.waitLog("Importing images from /var/lib/rancher/k3s/agent/images/extra.tar", 6*time.Second)
	time.Sleep(2500 * time.Millisecond)
	if n := s.countLog(line); n != 1 {
		t.Errorf("unchanged manifest applied %d times", n)
	}
	future := time.Now().Add(time.Minute)
	writeFile(t, root, "/var/lib/rancher/k3s/server/manifests/app.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: app2\n")
	_ = os.Chtimes(filepath.Join(root, "/var/lib/rancher/k3s/server/manifests/app.yaml"), future, future)
	eventually(t, 6*time.Second, func() string {
		if n := s.countLog(line); n != 2 {
			return fmt.Sprintf("changed manifest applied %d times", n)
		}
		return ""
	})
	if strings.Contains(s.logs(), "notes.txt") {
		t.Error("non-manifest file applied")
	}
}

// TestRealKubectl checks the API against the kubectl k3sctl users have.
func TestRealKubectl(t *testing.T) {
	t.Parallel()
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("kubectl not installed")
		}
		t.Skip("kubectl not installed")
	}
	l := newLo(t)
	root := t.TempDir()
	s := startSim(t, simOpt{root: root, hostname: "kube", notify: true}, l.serverArgs(1, "--cluster-init")...)
	s.waitReady(30 * time.Second)
	cache := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(kubectl, append([]string{"--kubeconfig", filepath.Join(root, kubeconfigPathK3s), "--cache-dir", cache}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	eventually(t, 10*time.Second, func() string {
		out := run("get", "nodes", "-o", "wide")
		if !regexp.MustCompile(`(?m)^NAME\s+STATUS\s+ROLES\s+AGE\s+VERSION\s+INTERNAL-IP\s+EXTERNAL-IP\s+OS-IMAGE\s+KERNEL-VERSION\s+CONTAINER-RUNTIME\n` +
			`kube\s+Ready\s+control-plane,etcd,master\s+\S+\s+v1\.31\.4\+k3s1\s+` + regexp.QuoteMeta(l.ip(1)) + `\s+<none>\s+`).MatchString(out) {
			return out
		}
		return ""
	})
	if out := run("version"); !strings.Contains(out, "Server Version: v1.31.4+k3s1") {
		t.Errorf("kubectl version:\n%s", out)
	}
	if out := run("get", "node", "kube", "-o", "jsonpath={.status.nodeInfo.kubeletVersion}"); out != version {
		t.Errorf("jsonpath: %q", out)
	}
	if out := run("get", "nodes", "-l", "node-role.kubernetes.io/etcd=true", "-o", "name"); strings.TrimSpace(out) != "node/kube" {
		t.Errorf("label selector: %q", out)
	}
	if out := run("get", "ns"); !strings.Contains(out, "kube-system") {
		t.Errorf("get ns:\n%s", out)
	}
}
