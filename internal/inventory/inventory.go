package inventory

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/secret"
)

// The format this package reads.
const (
	APIVersion = "k3sctl.io/v1alpha1"
	Kind       = "Inventory"
)

// Host roles.
const (
	RoleServer = "server"
	RoleAgent  = "agent"
)

// Kinds of files delivered to nodes.
const (
	FileManifest   = "manifest"
	FileImages     = "images"
	FileRegistries = "registries"
)

// Where K3s looks for delivered files on a node.
const (
	ManifestsDir   = "/var/lib/rancher/k3s/server/manifests"
	ImagesDir      = "/var/lib/rancher/k3s/agent/images"
	RegistriesPath = "/etc/rancher/k3s/registries.yaml"
)

// Defaults for what an inventory leaves out.
const (
	DefaultSSHPort         = 22
	DefaultChannel         = "stable"
	DefaultHostKeyChecking = HostKeyAcceptNew
)

// Host key policies. There is deliberately no policy that skips the check.
const (
	// HostKeyAcceptNew records an unknown key on first contact and refuses a
	// changed one, like OpenSSH StrictHostKeyChecking=accept-new.
	HostKeyAcceptNew = "accept-new"
	// HostKeyStrict refuses any host whose key is not already known.
	HostKeyStrict = "strict"
)

// Upload modes (upload:): where nodes get the k3s binary and the images
// archive from.
const (
	// UploadAuto: once per cluster from the workstation, then copied by
	// the other hosts on the first one's subnet.
	UploadAuto = "auto"
	// UploadSite: as UploadAuto, and the plan says why a host cannot copy.
	UploadSite = "site"
	// UploadDirect: every host from the workstation.
	UploadDirect = "direct"
)

// Inventory is a loaded inventory with every default applied.
type Inventory struct {
	Path     string
	Clusters []Cluster
	// Rollout is the rollout: section; nil when the file has none.
	Rollout *Rollout
}

// Cluster is one K3s cluster.
//
// Exactly one of Version and Channel is set. ServerConfig and AgentConfig
// are the K3s config.yaml settings for every server and every agent (per-host
// settings are in Host.Config; NodeConfig merges the two). Values are what
// YAML decodes to (string, int, float64, bool, []any, map[string]any), except
// that string values of keys naming a token, password or secret are
// secret.Value; RevealConfig turns them back into strings for the one place
// that writes config.yaml. When APIAddress is set it is already in
// ServerConfig["tls-san"].
type Cluster struct {
	Name       string
	APIAddress string
	// Labels are the cluster's own labels, for choosing clusters with
	Labels       map[string]string
	Version      string
	Channel      string
	Token        secret.Value
	Datastore    secret.Value
	Servers      []Host
	Agents       []Host
	ServerConfig map[string]any
	AgentConfig  map[string]any
	Files        []File
	// Proxy is what every node's K3s goes out through; nil: none. Each
	// host's effective proxy is in Host.Proxy.
	Proxy *Proxy
	// Airgap delivers the release's images archive of each node's
	// architecture to the node before K3s starts.
	Airgap bool
	// FixBoot lets k3sctl turn the memory cgroup on in the boot command
	// line of every host that lacks it, and reboot it (Host.FixBoot for
	// one host).
	FixBoot bool
	// Upload is where nodes get the binary and the images archive from:
	// UploadAuto, UploadSite or UploadDirect (the cluster's upload:, else
	// the defaults'); "" means UploadAuto.
	Upload string
	// Registries is rendered to /etc/rancher/k3s/registries.yaml on every
	// node; nil: k3sctl does not manage that file.
	Registries *k3s.Registries
	Pos        Position
}

// Host is one node. Servers[0] of a cluster is the one that bootstraps it.
type Host struct {
	// Address is how k3sctl reaches the host.
	Address string
	// PrivateAddress is the IP K3s advertises (node-ip; on servers also
	// advertise-address) and the other nodes join on; empty: the address
	// of the default route's interface.
	PrivateAddress string
	// Interface is the network interface flannel uses (flannel-iface).
	Interface string
	// Proxy is the host's proxy: the cluster's with the host's own keys
	// on top; nil: none.
	Proxy *Proxy
	// Name is the Kubernetes node name; empty means the host's hostname.
	Name   string
	Role   string
	SSH    SSHSettings
	Labels map[string]string
	// Taints are key=value:Effect or key:Effect.
	Taints []string
	Config map[string]any
	// FixBoot: see Cluster.FixBoot.
	FixBoot bool
	Pos     Position
}

// SSHSettings is how to reach a host. Empty strings mean "whatever the SSH
// config file and the current user say".
type SSHSettings struct {
	User string
	// KeyFile and ConfigFile written as relative paths are joined to the
	// inventory's directory; a leading "~" is left for the SSH layer.
	KeyFile string
	Port    int
	// Jump is a ProxyJump value: [user@]host[:port], comma-separated hops.
	Jump            string
	ConfigFile      string
	HostKeyChecking string
}

// File is a local file delivered to nodes.
type File struct {
	// Src is the local path; one written relative in the inventory is
	// joined to the inventory's directory.
	Src  string
	Kind string
	// Dst is the absolute path on the node.
	Dst string
	// Secret files are never shown as a content diff; registries.yaml
	// (it may hold registry passwords) is secret unless secret: false.
	Secret bool
	Pos    Position
}

// ForRole reports whether nodes of role receive f: manifests are read only
// by servers; images and registries.yaml are used by every node.
func (f File) ForRole(role string) bool {
	return f.Kind != FileManifest || role == RoleServer
}

// Hosts is every host of the cluster, servers first, in file order.
func (c *Cluster) Hosts() []Host {
	return append(append(make([]Host, 0, len(c.Servers)+len(c.Agents)), c.Servers...), c.Agents...)
}

// NodeConfig is the K3s configuration of h: its role's cluster settings with
// its own settings on top. The result is a fresh map.
func (c *Cluster) NodeConfig(h Host) map[string]any {
	base := c.AgentConfig
	if h.Role == RoleServer {
		base = c.ServerConfig
	}
	out := make(map[string]any, len(base)+len(h.Config))
	maps.Copy(out, base)
	maps.Copy(out, h.Config)
	return out
}

// RevealConfig returns a copy of a config map with secret values as plain
// strings, for writing config.yaml to a node (mode 0600). Nothing else should
// need it.
func RevealConfig(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = reveal(v)
	}
	return out
}

func reveal(v any) any {
	switch v := v.(type) {
	case secret.Value:
		return v.Reveal()
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = reveal(x)
		}
		return out
	case map[string]any:
		return RevealConfig(v)
	}
	return v
}

// Load reads and validates the inventory at path; ${VAR} references are
// taken from the process environment. A *ValidationError lists every problem.
func Load(path string) (*Inventory, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read inventory: %w", err)
	}
	return Parse(path, data, os.LookupEnv)
}

// Parse validates data as the inventory file name. Relative paths inside it
// (files: src, ssh keyFile and configFile) are relative to name's directory,
// and files: sources must exist. env looks up ${VAR} references; nil means
// no variable is set. A *ValidationError lists every problem.
func Parse(name string, data []byte, env func(string) (string, bool)) (*Inventory, error) {
	if env == nil {
		env = func(string) (string, bool) { return "", false }
	}
	d := newDecoder(name, data, env)
	inv := d.inventory()
	if len(d.problems) > 0 {
		sortProblems(d.problems)
		// A bad value under an anchor is met once per alias that uses it.
		return nil, &ValidationError{Problems: slices.Compact(d.problems)}
	}
	inv.Path = name
	return inv, nil
}

// defaultClusterName is what a lone cluster without a name is called: the
// inventory file's base name without its extension.
func defaultClusterName(file string) string {
	base := filepath.Base(file)
	return strings.TrimSuffix(base, filepath.Ext(base))
}
