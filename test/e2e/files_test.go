package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/k3sctl/k3sctl/internal/cli"
	"github.com/k3sctl/k3sctl/internal/plan"
	"github.com/k3sctl/k3sctl/test/e2e/world"
)

// plannedHosts is the part of `plan -o json` these tests read.
type plannedHosts struct {
	Clusters []struct {
		Name    string `json:"name"`
		Version string `json:"version"`
		Hosts   []struct {
			Address string `json:"address"`
			Action  string `json:"action"`
			Upload  bool   `json:"upload"`
			Files   []struct {
				Path string `json:"path"`
				Op   string `json:"op"`
				Diff string `json:"diff"`
			} `json:"files"`
			Steps []struct {
				Kind    string `json:"kind"`
				Changes bool   `json:"changes"`
			} `json:"steps"`
		} `json:"hosts"`
	} `json:"clusters"`
}

func parsePlan(t *testing.T, out string) plannedHosts {
	t.Helper()
	var p plannedHosts
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("plan -o json: %v\n%s", err, out)
	}
	return p
}

// changingSteps lists, per host address, the planned steps that change it.
func (p plannedHosts) changingSteps() map[string][]string {
	out := map[string][]string{}
	for _, c := range p.Clusters {
		for _, h := range c.Hosts {
			for _, s := range h.Steps {
				if s.Changes {
					out[h.Address] = append(out[h.Address], s.Kind)
				}
			}
		}
	}
	return out
}

func sha256Of(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func readText(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeText(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

const filesTemplate = `apiVersion: k3sctl.io/v1alpha1
kind: Inventory
defaults:
  ssh: {user: pi, keyFile: %KEY%}
  version: ` + v1 + `
clusters:
  - name: alpha
    servers: [%S1%]
    agents: [%A1%]
    files:
      - {src: app.yaml, kind: manifest}
      - {src: extra.yaml, kind: manifest}
      - {src: registries.yaml, kind: registries}
  - name: beta
    servers: [%S2%]
    files:
      - {src: beta.yaml, kind: manifest, dst: app.yaml}
`

func TestFilesConverge(t *testing.T) {
	t.Parallel()
	w := world.New(t)
	m := startMirror(t)
	hs := w.Start(t, "s1", "a1", "s2")
	s1, a1, s2 := hs[0], hs[1], hs[2]
	u := newUser(t)
	dir := t.TempDir()
	app, extra := filepath.Join(dir, "app.yaml"), filepath.Join(dir, "extra.yaml")
	writeText(t, app, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  replicas: \"1\"\n")
	writeText(t, extra, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: extra\n")
	writeText(t, filepath.Join(dir, "beta.yaml"), "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: beta\n")
	const mirrorPassword = "mirror-pass-7f3a"
	writeText(t, filepath.Join(dir, "registries.yaml"), "configs:\n  registry.lan:\n    auth: {username: k3s, password: "+mirrorPassword+"}\n")
	inv := filepath.Join(dir, "fleet.yaml")
	doc := strings.NewReplacer("%KEY%", w.Key, "%S1%", s1.IP, "%A1%", a1.IP, "%S2%", s2.IP).Replace(filesTemplate)
	writeText(t, inv, doc)
	planFlags := []string{"--download-url", m.DownloadURL, "--channel-url", m.ChannelURL}
	applyFlags := append(append([]string{}, planFlags...), "--timeout", "90s")

	u.mustK3sctl(args(applyFlags, "apply", "-f", inv)...)
	u.waitNodes("alpha", 2)
	u.waitNodes("beta", 1)
	manifest := "/var/lib/rancher/k3s/server/manifests/app.yaml"
	hostSum := func(h *world.Host, path string) string {
		return strings.Fields(h.Exec(t, "sha256sum "+path+" 2>/dev/null || echo missing"))[0]
	}
	if got := hostSum(s1, manifest); got != sha256Of(t, app) {
		t.Errorf("s1: %s has sha256 %s, want %s", manifest, got, sha256Of(t, app))
	}
	if got := hostSum(a1, manifest); got != "missing" {
		t.Errorf("a1 (agent) got the manifest: %s", got)
	}
	if got := hostSum(a1, "/etc/rancher/k3s/registries.yaml"); got != sha256Of(t, filepath.Join(dir, "registries.yaml")) {
		t.Errorf("a1: registries.yaml sha256 %s", got)
	}
	if got := strings.TrimSpace(s1.Exec(t, "stat -c '%U %a' "+plan.DeliveredRecordPath)); got != "root 600" {
		t.Errorf("%s: owner and mode %q, want root 600", plan.DeliveredRecordPath, got)
	}
	record := s1.Exec(t, "cat "+plan.DeliveredRecordPath)
	if !strings.Contains(record, `"path":"`+manifest+`","sha256":"`+sha256Of(t, app)+`"`) {
		t.Errorf("record on s1 does not list %s with its sha256:\n%s", manifest, record)
	}
	r := u.k3sctl(args(planFlags, "plan", "-f", inv, "--detailed-exitcode")...)
	if r.code != 0 || !strings.Contains(r.stdout, "No changes") {
		t.Fatalf("plan after apply: want exit 0 and no changes:\n%s", r)
	}
	before := map[string]string{"s1": invocation(t, s1, "k3s"), "a1": invocation(t, a1, "k3s-agent"), "s2": invocation(t, s2, "k3s")}

	// One manifest of alpha changes: one file step, on alpha's server only.
	oldSize := len(readText(t, app))
	writeText(t, app, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  replicas: \"2\"\n")
	r = u.k3sctl(args(planFlags, "plan", "-f", inv, "-o", "json")...)
	changing := parsePlan(t, r.stdout).changingSteps()
	if len(changing) != 1 || strings.Join(changing[s1.IP], ",") != string(plan.StepDeliverFiles) {
		t.Errorf("changing steps %v, want only %q on s1 %s", changing, plan.StepDeliverFiles, s1.IP)
	}
	r = u.k3sctl(args(planFlags, "plan", "-f", inv, "--detailed-exitcode", "--diff")...)
	if r.code != cli.ExitChangesPending {
		t.Errorf("plan with a changed manifest: exit %d, want %d", r.code, cli.ExitChangesPending)
	}
	for _, want := range []string{
		"~ " + manifest + ": " + fmt.Sprintf("%d → %d", oldSize, len(readText(t, app))) + " bytes, sha256 " + before0(t, record, manifest) + " → " + sha256Of(t, app)[:12],
		"-  replicas: \"1\"", "+  replicas: \"2\"",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("plan --diff does not show %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout+r.stderr, mirrorPassword) {
		t.Errorf("plan --diff shows the secret registries.yaml:\n%s", r)
	}
	u.mustK3sctl(args(applyFlags, "apply", "-f", inv)...)
	if got := hostSum(s1, manifest); got != sha256Of(t, app) {
		t.Errorf("after apply s1 has sha256 %s, want %s", got, sha256Of(t, app))
	}
	if got := hostSum(s2, manifest); got != sha256Of(t, filepath.Join(dir, "beta.yaml")) {
		t.Errorf("beta's manifest on s2 changed: %s", got)
	}
	after := map[string]string{"s1": invocation(t, s1, "k3s"), "a1": invocation(t, a1, "k3s-agent"), "s2": invocation(t, s2, "k3s")}
	for h, id := range before {
		if after[h] != id {
			t.Errorf("%s: K3s restarted for a manifest change", h)
		}
	}
	r = u.k3sctl(args(planFlags, "plan", "-f", inv, "--detailed-exitcode")...)
	if r.code != 0 || !strings.Contains(r.stdout, "No changes") {
		t.Errorf("plan after delivering: want exit 0 and no changes:\n%s", r)
	}

	// The extra manifest leaves the inventory: it leaves the host.
	extraPath := "/var/lib/rancher/k3s/server/manifests/extra.yaml"
	writeText(t, inv, strings.Replace(doc, "      - {src: extra.yaml, kind: manifest}\n", "", 1))
	r = u.k3sctl(args(planFlags, "plan", "-f", inv, "--detailed-exitcode")...)
	if r.code != cli.ExitChangesPending || !strings.Contains(r.stdout, "- "+extraPath+": remove (delivered by k3sctl, no longer in the inventory); "+plan.RemovedManifestNote) {
		t.Errorf("plan without the extra manifest: want exit %d and its removal with the note:\n%s", cli.ExitChangesPending, r)
	}
	u.mustK3sctl(args(applyFlags, "apply", "-f", inv)...)
	if got := hostSum(s1, extraPath); got != "missing" {
		t.Errorf("%s still on s1 (sha256 %s)", extraPath, got)
	}
	if record := s1.Exec(t, "cat "+plan.DeliveredRecordPath); strings.Contains(record, extraPath) {
		t.Errorf("the record still lists %s:\n%s", extraPath, record)
	}
	r = u.k3sctl(args(planFlags, "plan", "-f", inv, "--detailed-exitcode")...)
	if r.code != 0 || !strings.Contains(r.stdout, "No changes") {
		t.Errorf("plan after the removal: want exit 0 and no changes:\n%s", r)
	}
}

// before0 is the sha256 prefix the record gives path.
func before0(t *testing.T, record, path string) string {
	t.Helper()
	_, rest, ok := strings.Cut(record, `"path":"`+path+`","sha256":"`)
	if !ok || len(rest) < 12 {
		t.Fatalf("record does not list %s:\n%s", path, record)
	}
	return rest[:12]
}

func TestClustersOnTwoVersions(t *testing.T) {
	t.Parallel()
	w := world.New(t)
	m := startMirror(t)
	hs := w.Start(t, "o1", "o2", "n1")
	o1, o2, n1 := hs[0], hs[1], hs[2]
	u := newUser(t)
	dir := t.TempDir()
	inv := filepath.Join(dir, "fleet.yaml")
	writeText(t, inv, `apiVersion: k3sctl.io/v1alpha1
kind: Inventory
defaults:
  ssh: {user: pi, keyFile: `+w.Key+`}
clusters:
  - name: old
    version: `+v1+`
    servers: [`+o1.IP+`]
    agents: [`+o2.IP+`]
  - name: new
    version: `+v2+`
    servers: [`+n1.IP+`]
`)
	planFlags := []string{"--download-url", m.DownloadURL, "--channel-url", m.ChannelURL}
	applyFlags := append(append([]string{}, planFlags...), "--timeout", "90s")

	m.ResetRequests()
	r := u.k3sctl(args(planFlags, "plan", "-f", inv)...)
	for _, want := range []string{"cluster old (K3s " + v1, "cluster new (K3s " + v2} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("plan does not show %q:\n%s", want, r)
		}
	}
	r = u.mustK3sctl(args(applyFlags, "apply", "-f", inv, "-o", "json")...)
	// Each version is fetched once, by the plan, into the cache apply uses.
	for _, v := range []string{v1, v2} {
		if n := m.Requests("/download/" + v + "/k3s"); n != 1 {
			t.Errorf("k3s %s downloaded %d times, want once: %v", v, n, m.AllRequests())
		}
	}
	uploads := map[string]int{}
	for _, e := range parseEvents(t, r.stdout) {
		if e.Type == "step_done" && e.Step == string(plan.StepUploadBinary) {
			uploads[e.Host]++
		}
	}
	if uploads[o1.IP] != 1 || uploads[o2.IP] != 1 || uploads[n1.IP] != 1 {
		t.Errorf("binary uploads per host %v, want one each", uploads)
	}
	for name, n := range u.waitNodes("old", 2) {
		if n[2] != v1 {
			t.Errorf("cluster old: node %s runs %s, want %s", name, n[2], v1)
		}
	}
	for name, n := range u.waitNodes("new", 1) {
		if n[2] != v2 {
			t.Errorf("cluster new: node %s runs %s, want %s", name, n[2], v2)
		}
	}
	for h, v := range map[*world.Host]string{o1: v1, o2: v1, n1: v2} {
		if out := h.Exec(t, "/usr/local/bin/k3s --version"); !strings.Contains(out, v) {
			t.Errorf("%s: k3s --version says %q, want %s", h.Name, out, v)
		}
	}

	r = u.k3sctl(args(planFlags, "plan", "-f", inv, "--detailed-exitcode")...)
	if r.code != 0 || !strings.Contains(r.stdout, "No changes") {
		t.Errorf("plan after apply: want exit 0 and no changes:\n%s", r)
	}
	r = u.k3sctl(args(planFlags, "plan", "-f", inv, "-o", "json")...)
	for _, c := range parsePlan(t, r.stdout).Clusters {
		for _, h := range c.Hosts {
			if h.Upload || h.Action != "nothing" {
				t.Errorf("%s/%s after apply: %s, upload %v", c.Name, h.Address, h.Action, h.Upload)
			}
		}
	}
}
