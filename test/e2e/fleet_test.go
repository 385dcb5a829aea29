package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/k3sctl/k3sctl/internal/cli"
	"github.com/k3sctl/k3sctl/test/e2e/world"
)

const fleetTemplate = `apiVersion: k3sctl.io/v1alpha1
kind: Inventory
defaults:
  ssh:
    user: pi
    keyFile: {{.Key}}
  version: {{.Version}}
clusters:
  - name: factory
    servers: [{{.S1}}, {{.S2}}, {{.S3}}]
    agents:
      - address: {{.W1}}
        labels: {zone: hall-2}
      - {{.W2}}
    files:
      - src: hello.yaml
        kind: manifest
  - name: shop
    servers: [{{.T1}}]
    agents: [{{.T2}}]
`

type fleetVars struct {
	Key, Version               string
	S1, S2, S3, W1, W2, T1, T2 string
}

func writeFleet(t *testing.T, dir string, v fleetVars) string {
	t.Helper()
	path := filepath.Join(dir, "fleet.yaml")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := template.Must(template.New("fleet").Parse(fleetTemplate)).Execute(f, v); err != nil {
		t.Fatal(err)
	}
	return path
}

type jsonEvent struct {
	Type    string `json:"type"`
	Cluster string `json:"cluster"`
	Host    string `json:"host"`
	Step    string `json:"step"`
	Error   string `json:"error"`
	Results []struct {
		Host   string `json:"host"`
		Status string `json:"status"`
		Action string `json:"action"`
	} `json:"results"`
}

func parseEvents(t *testing.T, out string) []jsonEvent {
	t.Helper()
	var evs []jsonEvent
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var e jsonEvent
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("not a JSON event line: %q: %v", line, err)
		}
		evs = append(evs, e)
	}
	return evs
}

func invocation(t *testing.T, h *world.Host, unit string) string {
	return strings.TrimSpace(h.Exec(t, "systemctl show "+unit+" -p InvocationID --value"))
}

func TestFleetApply(t *testing.T) {
	t.Parallel()
	w := world.New(t)
	m := startMirror(t)
	hs := w.Start(t, "s1", "s2", "s3", "w1", "w2", "t1", "t2")
	byName := map[string]*world.Host{}
	for _, h := range hs {
		byName[h.Name] = h
	}
	u := newUser(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hello.yaml"), []byte("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	vars := fleetVars{Key: w.Key, Version: v1, S1: hs[0].IP, S2: hs[1].IP, S3: hs[2].IP, W1: hs[3].IP, W2: hs[4].IP, T1: hs[5].IP, T2: hs[6].IP}
	inv := writeFleet(t, dir, vars)
	// plan takes only the flags that change the plan; apply also the timeout.
	planFlags := []string{"--download-url", m.DownloadURL, "--channel-url", m.ChannelURL}
	mirrorFlags := append(append([]string{}, planFlags...), "--timeout", "90s")

	start := time.Now()
	u.mustK3sctl(args(mirrorFlags, "apply", "-f", inv)...)
	t.Logf("apply of 7 hosts took %s", time.Since(start).Round(time.Millisecond))
	factory := u.waitNodes("factory", 5)
	shop := u.waitNodes("shop", 2)
	for name, n := range factory {
		if n[2] != v1 {
			t.Errorf("factory node %s: %v", name, n)
		}
	}
	if shop["t1"] == nil || shop["t2"] == nil {
		t.Errorf("shop nodes: %v", shop)
	}
	if !strings.Contains(byName["s1"].Logs("k3s", 200), "hello.yaml") {
		t.Errorf("manifest hello.yaml not seen by the first server:\n%s", byName["s1"].Logs("k3s", 50))
	}

	// Nothing to do: plan says so, apply restarts nothing.
	before := map[string]string{}
	for _, h := range hs {
		unit := "k3s"
		if h.Name[0] == 'w' || h.Name == "t2" {
			unit = "k3s-agent"
		}
		before[h.Name] = invocation(t, h, unit)
	}
	r := u.k3sctl(args(planFlags, "plan", "-f", inv, "--detailed-exitcode")...)
	if r.code != 0 || !strings.Contains(r.stdout, "No changes") {
		t.Errorf("plan after apply: want exit 0 and no changes:\n%s", r)
	}
	noop := time.Now()
	u.mustK3sctl(args(mirrorFlags, "apply", "-f", inv)...)
	t.Logf("no-change apply of 7 hosts took %s", time.Since(noop).Round(time.Millisecond))
	for _, h := range hs {
		unit := "k3s"
		if h.Name[0] == 'w' || h.Name == "t2" {
			unit = "k3s-agent"
		}
		if got := invocation(t, h, unit); got != before[h.Name] {
			t.Errorf("%s: %s restarted by a no-change apply", h.Name, unit)
		}
	}

	// Upgrade to v2 while w2 dies halfway: w2 fails, the rest upgrades, exit 3.
	vars.Version = v2
	writeFleet(t, dir, vars)
	r = u.k3sctl(args(planFlags, "plan", "-f", inv, "--detailed-exitcode")...)
	if r.code != cli.ExitChangesPending || strings.Count(r.stdout, "upgrade "+v1+" → "+v2) != 7 {
		t.Errorf("plan for the upgrade: want exit %d (changes pending) and 7 upgrades:\n%s", cli.ExitChangesPending, r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, k3sctlBinary(t), args(mirrorFlags, "apply", "-f", inv, "-o", "json")...)
	cmd.Env = u.env
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	killed := false
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if !killed && strings.Contains(sc.Text(), `"step_done"`) && strings.Contains(sc.Text(), hs[0].IP) {
			byName["w2"].Kill(t)
			killed = true
		}
	}
	err = cmd.Wait()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	if code != 3 {
		t.Errorf("apply with a dead agent: exit %d, want 3\n%s\n%s", code, stderr.String(), strings.Join(lines, "\n"))
	}
	evs := parseEvents(t, strings.Join(lines, "\n"))
	// Order: servers one at a time, then agents.
	startAt := map[string]int{}
	for i, e := range evs {
		if e.Type == "step_start" && strings.HasPrefix(e.Step, "start ") {
			if _, ok := startAt[e.Host]; !ok {
				startAt[e.Host] = i
			}
		}
	}
	s1, s2, s3, w1 := startAt[hs[0].IP], startAt[hs[1].IP], startAt[hs[2].IP], startAt[hs[3].IP]
	if !(s1 < s2 && s2 < s3 && s3 < w1) {
		t.Errorf("upgrade order: s1 %d s2 %d s3 %d w1 %d (event index of the restart)", s1, s2, s3, w1)
	}
	last := evs[len(evs)-1]
	if last.Type != "summary" {
		t.Fatalf("last event is %s, want summary", last.Type)
	}
	for _, res := range last.Results {
		want := "done"
		if res.Host == hs[4].IP {
			want = "failed"
		}
		if res.Status != want {
			t.Errorf("summary: %s %s, want %s", res.Host, res.Status, want)
		}
	}

	// w2 comes back: apply completes it.
	byName["w2"].Restart(t)
	u.mustK3sctl(args(mirrorFlags, "apply", "-f", inv)...)
	factory = u.waitNodes("factory", 5)
	for name, n := range factory {
		if n[2] != v2 {
			t.Errorf("after the second apply %s runs %s, want %s", name, n[2], v2)
		}
	}
}
