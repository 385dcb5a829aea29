package k3s

import (
	"slices"
	"strings"

	"github.com/k3sctl/k3sctl/internal/suggest"
)

// FlagKind is how K3s reads a flag's value.
type FlagKind int

// Flag kinds.
const (
	StringFlag FlagKind = iota
	BoolFlag
	IntFlag
	// ListFlag may repeat on the command line and is a YAML list in
	// config.yaml.
	ListFlag
)

// Flag is one flag of `k3s server` or `k3s agent`, as far as k3sctl needs
// to know it: its kind, which of the two commands take it, and whether its
// value is a credential.
type Flag struct {
	Name          string
	Kind          FlagKind
	Server, Agent bool
	// Secret values are redacted wherever a config is shown.
	Secret bool
	// Joined: K3s reads one value or several, comma separated or as a
	// YAML list (the dual-stack CIDRs), and writes it back as one value.
	Joined bool
}

// For reports whether the command of role r takes the flag; the zero
// Role means either command.
func (f Flag) For(r Role) bool {
	switch r {
	case Server:
		return f.Server
	case Agent:
		return f.Agent
	}
	return f.Server || f.Agent
}

const (
	onServer = 1 << iota
	onAgent
	onBoth = onServer | onAgent
)

type flagOpt int

const (
	optSecret flagOpt = 1 << iota
	optJoined
)

func define(name string, kind FlagKind, where int, opts ...flagOpt) Flag {
	f := Flag{Name: name, Kind: kind, Server: where&onServer != 0, Agent: where&onAgent != 0}
	for _, o := range opts {
		f.Secret = f.Secret || o&optSecret != 0
		f.Joined = f.Joined || o&optJoined != 0
	}
	return f
}

// flags are the flags of `k3s server` and `k3s agent` (K3s v1.30–v1.32),
// long names only. config.yaml keys are these names without the dashes.
var flags = []Flag{
	// Both commands.
	define("config", StringFlag, onBoth),
	define("debug", BoolFlag, onBoth),
	define("v", IntFlag, onBoth),
	define("vmodule", StringFlag, onBoth),
	define("log", StringFlag, onBoth),
	define("alsologtostderr", BoolFlag, onBoth),
	define("data-dir", StringFlag, onBoth),
	define("token", StringFlag, onBoth, optSecret),
	define("token-file", StringFlag, onBoth),
	define("server", StringFlag, onBoth),
	define("node-name", StringFlag, onBoth),
	define("with-node-id", BoolFlag, onBoth),
	define("node-label", ListFlag, onBoth),
	define("node-taint", ListFlag, onBoth),
	define("image-credential-provider-bin-dir", StringFlag, onBoth),
	define("image-credential-provider-config", StringFlag, onBoth),
	define("docker", BoolFlag, onBoth),
	define("container-runtime-endpoint", StringFlag, onBoth),
	define("default-runtime", StringFlag, onBoth),
	define("image-service-endpoint", StringFlag, onBoth),
	define("disable-default-registry-endpoint", BoolFlag, onBoth),
	define("nonroot-devices", BoolFlag, onBoth),
	define("pause-image", StringFlag, onBoth),
	define("snapshotter", StringFlag, onBoth),
	define("private-registry", StringFlag, onBoth),
	define("node-ip", ListFlag, onBoth),
	define("node-external-ip", ListFlag, onBoth),
	define("node-internal-dns", ListFlag, onBoth),
	define("node-external-dns", ListFlag, onBoth),
	define("resolv-conf", StringFlag, onBoth),
	define("flannel-iface", StringFlag, onBoth),
	define("flannel-conf", StringFlag, onBoth),
	define("flannel-cni-conf", StringFlag, onBoth),
	define("kubelet-arg", ListFlag, onBoth),
	define("kube-proxy-arg", ListFlag, onBoth),
	define("protect-kernel-defaults", BoolFlag, onBoth),
	define("selinux", BoolFlag, onBoth),
	define("lb-server-port", IntFlag, onBoth),
	define("lb-server-port-reuse", BoolFlag, onBoth),
	define("airgap-extra-registry", ListFlag, onBoth),
	define("vpn-auth", StringFlag, onBoth, optSecret),
	define("vpn-auth-file", StringFlag, onBoth),
	define("rootless", BoolFlag, onBoth),
	define("prefer-bundled-bin", BoolFlag, onBoth),
	define("enable-pprof", BoolFlag, onBoth),

	// Agents only.
	define("disable-apiserver-lb", BoolFlag, onAgent),

	// Servers only.
	define("bind-address", StringFlag, onServer),
	define("https-listen-port", IntFlag, onServer),
	define("supervisor-port", IntFlag, onServer),
	define("apiserver-port", IntFlag, onServer),
	define("apiserver-bind-address", StringFlag, onServer),
	define("advertise-address", StringFlag, onServer),
	define("advertise-port", IntFlag, onServer),
	define("tls-san", ListFlag, onServer),
	define("tls-san-security", BoolFlag, onServer),
	define("cluster-cidr", StringFlag, onServer, optJoined),
	define("service-cidr", StringFlag, onServer, optJoined),
	define("service-node-port-range", StringFlag, onServer),
	define("cluster-dns", StringFlag, onServer, optJoined),
	define("cluster-domain", StringFlag, onServer),
	define("flannel-backend", StringFlag, onServer),
	define("flannel-ipv6-masq", BoolFlag, onServer),
	define("flannel-external-ip", BoolFlag, onServer),
	define("flannel-ip-masq-disable-random-fully", BoolFlag, onServer),
	define("egress-selector-mode", StringFlag, onServer),
	define("servicelb-namespace", StringFlag, onServer),
	define("write-kubeconfig", StringFlag, onServer),
	define("write-kubeconfig-mode", StringFlag, onServer),
	define("write-kubeconfig-group", StringFlag, onServer),
	define("helm-job-image", StringFlag, onServer),
	define("agent-token", StringFlag, onServer, optSecret),
	define("agent-token-file", StringFlag, onServer),
	define("cluster-init", BoolFlag, onServer),
	define("cluster-reset", BoolFlag, onServer),
	define("cluster-reset-restore-path", StringFlag, onServer),
	define("kube-apiserver-arg", ListFlag, onServer),
	define("etcd-arg", ListFlag, onServer),
	define("kube-controller-manager-arg", ListFlag, onServer),
	define("kube-scheduler-arg", ListFlag, onServer),
	define("kube-cloud-controller-manager-arg", ListFlag, onServer),
	// A database URL, often with a password in it.
	define("datastore-endpoint", StringFlag, onServer, optSecret),
	define("datastore-cafile", StringFlag, onServer),
	define("datastore-certfile", StringFlag, onServer),
	define("datastore-keyfile", StringFlag, onServer),
	define("kine-tls", BoolFlag, onServer),
	define("etcd-expose-metrics", BoolFlag, onServer),
	define("etcd-disable-snapshots", BoolFlag, onServer),
	define("etcd-snapshot-name", StringFlag, onServer),
	define("etcd-snapshot-schedule-cron", StringFlag, onServer),
	define("etcd-snapshot-retention", IntFlag, onServer),
	define("etcd-snapshot-dir", StringFlag, onServer),
	define("etcd-snapshot-compress", BoolFlag, onServer),
	define("etcd-s3", BoolFlag, onServer),
	define("etcd-s3-endpoint", StringFlag, onServer),
	define("etcd-s3-endpoint-ca", StringFlag, onServer),
	define("etcd-s3-skip-ssl-verify", BoolFlag, onServer),
	define("etcd-s3-access-key", StringFlag, onServer, optSecret),
	define("etcd-s3-secret-key", StringFlag, onServer, optSecret),
	define("etcd-s3-session-token", StringFlag, onServer, optSecret),
	define("etcd-s3-bucket", StringFlag, onServer),
	define("etcd-s3-region", StringFlag, onServer),
	define("etcd-s3-folder", StringFlag, onServer),
	define("etcd-s3-proxy", StringFlag, onServer),
	define("etcd-s3-config-secret", StringFlag, onServer),
	define("etcd-s3-insecure", BoolFlag, onServer),
	define("etcd-s3-timeout", StringFlag, onServer),
	define("default-local-storage-path", StringFlag, onServer),
	define("disable", ListFlag, onServer),
	define("disable-scheduler", BoolFlag, onServer),
	define("disable-cloud-controller", BoolFlag, onServer),
	define("disable-kube-proxy", BoolFlag, onServer),
	define("disable-network-policy", BoolFlag, onServer),
	define("disable-helm-controller", BoolFlag, onServer),
	define("disable-apiserver", BoolFlag, onServer),
	define("disable-controller-manager", BoolFlag, onServer),
	define("disable-etcd", BoolFlag, onServer),
	define("disable-agent", BoolFlag, onServer),
	define("embedded-registry", BoolFlag, onServer),
	define("supervisor-metrics", BoolFlag, onServer),
	define("secrets-encryption", BoolFlag, onServer),
	define("secrets-encryption-provider", StringFlag, onServer),
	define("system-default-registry", StringFlag, onServer),
	define("cluster-secret", StringFlag, onServer, optSecret),
}

var flagsByName = func() map[string]Flag {
	m := make(map[string]Flag, len(flags))
	for _, f := range flags {
		if _, dup := m[f.Name]; dup {
			panic("k3s flag listed twice: " + f.Name)
		}
		m[f.Name] = f
	}
	return m
}()

// LookupFlag finds a flag of `k3s server` or `k3s agent` by its long name
// without dashes.
func LookupFlag(name string) (Flag, bool) {
	f, ok := flagsByName[name]
	return f, ok
}

// Flags lists every flag of `k3s server` and `k3s agent`.
func Flags() []Flag { return slices.Clone(flags) }

// IsListKey reports whether K3s takes key as a repeatable flag.
func IsListKey(key string) bool { return flagsByName[key].Kind == ListFlag }

// IsBoolKey reports whether key is a K3s boolean flag.
func IsBoolKey(key string) bool {
	f, ok := flagsByName[key]
	return ok && f.Kind == BoolFlag
}

// IsSecretKey reports whether key holds a credential.
func IsSecretKey(key string) bool { return flagsByName[key].Secret }

// SuggestFlag is the flag of role r (zero: either) nearest to an unknown
// name, or "" when none is close. It also knows the usual mix-ups of
// underscores, case and single words.
func SuggestFlag(name string, r Role) string {
	norm := strings.ToLower(strings.ReplaceAll(strings.TrimLeft(name, "-"), "_", "-"))
	best, bestDist := "", suggest.Budget(norm)+1
	for _, f := range flags {
		if !f.For(r) {
			continue
		}
		if f.Name == norm {
			return f.Name
		}
		if d := suggest.Distance(norm, f.Name); d < bestDist {
			best, bestDist = f.Name, d
		}
	}
	return best
}
