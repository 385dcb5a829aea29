package main

import (
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// withRoot points the simulator's filesystem at a temporary directory and
// captures its log.
func withRoot(t *testing.T) (string, *logCapture) {
	t.Helper()
	root := t.TempDir()
	t.Setenv("K3S_SIM_ROOT", root)
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	old := logOut
	logOut = f
	t.Cleanup(func() {
		logOut = old
		f.Close()
	})
	return root, &logCapture{f.Name()}
}

type logCapture struct{ path string }

func (l *logCapture) String() string {
	b, _ := os.ReadFile(l.path)
	return string(b)
}

func writeFile(t *testing.T, root, p, content string) {
	t.Helper()
	full := filepath.Join(root, p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestConfigPrecedence(t *testing.T) {
	root, _ := withRoot(t)
	writeFile(t, root, "/etc/rancher/k3s/config.yaml", `
token: from-file
node-name: file-name
cluster-init: true
tls-san:
  - a.example
  - 10.0.0.1
node-label: ["from=file"]
https-listen-port: 7443
write-kubeconfig-mode: "0644"
`)
	writeFile(t, root, "/etc/rancher/k3s/config.yaml.d/10-more.yaml", `
tls-san+: [b.example]
node-name: dropin-name
`)
	writeFile(t, root, "/etc/rancher/k3s/config.yaml.d/20-last.yml", `
node-label: ["dropin=replaces"]
`)
	writeFile(t, root, "/etc/rancher/k3s/config.yaml.d/30-ignored.txt", "token: not-read\n")

	o, err := parseOpts("server", []string{"--tls-san", "c.example", "--https-listen-port=8443"},
		env(map[string]string{"K3S_TOKEN": "from-env", "K3S_NODE_NAME": "env-name", "K3S_URL": "https://env:6443"}))
	if err != nil {
		t.Fatal(err)
	}
	// The file (turned into flags) beats the environment.
	if got := o.str("token"); got != "from-file" {
		t.Errorf("token = %q, want from-file", got)
	}
	// A later drop-in replaces a key.
	if got := o.str("node-name"); got != "dropin-name" {
		t.Errorf("node-name = %q, want dropin-name", got)
	}
	if got := o.rawList("node-label"); !reflect.DeepEqual(got, []string{"dropin=replaces"}) {
		t.Errorf("node-label = %v", got)
	}
	// key+ appends; command-line list flags append after the file's.
	if got := o.list("tls-san"); !reflect.DeepEqual(got, []string{"a.example", "10.0.0.1", "b.example", "c.example"}) {
		t.Errorf("tls-san = %v", got)
	}
	// The command line beats the file.
	if got := o.integer("https-listen-port"); got != 8443 {
		t.Errorf("https-listen-port = %d, want 8443", got)
	}
	// The environment fills what nothing else sets.
	if got := o.str("server"); got != "https://env:6443" {
		t.Errorf("server = %q, want https://env:6443", got)
	}
	if !o.boolean("cluster-init") || o.str("write-kubeconfig-mode") != "0644" {
		t.Errorf("cluster-init=%v mode=%q", o.boolean("cluster-init"), o.str("write-kubeconfig-mode"))
	}
	if got := o.str("data-dir"); got != "/var/lib/rancher/k3s" {
		t.Errorf("data-dir default = %q", got)
	}
}

func TestEnvOnlyAndFlagForms(t *testing.T) {
	withRoot(t)
	o, err := parseOpts("agent", []string{"-s", "https://s:6443", "--node-label=a=b", "--node-label", "c=d", "-t=tok", "--with-node-id"},
		env(map[string]string{"K3S_TOKEN": "ignored", "K3S_NODE_NAME": "from-env"}))
	if err != nil {
		t.Fatal(err)
	}
	if o.str("server") != "https://s:6443" || o.str("token") != "tok" || o.str("node-name") != "from-env" || !o.boolean("with-node-id") {
		t.Errorf("server=%q token=%q node-name=%q with-node-id=%v", o.str("server"), o.str("token"), o.str("node-name"), o.boolean("with-node-id"))
	}
	if got := o.rawList("node-label"); !reflect.DeepEqual(got, []string{"a=b", "c=d"}) {
		t.Errorf("node-label = %v", got)
	}
}

func TestConfigFileFlagAndEnv(t *testing.T) {
	root, _ := withRoot(t)
	writeFile(t, root, "/etc/rancher/k3s/config.yaml", "token: default-file\n")
	writeFile(t, root, "/srv/alt.yaml", "token: alt-file\n")
	writeFile(t, root, "/srv/env.yaml", "token: env-file\n")
	for _, args := range [][]string{{"--config", "/srv/alt.yaml"}, {"-c", "/srv/alt.yaml"}, {"--config=/srv/alt.yaml"}} {
		o, err := parseOpts("server", args, env(nil))
		if err != nil {
			t.Fatal(err)
		}
		if o.str("token") != "alt-file" {
			t.Errorf("%v: token = %q", args, o.str("token"))
		}
	}
	// K3S_CONFIG_FILE wins over --config.
	o, err := parseOpts("server", []string{"--config", "/srv/alt.yaml"}, env(map[string]string{"K3S_CONFIG_FILE": "/srv/env.yaml"}))
	if err != nil {
		t.Fatal(err)
	}
	if o.str("token") != "env-file" {
		t.Errorf("token = %q, want env-file", o.str("token"))
	}
	// A missing config file is not an error.
	if _, err := parseOpts("server", []string{"--config", "/srv/none.yaml"}, env(nil)); err != nil {
		t.Errorf("missing config file: %v", err)
	}
	// --data-dir and -d.
	o, _ = parseOpts("server", []string{"-d", "/data"}, env(nil))
	if o.str("data-dir") != "/data" {
		t.Errorf("-d: data-dir = %q", o.str("data-dir"))
	}
}

func TestUnknownConfigKeysWarn(t *testing.T) {
	root, logs := withRoot(t)
	writeFile(t, root, "/etc/rancher/k3s/config.yaml", "token: x\nno-such-flag: 1\ncluster-init: true\n")
	o, err := parseOpts("agent", nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if o.str("token") != "x" {
		t.Errorf("token = %q", o.str("token"))
	}
	out := logs.String()
	for _, want := range []string{"Unknown flag --no-such-flag found in config.yaml, skipping", "Unknown flag --cluster-init found in config.yaml, skipping"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "level=warning") {
		t.Errorf("not a warning: %s", out)
	}
}

func TestFlagErrors(t *testing.T) {
	withRoot(t)
	cases := map[string][]string{
		"flag provided but not defined: -bogus":                        {"--bogus"},
		"flag provided but not defined: -cluster-init":                 nil, // server-only flag given to the agent below
		"flag needs an argument: -token":                               {"--token"},
		`invalid value "abc" for flag -https-listen-port: parse error`: {"--https-listen-port", "abc"},
	}
	for want, args := range cases {
		cmd := "server"
		if args == nil {
			cmd, args = "agent", []string{"--cluster-init"}
		}
		_, err := parseOpts(cmd, args, env(nil))
		if err == nil || err.Error() != want {
			t.Errorf("%s %v: error %v, want %q", cmd, args, err, want)
		}
	}
	root, _ := withRoot(t)
	writeFile(t, root, "/etc/rancher/k3s/config.yaml", "token: [unclosed\n")
	if _, err := parseOpts("server", nil, env(nil)); err == nil {
		t.Error("broken YAML accepted")
	}
}

func TestParseTaintAndLabels(t *testing.T) {
	withRoot(t)
	o, err := parseOpts("agent", []string{"--node-taint", "dedicated=gpu:NoSchedule", "--node-taint", "CriticalAddonsOnly:NoExecute", "--node-label", "tier=edge"}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	info, err := buildNodeInfo(o, "n1", []net.IP{net.ParseIP("10.0.0.5")}, nil, []string{"control-plane"})
	if err != nil {
		t.Fatal(err)
	}
	want := []taint{{Key: "dedicated", Value: "gpu", Effect: "NoSchedule"}, {Key: "CriticalAddonsOnly", Effect: "NoExecute"}}
	if !reflect.DeepEqual(info.Taints, want) {
		t.Errorf("taints = %+v", info.Taints)
	}
	if info.Labels["tier"] != "edge" || info.Labels["node-role.kubernetes.io/control-plane"] != "true" || info.Labels["kubernetes.io/hostname"] != "n1" {
		t.Errorf("labels = %v", info.Labels)
	}
	if _, err := parseTaint("key=value:Sometimes"); err == nil {
		t.Error("bad effect accepted")
	}
	o2, _ := parseOpts("agent", []string{"--node-label", "novalue"}, env(nil))
	if _, err := buildNodeInfo(o2, "n1", []net.IP{net.ParseIP("10.0.0.5")}, nil, nil); err == nil {
		t.Error("label without = accepted")
	}
}
