package k3s

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/k3sctl/k3sctl/internal/secret"
)

// asMap decodes rendered YAML for comparisons that do not care about order.
func asMap(t *testing.T, b []byte) map[string]any {
	t.Helper()
	m := map[string]any{}
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatalf("rendered config does not parse: %v\n%s", err, b)
	}
	return m
}

func TestParseExtraArgs(t *testing.T) {
	c, err := ParseExtraArgs(`--disable traefik --node-label 'a=b c' --tls-san=x --kube-apiserver-arg=feature-gates=Foo=true --flannel-backend=none --write-kubeconfig-mode 644 --disable-network-policy`)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"disable":                []any{"traefik"},
		"node-label":             []any{"a=b c"},
		"tls-san":                []any{"x"},
		"kube-apiserver-arg":     []any{"feature-gates=Foo=true"},
		"flannel-backend":        "none",
		"write-kubeconfig-mode":  "644",
		"disable-network-policy": true,
	}
	if got := asMap(t, c.Render()); !reflect.DeepEqual(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
	wantKeys := "disable node-label tls-san kube-apiserver-arg flannel-backend write-kubeconfig-mode disable-network-policy"
	if got := strings.Join(c.Keys(), " "); got != wantKeys {
		t.Errorf("key order %q, want the order given", got)
	}
}

func TestParseExtraArgsCases(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want map[string]any
	}{
		{``, map[string]any{}},
		{`--disable-network-policy=false --secrets-encryption`, map[string]any{"disable-network-policy": false, "secrets-encryption": true}},
		{`--etcd-snapshot-retention 10 --node-taint a=b:NoSchedule --node-taint c=d:NoExecute`,
			map[string]any{"etcd-snapshot-retention": "10", "node-taint": []any{"a=b:NoSchedule", "c=d:NoExecute"}}},
		{`--cluster-cidr 10.42.0.0/16 --cluster-cidr fd00:42::/56`, map[string]any{"cluster-cidr": []any{"10.42.0.0/16", "fd00:42::/56"}}},
		{`--node-name mine`, map[string]any{"node-name": "mine"}},
		{`--node-name "my \"node\"" --kubelet-arg='max-pods=200'`, map[string]any{"node-name": `my "node"`, "kubelet-arg": []any{"max-pods=200"}}},
		{`--node-label=a\ b --data-dir "/mnt/ssd/k3s"`, map[string]any{"node-label": []any{"a b"}, "data-dir": "/mnt/ssd/k3s"}},
		{"--kube-proxy-arg \\\n  metrics-bind-address=0.0.0.0", map[string]any{"kube-proxy-arg": []any{"metrics-bind-address=0.0.0.0"}}},
		{`-disable servicelb --flannel-backend=wireguard-native`, map[string]any{"disable": []any{"servicelb"}, "flannel-backend": "wireguard-native"}},
		{`--node-external-ip= --tls-san ''`, map[string]any{"node-external-ip": []any{""}, "tls-san": []any{""}}},
		{`--v -2`, map[string]any{"v": "-2"}},
		{`--cluster-dns '$notavar'`, map[string]any{"cluster-dns": "$notavar"}},
	} {
		c, err := ParseExtraArgs(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if got := asMap(t, c.Render()); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q:\ngot  %v\nwant %v", tc.in, got, tc.want)
		}
	}
}

// Each way a user setting breaks the node model is an error that names the
// flag or key, says what is wrong and what to write instead.
func TestUserSettingErrors(t *testing.T) {
	for _, tc := range []struct {
		args, file string
		key        string // as the error must name it
		msg, hint  string
	}{
		{args: `--token x`, key: "--token", msg: "is set by k3sctl", hint: "--token flag or $K3S_TOKEN"},
		{args: `--token=x`, key: "--token", msg: "is set by k3sctl", hint: "--token flag or $K3S_TOKEN"},
		{args: `--token-file /t`, key: "--token-file", msg: "is set by k3sctl", hint: "--token flag"},
		{args: `--server https://a:6443`, key: "--server", msg: "is set by k3sctl", hint: "k3sctl join --server-ip"},
		{args: `--cluster-init`, key: "--cluster-init", msg: "is set by k3sctl", hint: "install --cluster"},
		{args: `--config /x.yaml`, key: "--config", msg: "is set by k3sctl", hint: "--k3s-config or --k3s-extra-args"},
		{args: `--disable-traefik`, key: "--disable-traefik", msg: "is not a K3s server or agent flag", hint: "--disable traefik"},
		{args: `--disable-etc`, key: "--disable-etc", msg: "is not a K3s server or agent flag", hint: "did you mean --disable-etcd?"},
		{args: `--tls-sans x`, key: "--tls-sans", msg: "is not a K3s", hint: "did you mean --tls-san?"},
		{args: `--flannel-backend`, key: "--flannel-backend", msg: "needs a value", hint: "--flannel-backend=<value>"},
		{args: `--etcd-snapshot-retention=ten`, key: "--etcd-snapshot-retention", msg: "whole number", hint: "=10"},
		{args: `--secrets-encryption=yes-please`, key: "--secrets-encryption", msg: "true or false", hint: "--secrets-encryption=false"},
		{args: `--flannel-backend a --flannel-backend b`, key: "--flannel-backend", msg: "given twice", hint: "once"},
		{file: "token: abc\n", key: "line 1: token", msg: "is set by k3sctl", hint: "$K3S_TOKEN"},
		{file: "zzzzzzzz: 1\nservers: [x]\n", key: "line 1: zzzzzzzz", msg: "is not a K3s", hint: "k3s server --help"},
		{file: "disable: [traefik]\nnode-lable: [a=b]\n", key: "line 2: node-lable", msg: "is not a K3s", hint: `did you mean "node-label"?`},
		{file: "secrets-encryption: yes\n", key: "line 1: secrets-encryption", msg: "true or false", hint: "secrets-encryption: true"},
		{file: "etcd-snapshot-retention: [1]\n", key: "line 1: etcd-snapshot-retention", msg: "not a list", hint: "etcd-snapshot-retention: 10"},
		{file: "etcd-snapshot-retention: 1.5\n", key: "line 1: etcd-snapshot-retention", msg: "whole number", hint: ": 10"},
		{file: "flannel-backend: [a, b]\n", key: "line 1: flannel-backend", msg: "not a list", hint: "flannel-backend: <value>"},
		{file: "disable: {traefik: true}\n", key: "line 1: disable", msg: "takes a list of values", hint: "disable: [a, b]"},
		{file: "flannel-backend+: [a]\n", key: "line 1: flannel-backend+", msg: "appends to a list", hint: "flannel-backend:"},
		{file: "cluster-init+: [true]\n", key: "line 1: cluster-init+", msg: "is set by k3sctl", hint: "install --cluster"},
	} {
		var err error
		if tc.file != "" {
			_, err = ParseUserConfig([]byte(tc.file), Scope{})
		} else {
			_, err = ParseExtraArgs(tc.args)
		}
		var se *SettingError
		if !errors.As(err, &se) {
			t.Errorf("%q%q: err = %v, want a *SettingError", tc.args, tc.file, err)
			continue
		}
		if msg := err.Error(); !strings.HasPrefix(msg, tc.key+" ") && !strings.HasPrefix(msg, "k3s config: "+tc.key+": ") ||
			!strings.Contains(msg, tc.msg) || !strings.Contains(msg, tc.hint) {
			t.Errorf("%q%q: err = %q, want %q, %q and %q", tc.args, tc.file, msg, tc.key, tc.msg, tc.hint)
		}
		if strings.Contains(err.Error(), "abc") {
			t.Errorf("error shows the token: %v", err)
		}
	}
}

func TestCheckSettingScope(t *testing.T) {
	for _, tc := range []struct {
		key  string
		v    any
		s    Scope
		want string // "" for accepted
	}{
		{"tls-san", []any{"a"}, Scope{Role: Server}, ""},
		{"tls-san", []any{"a"}, Scope{Role: Agent}, "is a K3s server flag; k3s agent does not take it"},
		{"disable-apiserver-lb", true, Scope{Role: Server}, "is a K3s agent flag"},
		{"tls-san", []any{"a"}, Scope{}, ""},
		{"node-name", "x", Scope{}, ""},
		{"node-name", "x", Scope{Inventory: true}, "set name: on the host instead"},
		{"node-label+", []any{"a=b"}, Scope{Role: Agent}, ""},
		{"cluster-cidr", []any{"10.42.0.0/16", "fd00::/56"}, Scope{Role: Server}, ""},
		{"write-kubeconfig-mode", 644, Scope{Role: Server}, ""},
		{"write-kubeconfig-mode", true, Scope{Role: Server}, "takes a single value, not true"},
		{"etcd-snapshot-retention", "7", Scope{Role: Server}, ""},
		{"with-node-id", "true", Scope{}, ""},
		{"with-node-id", "on", Scope{}, "true or false, not \"on\""},
		{"node-label", []any{[]any{"x"}}, Scope{}, "plain values"},
		{"datastore-endpoint", []any{"postgres://u:pw@h/db"}, Scope{Role: Server}, "not a list"},
	} {
		err := CheckSetting(tc.key, tc.v, tc.s)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s=%v in %+v: %v", tc.key, tc.v, tc.s, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s=%v in %+v: err = %v, want %q", tc.key, tc.v, tc.s, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "pw@") {
			t.Errorf("error shows a secret: %v", err)
		}
	}
}

// The flag table agrees with itself and with what the rest of the package
// relies on.
func TestFlagTable(t *testing.T) {
	for _, o := range OwnedKeys() {
		if _, ok := LookupFlag(o.Key); !ok {
			t.Errorf("owned key %s is not a K3s flag", o.Key)
		}
		if o.Why == "" || o.InventoryInstead == "" || o.Instead == "" && !o.PerHost {
			t.Errorf("owned key %s does not say why or what to do instead", o.Key)
		}
	}
	for _, ck := range CriticalKeys() {
		f, ok := LookupFlag(ck.Key)
		if !ok || !f.Server {
			t.Errorf("critical key %s is not a K3s server flag", ck.Key)
		}
		if f.Kind == BoolFlag && ck.Default != "false" {
			t.Errorf("critical boolean %s defaults to %q", ck.Key, ck.Default)
		}
	}
	for _, k := range []string{"token", "agent-token", "datastore-endpoint", "etcd-s3-secret-key"} {
		if !IsSecretKey(k) {
			t.Errorf("%s is not secret", k)
		}
	}
	if !IsListKey("node-label") || IsListKey("cluster-cidr") || !IsBoolKey("cluster-init") || IsBoolKey("token") {
		t.Error("flag kinds")
	}
	if got := SuggestFlag("node_label", Agent); got != "node-label" {
		t.Errorf("SuggestFlag(node_label) = %q", got)
	}
	if got := SuggestFlag("tls-sans", Agent); got == "tls-san" {
		t.Error("suggests a server flag for an agent")
	}
}

func TestParseExtraArgsErrors(t *testing.T) {
	for in, msg := range map[string]string{
		`traefik`:                        "not a flag",
		`--disable-network-policy true`:  "not a flag",
		`--selinux=maybe`:                "true or false",
		`--node-label 'a=b`:              "unterminated single quote",
		`--node-label "a=b`:              "unterminated double quote",
		`--tls-san $HOST`:                "unquoted $",
		`--tls-san "$HOST"`:              "nothing is expanded",
		"--tls-san `hostname`":           "unquoted `",
		`--disable traefik; rm -rf /`:    "unquoted ;",
		`-t secret`:                      "long name",
		`--Node-Name x`:                  "not a flag",
		`--node_name x`:                  "not a K3s flag name",
		`--disable traefik \`:            "trailing backslash",
		`--kubelet-arg a | tee /tmp/out`: "unquoted |",
	} {
		_, err := ParseExtraArgs(in)
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%q: err = %v, want %q", in, err, msg)
		}
	}
}

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig([]byte(`# my settings
write-kubeconfig-mode: "0644"
tls-san: lb.example.com
tls-san+: [10.0.0.100]
disable:
  - traefik
  - servicelb
secrets-encryption: true
etcd-snapshot-retention: 10
kubelet-arg: &args
  - max-pods=200
kube-proxy-arg: *args
custom-list+: [a]
custom-list: [b]
node-label:
datastore-endpoint: postgres://k3s:hunter2@db:5432/k3s
`))
	if err != nil {
		t.Fatal(err)
	}
	got := asMap(t, c.Render())
	want := map[string]any{
		"write-kubeconfig-mode":   "0644",
		"tls-san":                 []any{"lb.example.com", "10.0.0.100"},
		"disable":                 []any{"traefik", "servicelb"},
		"secrets-encryption":      true,
		"etcd-snapshot-retention": 10,
		"kubelet-arg":             []any{"max-pods=200"},
		"kube-proxy-arg":          []any{"max-pods=200"},
		"custom-list":             []any{"a", "b"},
		"datastore-endpoint":      "postgres://k3s:hunter2@db:5432/k3s",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
	if strings.Contains(string(c.Redacted()), "hunter2") {
		t.Error("datastore password shown in the redacted config")
	}
	if strings.Contains(string(c.Render()), "&args") || strings.Contains(string(c.Render()), "*args") {
		t.Error("anchors copied into config.yaml")
	}
	for _, empty := range []string{"", "# nothing\n", "---\n", "~\n"} {
		if c, err := ParseConfig([]byte(empty)); err != nil || len(c.Keys()) != 0 {
			t.Errorf("ParseConfig(%q) = %v, %v", empty, c.Keys(), err)
		}
	}
}

func TestParseConfigErrors(t *testing.T) {
	for in, msg := range map[string]string{
		"- a\n- b\n":                                "line 1: want a mapping",
		"a: b\na: c\n":                              "line 2: \"a\" is already set on line 1",
		"--disable: traefik\n":                      "without its dashes",
		"cluster-init: sometimes\n":                 "true or false",
		"token: [a, b]\n":                           "single value",
		"tls-san:\n  a: b\n":                        "list of values",
		"tls-san: [[a]]\n":                          "plain values",
		"tls-san: [a\n":                             "k3s config",
		"? [complex, key]\n: value\n":               "keys are flag names",
		"disable-network-policy: [true]\n":          "true or false",
		"cluster-init: true\ncluster-init: false\n": "already set",
	} {
		_, err := ParseConfig([]byte(in))
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%q: err = %v, want %q", in, err, msg)
		}
	}
}

const testToken = "K10" + hash64 + "::server:hunter2hunter2"

func firstServer() NodeSettings {
	return NodeSettings{
		Role:        Server,
		Token:       secret.New(testToken),
		ClusterInit: true,
		NodeName:    "pi-1",
		TLSSANs:     []string{"10.0.0.11", "k3s.example.com"},
		NodeLabels:  []string{"k3sctl.io/cluster=edge"},
	}
}

func TestBuildConfigLayers(t *testing.T) {
	user, err := ParseConfig([]byte("tls-san: [lb.example.com, 10.0.0.11]\nnode-name: custom-name\nflannel-backend: host-gw\nkubelet-arg: [max-pods=200]\n"))
	if err != nil {
		t.Fatal(err)
	}
	extra, err := ParseExtraArgs("--flannel-backend=wireguard-native --tls-san 203.0.113.9 --disable traefik --kubelet-arg=max-pods=250")
	if err != nil {
		t.Fatal(err)
	}
	user.Merge(extra)
	s := firstServer()
	s.NodeName = ""
	c, err := BuildConfig(s, user)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "config.yaml", c.Render())
	golden(t, "config.redacted.yaml", c.Redacted())

	if got := c.List("tls-san"); strings.Join(got, " ") != "10.0.0.11 k3s.example.com lb.example.com 203.0.113.9" {
		t.Errorf("tls-san = %v, want k3sctl's, then the file's, then the extra args', each once", got)
	}
	if got, _ := c.Get("node-name"); got != "custom-name" {
		t.Errorf("node-name = %q, want the user's when k3sctl does not name the host", got)
	}
	if got, _ := c.Get("flannel-backend"); got != "wireguard-native" {
		t.Errorf("flannel-backend = %q, want extra args to win over the file", got)
	}
	if got := c.List("kubelet-arg"); strings.Join(got, " ") != "max-pods=200 max-pods=250" {
		t.Errorf("kubelet-arg = %v", got)
	}
	if c.Secret("token").Reveal() != testToken || !strings.HasPrefix(strings.Join(c.Keys(), " "), "cluster-init token tls-san node-label node-name flannel-backend") {
		t.Errorf("keys %v", c.Keys())
	}
	// Deterministic: same input, same bytes.
	again, _ := BuildConfig(s, user)
	if !bytes.Equal(again.Render(), c.Render()) {
		t.Error("rendering is not deterministic")
	}
	// What K3s reads back is what was built.
	back, err := ParseConfig(c.Render())
	if err != nil || !bytes.Equal(back.Render(), c.Render()) {
		t.Errorf("config does not survive a round trip (%v):\n%s", err, back.Render())
	}
}

func TestConfigNeverShowsSecrets(t *testing.T) {
	c, err := BuildConfig(firstServer(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	c.SetString("agent-token", "agentpass0000")
	if n := strings.Count(string(c.Render()), "hunter2hunter2"); n != 1 {
		t.Errorf("token appears %d times in config.yaml, want 1", n)
	}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "c", c)
	js, _ := json.Marshal(struct{ C Config }{c})
	type holder struct{ C Config }
	for name, s := range map[string]string{
		"Redacted": string(c.Redacted()),
		"%v":       fmt.Sprintf("%v", c),
		"%+v":      fmt.Sprintf("%+v", holder{c}),
		"%#v":      fmt.Sprintf("%#v", holder{c}),
		//lint:ignore S1025 the test covers every fmt verb
		"%s":   fmt.Sprintf("%s", c),
		"%q":   fmt.Sprintf("%q", c),
		"slog": logged.String(),
		"json": string(js),
	} {
		if strings.Contains(s, "hunter2") || strings.Contains(s, "agentpass") {
			t.Errorf("%s shows a secret:\n%s", name, s)
		}
	}
	if !strings.Contains(string(c.Redacted()), "token: '[redacted]'") {
		t.Errorf("redacted config does not show that a token is set:\n%s", c.Redacted())
	}
}

func TestBuildConfigRefusesOwnedKeys(t *testing.T) {
	for _, tc := range []struct {
		file, key string
		named     bool
	}{
		{"token: abc\n", "token", false},
		{"token-file: /tmp/t\n", "token-file", false},
		{"server: https://x:6443\n", "server", false},
		{"cluster-init: true\n", "cluster-init", false},
		{"config: /etc/other.yaml\n", "config", false},
		{"node-name: x\n", "node-name", true},
	} {
		user, err := ParseConfig([]byte(tc.file))
		if err != nil {
			t.Fatal(err)
		}
		s := firstServer()
		if !tc.named {
			s.NodeName = ""
		}
		_, err = BuildConfig(s, user)
		var se *SettingError
		if !errors.As(err, &se) || se.Key != tc.key || !strings.Contains(se.Message, "set by k3sctl") || se.Hint == "" {
			t.Errorf("%q: err = %v, want a SettingError for %s with a hint", tc.file, err, tc.key)
		}
		if err != nil && strings.Contains(err.Error(), "abc") {
			t.Errorf("error shows the token: %v", err)
		}
	}
	// node-name is the user's to set when k3sctl does not name the host.
	user, _ := ParseConfig([]byte("node-name: mine\n"))
	s := firstServer()
	s.NodeName = ""
	if c, err := BuildConfig(s, user); err != nil || c.List("node-name")[0] != "mine" {
		t.Errorf("node-name on an unnamed host: %v", err)
	}
}

func TestBuildConfigRoles(t *testing.T) {
	tok := secret.New("short")
	agent := NodeSettings{Role: Agent, Token: tok, Server: "https://10.0.0.11:6443", NodeName: "w1", NodeTaints: []string{"gpu=true:NoSchedule"}}
	c, err := BuildConfig(agent, Config{})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "agent.yaml", c.Redacted())
	join := NodeSettings{Role: Server, Token: tok, Server: "https://10.0.0.11:6443/"}
	c, err = BuildConfig(join, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := c.Get("server"); s != "https://10.0.0.11:6443" || c.Has("cluster-init") {
		t.Errorf("joining server: server %q, keys %v", s, c.Keys())
	}
	for name, s := range map[string]NodeSettings{
		"no role":             {Token: tok},
		"agent without url":   {Role: Agent, Token: tok},
		"agent without token": {Role: Agent, Server: "https://a:6443"},
		"agent cluster-init":  {Role: Agent, Token: tok, Server: "https://a:6443", ClusterInit: true},
		"agent tls-san":       {Role: Agent, Token: tok, Server: "https://a:6443", TLSSANs: []string{"x"}},
		"init and join":       {Role: Server, Token: tok, Server: "https://a:6443", ClusterInit: true},
		"join without token":  {Role: Server, Server: "https://a:6443"},
		"http server":         {Role: Agent, Token: tok, Server: "http://a:6443"},
		"server with path":    {Role: Agent, Token: tok, Server: "https://a:6443/v1"},
	} {
		if _, err := BuildConfig(s, Config{}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// The first server may go without a token: K3s makes one.
	if _, err := BuildConfig(NodeSettings{Role: Server}, Config{}); err != nil {
		t.Errorf("first server without token: %v", err)
	}
}

func TestConfigEditing(t *testing.T) {
	var c Config
	c.SetString("node-name", "a")
	c.SetList("tls-san", "x")
	c.AddToList("tls-san", "y", "x")
	c.SetString("custom", "one")
	c.AddToList("custom", "two")
	c.SetBool("selinux", true)
	if got := strings.Join(c.List("tls-san"), ","); got != "x,y" {
		t.Errorf("tls-san = %s", got)
	}
	if got := strings.Join(c.List("custom"), ","); got != "one,two" {
		t.Errorf("a single value did not become a list: %s", got)
	}
	if !c.Bool("selinux") || c.Bool("rootless") {
		t.Error("Bool")
	}
	d := c.Clone()
	d.AddToList("tls-san", "z")
	d.Delete("node-name")
	if len(c.List("tls-san")) != 2 || !c.Has("node-name") {
		t.Error("Clone shares state with the original")
	}
	if strings.Join(d.Keys(), ",") != "tls-san,custom,selinux" {
		t.Errorf("keys after Delete: %v", d.Keys())
	}
	// Strings that YAML would read as something else stay strings.
	var q Config
	for _, s := range []string{"true", "644", "on", "null", "1e3", "a: b", "#x"} {
		q.SetString("k"+s, s)
	}
	m := asMap(t, q.Render())
	for _, s := range []string{"true", "644", "on", "null", "1e3", "a: b", "#x"} {
		if m["k"+s] != s {
			t.Errorf("%q came back as %#v", s, m["k"+s])
		}
	}
	if !bytes.HasPrefix(q.Render(), []byte(ConfigHeader)) {
		t.Error("no header")
	}
}

func TestCriticalDiff(t *testing.T) {
	parse := func(s string) Config {
		c, err := ParseConfig([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, tc := range []struct {
		a, b string
		want []string
	}{
		{"", "", nil},
		{"", "cluster-cidr: 10.42.0.0/16\nservice-cidr: 10.43.0.0/16\nflannel-backend: vxlan\nsecrets-encryption: false\n", nil},
		{"cluster-cidr: 10.42.0.0/16,fd00:42::/56\n", "cluster-cidr: [10.42.0.0/16, 'fd00:42::/56']\n", nil},
		{"disable: [traefik]\n", "", nil},
		{"disable: [traefik, servicelb]\n", "disable: 'servicelb,traefik'\n", nil},
		{"disable: [servicelb]\n", "disable: [traefik]\n", []string{"disable"}},
		{"flannel-backend: wireguard-native\nsecrets-encryption: true\n", "", []string{"flannel-backend", "secrets-encryption"}},
		{"agent-token: a\n", "agent-token: b\n", []string{"agent-token"}},
		{"cluster-domain: edge.local\n", "node-name: x\ntls-san: [a]\n", []string{"cluster-domain"}},
		{"egress-selector-mode: disabled\nembedded-registry: true\n", "", []string{"egress-selector-mode", "embedded-registry"}},
	} {
		if got := CriticalDiff(parse(tc.a), parse(tc.b)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("CriticalDiff(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
	var names []string
	for _, ck := range CriticalKeys() {
		names = append(names, ck.Key)
	}
	keys := strings.Join(names, " ")
	for _, k := range []string{"agent-token", "cluster-cidr", "service-cidr", "cluster-dns", "cluster-domain", "flannel-backend",
		"disable-network-policy", "disable-helm-controller", "disable", "egress-selector-mode", "embedded-registry", "secrets-encryption"} {
		if !strings.Contains(" "+keys+" ", " "+k+" ") {
			t.Errorf("CriticalKeys lacks %s", k)
		}
	}
}
