package rollout

import (
	"context"
	"testing"

	"github.com/k3sctl/k3sctl/internal/inventory"
	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/plan"
	"github.com/k3sctl/k3sctl/internal/secret"
	"github.com/k3sctl/k3sctl/internal/ssh"
)

const fleet = `apiVersion: k3sctl.io/v1alpha1
kind: Inventory
defaults:
  ssh: {user: pi}
  version: v1.31.4+k3s1
clusters:
  - name: factory
    token: ${TOKEN}
    servers: [10.0.0.1, 10.0.0.2, 10.0.0.3]
    agents:
      - address: 10.0.0.11
        ssh: {user: admin, port: 2222, jump: ops@gw}
        labels: {zone: hall-2}
  - name: shop
    channel: v1.32
    servers: [192.168.1.10]
`

func TestFromInventory(t *testing.T) {
	inv, err := inventory.Parse("fleet.yaml", []byte(fleet), func(k string) (string, bool) {
		if k == "TOKEN" {
			return "s3cret", true
		}
		return "", false
	})
	if err != nil {
		t.Fatal(err)
	}
	base := func(addr string) ssh.Options { return ssh.Options{Address: addr, KeyFiles: []string{"flag.key"}} }
	spec, versions, sshFor := FromInventory(inv, base)
	if len(spec.Clusters) != 2 {
		t.Fatalf("clusters: %d", len(spec.Clusters))
	}
	f := spec.Clusters[0]
	if !f.HA || len(f.Servers) != 3 || len(f.Agents) != 1 || f.Agents[0].Role != k3s.Agent || f.Agents[0].Labels["zone"] != "hall-2" {
		t.Errorf("factory: %+v", f)
	}
	if f.Token.Reveal() != "s3cret" {
		t.Errorf("token not taken from the environment")
	}
	if spec.Clusters[1].HA {
		t.Error("a single-server cluster is not HA")
	}
	if versions["factory"] != "v1.31.4+k3s1" || versions["shop"] != "v1.32" {
		t.Errorf("versions = %v", versions)
	}
	o := sshFor("10.0.0.11")
	if o.User != "admin" || o.Port != 2222 || o.Jump != "ops@gw" || len(o.KeyFiles) != 1 || o.KeyFiles[0] != "flag.key" {
		t.Errorf("agent ssh options = %+v", o)
	}
	if o := sshFor("10.0.0.1"); o.User != "pi" || o.Port != 0 {
		t.Errorf("server ssh options = %+v (22 is left to ~/.ssh/config)", o)
	}
}

// An inventory whose clusters run different K3s versions plans: one
// binary per version and architecture.
func TestInventoryWithTwoVersionsPlans(t *testing.T) {
	const twoVersions = `apiVersion: k3sctl.io/v1alpha1
kind: Inventory
clusters:
  - name: old
    version: v1.31.4+k3s1
    servers: [10.0.0.1]
    agents: [10.0.0.2]
  - name: new
    version: v1.32.2+k3s1
    servers: [10.0.1.1]
`
	inv, err := inventory.Parse("fleet.yaml", []byte(twoVersions), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	spec, versions, _ := FromInventory(inv, func(addr string) ssh.Options { return ssh.Options{Address: addr} })
	w := newFakeHosts()
	f := &fakeFetcher{dir: t.TempDir()}
	o := options(w, f, spec)
	o.VersionOrChannel = versions
	p, err := Prepare(context.Background(), o)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	defer p.Close()
	if len(f.keys) != 2 {
		t.Errorf("fetched %v, want one binary per version", f.keys)
	}
	for _, cp := range p.Plan.Clusters {
		for _, h := range cp.Hosts {
			if h.Action != plan.ActionInstall || h.To != versions[cp.Name] {
				t.Errorf("%s/%s: %s to %s: %v", cp.Name, h.Address, h.Action, h.To, h.Reasons)
			}
		}
	}
}

func TestFromInventoryDatastore(t *testing.T) {
	const src = `apiVersion: k3sctl.io/v1alpha1
kind: Inventory
name: shop
version: v1.31.4+k3s1
datastore: postgres://k3s:${PW}@db.lan/k3s
servers: [10.0.0.1, 10.0.0.2]
agents: [10.0.0.3]
`
	inv, err := inventory.Parse("shop.yaml", []byte(src), func(k string) (string, bool) { return "pw-1", k == "PW" })
	if err != nil {
		t.Fatal(err)
	}
	spec, _, _ := FromInventory(inv, func(a string) ssh.Options { return ssh.Options{Address: a} })
	c := spec.Clusters[0]
	if c.HA {
		t.Error("servers on a datastore got embedded etcd (HA)")
	}
	if c.Datastore.Reveal() != "postgres://k3s:pw-1@db.lan/k3s" {
		t.Errorf("datastore not passed on")
	}
	if _, ok := c.ServerConfig["datastore-endpoint"]; ok {
		t.Error("datastore-endpoint in the servers' settings as well")
	}
	for i, h := range c.Servers {
		cfg, pending, err := plan.NodeConfig(&c, h, i == 0, secret.New("tok"))
		if err != nil || pending {
			t.Fatalf("%s: %v pending=%v", h.Address, err, pending)
		}
		if _, ok := cfg.Get("cluster-init"); ok || cfg.Secret("datastore-endpoint").IsZero() {
			t.Errorf("%s:\n%s", h.Address, cfg.Redacted())
		}
	}
}
