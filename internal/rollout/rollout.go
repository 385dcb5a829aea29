package rollout

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/k3sctl/k3sctl/internal/apply"
	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/kube"
	"github.com/k3sctl/k3sctl/internal/kubeconfig"
	"github.com/k3sctl/k3sctl/internal/node"
	"github.com/k3sctl/k3sctl/internal/plan"
	"github.com/k3sctl/k3sctl/internal/preflight"
	"github.com/k3sctl/k3sctl/internal/secret"
	"github.com/k3sctl/k3sctl/internal/ssh"
)

// Conn is a connection to one host: what facts gathering and apply use,
// and Close. *ssh.Client is one.
type Conn interface {
	apply.Conn
	SudoPasswordKnown() bool
	NoteSudo(mode ssh.SudoMode, passwordAccepted bool)
	Close() error
}

var (
	_ Conn           = (*ssh.Client)(nil)
	_ node.FactsConn = Conn(nil)
)

// Dialer opens a connection to a host address.
type Dialer func(ctx context.Context, address string) (Conn, error)

// Fetched is a k3s binary on the local disk.
type Fetched struct {
	Path   string
	SHA256 string
	Local  bool // the user's own file (--k3s-binary), not a release download
}

// ImagesFetcher puts the verified images archive of a version and
// architecture on the local disk.
type ImagesFetcher func(ctx context.Context, key plan.BinaryKey) (Fetched, error)

// BinaryFetcher puts the k3s binary of a version and architecture on the
// local disk.
type BinaryFetcher func(ctx context.Context, key plan.BinaryKey) (Fetched, error)

// Options says how to reach hosts and where K3s comes from.
type Options struct {
	Spec *plan.Spec // never changed
	// SSH returns the connection options for a host address; used by the
	// default Dial.
	SSH func(address string) ssh.Options
	// Dial opens connections; nil dials with ssh.Dial and SSH.
	Dial Dialer
	// Fetch gets binaries; nil uses LocalBinary, else the download cache
	// in CacheDir from Release.
	Fetch BinaryFetcher
	// FetchImages gets the images archives of air-gapped clusters; nil
	// uses the download cache in CacheDir from Release.
	FetchImages ImagesFetcher
	// VersionOrChannel per cluster, as the user wrote it; resolved here.
	VersionOrChannel map[string]string
	Release          k3s.Release
	CacheDir         string
	LocalBinary      string // --k3s-binary: used for every host, no download
	// Kubeconfig, when set, merges each cluster's admin kubeconfig.
	Kubeconfig *KubeconfigOptions
	// Diff puts the content change of each changed delivered file that is
	// not secret into the plan.
	Diff bool
	// Status prepares a plan for reading only (k3sctl status): no binary
	// is fetched, a host's binary counts as its cluster's when its version
	// is the cluster's, and the K3s certificates of every host are read
	// into Prepared.HostFacts.
	Status bool

	// Prune removes the nodes of a cluster that are no longer in the
	// inventory; without it the plan only shows them.
	Prune bool
	// DrainTimeout and ForceDrain: see apply.Options.
	DrainTimeout time.Duration
	ForceDrain   bool

	Concurrency       int
	ConcurrentUploads int
	MaxUnavailable    int
	ReadyTimeout      time.Duration
	// NoSnapshot leaves out the etcd snapshot before an upgrade.
	NoSnapshot bool
	Sink       apply.Sink
	// Progress receives people-talk during preparation ("connecting", …).
	Progress func(format string, a ...any)
	// Preflight holds the problems the caller found on this machine
	// (kubeconfig, tokens, inventory addresses); Prepare reports them
	// together with the hosts' problems, before any change.
	Preflight []preflight.Problem
	// Lock, when set, takes the host lock on every host the run may
	// change, after facts and before any change; Close releases them.
	Lock *LockOptions

	clock *phaseClock // times the phases of Prepare

	// redial reconnects to a rebooting host while apply runs: once per
	// call (the caller retries) and without warnings, which would write
	// into the live view. nil: Dial.
	redial Dialer
}

// KubeconfigOptions says where and how to merge kubeconfigs.
type KubeconfigOptions struct {
	Path string
	// Context names the context of a cluster.
	Context       func(cluster string) string
	SwitchContext bool
	// Merged is called after each merge, with the context name.
	Merged func(cluster, context string)
}

// Prepared is a plan with the connections and facts it was built from.
// Close it.
type Prepared struct {
	Plan *plan.Plan
	// Spec is the resolved copy of Options.Spec the plan was built from.
	Spec *plan.Spec
	// Versions is each cluster's resolved K3s version ("" when a local
	// binary's version could not be told).
	Versions map[string]string
	Facts    map[string]*plan.HostFacts
	Conns    map[string]Conn
	// HostFacts are the hosts' facts as gathered (without file contents),
	// by address; only hosts whose facts were read.
	HostFacts map[string]*node.Facts
	// Nodes are each cluster's Nodes as its API listed them, by cluster
	// name; NodesErr says why a cluster with a running server could not be
	// read.
	Nodes    map[string][]kube.Node
	NodesErr map[string]string

	o         Options
	tokens    map[string]secret.Value
	binaries  map[plan.BinaryKey]string // local paths
	sums      map[plan.BinaryKey]string // their sha256
	images    map[plan.BinaryKey]string // local paths of images archives
	redialMu  sync.Mutex
	redialed  []Conn // connections opened after a reboot; Close closes them
	hostnames map[string]string
	inits     map[string]string
	apis      *clusterAPIs
	locks     *hostLocks // nil: no host locks taken
}

// HostError is a host that could not be reached or inspected.
type HostError struct {
	Host string
	Err  error
}

func (e *HostError) Error() string { return e.Host + ": " + e.Err.Error() }
func (e *HostError) Unwrap() error { return e.Err }

// Prepare connects to every host, gathers facts, checks every host before
// any change (preflight), takes the host locks when o.Lock asks for them,
// and builds the plan. It changes nothing anywhere, o.Spec included. Every
// problem the checks find, o.Preflight's included, comes back together as
// one *preflight.Report. On error no connection or lock is left open.
func Prepare(ctx context.Context, o Options) (*Prepared, error) {
	o = withDefaults(o)
	o.clock = newPhaseClock()
	spec := copySpec(o.Spec)
	targets := hostTargets(spec)
	if o.Status {
		for i := range targets {
			targets[i].certs = certDirs(targets[i].role)
		}
	}
	o.Progress("gathering facts from %d host(s)", len(targets))
	limit := max(o.Concurrency, 20)

	// The versions that do not hang on a host's facts are resolved (a
	// channel is asked) while the hosts are read.
	early := resolveEarly(ctx, o, spec.Clusters)
	// The host locks are taken beside the facts, unless this machine's
	// checks failed already.
	lock := o.Lock
	if len(o.Preflight) > 0 {
		lock = nil
	}
	var lockOn []string
	if lock != nil {
		lockOn = lockTargets(spec)
	}
	read := readHosts(ctx, o.Dial, targets, limit, lock, lockOn)
	conns, facts, found, locks := read.conns, read.facts, read.found, read.locks
	o.clock.doneAt(PhaseConnect, read.connected)
	fail := func(err error) (*Prepared, error) {
		early.wait()
		locks.release()
		closeAll(conns)
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	if err := hashLocalFiles(spec, o.Diff); err != nil {
		return fail(err)
	}
	if o.Diff {
		readOldTexts(ctx, spec, conns, facts, limit)
	}
	o.clock.done(PhaseFacts)
	report, warnings := checkHosts(spec, o.Preflight, found)
	for _, w := range warnings {
		o.Progress("warning: %s", w.Error())
	}
	if o.Status {
		// Status only reads: a host's problem is its state, not a stop.
		for _, pr := range report.Problems {
			if f := facts[pr.Host]; f != nil && f.Err == "" {
				f.Err = pr.What
			}
		}
		report = preflight.Report{}
	}
	if len(report.Problems) == 0 {
		// A locked host is a problem of its own only when nothing
		// else is wrong: its lock failed for the same reason otherwise.
		report.Add(read.lockProblems...)
	}
	if err := report.Err(); err != nil {
		return fail(err)
	}
	p, err := preparePlan(ctx, o, spec, conns, facts, early)
	if err != nil {
		locks.release()
		closeAll(conns)
		return nil, err
	}
	p.locks = locks
	p.HostFacts = map[string]*node.Facts{}
	for a, g := range found {
		if g.err == nil && g.facts != nil {
			p.HostFacts[a] = g.facts
		}
	}
	return p, nil
}

// certDirs are the directories of the K3s certificates a host of role
// has: a server's under server/tls and, as it runs an agent too, under
// agent; an agent's under agent.
func certDirs(role k3s.Role) []string {
	if role == k3s.Server {
		return []string{k3s.DataDir + "/server/tls", k3s.DataDir + "/agent"}
	}
	return []string{k3s.DataDir + "/agent"}
}

// preparePlan runs the phases after facts; it opens nothing.
func preparePlan(ctx context.Context, o Options, spec *plan.Spec, conns map[string]Conn, facts map[string]*plan.HostFacts, early *earlyVersions) (*Prepared, error) {
	versions, err := early.finish(ctx, o, spec.Clusters, facts)
	if err != nil {
		return nil, err
	}
	for i := range spec.Clusters {
		spec.Clusters[i].Version = versions[spec.Clusters[i].Name]
	}
	o.clock.done(PhaseVersions)
	// Tokens, the clusters' nodes and the binaries come from different
	// places (a server, its API, the local cache): they are had at once.
	apis := newClusterAPIs(conns)
	var (
		wg        sync.WaitGroup
		tokens    map[string]secret.Value
		tokensErr error
		nodes     map[string][]plan.ClusterNode
		tokensAt  time.Time
	)
	wg.Add(2)
	go func() {
		defer wg.Done()
		tokens, tokensErr = readTokens(ctx, spec.Clusters, conns, facts)
		tokensAt = time.Now()
	}()
	go func() {
		defer wg.Done()
		nodes = readClusters(ctx, o, apis, spec.Clusters, facts)
	}()
	var (
		bins       map[plan.BinaryKey]plan.Binary
		paths      map[plan.BinaryKey]string
		images     map[plan.BinaryKey]plan.Images
		imagePaths map[plan.BinaryKey]string
	)
	if o.Status {
		bins = installedBinaries(spec.Clusters, facts)
	} else {
		bins, paths, err = fetchBinaries(ctx, o, binariesNeeded(spec.Clusters, facts))
		if err == nil {
			images, imagePaths, err = fetchImages(ctx, o, spec.Clusters, facts)
		}
	}
	wg.Wait()
	if err == nil {
		err = tokensErr
	}
	if err != nil {
		apis.close()
		return nil, err
	}
	// The tokens were read beside the binaries and the clusters' nodes,
	// which end the binaries phase.
	o.clock.beside(PhaseTokens, tokensAt)
	o.clock.done(PhaseBinaries)
	pl, err := plan.Build(plan.Input{Spec: *spec, Facts: facts, Tokens: tokens, Binaries: bins, NoSnapshot: o.NoSnapshot,
		Nodes: nodes, Prune: o.Prune, Images: images})
	if err != nil {
		apis.close()
		return nil, err
	}
	o.clock.done(PhasePlan)
	p := &Prepared{images: imagePaths, Plan: pl, Spec: spec, Versions: versions, Facts: facts, Conns: conns, o: o, apis: apis,
		tokens: tokens, binaries: paths, sums: map[plan.BinaryKey]string{}, hostnames: map[string]string{}, inits: map[string]string{}}
	for k, b := range bins {
		p.sums[k] = b.SHA256
	}
	p.Nodes, p.NodesErr = apis.read()
	for a, f := range facts {
		if f.Err == "" {
			p.hostnames[a] = strings.ToLower(f.Hostname)
			p.inits[a] = f.InitSystem
		}
	}
	return p, nil
}

func withDefaults(o Options) Options {
	if o.Progress == nil {
		o.Progress = func(string, ...any) {}
	}
	if o.SSH != nil {
		// The run's hosts share their jump host connections.
		sshOf, jumps := o.SSH, ssh.NewJumpPool()
		o.SSH = func(address string) ssh.Options {
			so := sshOf(address)
			if so.Jumps == nil {
				so.Jumps = jumps
			}
			return so
		}
	}
	if o.Dial == nil {
		sshFor := o.SSH
		o.Dial = func(ctx context.Context, address string) (Conn, error) {
			c, err := ssh.Dial(ctx, sshFor(address))
			if err != nil {
				return nil, err
			}
			return c, nil
		}
		o.redial = func(ctx context.Context, address string) (Conn, error) {
			so := sshFor(address)
			so.Warnf, so.ConnectRetry = nil, -1
			c, err := ssh.Dial(ctx, so)
			if err != nil {
				return nil, err
			}
			return c, nil
		}
	}
	if o.Fetch == nil {
		o.Fetch = defaultFetcher(o)
	}
	if o.FetchImages == nil {
		o.FetchImages = defaultImagesFetcher(o)
	}
	return o
}

// copySpec copies what Prepare fills in, so the caller's Spec stays as
// it was.
func copySpec(s *plan.Spec) *plan.Spec {
	c := *s
	c.Clusters = append([]plan.Cluster(nil), s.Clusters...)
	for i := range c.Clusters {
		c.Clusters[i].Files = append([]plan.File(nil), c.Clusters[i].Files...)
	}
	return &c
}

// target is a host to connect to, once whatever its role or cluster.
type target struct {
	addr string
	role k3s.Role
	// certs are the directories whose certificates are read.
	certs []string
	// files are the destinations of the delivered files the host gets.
	files  []string
	airgap bool // a cluster of the host gets images archives: hash them
}

func hostTargets(spec *plan.Spec) []target {
	var targets []target
	seen := map[string]int{}
	add := func(addr string, role k3s.Role, files []plan.File, airgap bool) {
		i, ok := seen[addr]
		if !ok {
			i = len(targets)
			seen[addr] = i
			targets = append(targets, target{addr: addr, role: role})
		}
		targets[i].airgap = targets[i].airgap || airgap
		for _, f := range files {
			targets[i].files = append(targets[i].files, f.Dest())
		}
	}
	for i := range spec.Clusters {
		c := &spec.Clusters[i]
		if c.JoinServer != "" && c.Token.IsZero() {
			add(c.JoinServer, k3s.Server, nil, false)
		}
		for _, h := range clusterHosts(*c) {
			add(h.Address, h.Role, plan.HostFiles(c, h.Role), c.Airgap)
		}
	}
	return targets
}

func clusterHosts(c plan.Cluster) []plan.Host {
	return append(append([]plan.Host{}, c.Servers...), c.Agents...)
}

// parallel runs f for every target, at most limit at once.
func parallel(targets []target, limit int, f func(t target)) {
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for _, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			f(t)
		}()
	}
	wg.Wait()
}

// hostFactsOf reads a host's facts in one round trip: with them the
// sha256, size and mode of the files k3sctl writes there and the host's
// record of the files it delivered. On a sudo failure the facts read
// before it come back with the error.
func hostFactsOf(ctx context.Context, c Conn, t target) (*node.Facts, *plan.HostFacts, error) {
	// The init system is one of the facts, so hash both variants' files.
	hash := append(plan.HashPaths(t.role, string(k3s.Systemd)), plan.HashPaths(t.role, string(k3s.OpenRC))...)
	// registries.yaml is rendered for clusters with registries:; a
	// missing file costs nothing to ask about.
	hash = append(hash, k3s.TokenPath, k3s.RegistriesPath)
	if t.airgap {
		// The architecture is one of the facts too.
		for _, a := range []k3s.Arch{k3s.AMD64, k3s.ARM64, k3s.ARM} {
			hash = append(hash, plan.Images{Name: a.AirgapImagesAsset(imagesExt)}.Dest())
		}
	}
	hash = append(hash, t.files...)
	f, err := node.GatherFacts(ctx, c, node.FactsOptions{HashFiles: dedupe(hash), ReadFiles: []string{plan.DeliveredRecordPath}, CertDirs: t.certs,
		StaleDirs: staleDirs(t)})
	if err != nil {
		return f, nil, err
	}
	hf, err := hostFacts(f)
	if hf != nil {
		hf.SSH = sshFacts(f, c)
	}
	return f, hf, err
}

// staleDirs are the directories k3sctl writes to on t's host, where an
// interrupted run may have left temporary files, and /tmp, where older
// releases uploaded to.
func staleDirs(t target) []string {
	dirs := []string{path.Dir(k3s.BinaryPath), path.Dir(k3s.ConfigPath), "/tmp"}
	if t.airgap {
		dirs = append(dirs, k3s.ImagesDir)
	}
	for _, f := range t.files {
		dirs = append(dirs, path.Dir(f))
	}
	return dedupe(dirs)
}

// resolveVersions is each cluster's exact K3s version: the user's version
// or channel, else the joined server's version, else the stable channel.
// With a local binary and a channel, it is the binary's own version when
// it runs here, else "" (hosts are then compared by checksum only).
func resolveVersions(ctx context.Context, o Options, clusters []plan.Cluster, facts map[string]*plan.HostFacts) (map[string]string, error) {
	out := map[string]string{}
	for _, c := range clusters {
		want := o.VersionOrChannel[c.Name]
		if want == "" {
			want = c.Version
		}
		if f := facts[c.JoinServer]; want == "" && c.JoinServer != "" && f != nil && f.K3sVersion != "" {
			want = f.K3sVersion
		}
		if want == "" && o.Status {
			// Status of a cluster without an inventory (--ip): its
			// version is the one its servers run.
			out[c.Name] = ""
			for _, h := range clusterHosts(c) {
				if f := facts[h.Address]; f != nil && f.K3sVersion != "" {
					out[c.Name] = f.K3sVersion
					break
				}
			}
			continue
		}
		if want == "" {
			want = "stable"
		}
		if o.LocalBinary != "" && c.Version == "" && k3s.IsChannel(want) {
			out[c.Name] = ""
			if v, err := localVersion(ctx, o.LocalBinary); err == nil {
				out[c.Name] = v.String()
			}
			continue
		}
		v, err := o.Release.Resolve(ctx, want)
		if err != nil {
			return nil, fmt.Errorf("cluster %s: K3s version %q: %w", c.Name, want, err)
		}
		out[c.Name] = v.String()
	}
	return out, nil
}

// readTokens reads the tokens of clusters that already run, so re-runs
// and joins reuse them. A token the facts saw but that cannot be read is
// an error.
func readTokens(ctx context.Context, clusters []plan.Cluster, conns map[string]Conn, facts map[string]*plan.HostFacts) (map[string]secret.Value, error) {
	tokens := map[string]secret.Value{}
	for _, c := range clusters {
		if c.JoinServer != "" && !c.Token.IsZero() {
			tokens[c.Name] = c.Token
			continue
		}
		src := c.JoinServer
		if src == "" && len(c.Servers) > 0 {
			src = c.Servers[0].Address
		}
		conn, f := conns[src], facts[src]
		if conn == nil || f == nil || f.FileHashes[k3s.TokenPath] == "" {
			continue
		}
		tok, err := node.ReadToken(ctx, conn)
		if err != nil {
			return nil, fmt.Errorf("cluster %s: read the join token %s on %s: %w", c.Name, k3s.TokenPath, src, err)
		}
		tokens[c.Name] = tok
	}
	return tokens, nil
}

// installedBinaries stands in for the releases when nothing is fetched:
// the binary of a version and architecture is the one a host of that
// architecture has installed at that version, so a host is compared with
// its cluster by version. Without such a host the checksum is unknown and
// every host of the key differs.
func installedBinaries(clusters []plan.Cluster, facts map[string]*plan.HostFacts) map[plan.BinaryKey]plan.Binary {
	bins := map[plan.BinaryKey]plan.Binary{}
	for _, k := range binariesNeeded(clusters, facts) {
		bins[k] = plan.Binary{Version: k.Version, SHA256: "unknown: no host runs " + k.Version}
	}
	for _, c := range clusters {
		for _, h := range clusterHosts(c) {
			f := facts[h.Address]
			if f == nil || f.Err != "" || f.K3sSHA256 == "" || f.K3sVersion != c.Version {
				continue
			}
			k := plan.BinaryKey{Version: c.Version, Arch: f.Arch}
			if b := bins[k]; strings.HasPrefix(b.SHA256, "unknown:") {
				bins[k] = plan.Binary{Version: k.Version, SHA256: f.K3sSHA256}
			}
		}
	}
	return bins
}

// binariesNeeded is every (version, architecture) the reachable hosts
// need, sorted.
func binariesNeeded(clusters []plan.Cluster, facts map[string]*plan.HostFacts) []plan.BinaryKey {
	seen := map[plan.BinaryKey]bool{}
	var keys []plan.BinaryKey
	for _, c := range clusters {
		for _, h := range clusterHosts(c) {
			if f := facts[h.Address]; f != nil && f.Err == "" && f.Arch != "" {
				k := plan.BinaryKey{Version: c.Version, Arch: f.Arch}
				if !seen[k] {
					seen[k] = true
					keys = append(keys, k)
				}
			}
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].Version != keys[j].Version {
			return keys[i].Version < keys[j].Version
		}
		return keys[i].Arch < keys[j].Arch
	})
	return keys
}

// fetchBinaries puts every needed binary on the local disk once.
func fetchBinaries(ctx context.Context, o Options, keys []plan.BinaryKey) (map[plan.BinaryKey]plan.Binary, map[plan.BinaryKey]string, error) {
	bins := map[plan.BinaryKey]plan.Binary{}
	paths := map[plan.BinaryKey]string{}
	for _, k := range keys {
		f, err := o.Fetch(ctx, k)
		if err != nil {
			return nil, nil, err
		}
		b := plan.Binary{Version: k.Version, SHA256: f.SHA256}
		if f.Local {
			b.Local = f.Path
		}
		bins[k] = b
		paths[k] = f.Path
	}
	return bins, paths, nil
}

// imagesExt is the form of the images archive k3sctl delivers: the
// smallest, which every K3s release since v1.21 imports.
const imagesExt = "tar.zst"

// fetchImages puts the images archive of every (version, architecture) of
// the air-gapped clusters' reachable hosts on the local disk once.
func fetchImages(ctx context.Context, o Options, clusters []plan.Cluster, facts map[string]*plan.HostFacts) (map[plan.BinaryKey]plan.Images, map[plan.BinaryKey]string, error) {
	var airgapped []plan.Cluster
	for _, c := range clusters {
		if c.Airgap {
			if c.Version == "" {
				return nil, nil, fmt.Errorf("cluster %s: air-gapped images need the K3s version: give --k3s-version (or version: in the inventory)", c.Name)
			}
			airgapped = append(airgapped, c)
		}
	}
	images := map[plan.BinaryKey]plan.Images{}
	paths := map[plan.BinaryKey]string{}
	for _, k := range binariesNeeded(airgapped, facts) {
		f, err := o.FetchImages(ctx, k)
		if err != nil {
			return nil, nil, err
		}
		images[k] = plan.Images{Name: k.Arch.AirgapImagesAsset(imagesExt), SHA256: f.SHA256}
		paths[k] = f.Path
	}
	return images, paths, nil
}

// defaultImagesFetcher downloads through the cache, verified against the
// release's checksum file.
func defaultImagesFetcher(o Options) ImagesFetcher {
	return func(ctx context.Context, k plan.BinaryKey) (Fetched, error) {
		v, err := k3s.ParseVersion(k.Version)
		if err != nil {
			return Fetched{}, err
		}
		cache := &k3s.Cache{Dir: o.CacheDir, Downloading: func(asset string) {
			o.Progress("downloading the images archive of k3s %s for %s (%s)", k.Version, k.Arch, asset)
		}}
		path, sum, err := cache.AirgapImages(ctx, o.Release, v, k.Arch, imagesExt, nil)
		if err != nil {
			return Fetched{}, fmt.Errorf("images archive of k3s %s for %s: %w", k.Version, k.Arch, err)
		}
		return Fetched{Path: path, SHA256: sum}, nil
	}
}

// defaultFetcher uses --k3s-binary when given, else the download cache.
func defaultFetcher(o Options) BinaryFetcher {
	return func(ctx context.Context, k plan.BinaryKey) (Fetched, error) {
		if o.LocalBinary != "" {
			sum, err := k3s.LocalBinary(o.LocalBinary)
			if err != nil {
				return Fetched{}, fmt.Errorf("--k3s-binary: %w", err)
			}
			return Fetched{Path: o.LocalBinary, SHA256: sum, Local: true}, nil
		}
		v, err := k3s.ParseVersion(k.Version)
		if err != nil {
			return Fetched{}, err
		}
		cache := &k3s.Cache{Dir: o.CacheDir, Downloading: func(string) {
			o.Progress("downloading k3s %s for %s", k.Version, k.Arch)
		}}
		path, sum, err := cache.Binary(ctx, o.Release, v, k.Arch, nil)
		if err != nil {
			return Fetched{}, fmt.Errorf("k3s %s for %s: %w", k.Version, k.Arch, err)
		}
		return Fetched{Path: path, SHA256: sum}, nil
	}
}

// Apply runs the plan. The sink gets a phase event for each phase of
// Prepare first, and those of execute and kubeconfig before the summary.
func (p *Prepared) Apply(ctx context.Context) ([]apply.HostResult, error) {
	conns := map[string]apply.Conn{}
	for a, c := range p.Conns {
		conns[a] = p.locks.guard(a, c)
	}
	var sink apply.Sink = apply.SinkFunc(func(apply.Event) {})
	if p.o.Sink != nil {
		sink = p.o.Sink
	}
	for _, ph := range p.PreparePhases() {
		sink.Event(phaseEvent(ph.Name, ph.Elapsed))
	}
	timed := &timedSink{Sink: sink, start: time.Now()}
	o := apply.Options{
		Plan: p.Plan, Spec: p.Spec, Conns: conns, Hostnames: p.hostnames, InitSystems: p.inits,
		Tokens: p.tokens, Concurrency: p.o.Concurrency, ConcurrentUploads: p.o.ConcurrentUploads,
		MaxUnavailable: p.o.MaxUnavailable, ReadyTimeout: p.o.ReadyTimeout, Sink: timed, BinarySHA256: p.sums,
		DrainTimeout: p.o.DrainTimeout, ForceDrain: p.o.ForceDrain,
		Dial: p.dialRemoved,
		Binary: func(ctx context.Context, key plan.BinaryKey, progress func(done, total int64)) (string, error) {
			if path, ok := p.binaries[key]; ok {
				return path, nil
			}
			return "", fmt.Errorf("no k3s binary %s for %s", key.Version, key.Arch)
		},
		Kubeconfig: timed.timeMerges(mergeKubeconfig(p.o.Kubeconfig, p.Plan)),
		API:        p.apis.api(p.Plan),
		// Read with the clusters' nodes, before any change.
		KnownKubeconfigs: p.apis.known(),
	}
	dial := p.o.redial
	if dial == nil {
		dial = p.o.Dial
	}
	o.Redial = func(ctx context.Context, address string) (apply.Conn, error) {
		c, err := dial(ctx, address)
		if err != nil {
			return nil, err
		}
		p.redialMu.Lock()
		p.redialed = append(p.redialed, c)
		p.redialMu.Unlock()
		return c, nil
	}
	if len(p.images) > 0 {
		o.Images = func(ctx context.Context, key plan.BinaryKey) (string, error) {
			if path, ok := p.images[key]; ok {
				return path, nil
			}
			return "", fmt.Errorf("no images archive of k3s %s for %s", key.Version, key.Arch)
		}
	}
	return apply.Run(ctx, o)
}

// dialRemoved connects to the host of a removed node, which the inventory
// no longer lists: with the SSH settings of the cluster's first server
// (the inventory's defaults, most often), only the address changed, and a
// short retry: a host that is gone should not hold up the run.
func (p *Prepared) dialRemoved(ctx context.Context, cluster, address string) (apply.Conn, func(), error) {
	var c Conn
	var err error
	sibling := ""
	for _, sc := range p.Spec.Clusters {
		if sc.Name == cluster && len(sc.Servers) > 0 {
			sibling = sc.Servers[0].Address
		}
	}
	if p.o.SSH != nil && sibling != "" {
		o := p.o.SSH(sibling)
		o.Address = address
		o.ConnectRetry = 10 * time.Second
		var sc *ssh.Client
		sc, err = ssh.Dial(ctx, o)
		if err == nil {
			c = sc
		}
	} else {
		c, err = p.o.Dial(ctx, address)
	}
	if err != nil {
		return nil, nil, err
	}
	return c, func() { _ = c.Close() }, nil
}

// mergeKubeconfig merges a cluster's admin kubeconfig into the local
// file, pointed at the plan's API address; nil when not asked for.
func mergeKubeconfig(kc *KubeconfigOptions, pl *plan.Plan) func(ctx context.Context, cluster string, data []byte) error {
	if kc == nil {
		return nil
	}
	return func(ctx context.Context, cluster string, data []byte) error {
		name := kc.Context(cluster)
		server := ""
		for _, cp := range pl.Clusters {
			if cp.Name == cluster {
				server = plan.ServerURL(cp.APIAddress)
			}
		}
		err := kubeconfig.MergeFile(kc.Path, data, kubeconfig.MergeOptions{Name: name, Server: server, SwitchContext: kc.SwitchContext})
		if err != nil {
			return fmt.Errorf("merge into %s: %w", kc.Path, err)
		}
		if kc.Merged != nil {
			kc.Merged(cluster, name)
		}
		return nil
	}
}

// Close releases the host locks and closes every connection.
func (p *Prepared) Close() {
	if p.apis != nil {
		p.apis.close()
	}
	p.locks.release()
	p.locks = nil
	closeAll(p.Conns)
	p.redialMu.Lock()
	defer p.redialMu.Unlock()
	for _, c := range p.redialed {
		_ = c.Close()
	}
	p.redialed = nil
}

func closeAll(conns map[string]Conn) {
	for a, c := range conns {
		_ = c.Close()
		delete(conns, a)
	}
}

// Unreachable lists hosts whose facts could not be gathered, sorted.
func (p *Prepared) Unreachable() []*HostError {
	var out []*HostError
	for a, f := range p.Facts {
		if f.Err != "" {
			out = append(out, &HostError{Host: a, Err: errors.New(f.Err)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Host < out[j].Host })
	return out
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func localVersion(ctx context.Context, path string) (k3s.Version, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--version").Output()
	if err != nil {
		return k3s.Version{}, err
	}
	return k3s.ParseVersionOutput(string(out))
}
