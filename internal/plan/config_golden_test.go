package plan

import (
	"path/filepath"
	"testing"

	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/secret"
)

// TestConfigGolden pins the bytes of config.yaml: a node whose file hash
// matches is left alone, so any change here makes every existing node
// restart on the next run.
func TestConfigGolden(t *testing.T) {
	c := &Cluster{Name: "edge", HA: true, APIAddress: "vip.lan", TLSSANs: []string{"k3s.lan"}, Token: secret.New("shortpw"),
		Servers: []Host{
			{Address: "10.0.0.10", Role: k3s.Server, NodeName: "cp-1", Labels: map[string]string{"zone": "a", "tier": "cp"}},
			{Address: "10.0.0.11", Role: k3s.Server, Config: map[string]any{"node-label": []any{"disk=ssd"}, "kubelet-arg": []any{"max-pods=200"}}},
		},
		Agents: []Host{
			{Address: "10.0.0.20", Role: k3s.Agent, NodeName: "w-1", Taints: []string{"gpu=true:NoSchedule"},
				Config: map[string]any{"node-ip": "10.0.0.20", "with-node-id": true}},
		},
		ServerConfig: map[string]any{
			"disable":                 []any{"traefik", "servicelb"},
			"tls-san":                 []any{"extra.lan", "vip.lan"},
			"write-kubeconfig-mode":   "644",
			"etcd-snapshot-retention": 10,
			"secrets-encryption":      true,
			"cluster-cidr":            "10.42.0.0/16,fd00:42::/56",
			"kube-apiserver-arg+":     []any{"audit-log-maxage=30"},
		},
		AgentConfig: map[string]any{"node-label": []any{"role=worker"}, "kubelet-arg": []any{"max-pods=110"}},
	}
	single := &Cluster{Name: "home", Servers: []Host{{Address: "192.168.1.50", Role: k3s.Server}}}
	// Two servers on PostgreSQL: HA as the inventory sets it for several
	// servers, which the datastore overrides.
	pg := &Cluster{Name: "shop", HA: true, Datastore: secret.New(testDSN),
		Servers: []Host{
			{Address: "10.0.1.10", Role: k3s.Server},
			{Address: "10.0.1.11", Role: k3s.Server, NodeName: "cp-2"},
		},
		Agents:       []Host{{Address: "10.0.1.20", Role: k3s.Agent}},
		ServerConfig: map[string]any{"disable": []any{"traefik"}},
	}
	for _, tc := range []struct {
		name  string
		c     *Cluster
		h     Host
		first bool
		token secret.Value
	}{
		{"single-server", single, single.Servers[0], true, secret.Value{}},
		{"ha-first-server", c, c.Servers[0], true, secret.Value{}},
		{"ha-joining-server", c, c.Servers[1], false, secret.New(fullTk)},
		{"agent", c, c.Agents[0], false, secret.New(fullTk)},
		{"datastore-first-server", pg, pg.Servers[0], true, secret.Value{}},
		{"datastore-second-server", pg, pg.Servers[1], false, secret.New(fullTk)},
		{"datastore-agent", pg, pg.Agents[0], false, secret.New(fullTk)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files, pending, err := Files(tc.c, tc.h, tc.first, tc.token, "systemd")
			if err != nil {
				t.Fatal(err)
			}
			if pending {
				t.Fatal("config pending")
			}
			var got []byte
			for _, f := range files {
				if f.Path == k3s.ConfigPath {
					got = f.Data
				}
			}
			golden(t, filepath.Join("..", "..", "testdata", "plan", "config", tc.name+".yaml"), got)
		})
	}
}
