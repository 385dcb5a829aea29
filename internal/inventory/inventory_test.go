package inventory

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/k3sctl/k3sctl/internal/secret"
)

const validDir = "../../testdata/inventory/valid"

func TestLoadFleet(t *testing.T) {
	t.Setenv("FACTORY_TOKEN", "factory-secret")
	path := filepath.Join(validDir, "fleet.yaml")
	inv, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	at := func(line, col int) Position { return Position{File: path, Line: line, Col: col} }
	rel := func(p string) string { return filepath.Join(validDir, p) }
	factorySSH := SSHSettings{User: "pi", KeyFile: rel("keys/id_ed25519"), Port: 22, HostKeyChecking: "accept-new"}
	shopSSH := SSHSettings{User: "pi", KeyFile: rel("keys/id_ed25519"), Port: 22, Jump: "admin@shop-gw.example.com", HostKeyChecking: "accept-new"}
	want := &Inventory{
		Path: path,
		Clusters: []Cluster{
			{
				Name:       "factory",
				APIAddress: "10.0.0.100",
				Version:    "v1.31.4+k3s1",
				Token:      secret.New("factory-secret"),
				Servers: []Host{
					{Address: "10.0.0.1", Name: "factory-1", Role: RoleServer, SSH: factorySSH, Pos: at(29, 9)},
					{Address: "10.0.0.2", Name: "factory-2", Role: RoleServer, SSH: factorySSH, Pos: at(31, 9)},
					{Address: "10.0.0.3", Name: "factory-3", Role: RoleServer, SSH: factorySSH, Pos: at(33, 9),
						Config: map[string]any{"node-ip": "10.0.0.3", "cluster-cidr": "10.52.0.0/16"}},
				},
				Agents: []Host{
					{Address: "10.0.0.11", Role: RoleAgent, SSH: factorySSH, Pos: at(39, 9),
						Labels: map[string]string{"disk": "ssd", "example.com/zone": "hall-2"},
						Taints: []string{"dedicated=gpu:NoSchedule"}},
					{Address: "10.0.0.12", Role: RoleAgent, Pos: at(42, 9),
						SSH: SSHSettings{User: "admin", KeyFile: rel("keys/id_ed25519"), Port: 2222, HostKeyChecking: "accept-new"}},
				},
				ServerConfig: map[string]any{
					"node-label":            []any{"fleet=demo"},
					"write-kubeconfig-mode": "0644",
					"cluster-cidr":          "10.52.0.0/16",
					"disable":               []any{"traefik"},
					"agent-token":           secret.New("agent-secret"),
					"tls-san":               []any{"10.0.0.100"},
				},
				AgentConfig: map[string]any{"node-label": []any{"fleet=demo", "tier=worker"}},
				Files: []File{
					{Src: rel("manifests/hello.yaml"), Kind: FileManifest, Dst: "/var/lib/rancher/k3s/server/manifests/hello.yaml", Pos: at(45, 9)},
					{Src: rel("registries.yaml"), Kind: FileRegistries, Dst: "/etc/rancher/k3s/registries.yaml", Secret: true, Pos: at(47, 9)},
					{Src: rel("images/app.tar"), Kind: FileImages, Dst: "/var/lib/rancher/k3s/agent/images/app-images.tar", Pos: at(49, 9)},
				},
				Pos: at(18, 5),
			},
			{
				Name:    "shop",
				Channel: "v1.32",
				Servers: []Host{
					{Address: "192.168.1.10", Role: RoleServer, SSH: shopSSH, Pos: at(58, 9)},
				},
				Agents: []Host{
					{Address: "192.168.1.11", Role: RoleAgent, Pos: at(60, 9),
						SSH: SSHSettings{User: "pi", KeyFile: rel("keys/id_ed25519"), Port: 22, Jump: "admin@shop-gw.example.com", HostKeyChecking: "strict"}},
				},
				ServerConfig: map[string]any{"node-label": []any{"fleet=demo"}, "write-kubeconfig-mode": "0644"},
				AgentConfig:  map[string]any{"node-label": []any{"fleet=demo"}},
				Pos:          at(53, 5),
			},
		},
	}
	compareInventory(t, inv, want)

	// Secrets compare equal above only through their hidden value; check
	// they are the right ones.
	if got := inv.Clusters[0].Token.Reveal(); got != "factory-secret" {
		t.Errorf("token = %q", got)
	}
	if got := RevealConfig(inv.Clusters[0].ServerConfig)["agent-token"]; got != "agent-secret" {
		t.Errorf("revealed agent-token = %v", got)
	}
}

func compareInventory(t *testing.T, got, want *Inventory) {
	t.Helper()
	if got.Path != want.Path || len(got.Clusters) != len(want.Clusters) {
		t.Fatalf("got %d clusters from %s, want %d from %s", len(got.Clusters), got.Path, len(want.Clusters), want.Path)
	}
	for i := range want.Clusters {
		g, w := got.Clusters[i], want.Clusters[i]
		if g.Token.Reveal() != w.Token.Reveal() {
			t.Errorf("cluster %d: tokens differ", i)
		}
		g.Token, w.Token = secret.Value{}, secret.Value{}
		for _, pair := range [][2]map[string]any{{g.ServerConfig, w.ServerConfig}, {g.AgentConfig, w.AgentConfig}} {
			if !reflect.DeepEqual(RevealConfig(pair[0]), RevealConfig(pair[1])) {
				t.Errorf("cluster %s config:\n got %v\nwant %v", w.Name, RevealConfig(pair[0]), RevealConfig(pair[1]))
			}
		}
		g.ServerConfig, g.AgentConfig, w.ServerConfig, w.AgentConfig = nil, nil, nil, nil
		for j := range max(len(g.Servers), len(w.Servers)) {
			if j >= len(g.Servers) || j >= len(w.Servers) || !reflect.DeepEqual(g.Servers[j], w.Servers[j]) {
				t.Errorf("cluster %s server %d:\n got %s\nwant %s", w.Name, j, dump(g.Servers, j), dump(w.Servers, j))
			}
		}
		for j := range max(len(g.Agents), len(w.Agents)) {
			if j >= len(g.Agents) || j >= len(w.Agents) || !reflect.DeepEqual(g.Agents[j], w.Agents[j]) {
				t.Errorf("cluster %s agent %d:\n got %s\nwant %s", w.Name, j, dump(g.Agents, j), dump(w.Agents, j))
			}
		}
		g.Servers, g.Agents, w.Servers, w.Agents = nil, nil, nil, nil
		if !reflect.DeepEqual(g, w) {
			t.Errorf("cluster %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

func dump(hosts []Host, i int) string {
	if i >= len(hosts) {
		return "(none)"
	}
	return fmt.Sprintf("%+v", hosts[i])
}

func TestLoadSingleCluster(t *testing.T) {
	inv, err := Load(filepath.Join(validDir, "single.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	c := inv.Clusters[0]
	if len(inv.Clusters) != 1 || c.Name != "single" || c.Channel != DefaultChannel || c.Version != "" {
		t.Fatalf("got %+v, want one cluster named after the file on the stable channel", inv.Clusters)
	}
	if len(c.Servers) != 1 || c.Servers[0].Address != "pi-1.local" || len(c.Agents) != 1 || c.Agents[0].Address != "pi-2.local" {
		t.Errorf("hosts = %+v / %+v", c.Servers, c.Agents)
	}
	if h := c.Agents[0]; h.SSH != (SSHSettings{Port: 22, HostKeyChecking: HostKeyAcceptNew}) || h.Role != RoleAgent {
		t.Errorf("agent defaults = %+v", h)
	}
	if len(c.ServerConfig) != 0 || c.ServerConfig == nil {
		t.Errorf("ServerConfig = %#v, want an empty map", c.ServerConfig)
	}
}

func TestStarterLoads(t *testing.T) {
	inv, err := Parse("inventory.yaml", Starter(), nil)
	if err != nil {
		t.Fatalf("the starter inventory does not load:\n%v", err)
	}
	if len(inv.Clusters) != 1 || len(inv.Clusters[0].Servers) != 1 || len(inv.Clusters[0].Agents) != 1 {
		t.Errorf("starter = %+v, want one cluster with a server and an agent", inv.Clusters)
	}
}

func TestWriteStarter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "inventory.yaml")
	if err := WriteStarter(path, false); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err != nil {
		t.Fatalf("written starter does not load: %v", err)
	}
	if err := os.WriteFile(path, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteStarter(path, false); !errors.Is(err, ErrExists) {
		t.Fatalf("second write: %v, want ErrExists", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "mine" {
		t.Fatalf("existing file was changed to %q", b)
	}
	if err := WriteStarter(path, true); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != string(Starter()) {
		t.Fatal("overwrite did not write the starter")
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	var verr *ValidationError
	if err == nil || errors.As(err, &verr) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load of a missing file = %v, want a not-exist error", err)
	}
}

func parseOK(t *testing.T, src string, env map[string]string) *Inventory {
	t.Helper()
	inv, err := Parse("test.yaml", []byte(src), func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	})
	if err != nil {
		t.Fatalf("Parse:\n%v", err)
	}
	return inv
}

const header = "apiVersion: k3sctl.io/v1alpha1\nkind: Inventory\n"

func TestDefaultsOverride(t *testing.T) {
	inv := parseOK(t, header+`
defaults:
  ssh: {user: pi, port: 2200, jump: gw}
  channel: latest
  config:
    all: {node-label: [a=1], kubelet-arg: [max-pods=50]}
    server: {node-label: [role=server]}
    agent: {kubelet-arg: [max-pods=80]}
clusters:
  - name: a
    ssh: {user: admin}
    config:
      all: {node-label: [b=2]}
    servers:
      - address: 10.0.0.1
        ssh: {port: 22, jump: other-gw}
        config: {node-label: [host=1]}
    agents: [10.0.0.2]
  - name: b
    version: v1.30.1+k3s2
    servers: [10.0.1.1]
`, nil)
	a, b := inv.Clusters[0], inv.Clusters[1]
	if a.Channel != "latest" || a.Version != "" || b.Version != "v1.30.1+k3s2" || b.Channel != "" {
		t.Errorf("versions: a=%q/%q b=%q/%q", a.Version, a.Channel, b.Version, b.Channel)
	}
	if got := a.Servers[0].SSH; got != (SSHSettings{User: "admin", Port: 22, Jump: "other-gw", HostKeyChecking: "accept-new"}) {
		t.Errorf("server ssh = %+v", got)
	}
	if got := a.Agents[0].SSH; got != (SSHSettings{User: "admin", Port: 2200, Jump: "gw", HostKeyChecking: "accept-new"}) {
		t.Errorf("agent ssh = %+v", got)
	}
	if got := b.Servers[0].SSH.User; got != "pi" {
		t.Errorf("cluster b user = %q, want the default pi", got)
	}
	wantServer := map[string]any{"node-label": []any{"b=2"}, "kubelet-arg": []any{"max-pods=50"}}
	if !reflect.DeepEqual(a.ServerConfig, wantServer) {
		t.Errorf("a server config = %v, want %v (cluster all: beats defaults server:)", a.ServerConfig, wantServer)
	}
	wantAgent := map[string]any{"node-label": []any{"b=2"}, "kubelet-arg": []any{"max-pods=80"}}
	if !reflect.DeepEqual(a.AgentConfig, wantAgent) {
		t.Errorf("a agent config = %v, want %v", a.AgentConfig, wantAgent)
	}
	if got := a.NodeConfig(a.Servers[0])["node-label"]; !reflect.DeepEqual(got, []any{"host=1"}) {
		t.Errorf("NodeConfig node-label = %v", got)
	}
	wantB := map[string]any{"node-label": []any{"role=server"}, "kubelet-arg": []any{"max-pods=50"}}
	if !reflect.DeepEqual(b.ServerConfig, wantB) {
		t.Errorf("b server config = %v, want %v", b.ServerConfig, wantB)
	}
	// Clusters built from the same defaults must not share slices.
	a.ServerConfig["kubelet-arg"].([]any)[0] = "changed"
	if b.ServerConfig["kubelet-arg"].([]any)[0] != "max-pods=50" {
		t.Error("clusters share config values")
	}
}

func TestTLSSANGetsAPIAddress(t *testing.T) {
	inv := parseOK(t, header+`
clusters:
  - {name: a, apiAddress: lb.example.com, servers: [10.0.0.1], config: {server: {tls-san: [x.example.com]}}}
  - {name: b, apiAddress: LB.example.com, servers: [10.0.1.1], config: {server: {tls-san: lb.example.com}}}
`, nil)
	if got := inv.Clusters[0].ServerConfig["tls-san"]; !reflect.DeepEqual(got, []any{"x.example.com", "lb.example.com"}) {
		t.Errorf("a tls-san = %v", got)
	}
	if got := inv.Clusters[1].ServerConfig["tls-san"]; !reflect.DeepEqual(got, []any{"lb.example.com"}) {
		t.Errorf("b tls-san = %v", got)
	}
}

func TestEnvironment(t *testing.T) {
	inv := parseOK(t, header+`
token: ${TOKEN}
apiAddress: ${VIP:-10.0.0.100}
ssh: {port: "${PORT}", user: "${USER_NAME:-pi}"}
servers:
  - address: ${EMPTY:-10.0.0.1}
    labels: {owner: "${OWNER}"}
    config:
      node-label: ["cost=$${not-a-var}", "price=$5"]
      etcd-s3-secret-key: ${S3_KEY}
`, map[string]string{"TOKEN": "t0p", "PORT": "2222", "EMPTY": "", "OWNER": "ops", "S3_KEY": "s3cr3t"})
	c := inv.Clusters[0]
	h := c.Servers[0]
	switch {
	case c.Token.Reveal() != "t0p", c.APIAddress != "10.0.0.100", h.SSH.Port != 2222, h.SSH.User != "pi",
		h.Address != "10.0.0.1", h.Labels["owner"] != "ops":
		t.Errorf("expanded badly: %+v %+v", c, h)
	}
	if got := h.Config["node-label"]; !reflect.DeepEqual(got, []any{"cost=${not-a-var}", "price=$5"}) {
		t.Errorf("node-label = %v", got)
	}
	if _, ok := h.Config["etcd-s3-secret-key"].(secret.Value); !ok {
		t.Errorf("etcd-s3-secret-key is %T, want secret.Value", h.Config["etcd-s3-secret-key"])
	}
}

func TestExpandEnv(t *testing.T) {
	env := func(k string) (string, bool) {
		v, ok := map[string]string{"A": "a", "E": ""}[k]
		return v, ok
	}
	for _, tc := range []struct{ in, want, err string }{
		{"plain", "plain", ""},
		{"${A}", "a", ""},
		{"x${A}y${A}", "xaya", ""},
		{"${E}", "", ""},
		{"${E:-d}", "d", ""},
		{"${U:-d e}", "d e", ""},
		{"${U:-}", "", ""},
		{"$${A}", "${A}", ""},
		{"$A $5 $$", "$A $5 $$", ""},
		{"${U}", "", "U is not set"},
		{"${A", "", "unterminated"},
		{"${}", "", "bad variable"},
		{"${1A}", "", "bad variable"},
	} {
		got, errs := expandEnv(tc.in, env, false)
		if tc.err != "" {
			if len(errs) == 0 || !strings.Contains(errs[0].msg, tc.err) {
				t.Errorf("expandEnv(%q) errors = %v, want %q", tc.in, errs, tc.err)
			}
			continue
		}
		if len(errs) > 0 || got != tc.want {
			t.Errorf("expandEnv(%q) = %q, %v; want %q", tc.in, got, errs, tc.want)
		}
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	const tok = "hunter2-token"
	inv := parseOK(t, header+`
token: ${T}
config:
  server: {agent-token: agent-hunter2, datastore-endpoint: "postgres://k3s:db-hunter2@db/k3s"}
servers: [10.0.0.1]
`, map[string]string{"T": tok})
	out := fmt.Sprintf("%v %+v %#v", inv, inv, inv)
	for _, s := range []string{tok, "agent-hunter2", "db-hunter2"} {
		if strings.Contains(out, s) {
			t.Errorf("%q printed: %s", s, out)
		}
	}
	// Nor in problems: a bad token and a critical mismatch of a secret.
	_, err := Parse("t.yaml", []byte(header+`
token: "K10abc::server:hunter2 x"
servers:
  - {address: 10.0.0.1, config: {agent-token: a-hunter2}}
  - {address: 10.0.0.2, config: {agent-token: b-hunter2}}
  - {address: 10.0.0.3, config: {agent-token: b-hunter2}}
`), nil)
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("problems = %v; want errors that never show the secrets", err)
	}
}

func TestMergeKeysAndAnchors(t *testing.T) {
	inv := parseOK(t, header+`
x-pi: &pi
  ssh: {user: pi}
  labels: {board: rpi4}
x-servers: &servers [10.0.0.1, 10.0.0.2, 10.0.0.3]
clusters:
  - name: a
    servers: *servers
    agents:
      - <<: *pi
        address: 10.0.0.4
        labels: {board: rpi5}
      - {<<: *pi, address: 10.0.0.5}
`, nil)
	h := inv.Clusters[0].Agents[0]
	if h.SSH.User != "pi" || h.Labels["board"] != "rpi5" || len(inv.Clusters[0].Servers) != 3 {
		t.Errorf("merge keys: %+v", h)
	}
	if h := inv.Clusters[0].Agents[1]; h.SSH.User != "pi" || h.Labels["board"] != "rpi4" {
		t.Errorf("flow merge keys: %+v", h)
	}
}

func TestProblemsAreSorted(t *testing.T) {
	e := &ValidationError{Problems: []Problem{
		{File: "f", Line: 3, Col: 1, Message: "c"},
		{File: "f", Line: 1, Col: 9, Message: "b", Hint: "do x"},
		{File: "f", Line: 1, Col: 2, Message: "a"},
	}}
	want := "f:1:2: a\nf:1:9: b (do x)\nf:3:1: c"
	if e.Error() != want {
		t.Errorf("Error() =\n%s\nwant\n%s", e.Error(), want)
	}
}

func TestVersions(t *testing.T) {
	for s, want := range map[string]string{
		"v1.31.4+k3s1":     "release",
		"v1.32.4-rc1+k3s1": "release",
		"v1.31.10+k3s12":   "release",
		"stable":           "channel",
		"latest":           "channel",
		"testing":          "channel",
		"v1.31":            "channel",
		"v1.31.4":          "",
		"1.31.4+k3s1":      "",
		"v1.31.4+k3s0":     "",
		"v1.31.4-k3s1":     "",
		"v2.0.0+k3s1":      "",
		"v1.31.04+k3s1":    "",
		"Stable":           "",
		"v1.31.4+k3s1 ":    "",
	} {
		got := ""
		switch {
		case isRelease(s):
			got = "release"
		case isChannel(s):
			got = "channel"
		}
		if got != want {
			t.Errorf("%q: got %q, want %q", s, got, want)
		}
	}
}

func TestClosest(t *testing.T) {
	for key, want := range map[string]string{
		"adress":      "address",
		"Address":     "address",
		"api_address": "apiAddress",
		"key":         "keyFile",
		"keyfile":     "keyFile",
		"sevrers":     "servers",
		"zzz":         "",
	} {
		all := append(append(append([]string{}, objectKeys[objHost]...), objectKeys[objSSH]...), objectKeys[objCluster]...)
		if got := closest(key, all); got != want {
			t.Errorf("closest(%q) = %q, want %q", key, got, want)
		}
	}
}

// A few lines of nested aliases expand to billions of nodes; the loader must
// refuse them quickly instead of walking them all.
func TestAliasExpansionIsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString(header + "x-0: &a0 [x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 10; i++ {
		fmt.Fprintf(&b, "x-%d: &a%d [", i, i)
		for j := range 9 {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*a%d", i-1)
		}
		b.WriteString("]\n")
	}
	b.WriteString("servers: [10.0.0.1]\nconfig: {all: {node-label: *a9}}\n")
	_, err := Parse("bomb.yaml", []byte(b.String()), nil)
	if err == nil || !strings.Contains(err.Error(), "aliases expand to too much data") {
		t.Fatalf("err = %v", err)
	}
}

// TestDocsExampleLoads keeps the first example of docs/inventory.md valid.
func TestDocsExampleLoads(t *testing.T) {
	doc, err := os.ReadFile("../../docs/inventory.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```yaml\n")
	example, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("docs/inventory.md has no yaml example")
	}
	// Named as if it sat beside fleet.yaml, so its files: are found.
	name := filepath.Join(validDir, "docs-example.yaml")
	inv, err := Parse(name, []byte(example), func(k string) (string, bool) { return "t", k == "FACTORY_TOKEN" })
	if err != nil {
		t.Fatalf("the docs example does not load:\n%v", err)
	}
	if len(inv.Clusters) != 2 || len(inv.Clusters[0].Servers) != 3 || len(inv.Clusters[1].Agents) != 1 {
		t.Errorf("docs example = %+v", inv.Clusters)
	}
}

func TestFilesSecret(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"app.yaml", "registries.yaml"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("a: 1\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	doc := `apiVersion: k3sctl.io/v1alpha1
kind: Inventory
servers: [10.0.0.1]
files:
  - {src: app.yaml, kind: manifest}
  - {src: app.yaml, kind: manifest, dst: db.yaml, secret: true}
  - {src: registries.yaml, kind: registries}
`
	inv, err := Parse(filepath.Join(dir, "site.yaml"), []byte(doc), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	var got []bool
	for _, f := range inv.Clusters[0].Files {
		got = append(got, f.Secret)
	}
	// A manifest is not secret unless marked; registries.yaml is by default.
	if fmt.Sprint(got) != "[false true true]" {
		t.Errorf("secret flags %v, want [false true true]", got)
	}
	doc = strings.Replace(doc, "{src: registries.yaml, kind: registries}", "{src: registries.yaml, kind: registries, secret: false}", 1)
	inv, err = Parse(filepath.Join(dir, "site.yaml"), []byte(doc), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	if inv.Clusters[0].Files[2].Secret {
		t.Errorf("secret: false on registries.yaml is not kept")
	}
}
