package e2e

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/k3sctl/k3sctl/internal/kube"
	"github.com/k3sctl/k3sctl/internal/ssh"
	"github.com/k3sctl/k3sctl/test/e2e/world"
)

// writeInventory writes an inventory of one cluster to dir.
func writeInventory(t *testing.T, dir, body string) string {
	t.Helper()
	path := filepath.Join(dir, "inventory.yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func inventoryHeader(w *world.World) string {
	return `apiVersion: k3sctl.io/v1alpha1
kind: Inventory
defaults:
  ssh:
    user: pi
    keyFile: ` + w.Key + `
  version: ` + v1 + `
clusters:
`
}

// An agent that could not join is a pending change for plan, and apply
// repairs it once the cause is gone; while the cause lasts, apply names it
// from the service log. The cause here is a config drop-in k3sctl does not
// manage, left from an earlier setup, that points the agent at a server
// that is gone: K3s reads it only when it starts, so fixing it takes a
// restart, which is what the repair does.
func TestConvergeRepairsFailedJoin(t *testing.T) {
	t.Parallel()
	w := world.New(t)
	m := startMirror(t)
	hs := w.Start(t, "s1", "w1")
	s1, w1 := hs[0], hs[1]
	u := newUser(t)
	inv := writeInventory(t, t.TempDir(), inventoryHeader(w)+`  - name: repair
    servers: [`+s1.IP+`]
    agents: [`+w1.IP+`]
`)
	planFlags := []string{"--download-url", m.DownloadURL, "--channel-url", m.ChannelURL}
	applyFlags := append(append([]string{}, planFlags...), "--timeout", "20s")

	const dropIn = "/etc/rancher/k3s/config.yaml.d/50-old-server.yaml"
	w1.Exec(t, "mkdir -p /etc/rancher/k3s/config.yaml.d && printf 'server: https://127.0.0.1:6443\\n' > "+dropIn)
	r := u.k3sctl(args(applyFlags, "apply", "-f", inv)...)
	if r.code != 3 {
		t.Fatalf("apply with the agent pointed at a server that is gone: want exit 3:\n%s", r)
	}
	if state := strings.TrimSpace(w1.Exec(t, "systemctl is-active k3s-agent || true")); state != "activating" && state != "active" {
		t.Fatalf("k3s-agent is %q, want it running (trying to join)", state)
	}

	planRepair := func() {
		t.Helper()
		r := u.k3sctl(args(planFlags, "plan", "-f", inv, "--detailed-exitcode")...)
		if r.code != 4 {
			t.Fatalf("plan with a failed join: want exit 4 (changes pending):\n%s", r)
		}
		for _, want := range []string{"node w1 is not registered in the cluster", "+ repair", "join again: restarts k3s-agent"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("plan does not say %q:\n%s", want, r.stdout)
			}
		}
		for _, l := range strings.Split(r.stdout, "\n") {
			if strings.Contains(l, s1.IP) && strings.Contains(l, "(server") && !strings.HasSuffix(l, "no changes") {
				t.Errorf("the server is planned for a change:\n%s", r.stdout)
			}
		}
	}
	planRepair()

	// repairSteps runs apply and says whether w1's repair step changed it
	// and how its wait for ready failed.
	repairSteps := func(wantCode int) (repaired bool, failure string) {
		t.Helper()
		r := u.k3sctl(args(applyFlags, "apply", "-f", inv, "-o", "json")...)
		if r.code != wantCode {
			t.Fatalf("apply: want exit %d:\n%s", wantCode, r)
		}
		for _, e := range parseEvents(t, r.stdout) {
			if e.Host != w1.IP {
				continue
			}
			if e.Type == "step_done" && e.Step == "repair" {
				repaired = true
			}
			if e.Type == "step_failed" && e.Step == "wait for ready" {
				failure = e.Error
			}
		}
		if failure != "" {
			failure += "\n" + r.stdout // the hint is in the events
		}
		return repaired, failure
	}
	// While the cause lasts, apply repairs in vain and names the cause.
	repaired, failure := repairSteps(3)
	if !repaired || !strings.Contains(failure, "cannot reach 127.0.0.1:6443 (connection refused)") {
		t.Fatalf("want the repair done and the wait failing with the cause from the log; repaired %v, failure:\n%s", repaired, failure)
	}

	// The cause fixed, K3s alone does not recover (it read the drop-in
	// when it started): plan still says repair, and apply repairs.
	w1.Exec(t, "rm "+dropIn)
	planRepair()
	repaired, failure = repairSteps(0)
	if !repaired || failure != "" {
		t.Errorf("apply after the fix: repaired %v, failure:\n%s", repaired, failure)
	}
	if nodes := u.waitNodes("repair", 2); nodes["w1"] == nil {
		t.Errorf("w1 not in the cluster: %v", nodes)
	}
	r = u.k3sctl(args(planFlags, "plan", "-f", inv, "--detailed-exitcode")...)
	if r.code != 0 || !strings.Contains(r.stdout, "No changes") {
		t.Errorf("plan after the repair: want exit 0 and no changes:\n%s", r)
	}
}

// A label or taint changed in the inventory reaches the Node through the
// API without restarting K3s; labels set by others stay.
func TestConvergeLabelsWithoutRestart(t *testing.T) {
	t.Parallel()
	w := world.New(t)
	m := startMirror(t)
	hs := w.Start(t, "s1", "w1")
	s1, w1 := hs[0], hs[1]
	u := newUser(t)
	dir := t.TempDir()
	inventory := func(agent string) string {
		return writeInventory(t, dir, inventoryHeader(w)+`  - name: lab
    servers:
      - address: `+s1.IP+`
        labels: {tier: control}
    agents:
      - address: `+w1.IP+`
`+agent)
	}
	inv := inventory(`        labels: {zone: hall-2, rack: r1}
        taints: ["dedicated=edge:NoSchedule"]
`)
	planFlags := []string{"--download-url", m.DownloadURL, "--channel-url", m.ChannelURL}
	applyFlags := append(append([]string{}, planFlags...), "--timeout", "90s")

	u.mustK3sctl(args(applyFlags, "apply", "-f", inv)...)
	u.waitNodes("lab", 2)
	node := func(name, path string) string {
		t.Helper()
		out, err := u.kubectl("--context", "lab", "get", "node", name, "-o", "jsonpath="+path)
		if err != nil {
			t.Fatalf("kubectl get node %s: %v\n%s", name, err, out)
		}
		return out
	}
	if got := node("w1", "{.metadata.labels.zone},{.metadata.labels.rack},{.spec.taints[*].key}"); got != "hall-2,r1,dedicated" {
		t.Errorf("w1 after install: zone,rack,taints = %q", got)
	}
	if got := node("w1", `{.metadata.annotations.k3sctl\.io/managed-labels}`); got != "rack=r1,zone=hall-2" {
		t.Errorf("w1's record of the labels k3sctl set: %q", got)
	}
	if got := node("s1", "{.metadata.labels.tier}"); got != "control" {
		t.Errorf("s1 label tier = %q", got)
	}
	// Installed with labels: nothing left to do.
	r := u.k3sctl(args(planFlags, "plan", "-f", inv, "--detailed-exitcode")...)
	if r.code != 0 {
		t.Fatalf("plan right after the install: want exit 0:\n%s", r)
	}

	// Someone else's label, which k3sctl must keep.
	if out, err := u.kubectl("--context", "lab", "label", "node", "w1", "team=ops"); err != nil {
		t.Fatalf("kubectl label: %v\n%s", err, out)
	}
	service := func(h *world.Host, unit string) string {
		return strings.TrimSpace(h.Exec(t, "systemctl show "+unit+" -p MainPID -p ActiveEnterTimestamp"))
	}
	beforeAgent, beforeServer := service(w1, "k3s-agent"), service(s1, "k3s")

	// zone changes, rack and the taint go.
	inv = inventory(`        labels: {zone: hall-3}
`)
	r = u.k3sctl(args(planFlags, "plan", "-f", inv, "--detailed-exitcode")...)
	if r.code != 4 {
		t.Fatalf("plan after a label change: want exit 4:\n%s", r)
	}
	for _, want := range []string{"+ label node", "label zone=hall-3", "remove label rack", "remove taint dedicated=edge:NoSchedule", "without a restart"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("plan does not say %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "start k3s") {
		t.Errorf("plan restarts K3s for a label change:\n%s", r.stdout)
	}
	u.mustK3sctl(args(applyFlags, "apply", "-f", inv)...)

	if got := node("w1", "{.metadata.labels.zone},{.metadata.labels.rack},{.metadata.labels.team},{.spec.taints[*].key}"); got != "hall-3,,ops," {
		t.Errorf("w1 after the change: zone,rack,team,taints = %q, want hall-3,,ops,", got)
	}
	if got := node("w1", `{.metadata.annotations.k3sctl\.io/managed-labels}`); got != "zone=hall-3" {
		t.Errorf("w1's record of the labels k3sctl set: %q", got)
	}
	if after := service(w1, "k3s-agent"); after != beforeAgent {
		t.Errorf("k3s-agent on w1 restarted for a label change:\nbefore %s\nafter  %s", beforeAgent, after)
	}
	if after := service(s1, "k3s"); after != beforeServer {
		t.Errorf("k3s on s1 restarted for a label change:\nbefore %s\nafter  %s", beforeServer, after)
	}
	if cfg := w1.Exec(t, "cat /etc/rancher/k3s/config.yaml"); !strings.Contains(cfg, "zone=hall-3") || strings.Contains(cfg, "rack=r1") {
		t.Errorf("config.yaml not rewritten with the new labels (for a later registration):\n%s", cfg)
	}
	r = u.k3sctl(args(planFlags, "plan", "-f", inv, "--detailed-exitcode")...)
	if r.code != 0 || !strings.Contains(r.stdout, "No changes") {
		t.Errorf("plan after the label change: want exit 0 and no changes:\n%s", r)
	}

	drainAndDelete(t, w, u, s1)

	// w1's service still runs, so it registers again as a new Node, with
	// the labels its K3s was started with (the kubelet's, not those of
	// the config.yaml rewritten since) and without k3sctl's record. The
	// next plan sees it and apply sets the inventory's labels again.
	retry(t, 60*time.Second, func() string {
		if out, err := u.kubectl("--context", "lab", "get", "node", "w1"); err != nil {
			return "w1 not registered again: " + out
		}
		return ""
	})
	r = u.k3sctl(args(planFlags, "plan", "-f", inv, "--detailed-exitcode")...)
	if r.code != 4 || !strings.Contains(r.stdout, "+ label node") {
		t.Errorf("plan after w1 registered again: want exit 4 and the label step:\n%s", r)
	}
	u.mustK3sctl(args(applyFlags, "apply", "-f", inv)...)
	if got := node("w1", `{.metadata.labels.zone},{.metadata.annotations.k3sctl\.io/managed-labels}`); got != "hall-3,zone=hall-3" {
		t.Errorf("w1 after it registered again and apply: zone,record = %q", got)
	}
	if after := service(w1, "k3s-agent"); after != beforeAgent {
		t.Errorf("k3s-agent on w1 restarted:\nbefore %s\nafter  %s", beforeAgent, after)
	}
	r = u.k3sctl(args(planFlags, "plan", "-f", inv, "--detailed-exitcode")...)
	if r.code != 0 {
		t.Errorf("plan at the end: want exit 0:\n%s", r)
	}
}

// drainAndDelete drives internal/kube against the simulator's API through
// an SSH connection to the server, as k3sctl does: list, drain with a
// PodDisruptionBudget refusing, forced drain, uncordon, delete.
func drainAndDelete(t *testing.T, w *world.World, u *user, s1 *world.Host) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	conn, err := ssh.Dial(ctx, ssh.Options{Address: s1.IP, User: "pi", KeyFiles: []string{w.Key},
		KnownHostsFile: filepath.Join(t.TempDir(), "known_hosts"), ConnectRetry: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	data, err := conn.ReadFile(ctx, "/etc/rancher/k3s/k3s.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := kube.ParseKubeconfig(data)
	if err != nil {
		t.Fatal(err)
	}
	c, err := kube.New("lab", s1.IP, cfg, conn.DialContext)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.PollInterval = 500 * time.Millisecond
	nodes, err := c.ListNodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range nodes {
		names = append(names, n.Name)
		if !n.Ready || n.KubeletVersion != v1 || len(n.Addresses) == 0 {
			t.Errorf("node %+v", n)
		}
	}
	if strings.Join(names, ",") != "s1,w1" {
		t.Fatalf("nodes %v", names)
	}

	pods := filepath.Join(t.TempDir(), "pods.yaml")
	manifest := `apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  nodeName: w1
  containers:
  - name: web
    image: nginx:1.27
---
apiVersion: v1
kind: Pod
metadata:
  name: db
  labels: {app: db}
spec:
  nodeName: w1
  containers:
  - name: db
    image: postgres:16
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: db
spec:
  minAvailable: 1
  selector:
    matchLabels: {app: db}
`
	if err := os.WriteFile(pods, []byte(manifest), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := u.kubectl("--context", "lab", "apply", "-f", pods); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
	on, err := c.ListPodsOnNode(ctx, "w1")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range on {
		ids = append(ids, p.ID())
	}
	if !slices.Contains(ids, "default/web") || !slices.Contains(ids, "default/db") {
		t.Fatalf("pods on w1: %v", ids)
	}

	// The budget refuses: drain gives up at its timeout, naming the pod.
	_, err = c.Drain(ctx, "w1", 3*time.Second, false)
	var de *kube.DrainError
	if !errors.As(err, &de) || !slices.Equal(de.Left, []string{"default/db"}) || !kube.IsTooManyRequests(err) ||
		!strings.Contains(err.Error(), "Cannot evict pod as it would violate the pod's disruption budget.") {
		t.Fatalf("drain with a budget: %v", err)
	}
	if n, err := c.GetNode(ctx, "w1"); err != nil || !n.Unschedulable {
		t.Errorf("w1 not cordoned: %+v %v", n, err)
	}
	on, _ = c.ListPodsOnNode(ctx, "w1")
	for _, p := range on {
		if p.ID() == "default/web" {
			t.Error("web was not evicted")
		}
	}
	res, err := c.Drain(ctx, "w1", 2*time.Second, true)
	if err != nil || !slices.Equal(res.Left, []string{"default/db"}) {
		t.Errorf("forced drain: %+v %v", res, err)
	}
	if err := c.Uncordon(ctx, "w1"); err != nil {
		t.Fatal(err)
	}
	if n, _ := c.GetNode(ctx, "w1"); n.Unschedulable {
		t.Error("uncordon left w1 unschedulable")
	}
	if err := c.DeleteNode(ctx, "w1"); err != nil {
		t.Fatal(err)
	}
	_, err = c.PatchNode(ctx, "nope", kube.NodePatch{Labels: map[string]*string{"a": nil}})
	if !kube.IsNotFound(err) || !strings.Contains(err.Error(), "cluster lab (API through "+s1.IP+"): patch node nope:") {
		t.Errorf("patch of a missing node: %v", err)
	}
}
