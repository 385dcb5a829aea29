package e2e

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/k3sctl/k3sctl/test/e2e/world"
	"github.com/k3sctl/k3sctl/test/mirror"
	"gopkg.in/yaml.v3"
)

// These tests check the K3s simulator itself in the test world, with no
// k3sctl involved: installed by hand as K3s's install script would, run by
// systemd, looked at with the real kubectl.

const simVersion = "v1.31.4+k3s1"

// simUnit is the systemd unit of the upstream install script.
func simUnit(cmd string) string {
	return fmt.Sprintf(`[Unit]
Description=Lightweight Kubernetes
Documentation=https://k3s.io
Wants=network-online.target
After=network-online.target

[Install]
WantedBy=multi-user.target

[Service]
Type=notify
EnvironmentFile=-/etc/default/%%N
EnvironmentFile=-/etc/sysconfig/%%N
EnvironmentFile=-/etc/systemd/system/%%N.service.env
KillMode=process
Delegate=yes
LimitNOFILE=1048576
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
TimeoutStartSec=0
Restart=always
RestartSec=5s
ExecStartPre=-/sbin/modprobe br_netfilter
ExecStartPre=-/sbin/modprobe overlay
ExecStart=/usr/local/bin/k3s %s
`, cmd)
}

// installSim puts the simulator, a unit and a config on a host.
func installSim(t *testing.T, h *world.Host, bin, role, config string) string {
	t.Helper()
	h.CopyIn(t, bin, "/usr/local/bin/k3s", 0o755)
	unit := "k3s"
	if role == "agent" {
		unit = "k3s-agent"
	}
	writeRemote(t, h, "/etc/systemd/system/"+unit+".service", simUnit(role), 0o644)
	writeRemote(t, h, "/etc/systemd/system/"+unit+".service.env", "", 0o600)
	writeRemote(t, h, "/etc/rancher/k3s/config.yaml", config, 0o600)
	h.Exec(t, "ln -sf k3s /usr/local/bin/kubectl && systemctl daemon-reload && systemctl enable "+unit+" 2>/dev/null")
	return unit
}

func writeRemote(t *testing.T, h *world.Host, path, content string, mode os.FileMode) {
	t.Helper()
	local := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(local, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	h.Exec(t, "mkdir -p "+filepath.Dir(path))
	h.CopyIn(t, local, path, mode)
}

// startBlocking starts a unit the way a plain `systemctl start` does: it
// returns once the service has told systemd it is ready.
func startBlocking(t *testing.T, h *world.Host, unit string) time.Duration {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := h.ExecErr(ctx, "systemctl start "+unit); err != nil {
		t.Fatalf("%s: systemctl start %s: %v\n%s\n%s", h.Name, unit, err, out, h.Logs(unit, 60))
	}
	took := time.Since(start)
	if st := strings.TrimSpace(h.Exec(t, "systemctl is-active "+unit+" || true")); st != "active" {
		t.Fatalf("%s: %s is %s after start", h.Name, unit, st)
	}
	return took
}

type kubeconfigDoc struct {
	Clusters []struct {
		Cluster struct {
			Server string `yaml:"server"`
			CA     string `yaml:"certificate-authority-data"`
		} `yaml:"cluster"`
	} `yaml:"clusters"`
	Users []struct {
		User struct {
			Cert string `yaml:"client-certificate-data"`
			Key  string `yaml:"client-key-data"`
		} `yaml:"user"`
	} `yaml:"users"`
}

// apiStatus asks a server for the node list with the kubeconfig's admin
// credentials and returns the HTTP status.
func apiStatus(t *testing.T, kubeconfig []byte, server string) int {
	t.Helper()
	var kc kubeconfigDoc
	if err := yaml.Unmarshal(kubeconfig, &kc); err != nil {
		t.Fatal(err)
	}
	ca, _ := base64.StdEncoding.DecodeString(kc.Clusters[0].Cluster.CA)
	crt, _ := base64.StdEncoding.DecodeString(kc.Users[0].User.Cert)
	key, _ := base64.StdEncoding.DecodeString(kc.Users[0].User.Key)
	pair, err := tls.X509KeyPair(crt, key)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}}}}
	resp, err := c.Get(server + "/api/v1/nodes")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// retry calls f until it returns "" and says how long that took.
func retry(t *testing.T, timeout time.Duration, f func() string) time.Duration {
	t.Helper()
	start := time.Now()
	last := ""
	for time.Since(start) < timeout {
		if last = f(); last == "" {
			return time.Since(start)
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("after %s: %s", timeout, last)
	return 0
}

func TestSimulatorHAClusterInTestWorld(t *testing.T) {
	t.Parallel()
	w := world.New(t)
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatal("kubectl is needed on the test machine to check the cluster")
	}
	bin := mirror.Binary(t, simVersion, "amd64")
	hs := w.Start(t, "a", "b", "c", "d", "e")
	a, b, c, d, e := hs[0], hs[1], hs[2], hs[3], hs[4]

	installSim(t, a, bin, "server", "cluster-init: true\ntoken: e2e-secret\ntls-san:\n  - "+a.IP+"\n")
	t.Logf("a: systemctl start k3s returned after %s (server READY)", startBlocking(t, a, "k3s"))
	token := strings.TrimSpace(a.Exec(t, "cat /var/lib/rancher/k3s/server/token"))
	caPEM := a.Exec(t, "cat /var/lib/rancher/k3s/server/tls/server-ca.crt")
	sum := sha256.Sum256([]byte(caPEM))
	if want := "K10" + hex.EncodeToString(sum[:]) + "::server:e2e-secret"; token != want {
		t.Fatalf("token %q, want %q", token, want)
	}
	if !strings.Contains(a.Logs("k3s", 200), "k3s is up and running") {
		t.Error("journal of a lacks \"k3s is up and running\"")
	}

	joinCfg := "server: https://" + a.IP + ":6443\ntoken: " + token + "\n"
	for _, h := range []*world.Host{b, c} {
		installSim(t, h, bin, "server", joinCfg)
		t.Logf("%s: joining server READY after %s", h.Name, startBlocking(t, h, "k3s"))
		if got := strings.TrimSpace(h.Exec(t, "cat /var/lib/rancher/k3s/server/token")); got != token {
			t.Errorf("%s has token %q, want the cluster's", h.Name, got)
		}
	}
	installSim(t, d, bin, "agent", joinCfg)
	t.Logf("d: agent READY after %s", startBlocking(t, d, "k3s-agent"))
	if !strings.Contains(d.Logs("k3s-agent", 100), "Starting k3s agent "+simVersion) {
		t.Error("agent journal lacks \"Starting k3s agent\"")
	}

	// The real kubectl with a's kubeconfig, pointed at a's address.
	raw := a.Exec(t, "cat /etc/rancher/k3s/k3s.yaml")
	if !strings.Contains(raw, "server: https://127.0.0.1:6443") {
		t.Fatalf("k3s.yaml does not point at 127.0.0.1:6443:\n%s", raw)
	}
	kubeconfig := []byte(strings.ReplaceAll(raw, "https://127.0.0.1:6443", "https://"+a.IP+":6443"))
	kcPath := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kcPath, kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	kube := func(args ...string) (string, error) {
		out, err := exec.Command(kubectl, append([]string{"--kubeconfig", kcPath, "--cache-dir", cache, "--request-timeout", "10s"}, args...)...).CombinedOutput()
		return string(out), err
	}
	rows := regexp.MustCompile(`(?m)^([a-d])\s+Ready\s+(\S+)\s+\S+\s+` + regexp.QuoteMeta(simVersion) + `\s+(\S+)\s`)
	retry(t, 60*time.Second, func() string {
		out, err := kube("get", "nodes", "-o", "wide")
		if err != nil {
			return fmt.Sprintf("kubectl: %v: %s", err, out)
		}
		m := rows.FindAllStringSubmatch(out, -1)
		if len(m) != 4 {
			return "want four Ready nodes:\n" + out
		}
		ips := map[string]string{"a": a.IP, "b": b.IP, "c": c.IP, "d": d.IP}
		for _, r := range m {
			if r[3] != ips[r[1]] {
				return fmt.Sprintf("node %s has internal IP %s, want %s", r[1], r[3], ips[r[1]])
			}
			if server := r[1] != "d"; server != (r[2] == "control-plane,etcd,master") {
				return fmt.Sprintf("node %s has roles %s", r[1], r[2])
			}
		}
		return ""
	})
	// Any server answers with a's credentials: they share the cluster CA.
	if code := apiStatus(t, kubeconfig, "https://"+c.IP+":6443"); code != 200 {
		t.Errorf("c answers a's kubeconfig with %d", code)
	}

	// Two of three servers down: no quorum, the API answers 503.
	b.Exec(t, "systemctl stop k3s")
	c.Exec(t, "systemctl stop k3s")
	took := retry(t, 45*time.Second, func() string {
		if code := apiStatus(t, kubeconfig, "https://"+a.IP+":6443"); code != 503 {
			return fmt.Sprintf("a answers %d with b and c stopped", code)
		}
		return ""
	})
	t.Logf("a answers 503 %s after b and c stopped", took.Round(time.Second))
	if out, err := kube("get", "nodes"); err == nil || !strings.Contains(out, "ServiceUnavailable") {
		t.Errorf("kubectl without quorum: %v\n%s", err, out)
	}
	// One back: a majority again, and the API serves.
	t.Logf("b: restarted server READY after %s", startBlocking(t, b, "k3s"))
	took = retry(t, 45*time.Second, func() string {
		if code := apiStatus(t, kubeconfig, "https://"+a.IP+":6443"); code != 200 {
			return fmt.Sprintf("a answers %d with b back", code)
		}
		out, err := kube("get", "nodes")
		if err != nil || strings.Count(out, "\n") != 5 {
			return fmt.Sprintf("kubectl get nodes: %v\n%s", err, out)
		}
		return ""
	})
	t.Logf("a serves again %s after b is back", took.Round(time.Second))

	// A host that dies goes NotReady once the node monitor's grace period
	// (40s) has passed without its heartbeat.
	d.Kill(t)
	killed := time.Now()

	// An agent whose token names another CA logs the mismatch, keeps
	// trying, and never tells systemd it is ready.
	wrong := strings.Repeat("0", 64)
	installSim(t, e, bin, "agent", "server: https://"+a.IP+":6443\ntoken: K10"+wrong+"::server:e2e-secret\n")
	e.Exec(t, "systemctl start --no-block k3s-agent")
	want := "token CA hash does not match the Cluster CA certificate hash: " + wrong + " != " + hex.EncodeToString(sum[:])
	retry(t, 30*time.Second, func() string {
		if n := strings.Count(e.Logs("k3s-agent", 200), want); n < 2 {
			return fmt.Sprintf("journal shows the mismatch %d times:\n%s", n, e.Logs("k3s-agent", 30))
		}
		return ""
	})
	if st := strings.TrimSpace(e.Exec(t, "systemctl is-active k3s-agent || true")); st != "activating" {
		t.Errorf("agent with the wrong CA is %q, want activating", st)
	}
	if out, _ := kube("get", "node", "e"); !strings.Contains(out, "NotFound") {
		t.Errorf("agent with the wrong CA registered:\n%s", out)
	}

	notReady := regexp.MustCompile(`(?m)^d\s+NotReady\s`)
	retry(t, 90*time.Second, func() string {
		out, _ := kube("get", "nodes")
		if !notReady.MatchString(out) {
			return "d is not NotReady:\n" + out
		}
		return ""
	})
	took = time.Since(killed)
	t.Logf("d NotReady %s after its host was killed", took.Round(time.Second))
	if took < 25*time.Second {
		t.Errorf("d went NotReady after %s, before the grace period", took)
	}
}

// TestSimulatorDayTwoInTestWorld: labels, taints, cordon, drain and node
// deletion with the real kubectl against simulators run by systemd; a
// restart keeps what the API changed; the agent gets its proxy settings
// from k3s-agent.service.env.
func TestSimulatorDayTwoInTestWorld(t *testing.T) {
	t.Parallel()
	w := world.New(t)
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatal("kubectl is needed on the test machine to check the cluster")
	}
	bin := mirror.Binary(t, simVersion, "amd64")
	hs := w.Start(t, "a", "b")
	a, b := hs[0], hs[1]

	installSim(t, a, bin, "server", "token: day2-secret\n")
	startBlocking(t, a, "k3s")
	agentCfg := "server: https://" + a.IP + ":6443\ntoken: day2-secret\nnode-label:\n  - env=prod\nnode-taint:\n  - dedicated=db:NoSchedule\n"
	installSim(t, b, bin, "agent", agentCfg)
	proxyEnv := "HTTP_PROXY=http://proxy.example.test:3128\nHTTPS_PROXY=http://proxy.example.test:3128\nNO_PROXY=127.0.0.0/8,10.42.0.0/16,10.43.0.0/16,.svc,.cluster.local\n"
	writeRemote(t, b, "/etc/systemd/system/k3s-agent.service.env", proxyEnv, 0o600)
	startBlocking(t, b, "k3s-agent")

	raw := a.Exec(t, "cat /etc/rancher/k3s/k3s.yaml")
	kcPath := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kcPath, []byte(strings.ReplaceAll(raw, "https://127.0.0.1:6443", "https://"+a.IP+":6443")), 0o600); err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	kube := func(args ...string) (string, error) {
		out, err := exec.Command(kubectl, append([]string{"--kubeconfig", kcPath, "--cache-dir", cache, "--request-timeout", "10s"}, args...)...).CombinedOutput()
		return string(out), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := kube(args...)
		if err != nil {
			t.Fatalf("kubectl %v: %v\n%s", args, err, out)
		}
		return out
	}
	retry(t, 60*time.Second, func() string {
		out, _ := kube("get", "node", "b", "-o", "jsonpath={.metadata.labels.env} {.spec.taints[*].key}")
		if out != "prod dedicated" {
			return "b's registration labels and taints: " + out
		}
		return ""
	})

	// The agent process has the proxy settings of its env file.
	environ := b.Exec(t, "tr '\\0' '\\n' < /proc/$(systemctl show -p MainPID --value k3s-agent)/environ")
	for _, line := range strings.Split(strings.TrimSpace(proxyEnv), "\n") {
		if !strings.Contains(environ, line+"\n") {
			t.Errorf("k3s-agent environment lacks %s:\n%s", line, environ)
		}
	}

	must("label", "node", "b", "env=dev", "--overwrite")
	must("taint", "node", "b", "dedicated-")
	// A restart with other node-label / node-taint values changes nothing
	// on the existing Node.
	writeRemote(t, b, "/etc/rancher/k3s/config.yaml", strings.ReplaceAll(agentCfg, "env=prod", "env=stage"), 0o600)
	b.Exec(t, "systemctl restart k3s-agent")
	retry(t, 60*time.Second, func() string {
		if !strings.Contains(b.Logs("k3s-agent", 400), "Annotations and labels have been set successfully on node: b") {
			return "agent did not register again"
		}
		return ""
	})
	if out := must("get", "node", "b", "-o", "jsonpath={.metadata.labels.env} {.spec.taints}"); out != "dev " {
		t.Errorf("after restart b has env label and taints %q, want the API's", out)
	}

	// A pod on b, drained away.
	manifest := filepath.Join(t.TempDir(), "pod.yaml")
	if err := os.WriteFile(manifest, []byte("apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  nodeName: b\n  containers:\n  - name: web\n    image: nginx:1.27\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	must("apply", "-f", manifest)
	if out := must("get", "pods", "-A", "-o", "wide"); !regexp.MustCompile(`(?m)^default\s+web\s+1/1\s+Running\s+0\s+\S+\s+\S+\s+b\s`).MatchString(out) {
		t.Errorf("get pods -A -o wide:\n%s", out)
	}
	out := must("drain", "b", "--ignore-daemonsets", "--delete-emptydir-data", "--force", "--timeout=60s")
	if !strings.Contains(out, "pod/web evicted") || !strings.Contains(out, "node/b drained") {
		t.Errorf("drain:\n%s", out)
	}
	if out := must("get", "nodes", "b"); !strings.Contains(out, "Ready,SchedulingDisabled") {
		t.Errorf("drained node:\n%s", out)
	}

	// Deleted while its service runs, b registers again as a new Node,
	// with its node-label and node-taint values of now.
	must("delete", "node", "b")
	retry(t, 60*time.Second, func() string {
		out, err := kube("get", "node", "b", "-o", "jsonpath={.metadata.labels.env} {.spec.taints[*].key} {.spec.unschedulable}")
		if err != nil || out != "stage dedicated " {
			return fmt.Sprintf("b after deletion: %v %s", err, out)
		}
		return ""
	})

	must("create", "configmap", "day2", "--from-literal=k=v")
	if out := must("get", "configmap", "day2", "-o", "jsonpath={.data.k}"); out != "v" {
		t.Errorf("configmap: %q", out)
	}
}
