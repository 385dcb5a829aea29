package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"net"
	"net/netip"
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
	// ActionRepair restarts a service whose node did not register or is
	// not Ready, so that it joins again.
	ActionRepair Action = "repair"
	// ActionLabel brings the node's labels and taints to the inventory
	// through the API, without restarting K3s.
	ActionLabel       Action = "label"
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
	// Removals are the cluster's nodes no longer in the inventory.
	Removals []Removal `json:"removals,omitempty"`
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
	Images string `json:"images,omitempty"`
	// UploadFrom and ImagesFrom, when set, are the host of the same
	// cluster the binary and the images archive are copied from over the
	// LAN, instead of from the workstation (Cluster.Upload).
	UploadFrom *SiteSource `json:"uploadFrom,omitempty"`
	ImagesFrom *SiteSource `json:"imagesFrom,omitempty"`
	Arch       k3s.Arch    `json:"arch,omitempty"`
	Changes    []string    `json:"changes,omitempty"` // remote paths that will be written
	// After lists the hosts that must finish first.
	After []string `json:"after,omitempty"`
	// Step is the position in the cluster's order: hosts with the same
	// step run in parallel.
	Step int `json:"step"`
	// TokenPending: the cluster's token is only known once its first
	// server runs, so this host's config is rendered then.
	TokenPending bool `json:"tokenPending,omitempty"`
	// Files are the delivered files apply writes or removes.
	Files []FileChange `json:"files,omitempty"`
	// FilesRecord: the host's record of delivered files is rewritten.
	FilesRecord bool `json:"filesRecord,omitempty"`
	// Labels, when set, says the node's labels and taints change through
	// the API (what changes), or are recorded once it registers.
	Labels []string `json:"labels,omitempty"`
	// Node is the node that is drained before K3s restarts on the host
	// and uncordoned once it is Ready again; "" when there is nothing to
	// drain (a single-node cluster, a node not registered or not Ready).
	Node string `json:"node,omitempty"`
	// Steps are what apply does on the host, in order.
	Steps []Step `json:"steps,omitempty"`
	// Stale are temporary files an interrupted run left on the host;
	// apply removes them before the host's first write.
	Stale []string `json:"stale,omitempty"`

	// delivers: the host receives files of its cluster.
	delivers bool
}

// Changes reports whether the plan changes anything. A node that is no
// longer in the inventory is a change even when apply runs without
// --prune: the clusters differ from the inventory.
func (p *Plan) Changes() bool {
	for _, c := range p.Clusters {
		if len(c.Removals) > 0 {
			return true
		}
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
	first, join := c.JoinServer, c.JoinServer
	if first == "" {
		first, join = c.Servers[0].NetworkAddress(), c.Servers[0].JoinAddress()
	}
	cp.JoinURL = ServerURL(join)
	cp.APIAddress = c.APIAddress
	if cp.APIAddress == "" {
		cp.APIAddress = first
	}
	token := in.Tokens[c.Name]
	multiNode := len(c.Servers)+len(c.Agents) > 1
	if nodes, ok := in.Nodes[c.Name]; ok {
		multiNode = multiNode || len(nodes) > 1
	}
	withSteps := func(hp HostPlan) HostPlan {
		// A node of a multi-node cluster that is Ready is drained before
		// K3s restarts on it: its pods have somewhere to go.
		if f := in.Facts[hp.Address]; multiNode && f != nil && f.Node != nil && f.Node.Registered && f.Node.Ready {
			hp.Node = f.Node.Name
		}
		hp.Steps = planSteps(&hp, !token.IsZero(), !in.SkipKubeconfig)
		if !slices.ContainsFunc(hp.Steps, func(s Step) bool { return s.Kind == StepDrain }) {
			hp.Node = ""
		}
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
	assignSites(in, c, &cp)
	if !in.NoSnapshot {
		addSnapshot(&cp, c, in.Facts)
	}
	cp.Removals = planRemovals(in, c)
	return cp, nil
}

// addSnapshot puts an etcd snapshot before everything else the first
// server does, when the cluster runs embedded etcd (HA) on a first server
// that has K3s and some host of it is upgraded. Every other host waits for
// the first server, so the snapshot is taken before any host changes.
func addSnapshot(cp *ClusterPlan, c *Cluster, facts map[string]*HostFacts) {
	if !c.HA || c.JoinServer != "" || len(cp.Hosts) == 0 || !cp.Hosts[0].First {
		return
	}
	first := &cp.Hosts[0]
	if f := facts[first.Address]; f == nil || f.Err != "" || !f.Installed[k3s.Server] || !f.Active[k3s.Server] {
		return
	}
	upgrade := false
	for _, h := range cp.Hosts {
		upgrade = upgrade || h.Action == ActionUpgrade
	}
	if !upgrade {
		return
	}
	s := Step{Kind: StepSnapshot, Host: first.Address, Changes: true,
		Reason: "k3s etcd-snapshot save before the upgrade to " + orNone(c.Version)}
	first.Steps = append([]Step{s}, first.Steps...)
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
	hp.Stale = f.Stale
	if f.InitSystem == "" {
		return refuse(hp, "no systemd or openrc found")
	}
	if why := checkAddresses(h, f); why != "" {
		return refuse(hp, why)
	}
	other := k3s.Agent
	if h.Role == k3s.Agent {
		other = k3s.Server
	}
	if f.Installed[other] {
		return refuse(hp, fmt.Sprintf("runs K3s as %s (%s service); uninstall it first (k3sctl uninstall --ip %s)", other, k3s.ServiceName(other), h.NetworkAddress()))
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
	hp.Files, hp.FilesRecord = fileChanges(c, h, f)
	hp.delivers = len(HostFiles(c, h.Role)) > 0 || len(hp.Files) > 0 || hp.FilesRecord
	filesChange := len(hp.Files) > 0 || hp.FilesRecord
	labelsOnly := slices.Equal(hp.Changes, []string{k3s.ConfigPath}) && !pending && !filesChange &&
		labelsOnlyConfig(c, h, first, token, f.Node, f.FileHashes[k3s.ConfigPath])
	if hp.Action == "" {
		switch {
		case labelsOnly && f.Active[h.Role] && repairReason(f, h.Role) == "":
			hp.Action = ActionLabel
			hp.Reasons = append(hp.Reasons, "node-label/node-taint changed: applied through the API, "+path.Base(k3s.ConfigPath)+" rewritten without a restart")
		case hp.Images != "" && len(hp.Changes) == 0:
			hp.Action = ActionReconfigure
			hp.Reasons = append(hp.Reasons, "images archive "+path.Base(hp.Images)+" missing or different")
		case len(hp.Changes) > 0 || filesChange && f.Active[h.Role]:
			hp.Action = ActionReconfigure
			if len(hp.Changes) > 0 {
				hp.Reasons = append(hp.Reasons, "changes "+strings.Join(hp.Changes, ", "))
			}
			if filesChange {
				hp.Reasons = append(hp.Reasons, filesReason(hp))
			}
		case !f.Active[h.Role]:
			hp.Action = ActionStart
			hp.Reasons = append(hp.Reasons, k3s.ServiceName(h.Role)+" is not running"+stoppedNode(f))
		default:
			hp.Action = ActionNothing
			if why := repairReason(f, h.Role); why != "" {
				hp.Action = ActionRepair
				hp.Reasons = append(hp.Reasons, why)
			}
		}
	}
	hp.Labels = planLabels(c, h, f, hp.Action)
	if hp.Action == ActionNothing && hp.Labels != nil {
		hp.Action = ActionLabel
	}
	if note := interfaceNote(c, h, f); note != "" && hp.Action != ActionNothing {
		hp.Reasons = append(hp.Reasons, note)
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

// filesReason says what happens to the delivered files, for people.
func filesReason(hp HostPlan) string {
	var deliver, remove []string
	for _, fc := range hp.Files {
		if fc.Op == FileRemove {
			remove = append(remove, fc.Path)
		} else {
			deliver = append(deliver, fc.Path)
		}
	}
	var parts []string
	if len(deliver) > 0 {
		parts = append(parts, "delivers "+strings.Join(deliver, ", "))
	}
	if len(remove) > 0 {
		parts = append(parts, "removes "+strings.Join(remove, ", "))
	}
	if len(parts) == 0 {
		return "records the delivered files on the host"
	}
	return strings.Join(parts, "; ")
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
	env, err := k3s.EnvFile(h.Role, ServiceEnv(c, h))
	if err != nil {
		return nil, false, fmt.Errorf("%s: proxy settings: %w", h.Address, err)
	}
	return append(files, serviceFiles(h.Role, initSystem, env)...), pending, nil
}

// serviceFiles are the files of the service and its scripts, which depend
// only on the role and the init system, and its environment file env.
func serviceFiles(r k3s.Role, initSystem string, env []byte) []RemoteFile {
	var files []RemoteFile
	if initSystem == string(k3s.OpenRC) {
		files = append(files,
			RemoteFile{Path: k3s.OpenRCScriptPath(r), Mode: k3s.ScriptMode, Data: k3s.OpenRCScript(r)},
			RemoteFile{Path: k3s.OpenRCEnvPath, Mode: k3s.SecretFileMode, Data: env},
		)
	} else {
		files = append(files,
			RemoteFile{Path: k3s.UnitPath(r), Mode: k3s.UnitMode, Data: k3s.SystemdUnit(r)},
			RemoteFile{Path: k3s.EnvPath(r), Mode: k3s.SecretFileMode, Data: env},
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
	for _, f := range serviceFiles(r, initSystem, nil) {
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
	ds, err := c.datastore()
	if err != nil {
		return k3s.Config{}, false, err
	}
	if h.Role == k3s.Server {
		// The datastore is the cluster's: it goes in at its fixed place
		// whichever way it was given.
		delete(merged, k3s.DatastoreKey)
	}
	user, err := k3s.ConfigFromMap(merged)
	if err != nil {
		return k3s.Config{}, false, fmt.Errorf("%s: K3s settings: %w", h.Address, err)
	}
	if err := k3s.CheckOwned(user, h.NodeName != ""); err != nil {
		return k3s.Config{}, false, fmt.Errorf("%s: K3s settings: %w", h.Address, err)
	}
	s := k3s.NodeSettings{Role: h.Role, NodeName: h.NodeName, NodeIP: h.PrivateAddress, FlannelIface: h.Interface}
	if h.Role == k3s.Server {
		s.AdvertiseAddress = h.PrivateAddress
	}
	switch {
	case first:
		s.ClusterInit = c.HA && ds.IsZero()
		s.Token = c.Token
		if h.Role == k3s.Server {
			s.Datastore = ds
		}
	case h.Role == k3s.Server && !ds.IsZero():
		// Every server reads the cluster from the datastore; the token
		// opens its bootstrap data.
		s.Datastore = ds
		s.Token = token
		if s.Token.IsZero() {
			s.Token = c.Token
		}
		if s.Token.IsZero() {
			return k3s.Config{}, true, nil
		}
	default:
		join := c.JoinServer
		if join == "" && len(c.Servers) > 0 {
			join = c.Servers[0].JoinAddress()
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
		s.TLSSANs = []string{h.NetworkAddress()}
		if h.PrivateAddress != "" {
			s.TLSSANs = append(s.TLSSANs, h.PrivateAddress)
		}
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

// datastore is the cluster's external datastore endpoint: Datastore or a
// datastore-endpoint in the servers' settings, which must be the same on
// every server.
func (c *Cluster) datastore() (secret.Value, error) {
	fromConfig := func(m map[string]any) (secret.Value, bool) {
		switch v := m[k3s.DatastoreKey].(type) {
		case nil:
			return secret.Value{}, false
		case secret.Value:
			return v, true
		case string:
			return secret.New(v), true
		default:
			return secret.New(fmt.Sprint(v)), true
		}
	}
	ds := c.Datastore
	if v, ok := fromConfig(c.ServerConfig); ok {
		if !ds.IsZero() {
			return secret.Value{}, fmt.Errorf("the datastore is set twice, as the cluster's datastore and as %s in the servers' K3s settings: keep one", k3s.DatastoreKey)
		}
		ds = v
	}
	for _, h := range c.Servers {
		v, ok := fromConfig(h.Config)
		if !ok {
			continue
		}
		if v.Reveal() != ds.Reveal() {
			return secret.Value{}, fmt.Errorf("%s: %s differs from the cluster's: every server must use the same datastore; set it once for the cluster", h.Address, k3s.DatastoreKey)
		}
	}
	if !ds.IsZero() {
		if err := k3s.CheckDatastore(ds.Reveal()); err != nil {
			return secret.Value{}, err
		}
	}
	return ds, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ServiceEnv is the environment of h's K3s service: its proxy (the
// host's, else the cluster's) as HTTP_PROXY, HTTPS_PROXY and NO_PROXY, and
// the CONTAINERD_ forms when set. NO_PROXY is completed with what must
// never go through a proxy: localhost, the pod and service CIDRs, the
// in-cluster domains and every node address of the cluster. nil without a
// proxy: k3sctl keeps everything else in config.yaml.
func ServiceEnv(c *Cluster, h Host) map[string]string {
	p := h.Proxy
	if p == nil {
		p = c.Proxy
	}
	if p.IsZero() {
		return nil
	}
	env := map[string]string{}
	direct := noProxy(c)
	set := func(prefix string, httpURL, httpsURL secret.Value, user []string) {
		if httpURL.IsZero() && httpsURL.IsZero() {
			return
		}
		if !httpURL.IsZero() {
			env[prefix+"HTTP_PROXY"] = httpURL.Reveal()
		}
		if !httpsURL.IsZero() {
			env[prefix+"HTTPS_PROXY"] = httpsURL.Reveal()
		}
		env[prefix+"NO_PROXY"] = strings.Join(dedupe(append(slices.Clone(user), direct...)), ",")
	}
	set("", p.HTTP, p.HTTPS, p.NoProxy)
	set("CONTAINERD_", p.ContainerdHTTP, p.ContainerdHTTPS, p.ContainerdNoProxy)
	return env
}

// noProxy lists what a cluster's nodes reach directly: localhost, the pod
// and service CIDRs (config cluster-cidr and service-cidr, else K3s's
// defaults), the in-cluster domains and the addresses of its nodes.
func noProxy(c *Cluster) []string {
	out := []string{"localhost", "127.0.0.1"}
	setting := func(key string) string {
		v, ok := c.ServerConfig[key]
		if !ok && len(c.Servers) > 0 {
			v = c.Servers[0].Config[key]
		}
		return k3s.CriticalValue(key, v)
	}
	for _, key := range []string{"cluster-cidr", "service-cidr"} {
		out = append(out, strings.Split(setting(key), ",")...)
	}
	out = append(out, ".svc", "."+setting("cluster-domain"))
	if c.JoinServer != "" {
		out = append(out, c.JoinServer)
	}
	if c.APIAddress != "" {
		out = append(out, c.APIAddress)
	}
	for _, hs := range [][]Host{c.Servers, c.Agents} {
		for _, h := range hs {
			out = append(out, h.NetworkAddress(), h.PrivateAddress)
		}
	}
	return out
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	out := in[:0:0]
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// checkAddresses refuses a privateAddress or interface the host does not
// have: K3s would advertise an address no other node can reach. Hosts whose
// facts list no interfaces (no ip command) are not checked.
func checkAddresses(h Host, f *HostFacts) string {
	if len(f.Interfaces) == 0 {
		return ""
	}
	var names []string
	ifaceOf := map[string]string{}
	for _, ifc := range f.Interfaces {
		names = append(names, ifc.Name)
		for _, a := range ifc.Addresses {
			ip, _, _ := strings.Cut(a, "/")
			if addr, err := netip.ParseAddr(ip); err == nil {
				ifaceOf[addr.String()] = ifc.Name
			}
		}
	}
	if h.Interface != "" && !slices.Contains(names, h.Interface) {
		return fmt.Sprintf("interface %s is not on the host (it has %s); set interface: to one of them", h.Interface, strings.Join(names, ", "))
	}
	if h.PrivateAddress != "" {
		addr, err := netip.ParseAddr(h.PrivateAddress)
		name, ok := ifaceOf[addr.String()]
		switch {
		case err != nil || !ok:
			return fmt.Sprintf("privateAddress %s is not an address of the host (%s); set privateAddress: to one of them", h.PrivateAddress, describeInterfaces(f.Interfaces))
		case h.Interface != "" && name != h.Interface:
			return fmt.Sprintf("privateAddress %s is on %s, not on interface %s; make them agree", h.PrivateAddress, name, h.Interface)
		}
	}
	return ""
}

// interfaceNote says which interface K3s will advertise when a host has
// several and nothing chooses one, and how to choose another.
func interfaceNote(c *Cluster, h Host, f *HostFacts) string {
	if len(f.Interfaces) < 2 || h.PrivateAddress != "" || h.Interface != "" {
		return ""
	}
	shared := c.AgentConfig
	if h.Role == k3s.Server {
		shared = c.ServerConfig
	}
	for _, key := range []string{"node-ip", "flannel-iface"} {
		if _, ok := h.Config[key]; ok {
			return ""
		}
		if _, ok := shared[key]; ok {
			return ""
		}
	}
	pick := "the one K3s finds first"
	for _, ifc := range f.Interfaces {
		if ifc.Name == f.DefaultInterface {
			pick = ifc.Name
			if len(ifc.Addresses) > 0 {
				ip, _, _ := strings.Cut(ifc.Addresses[0], "/")
				pick += " (" + ip + ")"
			}
			pick += ", the default route's"
		}
	}
	return fmt.Sprintf("note: %d network interfaces (%s); K3s will advertise %s; to choose another set privateAddress: or interface: on the host",
		len(f.Interfaces), describeInterfaces(f.Interfaces), pick)
}

func describeInterfaces(ifaces []Interface) string {
	var parts []string
	for _, ifc := range ifaces {
		var ips []string
		for _, a := range ifc.Addresses {
			ip, _, _ := strings.Cut(a, "/")
			ips = append(ips, ip)
		}
		parts = append(parts, ifc.Name+" "+strings.Join(ips, " "))
	}
	return strings.Join(parts, ", ")
}
