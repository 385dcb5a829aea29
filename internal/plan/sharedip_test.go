package plan

import (
	"strings"
	"testing"

	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/secret"
)

// Two servers reached through port forwards of one public IP: their
// Address is a key ("203.0.113.7:2201"), never a network address.
func sharedIPCluster() *Cluster {
	return &Cluster{Name: "nat", HA: true, Token: secret.New("shortpw"), Version: "v1.31.4+k3s1",
		Servers: []Host{
			{Address: "203.0.113.7:2201", NetAddress: "203.0.113.7", Role: k3s.Server},
			{Address: "203.0.113.7:2202", NetAddress: "203.0.113.7", Role: k3s.Server, PrivateAddress: "10.1.0.2"},
		}}
}

func TestSharedAddressConfigUsesTheNetworkAddress(t *testing.T) {
	c := sharedIPCluster()
	cfg, _, err := NodeConfig(c, c.Servers[0], true, secret.Value{})
	if err != nil {
		t.Fatal(err)
	}
	first := string(cfg.Render())
	if !strings.Contains(first, "- 203.0.113.7\n") || strings.Contains(first, "2201") {
		t.Errorf("tls-san holds the network address, not the host key:\n%s", first)
	}
	cfg, _, err = NodeConfig(c, c.Servers[1], false, secret.New(fullTk))
	if err != nil {
		t.Fatal(err)
	}
	second := string(cfg.Render())
	if !strings.Contains(second, "server: https://203.0.113.7:6443") || strings.Contains(second, "2201") || strings.Contains(second, "2202") {
		t.Errorf("the joining server joins the first's network address:\n%s", second)
	}
	if c.Servers[1].JoinAddress() != "10.1.0.2" || c.Servers[0].JoinAddress() != "203.0.113.7" {
		t.Errorf("join addresses %q %q", c.Servers[0].JoinAddress(), c.Servers[1].JoinAddress())
	}
}

func TestSharedAddressPlanUsesTheNetworkAddress(t *testing.T) {
	c := sharedIPCluster()
	facts := map[string]*HostFacts{"203.0.113.7:2201": fresh(), "203.0.113.7:2202": fresh()}
	facts["203.0.113.7:2202"].Hostname = "pi2"
	p, err := Build(Input{Spec: Spec{Clusters: []Cluster{*c}}, Facts: facts,
		Binaries: bins("v1.31.4+k3s1")})
	if err != nil {
		t.Fatal(err)
	}
	cp := p.Clusters[0]
	if cp.JoinURL != "https://203.0.113.7:6443" || cp.APIAddress != "203.0.113.7" {
		t.Errorf("join URL %s, API address %s", cp.JoinURL, cp.APIAddress)
	}
	if len(cp.Hosts) != 2 || cp.Hosts[0].Address != "203.0.113.7:2201" || cp.Hosts[1].Address != "203.0.113.7:2202" {
		t.Errorf("hosts %+v", cp.Hosts)
	}
	// A node whose InternalIP is a host's network address is that host's.
	nodes := []ClusterNode{{Name: "pi", Server: true, Ready: true, Address: "203.0.113.7"}, {Name: "old", Ready: true, Address: "10.9.9.9"}}
	in := Input{Spec: Spec{Clusters: []Cluster{*c}}, Facts: map[string]*HostFacts{"203.0.113.7:2201": fresh(), "203.0.113.7:2202": fresh()},
		Nodes: map[string][]ClusterNode{"nat": nodes}}
	rs := planRemovals(in, c)
	if len(rs) != 1 || rs[0].Node != "old" {
		t.Errorf("removals %+v, want only the node no host claims", rs)
	}
}

// A host keyed past its address widens the plan's host column, so the
// roles stay in one column.
func TestPrintWidensForLongHostKeys(t *testing.T) {
	p := &Plan{Clusters: []ClusterPlan{{Name: "shops", Version: "v1.31.4+k3s1", Hosts: []HostPlan{
		{Address: "192.168.1.10 via ops@jump-b", Role: "server", First: true, Action: ActionNothing, Step: 1},
		{Address: "10.0.0.2", Role: "agent", Action: ActionNothing, Step: 2},
	}}}}
	var b strings.Builder
	Print(&b, p)
	var cols []int
	for _, l := range strings.Split(b.String(), "\n") {
		trimmed := strings.TrimSpace(l)
		if strings.HasPrefix(trimmed, "1. ") || strings.HasPrefix(trimmed, "2. ") {
			cols = append(cols, strings.Index(l, "("))
		}
	}
	if len(cols) != 2 || cols[0] != cols[1] {
		t.Errorf("role columns at %v:\n%s", cols, b.String())
	}
}
