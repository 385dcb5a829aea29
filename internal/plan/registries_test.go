package plan

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/secret"
)

func TestRegistriesFileOnEveryNode(t *testing.T) {
	const v = "v1.31.4+k3s1"
	spec := haSpec(v)
	c := &spec.Clusters[0]
	c.Registries = &k3s.Registries{Configs: map[string]k3s.RegistryConfig{"mirror.lan:5000": {Username: "k3s", Password: secret.New("s3cret-registry-pw")}}}
	for _, h := range append(append([]Host{}, c.Servers...), c.Agents...) {
		files, _, err := Files(c, h, h.Address == c.Servers[0].Address, secret.New(fullTk), "systemd")
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(files, func(f RemoteFile) bool { return f.Path == k3s.RegistriesPath })
		if i < 0 || files[i].Mode != 0o600 || !strings.Contains(string(files[i].Data), "password: s3cret-registry-pw") {
			t.Errorf("%s: registries.yaml %v", h.Address, i)
		}
	}
	facts := map[string]*HostFacts{}
	for _, h := range append(append([]Host{}, c.Servers...), c.Agents...) {
		facts[h.Address] = fresh()
	}
	p, err := Build(Input{Spec: spec, Facts: facts, Binaries: bins(v)})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(p)
	if strings.Contains(string(out), "s3cret") {
		t.Error("the plan shows the registry password")
	}
	if !strings.Contains(string(out), k3s.RegistriesPath) {
		t.Error("the plan does not list registries.yaml among the changes")
	}
}
