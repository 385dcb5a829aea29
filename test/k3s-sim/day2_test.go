package main

import (
	"encoding/json"
	"fmt"
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

const podAndBudget = `apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  containers:
  - name: nginx
    image: nginx:1.27
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: web
spec:
  minAvailable: 1
  selector:
    matchLabels: {app: web}
`

// TestPodsDrainAndDisruptionBudget: kubectl creates pods, lists them per
// node, and drains a node through the eviction subresource, which a
// disruption budget can refuse.
func TestPodsDrainAndDisruptionBudget(t *testing.T) {
	t.Parallel()
	l := newLo(t)
	root := t.TempDir()
	const quarantine = 8 * time.Second
	s := startSim(t, simOpt{root: root, hostname: "srv", notify: true, env: []string{"K3S_SIM_POD_GC_QUARANTINE=" + quarantine.String()}},
		l.serverArgs(1, "--token", "podsecret")...)
	s.waitReady(30 * time.Second)
	ag := startSim(t, simOpt{hostname: "wrk", notify: true}, "agent", "--server", l.url(1), "--token", "podsecret", "--node-ip", l.ip(2))
	ag.waitReady(30 * time.Second)
	k := realKubectl(t, filepath.Join(root, kubeconfigPathK3s))
	// Only the agent takes pods: the server is tainted.
	eventually(t, 10*time.Second, func() string {
		if out, err := k.try("taint", "node", "srv", "CriticalAddonsOnly=true:NoExecute"); err != nil {
			return out
		}
		return ""
	})
	if out := k.apply(podAndBudget); !strings.Contains(out, "pod/web created") || !strings.Contains(out, "poddisruptionbudget.policy/web created") {
		t.Fatalf("apply:\n%s", out)
	}
	k.run("run", "pinned", "--image=busybox", "--overrides", `{"spec":{"nodeName":"srv"}}`)
	out := k.run("get", "pods", "-A", "-o", "wide")
	if !regexp.MustCompile(`(?m)^NAMESPACE\s+NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\s+IP\s+NODE\s+NOMINATED NODE\s+READINESS GATES\n`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^default\s+web\s+1/1\s+Running\s+0\s+\S+\s+10\.42\.\d+\.\d+\s+wrk\s+`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^default\s+pinned\s+1/1\s+Running\s+0\s+\S+\s+10\.42\.\d+\.\d+\s+srv\s+`).MatchString(out) {
		t.Errorf("get pods -A -o wide:\n%s", out)
	}
	if out := k.run("get", "pods", "-A", "--field-selector", "spec.nodeName=wrk", "-o", "name"); strings.TrimSpace(out) != "pod/web" {
		t.Errorf("pods on wrk: %q", out)
	}
	if out := k.run("get", "pdb", "web"); !regexp.MustCompile(`web\s+1\s+N/A\s+0\s+`).MatchString(out) {
		t.Errorf("get pdb:\n%s", out)
	}

	// The budget allows no disruption: eviction answers 429 and drain
	// retries until its timeout.
	out, err := k.try("drain", "wrk", "--ignore-daemonsets", "--delete-emptydir-data", "--force", "--timeout=8s")
	if err == nil || !strings.Contains(out, `error when evicting pods/"web" -n "default" (will retry after 5s): Cannot evict pod as it would violate the pod's disruption budget.`) {
		t.Fatalf("drain with a budget: %v\n%s", err, out)
	}
	if out := k.run("get", "nodes", "wrk"); !strings.Contains(out, "SchedulingDisabled") {
		t.Errorf("drain did not cordon:\n%s", out)
	}
	k.run("delete", "pdb", "web")
	out = k.run("drain", "wrk", "--ignore-daemonsets", "--delete-emptydir-data", "--force", "--timeout=20s")
	if !strings.Contains(out, "pod/web evicted") || !strings.Contains(out, "node/wrk drained") {
		t.Errorf("drain:\n%s", out)
	}
	if out, err := k.try("get", "pod", "web"); err == nil || !strings.Contains(out, `pods "web" not found`) {
		t.Errorf("evicted pod still there: %s", out)
	}
	// A new pod has nowhere to go: the agent is cordoned, the server tainted.
	k.run("run", "late", "--image=busybox")
	out = k.run("get", "pod", "late", "-o", "jsonpath={.status.phase} {.status.conditions[0].message}")
	if !strings.HasPrefix(out, "Pending 0/2 nodes are available: ") || !strings.Contains(out, "1 node(s) were unschedulable") ||
		!strings.Contains(out, "1 node(s) had untolerated taint {CriticalAddonsOnly: true}") {
		t.Errorf("unschedulable pod: %q", out)
	}
	k.run("uncordon", "wrk")
	eventually(t, 10*time.Second, func() string {
		if out := k.run("get", "pod", "late", "-o", "jsonpath={.status.phase} {.spec.nodeName}"); out != "Running wrk" {
			return "late pod: " + out
		}
		return ""
	})
	if out := k.run("delete", "pod", "late"); !strings.Contains(out, `pod "late" deleted`) {
		t.Errorf("delete pod: %s", out)
	}

	// Deleting the agent's Node while the agent runs: it registers again,
	// within the pod garbage collector's quarantine, so its pods stay.
	k.run("run", "onwrk", "--image=busybox", "--overrides", `{"spec":{"nodeName":"wrk"}}`)
	if out := k.run("delete", "node", "wrk"); !strings.Contains(out, `node "wrk" deleted`) {
		t.Errorf("delete node: %s", out)
	}
	ag.waitLog("Successfully registered node wrk", 15*time.Second)
	if out := k.run("get", "node", "wrk", "-o", "jsonpath={.spec.unschedulable}"); out != "" {
		t.Errorf("re-registered node is a new Node, not cordoned: %q", out)
	}
	time.Sleep(quarantine + 3*time.Second)
	if out, err := k.try("get", "pod", "onwrk"); err != nil {
		t.Errorf("pod of a node that came back was deleted: %s", out)
	}
	// A Node that stays gone loses its pods.
	ag.stop()
	k.run("delete", "node", "wrk")
	eventually(t, quarantine+10*time.Second, func() string {
		if out, err := k.try("get", "pod", "onwrk"); err == nil {
			return "pod of deleted node still there: " + out
		}
		return ""
	})
	s.waitLog("PodGC is force deleting Pod: default/onwrk", 5*time.Second)
}

// TestConfigMaps: created, read, listed and deleted with kubectl, and kept
// in the datastore across a restart.
func TestConfigMaps(t *testing.T) {
	t.Parallel()
	l := newLo(t)
	root := t.TempDir()
	s := startSim(t, simOpt{root: root, hostname: "cm", notify: true}, l.serverArgs(1)...)
	s.waitReady(30 * time.Second)
	k := realKubectl(t, filepath.Join(root, kubeconfigPathK3s))
	if out := k.run("create", "configmap", "x", "--from-literal=a=b", "--from-literal=c=d"); strings.TrimSpace(out) != "configmap/x created" {
		t.Errorf("create: %q", out)
	}
	k.run("create", "configmap", "y", "-n", "kube-system", "--from-literal=k=v")
	if out, err := k.try("create", "configmap", "x", "--from-literal=a=b"); err == nil || !strings.Contains(out, `configmaps "x" already exists`) {
		t.Errorf("second create: %v %s", err, out)
	}
	if out, err := k.try("create", "configmap", "z", "-n", "nope", "--from-literal=a=b"); err == nil || !strings.Contains(out, `namespaces "nope" not found`) {
		t.Errorf("create in a missing namespace: %v %s", err, out)
	}
	if out := k.run("get", "configmap", "x", "-o", "jsonpath={.data.a}{.data.c}"); out != "bd" {
		t.Errorf("jsonpath: %q", out)
	}
	if out := k.run("get", "cm"); !regexp.MustCompile(`(?m)^NAME\s+DATA\s+AGE\nx\s+2\s+`).MatchString(out) {
		t.Errorf("get cm:\n%s", out)
	}
	if out := k.run("get", "cm", "-A", "-o", "name"); strings.Fields(out)[0] != "configmap/x" || !strings.Contains(out, "configmap/y") {
		t.Errorf("get cm -A: %q", out)
	}
	s.stop()
	s2 := startSim(t, simOpt{root: root, hostname: "cm", notify: true}, l.serverArgs(1)...)
	s2.waitReady(30 * time.Second)
	if out := k.run("get", "configmap", "y", "-n", "kube-system", "-o", "jsonpath={.data.k}"); out != "v" {
		t.Errorf("after restart: %q", out)
	}
	// The node's kubectl lists and deletes them too.
	out, errOut, code := runSim(t, root, "", "kubectl", "get", "cm", "-A")
	if code != 0 || !regexp.MustCompile(`(?m)^NAMESPACE\s+NAME\s+DATA\s+AGE\ndefault\s+x\s+2\s+\S+\nkube-system\s+y\s+1\s+`).MatchString(out) {
		t.Errorf("k3s kubectl get cm -A: %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code := runSim(t, root, "", "kubectl", "delete", "configmap", "x"); code != 0 || out != "configmap \"x\" deleted\n" {
		t.Errorf("k3s kubectl delete configmap: %d %q %s", code, out, errOut)
	}
	if out, err := k.try("get", "configmap", "x"); err == nil || !strings.Contains(out, `configmaps "x" not found`) {
		t.Errorf("after delete: %v %s", err, out)
	}
}

// TestDeleteServerNode: deleting a server's Node removes its etcd member
// through k3s's finalizer, done by another server; the Node of the last
// member stays Terminating, as a server does not remove itself.
func TestDeleteServerNode(t *testing.T) {
	t.Parallel()
	l := newLo(t)
	roots := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	a := startSim(t, simOpt{root: roots[0], hostname: "a", env: fastEnv, notify: true}, l.serverArgs(1, "--cluster-init", "--token", "delsecret")...)
	a.waitReady(30 * time.Second)
	var c *proc
	for i, name := range []string{"b", "c"} {
		p := startSim(t, simOpt{root: roots[i+1], hostname: name, env: fastEnv, notify: true}, l.serverArgs(i+2, "--server", l.url(1), "--token", "delsecret")...)
		p.waitReady(30 * time.Second)
		c = p
	}
	k := realKubectl(t, filepath.Join(roots[0], kubeconfigPathK3s))
	eventually(t, 20*time.Second, func() string {
		out, _ := k.try("get", "nodes", "-o", "name")
		if strings.Count(out, "node/") != 3 {
			return "nodes: " + out
		}
		if f := k.run("get", "node", "c", "-o", "jsonpath={.metadata.finalizers}"); f != `["wrangler.cattle.io/managed-etcd-controller","wrangler.cattle.io/node"]` {
			return "finalizers: " + f
		}
		return ""
	})
	eventually(t, 20*time.Second, func() string {
		st := readState(t, filepath.Join(roots[0], etcdStatePath))
		for _, m := range st.Members {
			if m.Learner {
				return "learner " + m.Name
			}
		}
		return ""
	})
	if out := k.run("delete", "node", "c"); !strings.Contains(out, `node "c" deleted`) {
		t.Errorf("delete node c: %s", out)
	}
	a.waitLog("Removing name=c-", 5*time.Second)
	c.waitLog("Failed to test data store connection: this server is a not a member of the etcd cluster. Found [", 10*time.Second)
	eventually(t, 5*time.Second, func() string {
		var live []string
		for _, m := range readState(t, filepath.Join(roots[0], etcdStatePath)).Members {
			if !m.Removed {
				live = append(live, m.NodeName)
			}
		}
		if strings.Join(live, ",") != "a,b" && strings.Join(live, ",") != "b,a" {
			return fmt.Sprintf("live members %v", live)
		}
		return ""
	})
	// The remaining two still have quorum.
	k.run("label", "node", "b", "still=up")

	// The etcd.k3s.cattle.io/remove annotation removes b's member and
	// keeps its Node.
	k.run("annotate", "node", "b", "etcd.k3s.cattle.io/remove=true")
	eventually(t, 5*time.Second, func() string {
		out := k.run("get", "node", "b", "-o", `jsonpath={.metadata.annotations.etcd\.k3s\.cattle\.io/removed-node-name}`)
		if !strings.HasPrefix(out, "b-") {
			return "removed-node-name annotation: " + out
		}
		for _, m := range readState(t, filepath.Join(roots[0], etcdStatePath)).Members {
			if m.NodeName == "b" && !m.Removed {
				return "b's member is still there"
			}
		}
		return ""
	})

	// A single etcd server cannot remove itself: its Node stays Terminating.
	lone := t.TempDir()
	l2 := newLo(t)
	s := startSim(t, simOpt{root: lone, hostname: "solo", notify: true}, l2.serverArgs(1, "--cluster-init")...)
	s.waitReady(30 * time.Second)
	k2 := realKubectl(t, filepath.Join(lone, kubeconfigPathK3s))
	eventually(t, 10*time.Second, func() string {
		if out, err := k2.try("get", "node", "solo"); err != nil {
			return out
		}
		return ""
	})
	out, err := k2.try("delete", "node", "solo", "--wait=false")
	if err != nil || !strings.Contains(out, `node "solo" deleted`) {
		t.Fatalf("delete node solo: %v %s", err, out)
	}
	s.waitLog("not removing self from etcd cluster", 5*time.Second)
	if out := k2.run("get", "node", "solo", "-o", "jsonpath={.metadata.deletionTimestamp} {.metadata.finalizers}"); !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\S+Z \["wrangler.cattle.io/managed-etcd-controller"\]$`).MatchString(out) {
		t.Errorf("solo after delete: %q", out)
	}
	// Removing the finalizer by hand completes the deletion (a force
	// delete): the Node goes, the member stays.
	// The service keeps running, so the kubelet may register the node
	// again at once: then it is a new Node object, not the deleted one.
	uid := k2.run("get", "node", "solo", "-o", "jsonpath={.metadata.uid}")
	k2.run("patch", "node", "solo", "--type=merge", "-p", `{"metadata":{"finalizers":null}}`)
	out, err = k2.try("get", "node", "solo", "-o", "jsonpath={.metadata.uid} {.metadata.deletionTimestamp}")
	switch {
	case err != nil && strings.Contains(out, `nodes "solo" not found`):
	case err == nil && strings.TrimSpace(out) != uid && !strings.Contains(strings.TrimSpace(out), " "):
	default:
		t.Errorf("after force delete: %v %q (uid before %s)", err, out, uid)
	}
}

const etcdStatePath = "/var/lib/rancher/k3s/server/db/etcd/member/snap/db"

func readState(t *testing.T, path string) stateData {
	t.Helper()
	var d stateData
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestNodeKubectlNodeCommands: the node's own kubectl ("k3s kubectl")
// labels, taints and cordons like the upstream one.
func TestNodeKubectlNodeCommands(t *testing.T) {
	t.Parallel()
	l := newLo(t)
	root := t.TempDir()
	s := startSim(t, simOpt{root: root, hostname: "own", notify: true}, l.serverArgs(1)...)
	s.waitReady(30 * time.Second)
	kc := func(args ...string) (string, string, int) {
		t.Helper()
		return runSim(t, root, "", append([]string{"kubectl"}, args...)...)
	}
	eventually(t, 10*time.Second, func() string {
		if out, errOut, code := kc("get", "node", "own"); code != 0 {
			return out + errOut
		}
		return ""
	})
	for _, c := range []struct {
		args []string
		out  string
		code int
	}{
		{[]string{"label", "node", "own", "env=dev"}, "node/own labeled\n", 0},
		{[]string{"label", "node", "own", "env=qa"}, "error: 'env' already has a value (dev), and --overwrite is false\n", 1},
		{[]string{"label", "node/own", "env=qa", "--overwrite"}, "node/own labeled\n", 0},
		{[]string{"label", "node", "own", "env=qa"}, "node/own not labeled\n", 0},
		{[]string{"taint", "node", "own", "gpu=yes:NoSchedule"}, "node/own tainted\n", 0},
		{[]string{"cordon", "own"}, "node/own cordoned\n", 0},
		{[]string{"cordon", "own"}, "node/own already cordoned\n", 0},
	} {
		out, errOut, code := kc(c.args...)
		if code != c.code || out+errOut != c.out {
			t.Errorf("kubectl %v: %d %q, want %d %q", c.args, code, out+errOut, c.code, c.out)
		}
	}
	k := realKubectl(t, filepath.Join(root, kubeconfigPathK3s))
	if out := k.run("get", "node", "own", "-o", "jsonpath={.metadata.labels.env} {.spec.taints[0].key}={.spec.taints[0].value}:{.spec.taints[0].effect} {.spec.unschedulable}"); out != "qa gpu=yes:NoSchedule true" {
		t.Errorf("after the node's kubectl: %q", out)
	}
	for _, c := range [][]string{{"label", "node", "own", "env-"}, {"taint", "node", "own", "gpu:NoSchedule-"}, {"uncordon", "own"}} {
		if out, errOut, code := kc(c...); code != 0 {
			t.Errorf("kubectl %v: %d %s%s", c, code, out, errOut)
		}
	}
	if out := k.run("get", "node", "own", "-o", "jsonpath={.metadata.labels.env}|{.spec.taints}|{.spec.unschedulable}"); out != "||" {
		t.Errorf("after undoing: %q", out)
	}
}
