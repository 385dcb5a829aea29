package plan

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/secret"
)

var update = flag.Bool("update", false, "rewrite golden files")

const (
	binSHA = "1111111111111111111111111111111111111111111111111111111111111111"
	oldSHA = "0000000000000000000000000000000000000000000000000000000000000000"
	fullTk = "K10aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa::server:0123456789abcdef0123456789abcdef"
)

func fresh() *HostFacts {
	return &HostFacts{Hostname: "pi", Arch: k3s.ARM64, InitSystem: "systemd", MemoryCgroup: true,
		Installed: map[k3s.Role]bool{}, Active: map[k3s.Role]bool{}, FileHashes: map[string]string{}}
}

// converged returns facts of a host on which c's plan was already applied.
func converged(c *Cluster, h Host, first bool, token secret.Value, version string) *HostFacts {
	f := fresh()
	f.K3sVersion, f.K3sSHA256 = version, binSHA
	f.Installed[h.Role], f.Active[h.Role] = true, true
	files, _, err := Files(c, h, first, token, "systemd")
	if err != nil {
		panic(err)
	}
	for _, rf := range files {
		f.FileHashes[rf.Path] = rf.SHA256()
	}
	return f
}

func installSpec(version string) Spec {
	return Spec{Clusters: []Cluster{{Name: "home", Version: version,
		Servers: []Host{{Address: "192.168.1.50", Role: k3s.Server}}}}}
}

func haSpec(version string) Spec {
	return Spec{Clusters: []Cluster{{Name: "edge", Version: version, HA: true, APIAddress: "10.0.0.100",
		Servers: []Host{{Address: "10.0.0.10", Role: k3s.Server}, {Address: "10.0.0.11", Role: k3s.Server}, {Address: "10.0.0.12", Role: k3s.Server}},
		Agents:  []Host{{Address: "10.0.0.20", Role: k3s.Agent, Labels: map[string]string{"site": "shop"}}, {Address: "10.0.0.21", Role: k3s.Agent}},
	}}}
}

func bins(version string) map[BinaryKey]Binary {
	return map[BinaryKey]Binary{{Version: version, Arch: k3s.ARM64}: {Version: version, SHA256: binSHA}}
}

func TestPlanGolden(t *testing.T) {
	const v = "v1.31.4+k3s1"
	cases := map[string]func() Input{
		"install": func() Input {
			return Input{Spec: installSpec(v), Facts: map[string]*HostFacts{"192.168.1.50": fresh()}, Binaries: bins(v)}
		},
		"install-noop": func() Input {
			s := installSpec(v)
			return Input{Spec: s, Facts: map[string]*HostFacts{"192.168.1.50": converged(&s.Clusters[0], s.Clusters[0].Servers[0], true, secret.Value{}, v)}, Binaries: bins(v)}
		},
		"join-agent": func() Input {
			s := Spec{Clusters: []Cluster{{Name: "192.168.1.50", Version: v, JoinServer: "192.168.1.50",
				Agents: []Host{{Address: "192.168.1.51", Role: k3s.Agent}}}}}
			return Input{Spec: s, Facts: map[string]*HostFacts{"192.168.1.51": fresh()},
				Tokens: map[string]secret.Value{"192.168.1.50": secret.New(fullTk)}, Binaries: bins(v)}
		},
		"ha-install": func() Input {
			s := haSpec(v)
			f := map[string]*HostFacts{}
			for _, h := range append(s.Clusters[0].Servers, s.Clusters[0].Agents...) {
				f[h.Address] = fresh()
			}
			return Input{Spec: s, Facts: f, Binaries: bins(v)}
		},
		"ha-upgrade": func() Input {
			s := haSpec("v1.31.5+k3s1")
			old := haSpec(v)
			f := map[string]*HostFacts{}
			tok := secret.New(fullTk)
			for i, h := range append(old.Clusters[0].Servers, old.Clusters[0].Agents...) {
				hf := converged(&old.Clusters[0], h, i == 0, tok, v)
				hf.K3sSHA256 = oldSHA
				f[h.Address] = hf
			}
			return Input{Spec: s, Facts: f, Tokens: map[string]secret.Value{"edge": tok}, Binaries: bins("v1.31.5+k3s1")}
		},
		"refuse-downgrade": func() Input {
			s := installSpec("v1.30.8+k3s1")
			f := converged(&s.Clusters[0], s.Clusters[0].Servers[0], true, secret.Value{}, v)
			f.K3sSHA256 = oldSHA
			return Input{Spec: s, Facts: map[string]*HostFacts{"192.168.1.50": f}, Binaries: bins("v1.30.8+k3s1")}
		},
		"refuse-minor-skip": func() Input {
			s := installSpec("v1.33.1+k3s1")
			f := converged(&s.Clusters[0], s.Clusters[0].Servers[0], true, secret.Value{}, v)
			f.K3sSHA256 = oldSHA
			return Input{Spec: s, Facts: map[string]*HostFacts{"192.168.1.50": f}, Binaries: bins("v1.33.1+k3s1")}
		},
		"unreachable-and-stopped": func() Input {
			s := haSpec(v)
			tok := secret.New(fullTk)
			f := map[string]*HostFacts{}
			for i, h := range append(s.Clusters[0].Servers, s.Clusters[0].Agents...) {
				f[h.Address] = converged(&s.Clusters[0], h, i == 0, tok, v)
			}
			f["10.0.0.21"] = &HostFacts{Err: "dial tcp 10.0.0.21:22: connect: no route to host"}
			f["10.0.0.11"].Active[k3s.Server] = false
			return Input{Spec: s, Facts: f, Tokens: map[string]secret.Value{"edge": tok}, Binaries: bins(v)}
		},
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			p, err := Build(in())
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			Print(&b, p)
			b.WriteString("\n--- json\n")
			j, _ := json.MarshalIndent(p, "", "  ")
			b.Write(j)
			b.WriteString("\n")
			if strings.Contains(b.String(), "0123456789abcdef") {
				t.Fatalf("plan shows the token:\n%s", b.String())
			}
			golden(t, filepath.Join("..", "..", "testdata", "plan", name+".golden"), b.Bytes())
		})
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/plan -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test ./internal/plan -update to accept):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestPlanActions(t *testing.T) {
	const v = "v1.31.4+k3s1"
	s := installSpec(v)
	conv := func() *HostFacts { return converged(&s.Clusters[0], s.Clusters[0].Servers[0], true, secret.Value{}, v) }
	for _, tc := range []struct {
		name  string
		facts func() *HostFacts
		want  Action
	}{
		{"fresh", fresh, ActionInstall},
		{"converged", conv, ActionNothing},
		{"stopped", func() *HostFacts { f := conv(); f.Active[k3s.Server] = false; return f }, ActionStart},
		{"config edited", func() *HostFacts { f := conv(); f.FileHashes[k3s.ConfigPath] = "x"; return f }, ActionReconfigure},
		{"newer release", func() *HostFacts { f := conv(); f.K3sVersion = "v1.31.3+k3s1"; f.K3sSHA256 = oldSHA; return f }, ActionUpgrade},
		{"k3s2 is newer than k3s1", func() *HostFacts { f := conv(); f.K3sVersion = "v1.31.4+k3s2"; f.K3sSHA256 = oldSHA; return f }, ActionRefuse},
		{"runs as agent", func() *HostFacts { f := fresh(); f.K3sVersion = v; f.Installed[k3s.Agent] = true; return f }, ActionRefuse},
		{"no init system", func() *HostFacts { f := fresh(); f.InitSystem = ""; return f }, ActionRefuse},
		{"unsupported arch", func() *HostFacts { f := fresh(); f.ArchErr = "unsupported architecture \"s390x\""; return f }, ActionRefuse},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Build(Input{Spec: s, Facts: map[string]*HostFacts{"192.168.1.50": tc.facts()}, Binaries: bins(v)})
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Clusters[0].Hosts[0].Action; got != tc.want {
				t.Errorf("action = %s, want %s (%v)", got, tc.want, p.Clusters[0].Hosts[0].Reasons)
			}
		})
	}
}

func TestNodeConfig(t *testing.T) {
	c := &Cluster{Name: "edge", HA: true, APIAddress: "vip.lan", TLSSANs: []string{"k3s.lan"}, Token: secret.New("shortpw"),
		Servers:      []Host{{Address: "10.0.0.10", Role: k3s.Server}, {Address: "10.0.0.11", Role: k3s.Server}},
		ServerConfig: map[string]any{"disable": []any{"traefik"}, "tls-san": []any{"extra.lan"}},
	}
	cfg, pending, err := NodeConfig(c, c.Servers[0], true, secret.Value{})
	if err != nil || pending {
		t.Fatalf("first server: pending %v, %v", pending, err)
	}
	first := cfg.Render()
	for _, want := range []string{"cluster-init: true", "token: shortpw", "- 10.0.0.10", "- vip.lan", "- k3s.lan", "- extra.lan", "- traefik"} {
		if !strings.Contains(string(first), want) {
			t.Errorf("first server config lacks %q:\n%s", want, first)
		}
	}
	cfg, _, err = NodeConfig(c, c.Servers[1], false, secret.New(fullTk))
	if err != nil {
		t.Fatal(err)
	}
	second := cfg.Render()
	for _, want := range []string{"server: https://10.0.0.10:6443", "token: " + fullTk} {
		if !strings.Contains(string(second), want) {
			t.Errorf("joining server config lacks %q:\n%s", want, second)
		}
	}
	if strings.Contains(string(second), "cluster-init") {
		t.Errorf("joining server has cluster-init:\n%s", second)
	}
	agent := Host{Address: "10.0.0.20", Role: k3s.Agent}
	c.Token = secret.Value{}
	if _, pending, _ := NodeConfig(c, agent, false, secret.Value{}); !pending {
		t.Error("agent without a known token should be pending")
	}
}

func TestPlanSteps(t *testing.T) {
	const v = "v1.31.4+k3s1"
	s := installSpec(v)
	h := s.Clusters[0].Servers[0]
	conv := func() *HostFacts { return converged(&s.Clusters[0], h, true, secret.Value{}, v) }
	tok := map[string]secret.Value{"home": secret.New(fullTk)}
	// "+" marks a step planned as a change.
	for _, tc := range []struct {
		name   string
		facts  func() *HostFacts
		tokens map[string]secret.Value
		action Action
		want   []string
	}{
		{"install", fresh, nil, ActionInstall,
			[]string{"+upload k3s", "+write config", "+start k3s", "wait for ready", "read token", "kubeconfig"}},
		{"upgrade", func() *HostFacts { f := conv(); f.K3sVersion = "v1.31.3+k3s1"; f.K3sSHA256 = oldSHA; return f }, tok, ActionUpgrade,
			[]string{"+upload k3s", "write config", "+start k3s", "wait for ready", "read token", "kubeconfig"}},
		{"reconfigure", func() *HostFacts { f := conv(); f.FileHashes[k3s.ConfigPath] = "x"; return f }, tok, ActionReconfigure,
			[]string{"+write config", "+start k3s", "wait for ready", "read token", "kubeconfig"}},
		{"start", func() *HostFacts { f := conv(); f.Active[k3s.Server] = false; return f }, tok, ActionStart,
			[]string{"write config", "+start k3s", "wait for ready", "read token", "kubeconfig"}},
		{"nothing", conv, tok, ActionNothing, []string{"kubeconfig"}},
		{"nothing, token not read", conv, nil, ActionNothing, []string{"read token", "kubeconfig"}},
		{"refuse", func() *HostFacts { f := fresh(); f.InitSystem = ""; return f }, nil, ActionRefuse, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Build(Input{Spec: s, Facts: map[string]*HostFacts{h.Address: tc.facts()}, Tokens: tc.tokens, Binaries: bins(v)})
			if err != nil {
				t.Fatal(err)
			}
			hp := p.Clusters[0].Hosts[0]
			if hp.Action != tc.action {
				t.Fatalf("action = %s, want %s", hp.Action, tc.action)
			}
			var got []string
			for _, st := range hp.Steps {
				mark := ""
				if st.Changes {
					mark = "+"
				}
				got = append(got, mark+string(st.Kind))
				if st.Host != h.Address {
					t.Errorf("%s: host %q, want %q", st.Kind, st.Host, h.Address)
				}
				if st.Reason == "" {
					t.Errorf("%s: no reason", st.Kind)
				}
				if st.Changes && !st.Kind.MayChange() {
					t.Errorf("%s is planned as a change but never changes a host", st.Kind)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("steps = %q, want %q", got, tc.want)
			}
			// A refused host counts as a pending change, but no step runs.
			if tc.action != ActionRefuse && StepsChange(hp.Steps) != p.Changes() {
				t.Errorf("steps change: %v, plan changes: %v", StepsChange(hp.Steps), p.Changes())
			}
		})
	}
}

func TestPlanStepsAgentAndSkipKubeconfig(t *testing.T) {
	const v = "v1.31.4+k3s1"
	s := Spec{Clusters: []Cluster{{Name: "home", Version: v, JoinServer: "192.168.1.50",
		Agents: []Host{{Address: "192.168.1.51", Role: k3s.Agent}}}}}
	p, err := Build(Input{Spec: s, Facts: map[string]*HostFacts{"192.168.1.51": fresh()}, Binaries: bins(v), SkipKubeconfig: true})
	if err != nil {
		t.Fatal(err)
	}
	var got []StepKind
	for _, h := range p.Clusters[0].Hosts {
		for _, st := range h.Steps {
			got = append(got, st.Kind)
		}
	}
	// The running server's token is read (none was given); the agent
	// starts k3s-agent; nothing merges a kubeconfig.
	want := []StepKind{StepReadToken, StepUploadBinary, StepWriteConfig, StepStartAgent, StepWaitReady}
	if !slices.Equal(got, want) {
		t.Errorf("steps = %q, want %q", got, want)
	}
}

func TestStepKinds(t *testing.T) {
	seen := map[StepKind]bool{}
	for _, k := range StepKinds() {
		if seen[k] || k == "" {
			t.Errorf("kind %q is empty or listed twice", k)
		}
		seen[k] = true
	}
	for _, r := range []k3s.Role{k3s.Server, k3s.Agent} {
		if got, want := StartStep(r), StepKind("start "+k3s.ServiceName(r)); got != want || !seen[got] {
			t.Errorf("StartStep(%s) = %q, want %q among the kinds", r, got, want)
		}
	}
	if StepKind("defragment etcd").MayChange() != true {
		t.Error("a kind this build does not know should count as one that may change the host")
	}
}

// A user setting of a key k3sctl owns is refused by Build, never dropped,
// whether or not the host is reachable or its token known.
func TestBuildRefusesOwnedSettings(t *testing.T) {
	const v = "v1.31.4+k3s1"
	for _, tc := range []struct {
		name string
		edit func(c *Cluster)
		key  string
	}{
		{"cluster token", func(c *Cluster) { c.ServerConfig = map[string]any{"token": "user-must-not-win"} }, "token"},
		{"agent server", func(c *Cluster) { c.AgentConfig = map[string]any{"server": "https://x:6443"} }, "server"},
		{"host cluster-init", func(c *Cluster) { c.Servers[1].Config = map[string]any{"cluster-init": true} }, "cluster-init"},
		{"named host node-name", func(c *Cluster) {
			c.Agents[0].NodeName = "w1"
			c.Agents[0].Config = map[string]any{"node-name": "other"}
		}, "node-name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := haSpec(v)
			tc.edit(&s.Clusters[0])
			_, err := Build(Input{Spec: s, Facts: map[string]*HostFacts{}, Binaries: bins(v)})
			var se *k3s.SettingError
			if !errors.As(err, &se) || se.Key != tc.key {
				t.Fatalf("err = %v, want a SettingError for %s", err, tc.key)
			}
			if strings.Contains(err.Error(), "user-must-not-win") {
				t.Errorf("error shows the token: %v", err)
			}
		})
	}
	// node-name is the user's when k3sctl does not name the host.
	s := haSpec(v)
	s.Clusters[0].Agents[1].Config = map[string]any{"node-name": "mine"}
	if _, err := Build(Input{Spec: s, Facts: map[string]*HostFacts{}, Binaries: bins(v)}); err != nil {
		t.Errorf("node-name on an unnamed host: %v", err)
	}
}

// Facts hash every file Files renders, for either role and init system,
// else a converged host would always show changes.
func TestHashPathsCoverFiles(t *testing.T) {
	s := haSpec("v1.31.4+k3s1")
	c := &s.Clusters[0]
	for _, init := range []string{"systemd", "openrc"} {
		for _, h := range []Host{c.Servers[0], c.Agents[0]} {
			files, pending, err := Files(c, h, h.Role == k3s.Server, secret.New(fullTk), init)
			if err != nil || pending {
				t.Fatalf("%s %s: pending %v, %v", h.Role, init, pending, err)
			}
			paths := HashPaths(h.Role, init)
			if len(paths) != len(files) {
				t.Errorf("%s %s: HashPaths %v, Files renders %d files", h.Role, init, paths, len(files))
			}
			for _, f := range files {
				if !slices.Contains(paths, f.Path) {
					t.Errorf("%s %s: HashPaths lacks %s", h.Role, init, f.Path)
				}
			}
		}
	}
}
