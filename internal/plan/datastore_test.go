package plan

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/secret"
)

const (
	testDBPassword = "db-hunter2"
	testDSN        = "postgres://k3s:" + testDBPassword + "@10.0.1.5:5432/k3s"
)

func datastoreSpec(version string, viaConfig bool) Spec {
	c := Cluster{Name: "shop", Version: version, HA: true,
		Servers: []Host{{Address: "10.0.1.10", Role: k3s.Server}, {Address: "10.0.1.11", Role: k3s.Server}},
		Agents:  []Host{{Address: "10.0.1.20", Role: k3s.Agent}},
	}
	if viaConfig {
		c.ServerConfig = map[string]any{"datastore-endpoint": testDSN}
	} else {
		c.Datastore = secret.New(testDSN)
	}
	return Spec{Clusters: []Cluster{c}}
}

// render is h's config.yaml, or fails the test.
func render(t *testing.T, c *Cluster, h Host, first bool, token secret.Value) (string, bool) {
	t.Helper()
	cfg, pending, err := NodeConfig(c, h, first, token)
	if err != nil {
		t.Fatalf("%s: %v", h.Address, err)
	}
	return string(cfg.Render()), pending
}

func TestDatastoreNodeConfig(t *testing.T) {
	for _, viaConfig := range []bool{false, true} {
		name := "datastore"
		if viaConfig {
			name = "datastore-endpoint"
		}
		t.Run(name, func(t *testing.T) {
			s := datastoreSpec("v1.31.4+k3s1", viaConfig)
			c := &s.Clusters[0]
			first, pending := render(t, c, c.Servers[0], true, secret.Value{})
			if pending {
				t.Fatal("the first server waits for a token it generates itself")
			}
			if _, pending := render(t, c, c.Servers[1], false, secret.Value{}); !pending {
				t.Fatal("second server without the token: want its config pending")
			}
			second, _ := render(t, c, c.Servers[1], false, secret.New(fullTk))
			agent, _ := render(t, c, c.Agents[0], false, secret.New(fullTk))
			for _, srv := range []string{first, second} {
				if !strings.Contains(srv, "datastore-endpoint: "+testDSN+"\n") {
					t.Errorf("server config lacks the datastore:\n%s", srv)
				}
				if strings.Count(srv, "datastore-endpoint") != 1 {
					t.Errorf("datastore-endpoint written more than once:\n%s", srv)
				}
				if strings.Contains(srv, "cluster-init") || strings.Contains(srv, "\nserver:") {
					t.Errorf("a server on a datastore got cluster-init or server:\n%s", srv)
				}
			}
			if strings.Contains(first, "token:") {
				t.Errorf("first server without a token in the inventory got one:\n%s", first)
			}
			if !strings.Contains(second, "token: "+fullTk) {
				t.Errorf("second server lacks the cluster token:\n%s", second)
			}
			if !strings.Contains(agent, "server: https://10.0.1.10:6443") || !strings.Contains(agent, "token: "+fullTk) {
				t.Errorf("agent does not join the first server with the token:\n%s", agent)
			}
			if strings.Contains(agent, "datastore") {
				t.Errorf("agent got the datastore:\n%s", agent)
			}
		})
	}
}

func TestDatastoreWithTokenKnownUpFront(t *testing.T) {
	s := datastoreSpec("v1.31.4+k3s1", false)
	c := &s.Clusters[0]
	c.Token = secret.New("shared-secret")
	first, _ := render(t, c, c.Servers[0], true, secret.Value{})
	second, pending := render(t, c, c.Servers[1], false, secret.Value{})
	if pending {
		t.Fatal("second server pending although the inventory gives the token")
	}
	for _, cfg := range []string{first, second} {
		if !strings.Contains(cfg, "token: shared-secret\n") {
			t.Errorf("want the inventory's token on every server:\n%s", cfg)
		}
	}
}

func TestDatastoreErrors(t *testing.T) {
	base := func() *Cluster {
		s := datastoreSpec("v1.31.4+k3s1", false)
		return &s.Clusters[0]
	}
	both := base()
	both.ServerConfig = map[string]any{"datastore-endpoint": testDSN}
	perHost := base()
	perHost.Servers[1].Config = map[string]any{"datastore-endpoint": "postgres://k3s:other@10.0.1.6/k3s"}
	badScheme := base()
	badScheme.Datastore = secret.New("sqlite://k3s:" + testDBPassword + "@x/y")
	noHost := base()
	noHost.Datastore = secret.New("postgres://k3s:" + testDBPassword + "@/k3s")
	for _, tc := range []struct {
		name string
		c    *Cluster
		want string
	}{
		{"both", both, "set twice"},
		{"per-host", perHost, "every server must use the same datastore"},
		{"scheme", badScheme, `scheme "sqlite"`},
		{"no-host", noHost, "names no database host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := NodeConfig(tc.c, tc.c.Servers[0], true, secret.Value{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), testDBPassword) || strings.Contains(err.Error(), "other@") {
				t.Errorf("error shows the password: %v", err)
			}
			if _, err := Build(Input{Spec: Spec{Clusters: []Cluster{*tc.c}}}); err == nil {
				t.Error("Build accepted it")
			}
		})
	}
}

// The plan of a datastore cluster: the second server waits for the first
// (which stores the bootstrap data) and its config for the token; nothing
// the plan shows holds the password.
func TestDatastorePlan(t *testing.T) {
	const v = "v1.31.4+k3s1"
	s := datastoreSpec(v, false)
	f := map[string]*HostFacts{}
	for _, h := range append(append([]Host{}, s.Clusters[0].Servers...), s.Clusters[0].Agents...) {
		f[h.Address] = fresh()
	}
	p, err := Build(Input{Spec: s, Facts: f, Binaries: bins(v)})
	if err != nil {
		t.Fatal(err)
	}
	hosts := p.Clusters[0].Hosts
	if len(hosts) != 3 || !hosts[0].First || hosts[0].TokenPending || !hosts[1].TokenPending ||
		len(hosts[1].After) != 1 || hosts[1].After[0] != "10.0.1.10" || hosts[2].After[0] != "10.0.1.11" {
		t.Errorf("order or pending tokens: %+v", hosts)
	}
	var out strings.Builder
	Print(&out, p)
	js, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{out.String(), string(js)} {
		if strings.Contains(text, testDBPassword) || strings.Contains(text, "postgres://") {
			t.Errorf("plan shows the datastore:\n%s", text)
		}
	}

	// Converged: the second server's config, rendered with the token the
	// first wrote, matches; nothing to do.
	for i, h := range s.Clusters[0].Servers {
		tok := secret.New(fullTk)
		if i == 0 {
			tok = secret.Value{}
		}
		f[h.Address] = converged(&s.Clusters[0], h, i == 0, tok, v)
	}
	f["10.0.1.20"] = converged(&s.Clusters[0], s.Clusters[0].Agents[0], false, secret.New(fullTk), v)
	p, err = Build(Input{Spec: s, Facts: f, Binaries: bins(v), Tokens: map[string]secret.Value{"shop": secret.New(fullTk)}})
	if err != nil {
		t.Fatal(err)
	}
	if p.Changes() {
		t.Errorf("converged datastore cluster has changes: %+v", p.Clusters[0].Hosts)
	}
}

// k3sctl join --server with datastore-endpoint in --k3s-config: the new
// server reads the cluster from the datastore with the running server's
// token and is not pointed at that server.
func TestDatastoreJoinServer(t *testing.T) {
	c := &Cluster{Name: "10.0.1.10", JoinServer: "10.0.1.10",
		Servers:      []Host{{Address: "10.0.1.11", Role: k3s.Server}},
		ServerConfig: map[string]any{"datastore-endpoint": testDSN}}
	if _, pending := render(t, c, c.Servers[0], false, secret.Value{}); !pending {
		t.Error("without the running server's token the config must wait for it")
	}
	cfg, _ := render(t, c, c.Servers[0], false, secret.New(fullTk))
	if !strings.Contains(cfg, "datastore-endpoint: "+testDSN) || !strings.Contains(cfg, "token: "+fullTk) || strings.Contains(cfg, "\nserver:") {
		t.Errorf("joining server on a datastore:\n%s", cfg)
	}
}
