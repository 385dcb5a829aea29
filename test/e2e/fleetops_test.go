package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/k3sctl/k3sctl/internal/cli"
	"github.com/k3sctl/k3sctl/test/e2e/world"
)

// Five single-node clusters; the rollout: section is added for the
// second half of the test.
const fleetOpsTemplate = `apiVersion: k3sctl.io/v1alpha1
kind: Inventory
defaults:
  ssh:
    user: pi
    keyFile: {{.Key}}
  version: {{.Version}}
{{- if .Rollout}}
rollout:
  canary: [shop-01]
  waveSize: 2
  failureBudget: 0
{{- end}}
clusters:
  - name: shop-01
    labels: {tier: canary}
    servers: [{{index .IPs 0}}]
  - name: shop-02
    servers: [{{index .IPs 1}}]
  - name: lab-01
    labels: {env: lab}
    servers: [{{index .IPs 2}}]
  - name: lab-02
    servers: [{{index .IPs 3}}]
  - name: lab-03
    servers: [{{index .IPs 4}}]
`

type fleetOpsVars struct {
	Key, Version string
	IPs          []string
	Rollout      bool
}

func writeFleetOps(t *testing.T, path string, v fleetOpsVars) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := template.Must(template.New("fleet").Parse(fleetOpsTemplate)).Execute(f, v); err != nil {
		t.Fatal(err)
	}
}

// sshSessions counts the SSH logins sshd accepted on h, read from its
// journal through docker exec, not over SSH.
func sshSessions(t *testing.T, h *world.Host) int {
	t.Helper()
	out := strings.TrimSpace(h.Exec(t, "journalctl -u ssh --no-pager -q | grep -c 'Accepted publickey' || true"))
	n, err := strconv.Atoi(out)
	if err != nil {
		t.Fatalf("%s: count of SSH logins: %q", h.Name, out)
	}
	return n
}

type waveEvent struct {
	Type    string `json:"type"`
	Cluster string `json:"cluster"`
	Wave    string `json:"wave"`
	Host    string `json:"host"`
	Message string `json:"message"`
	Error   string `json:"error"`
	Results []struct {
		Cluster string `json:"cluster"`
		Wave    string `json:"wave"`
		Host    string `json:"host"`
		Status  string `json:"status"`
	} `json:"results"`
}

func TestFleetSubsetAndWaves(t *testing.T) {
	t.Parallel()
	w := world.New(t)
	m := startMirror(t)
	hs := w.Start(t, "shop1", "shop2", "lab1", "lab2", "lab3")
	lab1, lab2, lab3 := hs[2], hs[3], hs[4]
	u := newUser(t)
	// The examples run as written: the mirror comes from the environment.
	u.env = append(u.env, "K3SCTL_DOWNLOAD_URL="+m.DownloadURL, "K3SCTL_CHANNEL_URL="+m.ChannelURL)
	dir := t.TempDir()
	inv := filepath.Join(dir, "fleet.yaml")
	vars := fleetOpsVars{Key: w.Key, Version: v1}
	for _, h := range hs {
		vars.IPs = append(vars.IPs, h.IP)
	}
	writeFleetOps(t, inv, vars)
	sessions := func() map[string]int {
		out := map[string]int{}
		for _, h := range hs {
			out[h.Name] = sshSessions(t, h)
		}
		return out
	}

	// A pattern or selector that matches nothing is a usage error naming
	// what is close, before anything connects.
	r := u.k3sctl("apply", "-f", inv, "--cluster", "shpo-*")
	if r.code != cli.ExitUsage || !strings.Contains(r.stderr, `did you mean "shop-01" or "shop-02"?`) {
		t.Errorf("--cluster shpo-*: want exit %d naming shop-01 and shop-02:\n%s", cli.ExitUsage, r)
	}
	r = u.k3sctl("plan", "-f", inv, "--selector", "env=lba")
	if r.code != cli.ExitUsage || !strings.Contains(r.stderr, `did you mean "env=lab"?`) {
		t.Errorf("--selector env=lba: want exit %d naming env=lab:\n%s", cli.ExitUsage, r)
	}
	if got := sessions(); got["shop1"]+got["shop2"]+got["lab1"]+got["lab2"]+got["lab3"] != 0 {
		t.Errorf("usage errors connected to hosts: %v", got)
	}

	// (a) Only the shops: the lab hosts see no SSH session at all.
	u.k3sctlIn(dir, 0, "apply", "-f", "fleet.yaml", "--cluster", "shop-*")
	u.waitNodes("shop-01", 1)
	u.waitNodes("shop-02", 1)
	after := sessions()
	if after["shop1"] == 0 || after["shop2"] == 0 {
		t.Errorf("the shops were not connected to: %v", after)
	}
	for _, h := range []*world.Host{lab1, lab2, lab3} {
		if after[h.Name] != 0 {
			t.Errorf("%s (not chosen) saw %d SSH session(s)", h.Name, after[h.Name])
		}
		if out, _ := h.ExecErr(t.Context(), "test -e /usr/local/bin/k3s && echo present"); strings.Contains(out, "present") {
			t.Errorf("%s (not chosen) has k3s", h.Name)
		}
	}
	// A selector plans lab-01 alone.
	r = u.mustK3sctl("plan", "-f", inv, "--selector", "env=lab")
	if !strings.Contains(r.stdout, "cluster lab-01") || strings.Contains(r.stdout, "cluster lab-02") || strings.Contains(r.stdout, "cluster shop-01") {
		t.Errorf("plan --selector env=lab: want lab-01 alone:\n%s", r)
	}
	if got := sessions(); got["lab2"] != 0 || got["lab3"] != 0 {
		t.Errorf("plan --selector env=lab connected to lab-02 or lab-03: %v", got)
	}

	// (b) A rollout to v2: canary shop-01, wave 1 shop-02 and lab-01,
	// wave 2 lab-02 and lab-03. lab-01 is broken: its sshd and sudo work,
	// but the k3s binary cannot be put in place.
	vars.Version, vars.Rollout = v2, true
	writeFleetOps(t, inv, vars)
	lab1.Exec(t, "mkdir -p /usr/local/bin/k3s/in-the-way")
	before := sessions()
	r = u.k3sctl("apply", "-f", inv, "-o", "json", "--timeout", "45s")
	if r.code != cli.ExitHostsFailed {
		t.Fatalf("rollout with a broken host in wave 1: want exit %d:\n%s", cli.ExitHostsFailed, r)
	}
	for _, want := range []string{"Rollout stopped after wave 1/2", "failure budget exceeded", "done:        shop-01, shop-02", "failed:      lab-01", "not started: lab-02, lab-03"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("rollout report lacks %q:\n%s", want, r.stderr)
		}
	}
	var evs []waveEvent
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var e waveEvent
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("not a JSON event: %q", line)
		}
		evs = append(evs, e)
	}
	waveOf := map[string]string{"shop-01": "canary", "shop-02": "1", "lab-01": "1", "lab-02": "2", "lab-03": "2"}
	started := map[string]int{}
	canaryDone, stoppedAt := -1, -1
	for i, e := range evs {
		switch e.Type {
		case "wave_start":
			started[e.Wave] = i
		case "rollout_stopped":
			stoppedAt = i
			if e.Wave != "1" || !strings.Contains(e.Message, "lab-02, lab-03") || !strings.Contains(e.Error, "failure budget") {
				t.Errorf("rollout_stopped: %+v", e)
			}
		case "host_done":
			if e.Cluster == "shop-01" {
				canaryDone = i
			}
		}
		if e.Host != "" && e.Wave != waveOf[e.Cluster] {
			t.Errorf("event %s of %s (%s) has wave %q, want %q", e.Type, e.Host, e.Cluster, e.Wave, waveOf[e.Cluster])
		}
		if e.Cluster == "lab-02" || e.Cluster == "lab-03" {
			t.Errorf("wave 2 had an event: %+v", e)
		}
	}
	if _, ok := started["2"]; ok {
		t.Errorf("wave 2 started")
	}
	if canaryDone < 0 || started["1"] < canaryDone {
		t.Errorf("wave 1 (event %d) did not wait for the canary (done at event %d)", started["1"], canaryDone)
	}
	if stoppedAt < 0 {
		t.Errorf("no rollout_stopped event")
	}
	last := evs[len(evs)-1]
	if last.Type != "summary" {
		t.Fatalf("last event %s, want summary", last.Type)
	}
	status := map[string]string{}
	for _, res := range last.Results {
		status[res.Cluster] = res.Status
		if res.Wave != waveOf[res.Cluster] {
			t.Errorf("summary: %s in wave %q, want %q", res.Cluster, res.Wave, waveOf[res.Cluster])
		}
	}
	wantStatus := map[string]string{"shop-01": "done", "shop-02": "done", "lab-01": "failed", "lab-02": "not_started", "lab-03": "not_started"}
	for c, want := range wantStatus {
		if status[c] != want {
			t.Errorf("summary: %s %s, want %s", c, status[c], want)
		}
	}
	now := sessions()
	for _, h := range []*world.Host{lab2, lab3} {
		if now[h.Name] != before[h.Name] {
			t.Errorf("%s (wave 2) saw %d new SSH session(s)", h.Name, now[h.Name]-before[h.Name])
		}
	}
	if n := u.waitNodes("shop-01", 1); n["shop1"] == nil || n["shop1"][2] != v2 {
		t.Errorf("canary shop-01 not at %s: %v", v2, n)
	}

	// The host is fixed: the same rollout again finishes the rest.
	lab1.Exec(t, "rm -rf /usr/local/bin/k3s")
	r = u.k3sctlIn(dir, 0, "apply", "-f", "fleet.yaml", "--canary", "shop-01", "--wave-size", "2", "--failure-budget", "0")
	// The clusters already in sync finish in their wave, unchanged.
	for _, want := range []string{"shop-01/" + hs[0].IP + " ✓ unchanged", "shop-02/" + hs[1].IP + " ✓ unchanged",
		"▶ wave 2/2: lab-02, lab-03", "Rollout finished: 5 cluster(s) in 3 wave(s)"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("re-run lacks %q:\n%s", want, r.stderr)
		}
	}
	for _, c := range []string{"shop-01", "shop-02", "lab-01", "lab-02", "lab-03"} {
		for name, n := range u.waitNodes(c, 1) {
			if n[2] != v2 {
				t.Errorf("%s node %s runs %s, want %s", c, name, n[2], v2)
			}
		}
	}
}

// k3sctlIn runs the CLI in dir, as the examples are typed there, and
// fails the test unless it exits with code.
func (u *user) k3sctlIn(dir string, code int, args ...string) result {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, k3sctlBinary(u.t), args...)
	cmd.Env, cmd.Dir = u.env, dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		u.t.Fatalf("run k3sctl %v: %v", args, err)
	}
	u.t.Logf("$ k3sctl %s\n%s", strings.Join(args, " "), r)
	if r.code != code {
		u.t.Fatalf("k3sctl %s: exit %d, want %d", strings.Join(args, " "), r.code, code)
	}
	return r
}
