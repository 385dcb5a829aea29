package kubeconfig

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files under testdata/kubeconfig")

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "kubeconfig", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// golden compares got with testdata/kubeconfig/<test>/<name>, or rewrites
// it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("..", "..", "testdata", "kubeconfig", t.Name(), name)
	if *updateGolden {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("output differs from %s (run go test -update if intended)\n--- got ---\n%s", path, got)
	}
}

// kubeconfig is the parts of a kubeconfig the tests look at.
type kubeconfig struct {
	APIVersion     string `yaml:"apiVersion"`
	Kind           string `yaml:"kind"`
	CurrentContext string `yaml:"current-context"`
	Clusters       []struct {
		Name    string `yaml:"name"`
		Cluster struct {
			Server string `yaml:"server"`
			CA     string `yaml:"certificate-authority-data"`
		} `yaml:"cluster"`
	} `yaml:"clusters"`
	Contexts []struct {
		Name    string `yaml:"name"`
		Context struct {
			Cluster   string `yaml:"cluster"`
			User      string `yaml:"user"`
			Namespace string `yaml:"namespace"`
		} `yaml:"context"`
	} `yaml:"contexts"`
	Users []struct {
		Name string         `yaml:"name"`
		User map[string]any `yaml:"user"`
	} `yaml:"users"`
}

func parse(t *testing.T, b []byte) kubeconfig {
	t.Helper()
	var k kubeconfig
	if err := yaml.Unmarshal(b, &k); err != nil {
		t.Fatalf("result does not parse: %v\n%s", err, b)
	}
	return k
}

func names(k kubeconfig) (clusters, contexts, users []string) {
	for _, c := range k.Clusters {
		clusters = append(clusters, c.Name)
	}
	for _, c := range k.Contexts {
		contexts = append(contexts, c.Name)
	}
	for _, u := range k.Users {
		users = append(users, u.Name)
	}
	return
}

func join(s []string) string { return strings.Join(s, ",") }

var edge1 = MergeOptions{Name: "edge-1", Server: "https://203.0.113.7:6443"}

func TestMergeIntoNothing(t *testing.T) {
	for _, existing := range [][]byte{nil, []byte(""), []byte("\n\n"), []byte("# nothing yet\n")} {
		got, err := Merge(existing, fixture(t, "k3s.yaml"), edge1)
		if err != nil {
			t.Fatal(err)
		}
		k := parse(t, got)
		if k.APIVersion != "v1" || k.Kind != "Config" || k.CurrentContext != "edge-1" {
			t.Errorf("apiVersion/kind/current-context = %q/%q/%q", k.APIVersion, k.Kind, k.CurrentContext)
		}
		if len(k.Clusters) != 1 || k.Clusters[0].Cluster.Server != edge1.Server || !strings.HasPrefix(k.Clusters[0].Cluster.CA, "NEWC") {
			t.Errorf("clusters = %+v", k.Clusters)
		}
		if len(k.Contexts) != 1 || k.Contexts[0].Context.Cluster != "edge-1" || k.Contexts[0].Context.User != "edge-1" {
			t.Errorf("contexts = %+v", k.Contexts)
		}
		if len(k.Users) != 1 || k.Users[0].Name != "edge-1" || !strings.HasPrefix(k.Users[0].User["client-key-data"].(string), "NEWK") {
			t.Errorf("users = %+v", k.Users)
		}
		if !strings.Contains(string(got), "preferences: {}\n") {
			t.Errorf("no preferences: {} in\n%s", got)
		}
	}
	got, _ := Merge(nil, fixture(t, "k3s.yaml"), edge1)
	golden(t, "config", got)
	withComment, _ := Merge([]byte("# nothing yet\n"), fixture(t, "k3s.yaml"), edge1)
	if string(withComment) != "# nothing yet\n"+string(got) {
		t.Errorf("a file of comments lost them:\n%s", withComment)
	}
}

func TestMergeKeepsEverythingElse(t *testing.T) {
	existing := fixture(t, "existing.yaml")
	got, err := Merge(existing, fixture(t, "k3s.yaml"), edge1)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "config", got)

	k := parse(t, got)
	cl, cx, us := names(k)
	if join(cl) != "prod,edge-1,lab" || join(cx) != "prod,edge-1,lab" || join(us) != "prod-admin,edge-1,lab" {
		t.Errorf("entries = %v %v %v, want edge-1 replaced in place", cl, cx, us)
	}
	if k.CurrentContext != "prod" {
		t.Errorf("current-context = %q, want prod kept without SwitchContext", k.CurrentContext)
	}
	if k.Clusters[1].Cluster.Server != edge1.Server {
		t.Errorf("edge-1 server = %q", k.Clusters[1].Cluster.Server)
	}
	if k.Contexts[0].Context.Namespace != "payments" {
		t.Errorf("prod namespace lost: %+v", k.Contexts[0])
	}

	// Line by line: only lines of the old edge-1 entries go, only lines of
	// the new ones come; everything else is untouched, in order.
	removed, added := lineDiff(strings.Split(string(existing), "\n"), strings.Split(string(got), "\n"))
	for _, l := range removed {
		if !strings.Contains(l, "OLD") && !strings.Contains(l, "10.9.9.9") {
			t.Errorf("line removed that was not part of the old edge-1 entries: %q", l)
		}
	}
	for _, l := range added {
		if !strings.Contains(l, "NEW") && !strings.Contains(l, "203.0.113.7") {
			t.Errorf("line added that is not part of the new edge-1 entries: %q", l)
		}
	}
	if len(removed) != 4 || len(added) != 4 {
		t.Errorf("removed %d lines and added %d, want 4 and 4:\n-%s\n+%s", len(removed), len(added),
			strings.Join(removed, "\n-"), strings.Join(added, "\n+"))
	}
	if strings.Contains(string(got), "OLD") {
		t.Error("stale credentials of edge-1 survived")
	}
}

// lineDiff returns the lines only in a and only in b, by longest common
// subsequence.
func lineDiff(a, b []string) (onlyA, onlyB []string) {
	n, m := len(a), len(b)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	i, j := 0, 0
	for i < n && j < m {
		switch {
		case a[i] == b[j]:
			i++
			j++
		case lcs[i+1][j] >= lcs[i][j+1]:
			onlyA = append(onlyA, a[i])
			i++
		default:
			onlyB = append(onlyB, b[j])
			j++
		}
	}
	return append(onlyA, a[i:]...), append(onlyB, b[j:]...)
}

func TestMergeNewNameAppends(t *testing.T) {
	existing := fixture(t, "existing.yaml")
	got, err := Merge(existing, fixture(t, "k3s.yaml"), MergeOptions{Name: "edge-2", Server: "https://edge-2.example:6443", SwitchContext: true})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "config", got)
	k := parse(t, got)
	cl, cx, us := names(k)
	if join(cl) != "prod,edge-1,lab,edge-2" || join(cx) != "prod,edge-1,lab,edge-2" || join(us) != "prod-admin,edge-1,lab,edge-2" {
		t.Errorf("entries = %v %v %v, want edge-2 appended", cl, cx, us)
	}
	if k.CurrentContext != "edge-2" {
		t.Errorf("current-context = %q, want edge-2 with SwitchContext", k.CurrentContext)
	}
	removed, added := lineDiff(strings.Split(string(existing), "\n"), strings.Split(string(got), "\n"))
	if len(removed) != 1 || removed[0] != "current-context: prod" {
		t.Errorf("removed lines %q, want only the old current-context", removed)
	}
	if len(added) != 13 {
		t.Errorf("added %d lines, want 13 (three entries and current-context):\n%s", len(added), strings.Join(added, "\n"))
	}
}

func TestMergeIsIdempotent(t *testing.T) {
	for _, existing := range [][]byte{nil, fixture(t, "existing.yaml")} {
		once, err := Merge(existing, fixture(t, "k3s.yaml"), edge1)
		if err != nil {
			t.Fatal(err)
		}
		twice, err := Merge(once, fixture(t, "k3s.yaml"), edge1)
		if err != nil {
			t.Fatal(err)
		}
		if string(once) != string(twice) {
			t.Errorf("second merge changed the file:\n%s\n---\n%s", once, twice)
		}
	}
}

func TestMergeCurrentContext(t *testing.T) {
	k3s := fixture(t, "k3s.yaml")
	for _, tc := range []struct {
		name     string
		existing string
		switchTo bool
		want     string
	}{
		{"kept", "apiVersion: v1\nkind: Config\ncurrent-context: a\ncontexts: []\n", false, "a"},
		{"switched", "apiVersion: v1\nkind: Config\ncurrent-context: a\ncontexts: []\n", true, "edge-1"},
		{"missing", "apiVersion: v1\nkind: Config\nclusters: []\n", false, "edge-1"},
		{"empty", "apiVersion: v1\nkind: Config\ncurrent-context: \"\"\n", false, "edge-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := edge1
			o.SwitchContext = tc.switchTo
			got, err := Merge([]byte(tc.existing), k3s, o)
			if err != nil {
				t.Fatal(err)
			}
			if k := parse(t, got); k.CurrentContext != tc.want {
				t.Errorf("current-context = %q, want %q\n%s", k.CurrentContext, tc.want, got)
			}
		})
	}
}

func TestMergeOtherLayouts(t *testing.T) {
	k3s := fixture(t, "k3s.yaml")
	for _, tc := range []struct {
		name, existing string
	}{
		{"nulls", "apiVersion: v1\nclusters: null\ncontexts: null\ncurrent-context: \"\"\nkind: Config\npreferences: {}\nusers: null\n"},
		{"empty-flow", "apiVersion: v1\nclusters: []\ncontexts: []\nkind: Config\nusers: []\n"},
		{"flow-items", "apiVersion: v1\nclusters: [{name: a, cluster: {server: 'https://a:6443'}}, {name: edge-1, cluster: {server: 'https://old:6443'}}]\ncontexts: []\nkind: Config\nusers: []\n"},
		{"indented-lists", "apiVersion: v1\nclusters:\n  - cluster:\n      server: https://a:6443\n    name: a\n\n  - cluster:\n      server: https://old:6443\n    name: edge-1\ncontexts:\n  - context:\n      cluster: a\n      user: a\n    name: a\ncurrent-context: a\nkind: Config\nusers:\n  - name: a\n    user:\n      token: t\n"},
		{"dash-alone", "apiVersion: v1\nclusters:\n-\n  cluster:\n    server: https://a:6443\n  name: a\nkind: Config\n"},
		{"json", `{"apiVersion": "v1", "kind": "Config", "clusters": [{"name": "a", "cluster": {"server": "https://a:6443"}}], "users": [], "contexts": []}`},
		{"no-final-newline", "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    server: https://a:6443\n  name: a"},
		{"crlf", "apiVersion: v1\r\nkind: Config\r\nclusters:\r\n- cluster:\r\n    server: https://a:6443\r\n  name: a\r\ncurrent-context: a\r\n"},
		{"duplicates", "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    server: https://old1:6443\n  name: edge-1\n- cluster:\n    server: https://a:6443\n  name: a\n- cluster:\n    server: https://old2:6443\n  name: edge-1\n"},
		{"only-comments-after", "apiVersion: v1\nkind: Config\nusers:\n- name: a\n  user:\n    token: t\n    # rotate monthly\n\n# footer\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Merge([]byte(tc.existing), k3s, edge1)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "config", got)
			k := parse(t, got)
			cl, cx, us := names(k)
			for _, list := range [][]string{cl, cx, us} {
				n := 0
				for _, name := range list {
					if name == "edge-1" {
						n++
					}
				}
				if n != 1 {
					t.Errorf("edge-1 appears %d times in %v", n, list)
				}
			}
			for _, c := range k.Clusters {
				if c.Name == "edge-1" && c.Cluster.Server != edge1.Server {
					t.Errorf("edge-1 server = %q", c.Cluster.Server)
				}
				if strings.Contains(c.Cluster.Server, "old") {
					t.Errorf("stale cluster kept: %+v", c)
				}
			}
			if tc.name == "crlf" && strings.Count(string(got), "\n") != strings.Count(string(got), "\r\n") {
				t.Errorf("line ends mixed:\n%q", got)
			}
			twice, err := Merge(got, k3s, edge1)
			if err != nil || string(twice) != string(got) {
				t.Errorf("second merge changed the file (err %v):\n%s", err, twice)
			}
		})
	}
}

func TestMergeRefusesMalformed(t *testing.T) {
	k3s := fixture(t, "k3s.yaml")
	for name, existing := range map[string]string{
		"syntax":        "apiVersion: v1\nclusters: [\n",
		"list":          "- a\n- b\n",
		"scalar":        "hello\n",
		"wrong-kind":    "apiVersion: v1\nkind: Pod\n",
		"wrong-version": "apiVersion: v2\nkind: Config\n",
		"clusters-map":  "apiVersion: v1\nkind: Config\nclusters:\n  a: b\n",
		"entry-scalar":  "apiVersion: v1\nkind: Config\nusers:\n- bob\n",
		"two-docs":      "apiVersion: v1\nkind: Config\n---\napiVersion: v1\nkind: Config\n",
	} {
		if out, err := Merge([]byte(existing), k3s, edge1); err == nil {
			t.Errorf("%s: no error, got\n%s", name, out)
		}
	}
}

func TestMergeRefusesBadIncoming(t *testing.T) {
	for name, tc := range map[string]struct {
		incoming string
		o        MergeOptions
	}{
		"empty":         {"", edge1},
		"no-context":    {"apiVersion: v1\nkind: Config\nclusters: []\nusers: []\ncontexts: []\n", edge1},
		"dangling":      {"apiVersion: v1\nkind: Config\ncontexts:\n- name: default\n  context: {cluster: default, user: default}\n", edge1},
		"no-name":       {string(fixture(t, "k3s.yaml")), MergeOptions{Server: edge1.Server}},
		"http-server":   {string(fixture(t, "k3s.yaml")), MergeOptions{Name: "x", Server: "http://1.2.3.4:6443"}},
		"server-no-url": {string(fixture(t, "k3s.yaml")), MergeOptions{Name: "x", Server: "1.2.3.4"}},
	} {
		if out, err := Merge(nil, []byte(tc.incoming), tc.o); err == nil {
			t.Errorf("%s: no error, got\n%s", name, out)
		}
	}
}

func TestMergeKeepsServerWhenNotGiven(t *testing.T) {
	got, err := Merge(nil, fixture(t, "k3s.yaml"), MergeOptions{Name: "local"})
	if err != nil {
		t.Fatal(err)
	}
	if k := parse(t, got); k.Clusters[0].Cluster.Server != "https://127.0.0.1:6443" {
		t.Errorf("server = %q", k.Clusters[0].Cluster.Server)
	}
}

func TestRemove(t *testing.T) {
	existing := fixture(t, "existing.yaml")
	got, err := Remove(existing, "edge-1")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "config", got)
	k := parse(t, got)
	cl, cx, us := names(k)
	if join(cl) != "prod,lab" || join(cx) != "prod,lab" || join(us) != "prod-admin,lab" {
		t.Errorf("entries = %v %v %v", cl, cx, us)
	}
	removed, added := lineDiff(strings.Split(string(existing), "\n"), strings.Split(string(got), "\n"))
	if len(added) != 0 {
		t.Errorf("Remove added lines: %q", added)
	}
	for _, l := range removed {
		structural := map[string]bool{"- cluster:": true, "- context:": true, "user:": true}
		if !strings.Contains(l, "OLD") && !strings.Contains(l, "10.9.9.9") && !strings.Contains(l, "edge-1") && !structural[strings.TrimSpace(l)] {
			t.Errorf("removed a line that belongs to another entry: %q", l)
		}
	}

	// The current context goes with it.
	got, err = Remove(got, "prod")
	if err != nil {
		t.Fatal(err)
	}
	if k := parse(t, got); k.CurrentContext != "" {
		t.Errorf("current-context = %q after removing it", k.CurrentContext)
	}
	// Everything gone: the lists stay lists.
	got, err = Remove(got, "lab")
	if err != nil {
		t.Fatal(err)
	}
	for _, list := range []string{"clusters: []", "contexts: []"} {
		if !strings.Contains(string(got), list+"\n") {
			t.Errorf("no %q in\n%s", list, got)
		}
	}
	// Removing what is not there changes nothing.
	again, err := Remove(existing, "nope")
	if err != nil || string(again) != string(existing) {
		t.Errorf("Remove of an unknown name changed the file (err %v)", err)
	}
	if out, err := Remove(nil, "x"); err != nil || len(out) != 0 {
		t.Errorf("Remove from nothing = %q, %v", out, err)
	}
}

// TestKubectlReadsResult has the real kubectl read merged files.
func TestKubectlReadsResult(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("kubectl not found, and CI needs this test")
		}
		t.Skip("kubectl not installed")
	}
	merged, err := Merge(fixture(t, "existing.yaml"), fixture(t, "k3s.yaml"), MergeOptions{Name: "edge-2", Server: "https://203.0.113.8:6443"})
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := Merge(nil, fixture(t, "k3s.yaml"), edge1)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"merged": merged, "fresh": fresh} {
		path := filepath.Join(t.TempDir(), "config")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(kubectl, "config", "get-contexts", "-o", "name", "--kubeconfig", path).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: kubectl config get-contexts: %v\n%s", name, err, out)
		}
		ctx := "edge-2"
		if name == "fresh" {
			ctx = "edge-1"
		}
		if !strings.Contains("\n"+string(out), "\n"+ctx+"\n") {
			t.Errorf("%s: kubectl does not list %s:\n%s", name, ctx, out)
		}
		out, err = exec.Command(kubectl, "config", "view", "--kubeconfig", path, "-o",
			"jsonpath={.clusters[?(@.name==\""+ctx+"\")].cluster.server}").CombinedOutput()
		if err != nil {
			t.Fatalf("%s: kubectl config view: %v\n%s", name, err, out)
		}
		if want := map[string]string{"merged": "https://203.0.113.8:6443", "fresh": edge1.Server}[name]; string(out) != want {
			t.Errorf("%s: kubectl sees server %q, want %q", name, out, want)
		}
	}
}
