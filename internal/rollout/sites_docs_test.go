package rollout

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/k3sctl/k3sctl/internal/inventory"
	"github.com/k3sctl/k3sctl/internal/plan"
	"github.com/k3sctl/k3sctl/internal/ssh"
)

// TestSitesDocExamples: the inventories of docs/sites.md load, and the
// environment file it shows is the one k3sctl writes for them.
func TestSitesDocExamples(t *testing.T) {
	doc, err := os.ReadFile("../../docs/sites.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```(yaml|text)\n(.*?)```").FindAllStringSubmatch(string(doc), -1)
	var specs []*plan.Spec
	var shownEnv string
	for _, b := range blocks {
		switch {
		case b[1] == "yaml":
			env := func(k string) (string, bool) { return "pw", k == "PROXY_PASSWORD" }
			inv, err := inventory.Parse("sites.yaml", []byte(b[2]), env)
			if err != nil {
				t.Fatalf("docs/sites.md example does not load:\n%v\n%s", err, b[2])
			}
			spec, _, _ := FromInventory(inv, func(string) ssh.Options { return ssh.Options{} })
			specs = append(specs, spec)
		case strings.Contains(b[2], "NO_PROXY="):
			shownEnv = b[2]
		}
	}
	if len(specs) != 2 || shownEnv == "" {
		t.Fatalf("docs/sites.md: %d inventories, env shown: %v", len(specs), shownEnv != "")
	}
	c := &specs[0].Clusters[0]
	env := plan.ServiceEnv(c, c.Servers[0])
	for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"} {
		want := strings.Replace(env[k], ":pw@", ":<password>@", 1)
		if !strings.Contains(shownEnv, k+"="+want+"\n") {
			t.Errorf("docs/sites.md shows another %s than k3sctl writes: %s", k, want)
		}
	}
	agent := plan.ServiceEnv(c, c.Agents[1])
	if !strings.HasPrefix(agent["NO_PROXY"], ".shop.lan,registry.lan,localhost,") || agent["HTTP_PROXY"] != env["HTTP_PROXY"] {
		t.Errorf("host override: %v", agent)
	}
	dual := specs[1].Clusters[0]
	if dual.Servers[0].PrivateAddress != "10.0.0.10" || dual.Agents[0].PrivateAddress != "10.0.0.11" {
		t.Errorf("privateAddress example: %+v", dual)
	}
}
