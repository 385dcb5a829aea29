package plan

import (
	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/secret"
)

// Spec is what the user wants: clusters of hosts at a K3s version.
// install, join and apply all build one.
type Spec struct {
	Clusters []Cluster
	// AllowDowngrade lets a host go to an older K3s version.
	AllowDowngrade bool
	// Force allows skipping minor versions on upgrade.
	Force bool
}

// Cluster is one K3s cluster.
type Cluster struct {
	Name    string
	Version string // exact version, channels already resolved
	// Token is the user's token (short or full). Empty: the first server
	// generates one and joining hosts use what it wrote.
	Token secret.Value
	// HA gives the first server cluster-init (embedded etcd) so that more
	// servers can join.
	HA bool
	// APIAddress is put in the kubeconfig and in every server's tls-san; the
	// first server's address when empty.
	APIAddress string
	// TLSSANs are extra names for every server's certificate.
	TLSSANs []string
	// JoinServer is the address of a server that already runs and is not
	// managed here (k3sctl join): joining hosts use it and its token.
	JoinServer string
	Servers    []Host
	Agents     []Host
	// ServerConfig and AgentConfig are config.yaml keys for every server / agent.
	ServerConfig map[string]any
	AgentConfig  map[string]any
	Files        []File
	// Registries, when set, is rendered to /etc/rancher/k3s/registries.yaml
	// (0600) on every node.
	Registries *k3s.Registries
	// FixBoot lets k3sctl turn the memory cgroup on for every host that
	// lacks it (Host.FixBoot for one host).
	FixBoot bool
	// Airgap delivers the release's images archive of each node's
	// architecture (Input.Images) to k3s.ImagesDir before K3s starts.
	Airgap bool
}

// Host is one node of a cluster.
type Host struct {
	Address  string // what k3sctl connects to and how the node is named in output
	Role     k3s.Role
	NodeName string
	// FixBoot: when the memory cgroup is off, add cgroup_memory=1
	// cgroup_enable=memory to the boot command line and reboot before
	// installing.
	FixBoot bool
	Labels  map[string]string
	Taints  []string
	// Config holds config.yaml keys for this host only; they win over the
	// cluster's.
	Config map[string]any
}

// FileKind says where a delivered file goes on a node.
type FileKind string

// Kinds of delivered files.
const (
	FileManifest   FileKind = "manifest"   // servers: server/manifests/
	FileImages     FileKind = "images"     // every node: agent/images/
	FileRegistries FileKind = "registries" // every node: /etc/rancher/k3s/registries.yaml
)

// File is a local file to deliver to the nodes of a cluster.
type File struct {
	Kind   FileKind
	Source string // local path
	Name   string // name on the node, in the kind's folder
	Path   string // absolute path on the node; wins over Name
	SHA256 string // of Source, filled in before planning
}

// Dest is where the file goes on a node.
func (f File) Dest() string {
	if f.Path != "" {
		return f.Path
	}
	switch f.Kind {
	case FileManifest:
		return k3s.ManifestsDir + "/" + f.Name
	case FileImages:
		return k3s.ImagesDir + "/" + f.Name
	}
	return k3s.RegistriesPath
}

// For says whether a host of role r gets the file.
func (f File) For(r k3s.Role) bool { return f.Kind != FileManifest || r == k3s.Server }

// HostFacts is what a host is now, as far as planning needs.
type HostFacts struct {
	Err          string // the host could not be reached or inspected
	Hostname     string
	Arch         k3s.Arch
	ArchErr      string
	InitSystem   string // systemd or openrc; empty: neither
	K3sVersion   string // installed binary's version; empty: none
	K3sSHA256    string
	Installed    map[k3s.Role]bool // service files present
	Active       map[k3s.Role]bool // service running
	FileHashes   map[string]string // sha256 of remote files; "" when missing
	MemoryCgroup bool
	BootCmdline  string // the boot command line file, "" when none
}

// BinaryKey names one k3s binary: a release for an architecture. Clusters
// of one inventory may run different versions.
type BinaryKey struct {
	Version string // a cluster's Version; empty with a local binary of unknown version
	Arch    k3s.Arch
}

// Binary is the k3s binary to install for one version and architecture.
type Binary struct {
	Version string
	SHA256  string
	Local   string // a local file (air-gapped); empty: downloaded
}

// Images is a release's images archive for one version and architecture,
// verified against the release's checksum file.
type Images struct {
	Name   string // the release asset, also its name on the node
	SHA256 string
}

// Dest is where the archive goes on a node: K3s imports it at start.
func (i Images) Dest() string { return k3s.ImagesDir + "/" + i.Name }

// Input is everything Build needs. It is plain data: planning does no I/O.
type Input struct {
	Spec     Spec
	Facts    map[string]*HostFacts // by host address
	Tokens   map[string]secret.Value
	Binaries map[BinaryKey]Binary
	// Images are the images archives of air-gapped clusters (Cluster.Airgap).
	Images map[BinaryKey]Images
	// SkipKubeconfig leaves out the step that merges each cluster's admin
	// kubeconfig into the local one.
	SkipKubeconfig bool
}
