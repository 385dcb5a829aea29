package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"net"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/secret"
)

// Action is what happens to a host.
type Action string

// Actions, from most to least work.
const (
	ActionInstall     Action = "install"
	ActionUpgrade     Action = "upgrade"
	ActionDowngrade   Action = "downgrade" // only with AllowDowngrade
	ActionReconfigure Action = "reconfigure"
	ActionStart       Action = "start"
	ActionNothing     Action = "nothing"
	ActionRefuse      Action = "refuse"
	ActionUnreachable Action = "unreachable"
	// ActionJoinSource marks a running server that is only read from
	// (its token), never changed.
	ActionJoinSource Action = "use"
)

// Plan is what apply will do, cluster by cluster, in order.
type Plan struct {
	Clusters []ClusterPlan `json:"clusters"`
}

// ClusterPlan is one cluster's hosts in the order they run.
type ClusterPlan struct {
	Name       string     `json:"name"`
	Version    string     `json:"version"`
	APIAddress string     `json:"apiAddress"`
	JoinURL    string     `json:"joinURL"`
	Hosts      []HostPlan `json:"hosts"`
}

// HostPlan is one host's part of a plan.
type HostPlan struct {
	Address string   `json:"address"`
	Role    k3s.Role `json:"role"`
	First   bool     `json:"first,omitempty"` // the server the others join
	Action  Action   `json:"action"`
	From    string   `json:"from,omitempty"`
	To      string   `json:"to,omitempty"`
	Reasons []string `json:"reasons,omitempty"`
	Upload  bool     `json:"upload,omitempty"`
	// FixBoot: the memory cgroup is off and k3sctl turns it on in the
	// boot command line and reboots the host first.
	FixBoot bool `json:"fixBoot,omitempty"`
	// Images is the images archive to upload (its path on the node), for
	// an air-gapped cluster whose node lacks it.
	Images  string   `json:"images,omitempty"`
	Arch    k3s.Arch `json:"arch,omitempty"`
	Changes []string `json:"changes,omitempty"` // remote paths that will be written
	// After lists the hosts that must finish first.
	After []string `json:"after,omitempty"`
	// Step is the position in the cluster's order: hosts with the same
	// step run in parallel.
	Step int `json:"step"`
	// TokenPending: the cluster's token is only known once its first
	// server runs, so this host's config is rendered then.
	TokenPending bool `json:"tokenPending,omitempty"`
	// Steps are what apply does on the host, in order.
	Steps []Step `json:"steps,omitempty"`
}

// Changes reports whether the plan changes anything.
func (p *Plan) Changes() bool {
	for _, c := range p.Clusters {
		for _, h := range c.Hosts {
			switch h.Action {
			case ActionNothing, ActionJoinSource:
			default:
				return true
			}
		}
	}
	return false
}

// Refused lists hosts the plan will not touch and why.
func (p *Plan) Refused() []HostPlan {
	var out []HostPlan
	for _, c := range p.Clusters {
		for _, h := range c.Hosts {
			if h.Action == ActionRefuse || h.Action == ActionUnreachable {
				out = append(out, h)
			}
		}
	}
	return out
}

// Build computes the plan. It is a pure function of its input.
func Build(in Input) (*Plan, error) {
	p := &Plan{}
	for i := range in.Spec.Clusters {
		c := &in.Spec.Clusters[i]
		cp, err := buildCluster(in, c)
		if err != nil {
			return nil, fmt.Errorf("cluster %s: %w", c.Name, err)
		}
		p.Clusters = append(p.Clusters, cp)
	}
	return p, nil
}

func buildCluster(in Input, c *Cluster) (ClusterPlan, error) {
	cp := ClusterPlan{Name: c.Name, Version: c.Version}
	if len(c.Servers) == 0 && c.JoinServer == "" {
		return cp, fmt.Errorf("no server: a cluster needs at least one server")
	}
	first := c.JoinServer
	if first == "" {
		first = c.Servers[0].Address
	}
	cp.JoinURL = ServerURL(first)
	cp.APIAddress = c.APIAddress
	if cp.APIAddress == "" {
		cp.APIAddress = first
	}
	token := in.Tokens[c.Name]
	withSteps := func(hp HostPlan) HostPlan {
		hp.Steps = planSteps(&hp, !token.IsZero(), !in.SkipKubeconfig)
		return hp
	}
	step := 0
	if c.JoinServer != "" {
		cp.Hosts = append(cp.Hosts, withSteps(HostPlan{Address: c.JoinServer, Role: k3s.Server, First: true, Action: ActionJoinSource,
			Reasons: []string{"running server: its token is read, nothing is changed"}}))
	}
	prev := ""
	if c.JoinServer != "" {
		prev = c.JoinServer
	}
	var lastServer string
	for i, h := range c.Servers {
		hp, err := planHost(in, c, h, token, c.JoinServer == "" && i == 0)
		if err != nil {
			return cp, err
		}
		if c.JoinServer == "" && i == 0 {
			hp.First = true
		}
		if prev != "" {
			hp.After = []string{prev}
		}
		step++
		hp.Step = step
		cp.Hosts = append(cp.Hosts, withSteps(hp))
		prev = h.Address
		lastServer = h.Address
	}
	if lastServer == "" {
		lastServer = c.JoinServer
	}
	step++
	for _, h := range c.Agents {
		hp, err := planHost(in, c, h, token, false)
		if err != nil {
			return cp, err
		}
		hp.After = []string{lastServer}
		hp.Step = step
		cp.Hosts = append(cp.Hosts, withSteps(hp))
	}
	return cp, nil
}

// ServerURL is the registration address of a server.
func ServerURL(addr string) string {
	return "https://" + net.JoinHostPort(addr, fmt.Sprint(k3s.APIPort))
}

func planHost(in Input, c *Cluster, h Host, token secret.Value, first bool) (HostPlan, error) {
	// A setting the node model refuses is the user's to fix, whatever
	// state the host is in.
	if _, _, err := NodeConfig(c, h, first, token); err != nil {
		return HostPlan{}, err
	}
	return hostPlan(in, c, h, token, first), nil
}

func hostPlan(in Input, c *Cluster, h Host, token secret.Value, first bool) HostPlan {
	hp := HostPlan{Address: h.Address, Role: h.Role, To: c.Version}
	f := in.Facts[h.Address]
	if f == nil || f.Err != "" {
		hp.Action = ActionUnreachable
		if f != nil {
			hp.Reasons = []string{f.Err}
		}
		return hp
	}
	if f.ArchErr != "" {
		return refuse(hp, f.ArchErr)
	}
	hp.Arch = f.Arch
	if f.InitSystem == "" {
		return refuse(hp, "no systemd or openrc found")
	}
	other := k3s.Agent
	if h.Role == k3s.Agent {
		other = k3s.Server
	}
	if f.Installed[other] {
		return refuse(hp, fmt.Sprintf("runs K3s as %s (%s service); uninstall it first (k3sctl uninstall --ip %s)", other, k3s.ServiceName(other), h.Address))
	}
	bin, ok := in.Binaries[BinaryKey{Version: c.Version, Arch: f.Arch}]
	if !ok {
		return refuse(hp, fmt.Sprintf("no k3s binary for %s", f.Arch))
	}
	hp.From = f.K3sVersion
	switch {
	case f.K3sVersion == "" || !f.Installed[h.Role]:
		hp.Action = ActionInstall
		hp.Upload = f.K3sSHA256 != bin.SHA256
	case f.K3sSHA256 != bin.SHA256:
		hp.Upload = true
		hp.Action = ActionUpgrade
		if bin.Local == "" {
			from, err1 := k3s.ParseVersion(f.K3sVersion)
			to, err2 := k3s.ParseVersion(bin.Version)
			if err1 == nil && err2 == nil {
				switch c := k3s.Compare(from, to); {
				case c > 0 && !in.Spec.AllowDowngrade:
					return refuse(hp, fmt.Sprintf("installed %s is newer than %s: downgrades are not supported (use --allow-downgrade to force)", f.K3sVersion, bin.Version))
				case c > 0:
					hp.Action = ActionDowngrade
				case c == 0:
					hp.Reasons = append(hp.Reasons, "installed binary differs from the release's checksum")
				default:
					if k3s.MinorSkip(from, to) > 0 && !in.Spec.Force {
						return refuse(hp, fmt.Sprintf("upgrade %s → %s skips a minor version; upgrade to v%d.%d first (or use --force)", f.K3sVersion, bin.Version, from.Major, from.Minor+1))
					}
				}
			}
		}
	}
	if c.Airgap {
		img, ok := in.Images[BinaryKey{Version: c.Version, Arch: f.Arch}]
		if !ok {
			return refuse(hp, fmt.Sprintf("air-gapped cluster: no images archive for K3s %s on %s", orNone(c.Version), f.Arch))
		}
		if f.FileHashes[img.Dest()] != img.SHA256 {
			hp.Images = img.Dest()
		}
	}
	files, pending, _ := Files(c, h, first, token, f.InitSystem) // planHost checked the settings
	hp.TokenPending = pending
	for _, rf := range files {
		if f.FileHashes[rf.Path] != rf.SHA256() {
			hp.Changes = append(hp.Changes, rf.Path)
		}
	}
	if pending && f.FileHashes[k3s.ConfigPath] != "" {
		// Without the token the new config cannot be compared: assume it
		// changes, apply checks again before writing.
		if !slices.Contains(hp.Changes, k3s.ConfigPath) {
			hp.Changes = append(hp.Changes, k3s.ConfigPath)
		}
	}
	sort.Strings(hp.Changes)
	if hp.Action == "" {
		switch {
		case hp.Images != "" && len(hp.Changes) == 0:
			hp.Action = ActionReconfigure
			hp.Reasons = append(hp.Reasons, "images archive "+path.Base(hp.Images)+" missing or different")
		case len(hp.Changes) > 0:
			hp.Action = ActionReconfigure
			hp.Reasons = append(hp.Reasons, "changes "+strings.Join(hp.Changes, ", "))
		case !f.Active[h.Role]:
			hp.Action = ActionStart
			hp.Reasons = append(hp.Reasons, k3s.ServiceName(h.Role)+" is not running")
		default:
			hp.Action = ActionNothing
		}
	}
	if !f.MemoryCgroup && hp.Action != ActionNothing {
		if !c.FixBoot && !h.FixBoot {
			return refuse(hp, MemoryCgroupRefusal(f.BootCmdline, h.Address))
		}
		hp.FixBoot = true
		hp.Reasons = append(hp.Reasons, "memory cgroup disabled: the boot command line gains "+k3s.MemoryCgroupBootArgs+", then the host reboots")
	}
	return hp
}

// MemoryCgroupRefusal says what K3s does on a host without the memory
// cgroup and how to fix it; file is the host's boot command line file, if
// known.
func MemoryCgroupRefusal(file, address string) string {
	where := "/boot/firmware/cmdline.txt (/boot/cmdline.txt on older images)"
	if file != "" {
		where = file
	}
	return "the memory cgroup is disabled: K3s would stop at start with \"failed to find memory cgroup\". " +
		"Add " + k3s.MemoryCgroupBootArgs + " to the single line of " + where + " and reboot, " +
		"or let k3sctl do both: fixBoot: true for the host or cluster in the inventory, or --fix-cgroups"
}

func refuse(hp HostPlan, why string) HostPlan {
	hp.Action = ActionRefuse
	hp.Reasons = []string{why}
	hp.Upload = false
	hp.Images = ""
	hp.FixBoot = false
	return hp
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// RemoteFile is a small file k3sctl writes on a node.
type RemoteFile struct {
	Path string
	Mode uint32
	Data []byte
}

// SHA256 is the hex sha256 of the content.
func (f RemoteFile) SHA256() string {
	s := sha256.Sum256(f.Data)
	return hex.EncodeToString(s[:])
}

// Files renders every file k3sctl manages on host h. pending is true when
// the config needs the cluster token and the token is not known yet; the
// returned files then leave config.yaml out. An error is a user setting
// the node model refuses (see NodeConfig); Build reports it first.
func Files(c *Cluster, h Host, first bool, token secret.Value, initSystem string) (files []RemoteFile, pending bool, err error) {
	cfg, pending, err := NodeConfig(c, h, first, token)
	if err != nil {
		return nil, false, err
	}
	if !pending {
		files = append(files, RemoteFile{Path: k3s.ConfigPath, Mode: k3s.SecretFileMode, Data: cfg.Render()})
	}
	if c.Registries != nil {
		files = append(files, RemoteFile{Path: k3s.RegistriesPath, Mode: k3s.RegistriesMode, Data: c.Registries.Render()})
	}
	return append(files, serviceFiles(h.Role, initSystem)...), pending, nil
}

// serviceFiles are the files of the service and its scripts, which depend
// only on the role and the init system.
func serviceFiles(r k3s.Role, initSystem string) []RemoteFile {
	var files []RemoteFile
	if initSystem == string(k3s.OpenRC) {
		files = append(files,
			RemoteFile{Path: k3s.OpenRCScriptPath(r), Mode: k3s.ScriptMode, Data: k3s.OpenRCScript(r)},
			RemoteFile{Path: k3s.OpenRCEnvPath, Mode: k3s.SecretFileMode, Data: envFile(r)},
		)
	} else {
		files = append(files,
			RemoteFile{Path: k3s.UnitPath(r), Mode: k3s.UnitMode, Data: k3s.SystemdUnit(r)},
			RemoteFile{Path: k3s.EnvPath(r), Mode: k3s.SecretFileMode, Data: envFile(r)},
		)
	}
	files = append(files,
		RemoteFile{Path: k3s.KillallPath, Mode: k3s.ScriptMode, Data: k3s.KillallScript()},
		RemoteFile{Path: k3s.UninstallPath(r), Mode: k3s.ScriptMode, Data: k3s.UninstallScript(r)},
	)
	return files
}

// HashPaths lists the remote files whose hashes planning compares, for the
// facts gathering.
func HashPaths(r k3s.Role, initSystem string) []string {
	paths := []string{k3s.ConfigPath}
	for _, f := range serviceFiles(r, initSystem) {
		paths = append(paths, f.Path)
	}
	return paths
}

// NodeConfig builds h's /etc/rancher/k3s/config.yaml with k3s.BuildConfig:
// what k3sctl decides for the host (join server, token, cluster-init,
// node-name, tls-san, labels, taints), then the user's settings: its role's
// cluster settings with the host's own replacing them key by key. pending
// is true when the host needs the cluster token and it is unknown; cfg is
// then empty. A user setting of a key k3sctl owns is an error.
func NodeConfig(c *Cluster, h Host, first bool, token secret.Value) (cfg k3s.Config, pending bool, err error) {
	shared := c.AgentConfig
	if h.Role == k3s.Server {
		shared = c.ServerConfig
	}
	merged := make(map[string]any, len(shared)+len(h.Config))
	maps.Copy(merged, shared)
	maps.Copy(merged, h.Config)
	user, err := k3s.ConfigFromMap(merged)
	if err != nil {
		return k3s.Config{}, false, fmt.Errorf("%s: K3s settings: %w", h.Address, err)
	}
	if err := k3s.CheckOwned(user, h.NodeName != ""); err != nil {
		return k3s.Config{}, false, fmt.Errorf("%s: K3s settings: %w", h.Address, err)
	}
	s := k3s.NodeSettings{Role: h.Role, NodeName: h.NodeName}
	if first {
		s.ClusterInit = c.HA
		s.Token = c.Token
	} else {
		join := c.JoinServer
		if join == "" && len(c.Servers) > 0 {
			join = c.Servers[0].Address
		}
		s.Server = ServerURL(join)
		s.Token = token
		if s.Token.IsZero() {
			s.Token = c.Token
		}
		if s.Token.IsZero() {
			return k3s.Config{}, true, nil
		}
	}
	if h.Role == k3s.Server {
		s.TLSSANs = []string{h.Address}
		if c.APIAddress != "" {
			s.TLSSANs = append(s.TLSSANs, c.APIAddress)
		}
		s.TLSSANs = append(s.TLSSANs, c.TLSSANs...)
	}
	for _, k := range sortedKeys(h.Labels) {
		s.NodeLabels = append(s.NodeLabels, k+"="+h.Labels[k])
	}
	s.NodeTaints = h.Taints
	cfg, err = k3s.BuildConfig(s, user)
	if err != nil {
		return k3s.Config{}, false, fmt.Errorf("%s: K3s settings: %w", h.Address, err)
	}
	return cfg, false, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// envFile is the service's environment file; k3sctl keeps everything in
// config.yaml, so it holds only the header.
func envFile(r k3s.Role) []byte {
	b, err := k3s.EnvFile(r, nil)
	if err != nil {
		panic(err) // no variables: cannot fail
	}
	return b
}
