package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

type flagKind int

const (
	kString flagKind = iota
	kBool
	kInt
	kSlice
)

type flagDef struct {
	name   string
	short  string
	kind   flagKind
	env    string
	def    string
	server bool
	agent  bool
}

// Where a flag is accepted.
const (
	onServer = 1 << iota
	onAgent
	onBoth = onServer | onAgent
)

func fl(name string, kind flagKind, where int, opts ...string) flagDef {
	d := flagDef{name: name, kind: kind, server: where&onServer != 0, agent: where&onAgent != 0}
	for _, o := range opts {
		switch {
		case strings.HasPrefix(o, "env="):
			d.env = o[4:]
		case strings.HasPrefix(o, "short="):
			d.short = o[6:]
		case strings.HasPrefix(o, "def="):
			d.def = o[4:]
		}
	}
	return d
}

// flagDefs are the k3s server and agent flags. Only a few change what the
// simulator does, but all are known so that a real configuration does not
// warn about keys k3s accepts.
var flagDefs = []flagDef{
	fl("config", kString, onBoth, "short=c", "env=K3S_CONFIG_FILE", "def="+defaultConfigFile),
	fl("debug", kBool, onBoth, "env=K3S_DEBUG"),
	fl("v", kInt, onBoth, "def=0"),
	fl("vmodule", kString, onBoth),
	fl("log", kString, onBoth, "short=l"),
	fl("alsologtostderr", kBool, onBoth),
	fl("data-dir", kString, onBoth, "short=d", "env=K3S_DATA_DIR", "def="+defaultDataDir),
	fl("token", kString, onBoth, "short=t", "env=K3S_TOKEN"),
	fl("token-file", kString, onBoth, "env=K3S_TOKEN_FILE"),
	fl("server", kString, onBoth, "short=s", "env=K3S_URL"),
	fl("node-name", kString, onBoth, "env=K3S_NODE_NAME"),
	fl("with-node-id", kBool, onBoth),
	fl("node-label", kSlice, onBoth),
	fl("node-taint", kSlice, onBoth),
	fl("image-credential-provider-bin-dir", kString, onBoth),
	fl("image-credential-provider-config", kString, onBoth),
	fl("docker", kBool, onBoth),
	fl("container-runtime-endpoint", kString, onBoth),
	fl("default-runtime", kString, onBoth),
	fl("image-service-endpoint", kString, onBoth),
	fl("disable-default-registry-endpoint", kBool, onBoth),
	fl("nonroot-devices", kBool, onBoth),
	fl("pause-image", kString, onBoth),
	fl("snapshotter", kString, onBoth, "def=overlayfs"),
	fl("private-registry", kString, onBoth, "def=/etc/rancher/k3s/registries.yaml"),
	fl("node-ip", kSlice, onBoth, "short=i"),
	fl("node-external-ip", kSlice, onBoth),
	fl("node-internal-dns", kSlice, onBoth),
	fl("node-external-dns", kSlice, onBoth),
	fl("resolv-conf", kString, onBoth, "env=K3S_RESOLV_CONF"),
	fl("flannel-iface", kString, onBoth),
	fl("flannel-conf", kString, onBoth),
	fl("flannel-cni-conf", kString, onBoth),
	fl("kubelet-arg", kSlice, onBoth),
	fl("kube-proxy-arg", kSlice, onBoth),
	fl("protect-kernel-defaults", kBool, onBoth),
	fl("selinux", kBool, onBoth, "env=K3S_SELINUX"),
	fl("lb-server-port", kInt, onBoth, "env=K3S_LB_SERVER_PORT", "def=6444"),
	fl("airgap-extra-registry", kSlice, onBoth),
	fl("vpn-auth", kString, onBoth, "env=K3S_VPN_AUTH"),
	fl("vpn-auth-file", kString, onBoth, "env=K3S_VPN_AUTH_FILE"),
	fl("rootless", kBool, onBoth),
	fl("prefer-bundled-bin", kBool, onBoth),
	fl("enable-pprof", kBool, onBoth),
	fl("disable-apiserver-lb", kBool, onAgent),

	fl("bind-address", kString, onServer),
	fl("https-listen-port", kInt, onServer, "def=6443"),
	fl("supervisor-port", kInt, onServer),
	fl("apiserver-port", kInt, onServer),
	fl("apiserver-bind-address", kString, onServer),
	fl("advertise-address", kString, onServer),
	fl("advertise-port", kInt, onServer),
	fl("tls-san", kSlice, onServer),
	fl("tls-san-security", kBool, onServer, "def=true"),
	fl("cluster-cidr", kSlice, onServer),
	fl("service-cidr", kSlice, onServer),
	fl("service-node-port-range", kString, onServer, "def=30000-32767"),
	fl("cluster-dns", kSlice, onServer),
	fl("cluster-domain", kString, onServer, "def=cluster.local"),
	fl("flannel-backend", kString, onServer, "def=vxlan"),
	fl("flannel-ipv6-masq", kBool, onServer),
	fl("flannel-external-ip", kBool, onServer),
	fl("egress-selector-mode", kString, onServer, "def=agent"),
	fl("servicelb-namespace", kString, onServer, "def=kube-system"),
	fl("write-kubeconfig", kString, onServer, "short=o", "env=K3S_KUBECONFIG_OUTPUT"),
	fl("write-kubeconfig-mode", kString, onServer, "env=K3S_KUBECONFIG_MODE"),
	fl("write-kubeconfig-group", kString, onServer, "env=K3S_KUBECONFIG_GROUP"),
	fl("helm-job-image", kString, onServer),
	fl("agent-token", kString, onServer, "env=K3S_AGENT_TOKEN"),
	fl("agent-token-file", kString, onServer, "env=K3S_AGENT_TOKEN_FILE"),
	fl("cluster-init", kBool, onServer, "env=K3S_CLUSTER_INIT"),
	fl("cluster-reset", kBool, onServer, "env=K3S_CLUSTER_RESET"),
	fl("cluster-reset-restore-path", kString, onServer),
	fl("kube-apiserver-arg", kSlice, onServer),
	fl("etcd-arg", kSlice, onServer),
	fl("kube-controller-manager-arg", kSlice, onServer),
	fl("kube-scheduler-arg", kSlice, onServer),
	fl("kube-cloud-controller-manager-arg", kSlice, onServer),
	fl("datastore-endpoint", kString, onServer, "env=K3S_DATASTORE_ENDPOINT"),
	fl("datastore-cafile", kString, onServer, "env=K3S_DATASTORE_CAFILE"),
	fl("datastore-certfile", kString, onServer, "env=K3S_DATASTORE_CERTFILE"),
	fl("datastore-keyfile", kString, onServer, "env=K3S_DATASTORE_KEYFILE"),
	fl("kine-tls", kBool, onServer),
	fl("etcd-expose-metrics", kBool, onServer),
	fl("etcd-disable-snapshots", kBool, onServer),
	fl("etcd-snapshot-name", kString, onServer, "def=etcd-snapshot"),
	fl("etcd-snapshot-schedule-cron", kString, onServer, "def=0 */12 * * *"),
	fl("etcd-snapshot-retention", kInt, onServer, "def=5"),
	fl("etcd-snapshot-dir", kString, onServer),
	fl("etcd-snapshot-compress", kBool, onServer),
	fl("etcd-s3", kBool, onServer),
	fl("etcd-s3-endpoint", kString, onServer, "def=s3.amazonaws.com"),
	fl("etcd-s3-endpoint-ca", kString, onServer),
	fl("etcd-s3-skip-ssl-verify", kBool, onServer),
	fl("etcd-s3-access-key", kString, onServer, "env=AWS_ACCESS_KEY_ID"),
	fl("etcd-s3-secret-key", kString, onServer, "env=AWS_SECRET_ACCESS_KEY"),
	fl("etcd-s3-bucket", kString, onServer),
	fl("etcd-s3-region", kString, onServer, "def=us-east-1"),
	fl("etcd-s3-folder", kString, onServer),
	fl("etcd-s3-proxy", kString, onServer),
	fl("etcd-s3-config-secret", kString, onServer),
	fl("etcd-s3-insecure", kBool, onServer),
	fl("etcd-s3-timeout", kString, onServer, "def=5m0s"),
	fl("default-local-storage-path", kString, onServer),
	fl("disable", kSlice, onServer),
	fl("disable-scheduler", kBool, onServer),
	fl("disable-cloud-controller", kBool, onServer),
	fl("disable-kube-proxy", kBool, onServer),
	fl("disable-network-policy", kBool, onServer),
	fl("disable-helm-controller", kBool, onServer),
	fl("disable-apiserver", kBool, onServer),
	fl("disable-controller-manager", kBool, onServer),
	fl("disable-etcd", kBool, onServer),
	fl("disable-agent", kBool, onServer),
	fl("embedded-registry", kBool, onServer),
	fl("supervisor-metrics", kBool, onServer),
	fl("secrets-encryption", kBool, onServer),
	fl("secrets-encryption-provider", kString, onServer, "def=aescbc"),
	fl("system-default-registry", kString, onServer, "env=K3S_SYSTEM_DEFAULT_REGISTRY"),
	fl("cluster-secret", kString, onServer, "env=K3S_CLUSTER_SECRET"),
}

// opts is the resolved configuration of one server or agent run.
type opts struct {
	cmd      string
	scalars  map[string]string
	slices   map[string][]string
	set      map[string]bool
	args     []string // positional arguments, which k3s ignores
	cfgFile  string   // the config file as k3s names it
	fromFile []string // the flags the config files contributed, in order
}

func lookupFlag(cmd, name string) (*flagDef, bool) {
	for i := range flagDefs {
		d := &flagDefs[i]
		if d.name != name && d.short != name {
			continue
		}
		if (cmd == "server" && d.server) || (cmd == "agent" && d.agent) {
			return d, true
		}
		return d, false
	}
	return nil, false
}

func (o *opts) str(name string) string { return o.scalars[name] }

func (o *opts) boolean(name string) bool {
	b, _ := parseBool(o.scalars[name])
	return b
}

func (o *opts) integer(name string) int {
	n, _ := strconv.Atoi(o.scalars[name])
	return n
}

// list returns a slice flag; k3s splits the values of these on commas too.
func (o *opts) list(name string) []string {
	var out []string
	for _, v := range o.slices[name] {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// rawList returns a slice flag as given, for values that may hold commas.
func (o *opts) rawList(name string) []string { return append([]string(nil), o.slices[name]...) }

func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "t", "true", "yes", "y", "on":
		return true, nil
	case "", "0", "f", "false", "no", "n", "off":
		return false, nil
	}
	return false, fmt.Errorf("invalid boolean value %q", s)
}

// parseOpts resolves a command's configuration the way k3s does: the config
// file and its drop-ins are turned into flags placed before the command-line
// flags, so the command line overrides scalars and appends to lists; K3S_*
// variables only fill in what neither sets.
func parseOpts(cmd string, args []string, getenv func(string) string) (*opts, error) {
	o := &opts{cmd: cmd, scalars: map[string]string{}, slices: map[string][]string{}, set: map[string]bool{}}
	for _, d := range flagDefs {
		if (cmd == "server" && !d.server) || (cmd == "agent" && !d.agent) {
			continue
		}
		if d.def != "" && d.kind != kSlice {
			o.scalars[d.name] = d.def
		}
	}

	o.cfgFile = findConfigFile(args, getenv)
	fileArgs, err := readConfigArgs(o.cfgFile)
	if err != nil {
		return nil, err
	}
	for _, a := range fileArgs {
		name := strings.TrimLeft(strings.SplitN(a, "=", 2)[0], "-")
		if _, ok := lookupFlag(cmd, name); !ok {
			warnf("Unknown flag --%s found in config.yaml, skipping", name)
			continue
		}
		o.fromFile = append(o.fromFile, a)
	}

	for _, d := range flagDefs {
		if d.env == "" || (cmd == "server" && !d.server) || (cmd == "agent" && !d.agent) {
			continue
		}
		if v := getenv(d.env); v != "" {
			if err := o.apply(&d, v, true); err != nil {
				return nil, fmt.Errorf("could not parse %q as %s value from environment variable %q for flag %s: %v", v, kindName(d.kind), d.env, d.name, err)
			}
		}
	}

	all := append(append([]string(nil), o.fromFile...), args...)
	if err := o.parseFlags(all); err != nil {
		return nil, err
	}
	return o, nil
}

func kindName(k flagKind) string {
	switch k {
	case kBool:
		return "bool"
	case kInt:
		return "int"
	case kSlice:
		return "slice"
	}
	return "string"
}

// apply sets one value. Environment values are placeholders: the first flag
// for a list replaces what the environment gave instead of appending to it.
func (o *opts) apply(d *flagDef, v string, fromEnv bool) error {
	switch d.kind {
	case kBool:
		if _, err := parseBool(v); err != nil {
			return errors.New("parse error")
		}
		o.scalars[d.name] = v
	case kInt:
		if _, err := strconv.Atoi(strings.TrimSpace(v)); err != nil {
			return errors.New("parse error")
		}
		o.scalars[d.name] = strings.TrimSpace(v)
	case kSlice:
		if fromEnv {
			o.slices[d.name] = []string{v}
		} else {
			if o.set[d.name] && !o.setByFlag(d.name) {
				o.slices[d.name] = nil
			}
			o.slices[d.name] = append(o.slices[d.name], v)
			o.set["flag:"+d.name] = true
		}
	default:
		o.scalars[d.name] = v
	}
	o.set[d.name] = true
	return nil
}

func (o *opts) setByFlag(name string) bool { return o.set["flag:"+name] }

// parseFlags follows Go's flag package, which k3s's CLI library uses: one or
// two dashes, "--name value" or "--name=value", bool flags take no separate
// value, and parsing stops at the first argument that is not a flag.
func (o *opts) parseFlags(args []string) error {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			o.args = append(o.args, args[i+1:]...)
			return nil
		}
		if len(a) < 2 || a[0] != '-' {
			o.args = append(o.args, args[i:]...)
			return nil
		}
		name := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		value, hasValue := "", false
		if n, v, ok := strings.Cut(name, "="); ok {
			name, value, hasValue = n, v, true
		}
		d, ok := lookupFlag(o.cmd, name)
		if !ok {
			return fmt.Errorf("flag provided but not defined: -%s", name)
		}
		if d.kind == kBool {
			if !hasValue {
				value = "true"
			}
		} else if !hasValue {
			if i+1 >= len(args) {
				return fmt.Errorf("flag needs an argument: -%s", name)
			}
			i++
			value = args[i]
		}
		if err := o.apply(d, value, false); err != nil {
			return fmt.Errorf("invalid value %q for flag -%s: %v", value, name, err)
		}
	}
	return nil
}

// findConfigFile: K3S_CONFIG_FILE wins over --config, which wins over the
// default path.
func findConfigFile(args []string, getenv func(string) string) string {
	if v := getenv("K3S_CONFIG_FILE"); v != "" {
		return v
	}
	for i, a := range args {
		for _, n := range []string{"--config", "-c"} {
			if a == n {
				if i+1 < len(args) {
					return args[i+1]
				}
				return ""
			}
			if v, ok := strings.CutPrefix(a, n+"="); ok {
				return v
			}
		}
	}
	return defaultConfigFile
}

// readConfigArgs turns config.yaml and config.yaml.d/*.yaml into flags:
// later files replace a key, "key+:" appends to it. A missing file is no
// error; a file that is not YAML is.
func readConfigArgs(file string) ([]string, error) {
	if file == "" {
		return nil, nil
	}
	real := hostPath(file)
	var files []string
	if _, err := os.Stat(real); err == nil {
		files = append(files, real)
	} else if !os.IsNotExist(err) {
		return nil, err
	}
	entries, err := os.ReadDir(real + ".d")
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	for _, e := range entries {
		n := strings.ToLower(e.Name())
		if e.IsDir() || !(strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml")) {
			continue
		}
		files = append(files, filepath.Join(real+".d", e.Name()))
	}

	var order []string
	values := map[string][]string{}
	isList := map[string]bool{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(data, &doc); err != nil {
			return nil, fmt.Errorf("%s: %v", displayPath(f), err)
		}
		if len(doc.Content) == 0 {
			continue
		}
		m := doc.Content[0]
		if m.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%s: yaml: unmarshal errors:\n  line %d: cannot unmarshal into a map", displayPath(f), m.Line)
		}
		for i := 0; i+1 < len(m.Content); i += 2 {
			k := m.Content[i].Value
			appendTo := strings.HasSuffix(k, "+")
			k = strings.TrimSuffix(k, "+")
			vals, list := yamlValues(m.Content[i+1])
			if _, seen := values[k]; !seen {
				order = append(order, k)
			}
			if _, had := values[k]; had && appendTo {
				values[k] = append(values[k], vals...)
				isList[k] = true
			} else {
				values[k] = vals
				isList[k] = list
			}
		}
	}

	var out []string
	for _, k := range order {
		prefix := "--"
		if len(k) == 1 {
			prefix = "-"
		}
		if isList[k] {
			for _, v := range values[k] {
				out = append(out, prefix+k+"="+v)
			}
			continue
		}
		v := ""
		if len(values[k]) > 0 {
			v = values[k][0]
		}
		out = append(out, prefix+k+"="+v)
	}
	return out, nil
}

func yamlValues(n *yaml.Node) ([]string, bool) {
	switch n.Kind {
	case yaml.SequenceNode:
		var out []string
		for _, c := range n.Content {
			out = append(out, yamlScalar(c))
		}
		return out, true
	case yaml.AliasNode:
		if n.Alias != nil {
			return yamlValues(n.Alias)
		}
	}
	return []string{yamlScalar(n)}, false
}

func yamlScalar(n *yaml.Node) string {
	if n.Kind != yaml.ScalarNode {
		var v any
		_ = n.Decode(&v)
		return fmt.Sprint(v)
	}
	if n.Tag == "!!null" {
		return ""
	}
	return n.Value
}

// redactedArgs is the node-args annotation: what the node was started with,
// secrets masked, as k3s shows it on the Node object.
func (o *opts) redactedArgs() []string {
	out := []string{o.cmd}
	var names []string
	for n := range o.set {
		if !strings.HasPrefix(n, "flag:") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		d, _ := lookupFlag(o.cmd, n)
		if d == nil || n == "config" {
			continue
		}
		secret := strings.Contains(n, "token") || strings.Contains(n, "secret") || n == "vpn-auth" || n == "datastore-endpoint"
		if d.kind == kSlice {
			for _, v := range o.slices[n] {
				out = append(out, "--"+n, v)
			}
			continue
		}
		v := o.scalars[n]
		if secret {
			v = "********"
		}
		out = append(out, "--"+n, v)
	}
	return out
}
