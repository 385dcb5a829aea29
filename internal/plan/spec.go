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
	// servers can join. Ignored with a Datastore.
	HA bool
	// Datastore is an external datastore endpoint (datastore-endpoint) that
	// every server shares; it holds a password. With it no server gets
	// cluster-init or server:, and servers after the first join with the
	// token the first one stored its bootstrap data under. A
	// datastore-endpoint in ServerConfig means the same; setting both is
	// an error.
	Datastore secret.Value
	// APIAddress is put in the kubeconfig and in every server's tls-san; the
	// first server's address when empty.
	APIAddress string
	// TLSSANs are extra names for every server's certificate.
	TLSSANs []string
	// JoinServer is the address of a server that already runs and is not
	// managed here (k3sctl join): joining hosts use it and its token.
	JoinServer string
	// Partial says the hosts named are some of the cluster's, not all
	// (install, join): its other nodes are not removals.
	Partial bool
	Servers []Host
	Agents  []Host
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
	// Proxy is the proxy every node's K3s uses; a host's own wins.
	Proxy *Proxy
	// Upload says where nodes get the binary and images archive from;
	// "": UploadAuto.
	Upload UploadMode
}

// Proxy is what K3s's service environment gets: HTTP_PROXY, HTTPS_PROXY
// and NO_PROXY, and the CONTAINERD_ forms that only containerd reads
// (image pulls). The URLs may carry credentials.
type Proxy struct {
	HTTP, HTTPS secret.Value
	NoProxy     []string
	// Containerd* apply to containerd alone, in place of the above.
	ContainerdHTTP, ContainerdHTTPS secret.Value
	ContainerdNoProxy               []string
}

// IsZero reports whether p sets no proxy at all.
func (p *Proxy) IsZero() bool {
	return p == nil || (p.HTTP.IsZero() && p.HTTPS.IsZero() && p.ContainerdHTTP.IsZero() && p.ContainerdHTTPS.IsZero())
}

// Host is one node of a cluster.
type Host struct {
	// Address is how k3sctl names the host in the plan and output, and
	// the key of its connection and facts: the address it connects to,
	// unless another host shares that address on another SSH port or
	// behind another jump host (then NetAddress holds the address).
	Address string
	// NetAddress is the host's network address when it differs from
	// Address; empty: Address.
	NetAddress string
	Role       k3s.Role
	NodeName   string
	// FixBoot: when the memory cgroup is off, add cgroup_memory=1
	// cgroup_enable=memory to the boot command line and reboot before
	// installing.
	FixBoot bool
	Labels  map[string]string
	Taints  []string
	// Config holds config.yaml keys for this host only; they win over the
	// cluster's.
	Config map[string]any
	// PrivateAddress is the address K3s advertises (node-ip and, on
	// servers, advertise-address), which the other nodes use; empty: the
	// address of the default route's interface.
	PrivateAddress string
	// Interface is the network interface flannel uses (flannel-iface).
	Interface string
	// Proxy replaces the cluster's for this host; nil: the cluster's.
	Proxy *Proxy
}

// NetworkAddress is the address k3sctl connects to h on.
func (h Host) NetworkAddress() string {
	if h.NetAddress != "" {
		return h.NetAddress
	}
	return h.Address
}

// JoinAddress is the address other nodes reach h on.
func (h Host) JoinAddress() string {
	if h.PrivateAddress != "" {
		return h.PrivateAddress
	}
	return h.NetworkAddress()
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
	// Secret files (registries.yaml may hold registry passwords) are
	// never shown as a content diff.
	Secret bool
	SHA256 string // of Source, filled in before planning
	Size   int64  // of Source, filled in before planning
	// Text is Source's content when the plan shows content diffs and the
	// file is text, not secret and small; nil otherwise.
	Text []byte
}

// DeliveredFileMode is the mode of every delivered file: root reads them.
const DeliveredFileMode = 0o600

// NeedsRestart reports whether K3s must restart to see a change of a file
// of this kind. K3s watches the manifests folder and applies a changed
// manifest on its own, so delivering one restarts nothing; registries.yaml
// and the image tarballs are read only when K3s starts.
func (k FileKind) NeedsRestart() bool { return k != FileManifest }

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
	Err        string // the host could not be reached or inspected
	Hostname   string
	Arch       k3s.Arch
	ArchErr    string
	InitSystem string // systemd or openrc; empty: neither
	K3sVersion string // installed binary's version; empty: none
	// Stale are temporary files an interrupted run left behind.
	Stale      []string
	K3sSHA256  string
	Installed  map[k3s.Role]bool // service files present
	Active     map[k3s.Role]bool // service running
	FileHashes map[string]string // sha256 of remote files; "" when missing
	// FileStats are the size and mode of the delivered files' destinations
	// that exist.
	FileStats map[string]FileStat
	// Delivered is the host's record of the files k3sctl delivered
	// (DeliveredRecordPath); nil when there is none.
	Delivered []DeliveredFile
	// OldText is the current content of changed delivered files, by path,
	// read only for content diffs.
	OldText      map[string][]byte
	MemoryCgroup bool
	BootCmdline  string // the boot command line file, "" when none
	// Node is what the cluster's API says of the host's node; nil when
	// the cluster could not be read (no running server reached, e.g. a
	// first install).
	Node *NodeFacts
	// Interfaces are the host's network interfaces with a global address,
	// in the host's order; DefaultInterface holds the default route (the
	// one K3s picks when nothing is set).
	Interfaces       []Interface
	DefaultInterface string
	// SSH is how the workstation reached the host and whether the host
	// has an ssh client, for copies between hosts (Cluster.Upload).
	SSH SSHFacts
}

// FileStat is a remote file's size and permission bits.
type FileStat struct {
	Size int64
	Mode uint32
}

// Interface is one network interface and its addresses (CIDR form).
type Interface struct {
	Name      string   `json:"name"`
	Addresses []string `json:"addresses"`
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
	// NoSnapshot leaves out the etcd snapshot taken before an upgrade.
	NoSnapshot bool
	// Nodes are the Nodes registered in each cluster, by cluster name;
	// a cluster whose API was not read is missing.
	Nodes map[string][]ClusterNode
	// Prune: apply removes the nodes no longer in the inventory.
	Prune bool
}
