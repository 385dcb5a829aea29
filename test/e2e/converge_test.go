package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

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
}
