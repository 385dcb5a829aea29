package rollout

import (
	"context"
	"strings"
	"testing"

	"github.com/k3sctl/k3sctl/internal/inventory"
	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/plan"
	"github.com/k3sctl/k3sctl/internal/ssh"
)

func TestFetchImagesOncePerVersionAndArch(t *testing.T) {
	clusters := []plan.Cluster{
		{Name: "site", Version: "v1.31.4+k3s1", Airgap: true,
			Servers: []plan.Host{{Address: "s1"}}, Agents: []plan.Host{{Address: "a1"}, {Address: "a2"}}},
		{Name: "lab", Version: "v1.31.4+k3s1", Servers: []plan.Host{{Address: "l1"}}},
	}
	facts := map[string]*plan.HostFacts{
		"s1": {Arch: k3s.AMD64}, "a1": {Arch: k3s.ARM64}, "a2": {Arch: k3s.ARM64}, "l1": {Arch: k3s.ARM},
	}
	var asked []plan.BinaryKey
	o := Options{Progress: func(string, ...any) {}, FetchImages: func(ctx context.Context, k plan.BinaryKey) (Fetched, error) {
		asked = append(asked, k)
		return Fetched{Path: "/cache/" + string(k.Arch), SHA256: "sum-" + string(k.Arch)}, nil
	}}
	images, paths, err := fetchImages(context.Background(), o, clusters, facts)
	if err != nil {
		t.Fatal(err)
	}
	if len(asked) != 2 || asked[0].Arch != k3s.AMD64 || asked[1].Arch != k3s.ARM64 {
		t.Errorf("fetched %v, want amd64 and arm64 once each (not the lab's arm)", asked)
	}
	arm := plan.BinaryKey{Version: "v1.31.4+k3s1", Arch: k3s.ARM64}
	if images[arm].Name != "k3s-airgap-images-arm64.tar.zst" || images[arm].SHA256 != "sum-arm64" || paths[arm] != "/cache/arm64" {
		t.Errorf("arm64: %+v %q", images[arm], paths[arm])
	}

	clusters[0].Version = ""
	if _, _, err := fetchImages(context.Background(), o, clusters, facts); err == nil || !strings.Contains(err.Error(), "--k3s-version") {
		t.Errorf("no version: %v", err)
	}
}

func TestAirgapTargetsHashTheArchives(t *testing.T) {
	spec := &plan.Spec{Clusters: []plan.Cluster{
		{Name: "a", Servers: []plan.Host{{Address: "x"}}},
		{Name: "b", Airgap: true, Agents: []plan.Host{{Address: "x"}, {Address: "y"}}},
	}}
	got := map[string]bool{}
	for _, tg := range hostTargets(spec) {
		got[tg.addr] = tg.airgap
	}
	if len(got) != 2 || !got["x"] || !got["y"] {
		t.Errorf("targets %v", got)
	}
}

func TestFromInventoryCarriesSiteSettings(t *testing.T) {
	inv, err := inventory.Parse("site.yaml", []byte(`apiVersion: k3sctl.io/v1alpha1
kind: Inventory
name: cabin
airgap: true
fixBoot: true
registries: {mirrors: {docker.io: {endpoint: ["https://mirror.lan:5000"]}}}
servers: [10.0.0.1]
agents: [{address: 10.0.0.2, fixBoot: true}]
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	spec, _, _ := FromInventory(inv, func(string) ssh.Options { return ssh.Options{} })
	c := spec.Clusters[0]
	if !c.Airgap || !c.FixBoot || c.Registries == nil || c.Registries.Mirrors["docker.io"].Endpoints[0] != "https://mirror.lan:5000" {
		t.Errorf("cluster %+v", c)
	}
	if c.Servers[0].FixBoot || !c.Agents[0].FixBoot {
		t.Errorf("hosts: server %v agent %v", c.Servers[0].FixBoot, c.Agents[0].FixBoot)
	}
}
