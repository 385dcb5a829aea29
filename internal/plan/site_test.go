package plan

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/secret"
)

func siteCluster() *Cluster {
	return &Cluster{Name: "site", Version: "v1.31.4+k3s1",
		Servers: []Host{{Address: "192.168.1.10", Role: k3s.Server, PrivateAddress: "10.0.0.10", Interface: "eth1"}},
		Agents:  []Host{{Address: "192.168.1.11", Role: k3s.Agent, PrivateAddress: "10.0.0.11"}},
	}
}

// TestConfigPrivateAddressGolden: what K3s advertises comes from
// privateAddress and interface, and agents join the server's private
// address.
func TestConfigPrivateAddressGolden(t *testing.T) {
	c := siteCluster()
	for _, tc := range []struct {
		name  string
		h     Host
		first bool
	}{
		{"private-first-server", c.Servers[0], true},
		{"private-agent", c.Agents[0], false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, pending, err := NodeConfig(c, tc.h, tc.first, secret.New(fullTk))
			if err != nil || pending {
				t.Fatalf("pending %v, err %v", pending, err)
			}
			golden(t, filepath.Join("..", "..", "testdata", "plan", "config", tc.name+".yaml"), cfg.Render())
		})
	}
	// A joining server goes to the first server's private address too.
	c.Servers = append(c.Servers, Host{Address: "192.168.1.12", Role: k3s.Server, PrivateAddress: "10.0.0.12"})
	cfg, _, err := NodeConfig(c, c.Servers[1], false, secret.New(fullTk))
	if err != nil || !strings.Contains(string(cfg.Render()), "\nserver: https://10.0.0.10:6443\n") || !strings.Contains(string(cfg.Render()), "\nadvertise-address: 10.0.0.12\n") {
		t.Errorf("joining server (%v):\n%s", err, cfg.Render())
	}
	c.Servers = c.Servers[:1]
	p, err := Build(Input{Spec: Spec{Clusters: []Cluster{*c}}, Facts: map[string]*HostFacts{"192.168.1.10": fresh(), "192.168.1.11": fresh()}, Binaries: bins(c.Version)})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Clusters[0].JoinURL; got != "https://10.0.0.10:6443" {
		t.Errorf("join URL %s, want the first server's private address", got)
	}
	if got := p.Clusters[0].APIAddress; got != "192.168.1.10" {
		t.Errorf("API address %s, want the address k3sctl reaches the server on", got)
	}
}

func TestConfigPrivateAddressConflicts(t *testing.T) {
	c := siteCluster()
	c.Servers[0].Config = map[string]any{"node-ip": "10.0.0.99"}
	if _, _, err := NodeConfig(c, c.Servers[0], true, secret.Value{}); err == nil || !strings.Contains(err.Error(), "node-ip") || !strings.Contains(err.Error(), "privateAddress") {
		t.Errorf("node-ip beside privateAddress: %v", err)
	}
	c = siteCluster()
	c.AgentConfig = map[string]any{"flannel-iface": "eth2"}
	c.Agents[0].Interface = "eth1"
	if _, _, err := NodeConfig(c, c.Agents[0], false, secret.New(fullTk)); err == nil || !strings.Contains(err.Error(), "flannel-iface") {
		t.Errorf("flannel-iface beside interface: %v", err)
	}
}

func envOf(t *testing.T, c *Cluster, h Host) (string, RemoteFile) {
	t.Helper()
	files, _, err := Files(c, h, false, secret.New(fullTk), "systemd")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if f.Path == k3s.EnvPath(h.Role) {
			return string(f.Data), f
		}
	}
	t.Fatalf("no %s among %d files", k3s.EnvPath(h.Role), len(files))
	return "", RemoteFile{}
}

func TestServiceEnvProxy(t *testing.T) {
	c := siteCluster()
	// Without a proxy the file is only the header, as before.
	if env, _ := envOf(t, c, c.Agents[0]); strings.Contains(env, "PROXY") {
		t.Fatalf("env without a proxy:\n%s", env)
	}
	c.ServerConfig = map[string]any{"cluster-cidr": "10.52.0.0/16", "service-cidr": "10.53.0.0/16"}
	c.Proxy = &Proxy{HTTP: secret.New("http://ops:pw@proxy:3128"), HTTPS: secret.New("http://ops:pw@proxy:3128"),
		NoProxy: []string{".corp.example.com", "localhost"}, ContainerdHTTPS: secret.New("http://mirror:3128")}
	env, f := envOf(t, c, c.Agents[0])
	noProxy := ".corp.example.com,localhost,127.0.0.1,10.52.0.0/16,10.53.0.0/16,.svc,.cluster.local,192.168.1.10,10.0.0.10,192.168.1.11,10.0.0.11"
	for _, want := range []string{
		"\nHTTP_PROXY=http://ops:pw@proxy:3128\n",
		"\nHTTPS_PROXY=http://ops:pw@proxy:3128\n",
		"\nNO_PROXY=" + noProxy + "\n",
		"\nCONTAINERD_HTTPS_PROXY=http://mirror:3128\n",
		"\nCONTAINERD_NO_PROXY=localhost,127.0.0.1,10.52.0.0/16,",
	} {
		if !strings.Contains(env, want) {
			t.Errorf("env file lacks %q:\n%s", want, env)
		}
	}
	if f.Mode != 0o600 {
		t.Errorf("env file mode %o", f.Mode)
	}

	// K3s's defaults fill in unset CIDRs; a host's proxy replaces the
	// cluster's.
	c.ServerConfig = nil
	c.Agents[0].Proxy = &Proxy{HTTPS: secret.New("http://other:8080")}
	env, _ = envOf(t, c, c.Agents[0])
	if !strings.Contains(env, "\nNO_PROXY=localhost,127.0.0.1,10.42.0.0/16,10.43.0.0/16,.svc,.cluster.local,") ||
		strings.Contains(env, "HTTP_PROXY=") || !strings.Contains(env, "HTTPS_PROXY=http://other:8080") {
		t.Errorf("host override:\n%s", env)
	}

	// A change of proxy is a change of a hashed file: the converged host
	// is reconfigured (K3s restarts), and the plan never shows the URL.
	const v = "v1.31.4+k3s1"
	c = siteCluster()
	h := c.Servers[0]
	facts := converged(c, h, true, secret.Value{}, v)
	facts.Interfaces = []Interface{{Name: "eth0", Addresses: []string{"192.168.1.10/24"}}, {Name: "eth1", Addresses: []string{"10.0.0.10/24"}}}
	c.Proxy = &Proxy{HTTPS: secret.New("http://ops:hunter2@proxy:3128")}
	p, err := Build(Input{Spec: Spec{Clusters: []Cluster{{Name: c.Name, Version: v, Servers: c.Servers, Proxy: c.Proxy}}},
		Facts: map[string]*HostFacts{h.Address: facts}, Binaries: bins(v)})
	if err != nil {
		t.Fatal(err)
	}
	hp := p.Clusters[0].Hosts[0]
	if hp.Action != ActionReconfigure || !slices.Contains(hp.Changes, k3s.EnvPath(k3s.Server)) {
		t.Fatalf("proxy change: action %s, changes %v", hp.Action, hp.Changes)
	}
	var out strings.Builder
	Print(&out, p)
	if strings.Contains(out.String(), "hunter2") || strings.Contains(strings.Join(hp.Reasons, " "), "hunter2") {
		t.Errorf("plan shows the proxy password:\n%s", out.String())
	}
	// The env file refuses what it cannot carry safely.
	c.Proxy = &Proxy{HTTPS: secret.New("http://o'hara@proxy:3128")}
	if _, _, err := Files(c, h, true, secret.Value{}, "systemd"); err == nil || strings.Contains(err.Error(), "o'hara") {
		t.Errorf("single quote in a proxy URL: %v", err)
	}
}

func TestInterfaceNoteAndChecks(t *testing.T) {
	const v = "v1.31.4+k3s1"
	two := func() *HostFacts {
		f := fresh()
		f.Interfaces = []Interface{{Name: "eth0", Addresses: []string{"172.20.0.5/16"}}, {Name: "eth1", Addresses: []string{"10.0.0.5/24", "fd00::5/64"}}}
		f.DefaultInterface = "eth0"
		return f
	}
	plan := func(h Host, f *HostFacts) HostPlan {
		t.Helper()
		p, err := Build(Input{Spec: Spec{Clusters: []Cluster{{Name: "c", Version: v, Servers: []Host{h}}}},
			Facts: map[string]*HostFacts{h.Address: f}, Binaries: bins(v)})
		if err != nil {
			t.Fatal(err)
		}
		return p.Clusters[0].Hosts[0]
	}
	h := Host{Address: "172.20.0.5", Role: k3s.Server}
	hp := plan(h, two())
	note := strings.Join(hp.Reasons, "\n")
	if hp.Action != ActionInstall || !strings.Contains(note, "2 network interfaces (eth0 172.20.0.5, eth1 10.0.0.5 fd00::5)") ||
		!strings.Contains(note, "K3s will advertise eth0 (172.20.0.5), the default route's") ||
		!strings.Contains(note, "set privateAddress: or interface: on the host") {
		t.Errorf("%s: %q", hp.Action, hp.Reasons)
	}
	// One interface, or a choice made: no note.
	one := fresh()
	one.Interfaces = two().Interfaces[:1]
	for _, tc := range []struct {
		h Host
		f *HostFacts
	}{
		{h, one},
		{Host{Address: h.Address, Role: k3s.Server, PrivateAddress: "10.0.0.5"}, two()},
		{Host{Address: h.Address, Role: k3s.Server, Config: map[string]any{"node-ip": "10.0.0.5"}}, two()},
	} {
		if hp := plan(tc.h, tc.f); hp.Action != ActionInstall || strings.Contains(strings.Join(hp.Reasons, " "), "interfaces") {
			t.Errorf("%+v: %s %q", tc.h, hp.Action, hp.Reasons)
		}
	}
	// A choice the host cannot honour is refused with what it has.
	for _, tc := range []struct {
		h    Host
		want string
	}{
		{Host{Address: h.Address, Role: k3s.Server, PrivateAddress: "10.9.9.9"}, "privateAddress 10.9.9.9 is not an address of the host (eth0 172.20.0.5, eth1 10.0.0.5 fd00::5)"},
		{Host{Address: h.Address, Role: k3s.Server, Interface: "wlan0"}, "interface wlan0 is not on the host (it has eth0, eth1)"},
		{Host{Address: h.Address, Role: k3s.Server, Interface: "eth0", PrivateAddress: "10.0.0.5"}, "privateAddress 10.0.0.5 is on eth1, not on interface eth0"},
	} {
		if hp := plan(tc.h, two()); hp.Action != ActionRefuse || !strings.Contains(strings.Join(hp.Reasons, " "), tc.want) {
			t.Errorf("%+v: %s %q, want %q", tc.h, hp.Action, hp.Reasons, tc.want)
		}
	}
}
