package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// realKubectl returns a runner for the kubectl on PATH against a kubeconfig;
// run fails the test on an error, try returns output and error.
type kubectlRunner struct {
	t          *testing.T
	bin, kc, c string
}

func realKubectl(t *testing.T, kubeconfig string) *kubectlRunner {
	t.Helper()
	bin, err := exec.LookPath("kubectl")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("kubectl not installed")
		}
		t.Skip("kubectl not installed")
	}
	return &kubectlRunner{t: t, bin: bin, kc: kubeconfig, c: t.TempDir()}
}

func (k *kubectlRunner) try(args ...string) (string, error) {
	cmd := exec.Command(k.bin, append([]string{"--kubeconfig", k.kc, "--cache-dir", k.c}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (k *kubectlRunner) run(args ...string) string {
	k.t.Helper()
	out, err := k.try(args...)
	if err != nil {
		k.t.Fatalf("kubectl %v: %v\n%s", args, err, out)
	}
	return out
}

func (k *kubectlRunner) apply(manifest string) string {
	k.t.Helper()
	p := filepath.Join(k.t.TempDir(), "m.yaml")
	if err := os.WriteFile(p, []byte(manifest), 0o600); err != nil {
		k.t.Fatal(err)
	}
	return k.run("apply", "-f", p)
}

func nodeTaints(t *testing.T, k *kubectlRunner, node string) []taintJSON {
	t.Helper()
	var taints []taintJSON
	out := k.run("get", "node", node, "-o", "jsonpath={.spec.taints}")
	if strings.TrimSpace(out) != "" {
		if err := json.Unmarshal([]byte(out), &taints); err != nil {
			t.Fatalf("taints %q: %v", out, err)
		}
	}
	return taints
}

// TestNodeLabelTaintCordonAndRestart: kubectl label/taint/cordon change
// the Node through PATCH; a restarted node refreshes only the kubelet's
// and k3s's own labels, never node-label / node-taint values.
func TestNodeLabelTaintCordonAndRestart(t *testing.T) {
	t.Parallel()
	l := newLo(t)
	root := t.TempDir()
	args := l.serverArgs(1, "--cluster-init", "--token", "labelsecret", "--node-label", "env=prod", "--node-label", "tier=web", "--node-taint", "dedicated=db:NoSchedule")
	s := startSim(t, simOpt{root: root, hostname: "kube", notify: true}, args...)
	s.waitReady(30 * time.Second)
	k := realKubectl(t, filepath.Join(root, kubeconfigPathK3s))
	eventually(t, 10*time.Second, func() string {
		if out, err := k.try("get", "node", "kube", "-o", "jsonpath={.metadata.labels.env}"); err != nil || out != "prod" {
			return "node not registered with its node-label: " + out
		}
		return ""
	})
	if got := nodeTaints(t, k, "kube"); len(got) != 1 || got[0].Key != "dedicated" || got[0].Value != "db" || got[0].Effect != "NoSchedule" {
		t.Fatalf("registered taints = %+v", got)
	}

	if out := k.run("label", "node", "kube", "env=dev", "--overwrite"); !strings.Contains(out, "node/kube labeled") {
		t.Errorf("label: %s", out)
	}
	k.run("label", "node", "kube", "team=a", "tier-")
	if out, err := k.try("label", "node", "kube", "env=qa"); err == nil || !strings.Contains(out, "already has a value (dev)") {
		t.Errorf("label without --overwrite on an existing key: %v %s", err, out)
	}
	if out := k.run("taint", "node", "kube", "dedicated-"); !strings.Contains(out, "node/kube untainted") {
		t.Errorf("untaint: %s", out)
	}
	k.run("taint", "node", "kube", "gpu=yes:PreferNoSchedule")
	if out := k.run("cordon", "kube"); !strings.Contains(out, "node/kube cordoned") {
		t.Errorf("cordon: %s", out)
	}
	if out := k.run("get", "nodes"); !regexp.MustCompile(`kube\s+Ready,SchedulingDisabled\s+control-plane,etcd,master`).MatchString(out) {
		t.Errorf("get nodes after cordon:\n%s", out)
	}
	if out := k.run("get", "nodes", "--field-selector", "spec.unschedulable=true", "-o", "name"); strings.TrimSpace(out) != "node/kube" {
		t.Errorf("field selector spec.unschedulable=true: %q", out)
	}
	k.run("uncordon", "kube")
	k.run("cordon", "kube")

	// Restart with changed node-label and node-taint: nothing of that
	// reaches the existing Node; what the API set stays.
	s.stop()
	args2 := l.serverArgs(1, "--cluster-init", "--token", "labelsecret", "--node-label", "env=stage", "--node-label", "new=1", "--node-taint", "other=x:NoExecute")
	s2 := startSim(t, simOpt{root: root, hostname: "kube", notify: true}, args2...)
	s2.waitReady(30 * time.Second)
	s2.waitLog("Annotations and labels have been set successfully on node: kube", 10*time.Second)
	out := k.run("get", "node", "kube", "-o", "json")
	var n nodeJSON
	if err := json.Unmarshal([]byte(out), &n); err != nil {
		t.Fatal(err)
	}
	lb := n.Metadata.Labels
	for key, want := range map[string]string{"env": "dev", "team": "a", "kubernetes.io/hostname": "kube", "kubernetes.io/os": "linux",
		"node.kubernetes.io/instance-type": "k3s", "node-role.kubernetes.io/etcd": "true", "node-role.kubernetes.io/control-plane": "true"} {
		if lb[key] != want {
			t.Errorf("after restart label %s = %q, want %q", key, lb[key], want)
		}
	}
	for _, gone := range []string{"tier", "new"} {
		if _, ok := lb[gone]; ok {
			t.Errorf("after restart label %s is set: %v", gone, lb)
		}
	}
	if len(n.Spec.Taints) != 1 || n.Spec.Taints[0].Key != "gpu" || n.Spec.Taints[0].Effect != "PreferNoSchedule" {
		t.Errorf("after restart taints = %+v", n.Spec.Taints)
	}
	if !n.Spec.Unschedulable {
		t.Error("cordon lost on restart")
	}
}

// TestNodePatchIsReplicated: a label set through one server is seen through
// another, as the registry lives in the replicated datastore.
func TestNodePatchIsReplicated(t *testing.T) {
	t.Parallel()
	l := newLo(t)
	rootA, rootB := t.TempDir(), t.TempDir()
	a := startSim(t, simOpt{root: rootA, hostname: "a", env: fastEnv, notify: true}, l.serverArgs(1, "--cluster-init", "--token", "repl")...)
	a.waitReady(30 * time.Second)
	b := startSim(t, simOpt{root: rootB, hostname: "b", env: fastEnv, notify: true}, l.serverArgs(2, "--server", l.url(1), "--token", "repl")...)
	b.waitReady(30 * time.Second)
	ka := realKubectl(t, filepath.Join(rootA, kubeconfigPathK3s))
	kb := realKubectl(t, filepath.Join(rootB, kubeconfigPathK3s))
	eventually(t, 15*time.Second, func() string {
		out, err := ka.try("label", "node", "b", "zone=z1")
		if err != nil {
			return out
		}
		return ""
	})
	eventually(t, 10*time.Second, func() string {
		if out, _ := kb.try("get", "node", "b", "-o", "jsonpath={.metadata.labels.zone}"); out != "z1" {
			return "server b sees zone=" + out
		}
		return ""
	})
}
