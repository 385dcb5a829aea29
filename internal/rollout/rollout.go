// Package rollout ties the flow together for every command: dial the hosts,
// gather facts in parallel, resolve the K3s version and binaries, build the
// plan, run it, and merge kubeconfigs. install, join and apply differ only in
// the Spec they hand it.
package rollout

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/k3sctl/k3sctl/internal/apply"
	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/kubeconfig"
	"github.com/k3sctl/k3sctl/internal/plan"
	"github.com/k3sctl/k3sctl/internal/secret"
	"github.com/k3sctl/k3sctl/internal/ssh"
)

// Options says how to reach hosts and where K3s comes from.
type Options struct {
	Spec *plan.Spec
	// SSH returns the connection options for a host address.
	SSH func(address string) ssh.Options
	// VersionOrChannel per cluster, as the user wrote it; resolved here.
	VersionOrChannel map[string]string
	Release          k3s.Release
	CacheDir         string
	LocalBinary      string // --k3s-binary: used for every host, no download
	// Kubeconfig, when set, merges each cluster's admin kubeconfig.
	Kubeconfig *KubeconfigOptions

	Concurrency       int
	ConcurrentUploads int
	MaxUnavailable    int
	ReadyTimeout      time.Duration
	Sink              apply.Sink
	// Progress receives people-talk during preparation ("connecting", …).
	Progress func(format string, a ...any)
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
type Prepared struct {
	Plan      *plan.Plan
	Facts     map[string]*plan.HostFacts
	Conns     map[string]*ssh.Client
	o         Options
	tokens    map[string]secret.Value
	binaries  map[k3s.Arch]string
	hostnames map[string]string
	inits     map[string]string
	versions  map[string]k3s.Version
}

// HostError is a host that could not be reached or inspected.
type HostError struct {
	Host string
	Err  error
}

func (e *HostError) Error() string { return e.Host + ": " + e.Err.Error() }
func (e *HostError) Unwrap() error { return e.Err }

// Prepare connects to every host, gathers facts and builds the plan. It
// changes nothing anywhere.
func Prepare(ctx context.Context, o Options) (*Prepared, error) {
	p := &Prepared{o: o, Conns: map[string]*ssh.Client{}, Facts: map[string]*plan.HostFacts{},
		tokens: map[string]secret.Value{}, binaries: map[k3s.Arch]string{},
		hostnames: map[string]string{}, inits: map[string]string{}, versions: map[string]k3s.Version{}}
	if o.Progress == nil {
		o.Progress = func(string, ...any) {}
		p.o.Progress = o.Progress
	}
	spec := o.Spec

	// Every host once, whatever its role or cluster.
	type target struct {
		addr string
		role k3s.Role
	}
	var targets []target
	seen := map[string]bool{}
	for _, c := range spec.Clusters {
		if c.JoinServer != "" && c.Token.IsZero() && !seen[c.JoinServer] {
			seen[c.JoinServer] = true
			targets = append(targets, target{c.JoinServer, k3s.Server})
		}
		for _, h := range append(append([]plan.Host{}, c.Servers...), c.Agents...) {
			if !seen[h.Address] {
				seen[h.Address] = true
				targets = append(targets, target{h.Address, h.Role})
			}
		}
	}
	o.Progress("gathering facts from %d host(s)", len(targets))
	var mu sync.Mutex
	var wg sync.WaitGroup
	limit := make(chan struct{}, max(o.Concurrency, 20))
	for _, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			limit <- struct{}{}
			defer func() { <-limit }()
			c, f, err := gather(ctx, o.SSH(t.addr), t.role)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				p.Facts[t.addr] = &plan.HostFacts{Err: err.Error()}
				return
			}
			p.Conns[t.addr] = c
			p.Facts[t.addr] = f
			p.hostnames[t.addr] = strings.ToLower(f.Hostname)
			p.inits[t.addr] = f.InitSystem
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		p.Close()
		return nil, ctx.Err()
	}

	// Resolve versions. A join without a version takes the server's.
	for i := range spec.Clusters {
		c := &spec.Clusters[i]
		want := o.VersionOrChannel[c.Name]
		if want == "" {
			want = c.Version
		}
		if f := p.Facts[c.JoinServer]; want == "" && c.JoinServer != "" && f != nil && f.K3sVersion != "" {
			want = f.K3sVersion
		}
		if want == "" {
			want = "stable"
		}
		if o.LocalBinary != "" && c.Version == "" && k3s.IsChannel(want) {
			// The binary says what it is when it runs here (same OS and
			// architecture); otherwise the version stays unknown and
			// hosts are compared by checksum only.
			if v, err := localVersion(ctx, o.LocalBinary); err == nil {
				c.Version = v.String()
				p.versions[c.Name] = v
			}
			continue
		}
		v, err := o.Release.Resolve(ctx, want)
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("cluster %s: K3s version %q: %w", c.Name, want, err)
		}
		c.Version = v.String()
		p.versions[c.Name] = v
	}

	// Tokens of clusters that already run: re-runs and joins reuse them.
	for i := range spec.Clusters {
		c := &spec.Clusters[i]
		if c.JoinServer != "" && !c.Token.IsZero() {
			p.tokens[c.Name] = c.Token
			continue
		}
		src := c.JoinServer
		if src == "" && len(c.Servers) > 0 {
			src = c.Servers[0].Address
		}
		conn, f := p.Conns[src], p.Facts[src]
		if conn == nil || f == nil || f.FileHashes[k3s.TokenPath] == "" {
			continue
		}
		data, err := conn.ReadFile(ctx, k3s.TokenPath)
		if err != nil {
			continue
		}
		p.tokens[c.Name] = secret.New(strings.TrimSpace(string(data)))
	}

	// The binary for each architecture in use, downloaded once into the cache.
	bins := map[k3s.Arch]plan.Binary{}
	archs := map[k3s.Arch]string{} // arch → a cluster version using it
	for _, c := range spec.Clusters {
		for _, h := range append(append([]plan.Host{}, c.Servers...), c.Agents...) {
			if f := p.Facts[h.Address]; f != nil && f.Err == "" && f.Arch != "" {
				if prev, ok := archs[f.Arch]; ok && prev != c.Version {
					return nil, fmt.Errorf("clusters use different K3s versions (%s, %s); apply them one at a time", prev, c.Version)
				}
				archs[f.Arch] = c.Version
			}
		}
	}
	for arch, version := range archs {
		if o.LocalBinary != "" {
			sum, err := k3s.LocalBinary(o.LocalBinary)
			if err != nil {
				return nil, fmt.Errorf("--k3s-binary: %w", err)
			}
			bins[arch] = plan.Binary{Version: version, SHA256: sum, Local: o.LocalBinary}
			p.binaries[arch] = o.LocalBinary
			continue
		}
		v, err := k3s.ParseVersion(version)
		if err != nil {
			return nil, err
		}
		o.Progress("fetching k3s %s for %s", version, arch)
		cache := &k3s.Cache{Dir: o.CacheDir}
		path, sum, err := cache.Binary(ctx, o.Release, v, arch, nil)
		if err != nil {
			return nil, fmt.Errorf("k3s %s for %s: %w", version, arch, err)
		}
		bins[arch] = plan.Binary{Version: version, SHA256: sum}
		p.binaries[arch] = path
	}

	pl, err := plan.Build(plan.Input{Spec: *spec, Facts: p.Facts, Tokens: p.tokens, Binaries: bins})
	if err != nil {
		p.Close()
		return nil, err
	}
	p.Plan = pl
	return p, nil
}

// gather dials a host and reads its facts in one round trip.
func gather(ctx context.Context, so ssh.Options, role k3s.Role) (*ssh.Client, *plan.HostFacts, error) {
	c, err := ssh.Dial(ctx, so)
	if err != nil {
		return nil, nil, err
	}
	// The init system is one of the facts, so hash both variants' files.
	hash := append(plan.HashPaths(role, string(k3s.Systemd)), plan.HashPaths(role, string(k3s.OpenRC))...)
	hash = append(hash, k3s.TokenPath)
	f, err := c.Facts(ctx, ssh.FactsOptions{HashFiles: dedupe(hash)})
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return c, hostFacts(f), nil
}

// Apply runs the plan.
func (p *Prepared) Apply(ctx context.Context) ([]apply.HostResult, error) {
	conns := map[string]apply.Conn{}
	for a, c := range p.Conns {
		conns[a] = c
	}
	o := apply.Options{
		Plan: p.Plan, Spec: p.o.Spec, Conns: conns, Hostnames: p.hostnames, InitSystems: p.inits,
		Tokens: p.tokens, Concurrency: p.o.Concurrency, ConcurrentUploads: p.o.ConcurrentUploads,
		MaxUnavailable: p.o.MaxUnavailable, ReadyTimeout: p.o.ReadyTimeout, Sink: p.o.Sink,
		Binary: func(ctx context.Context, arch k3s.Arch, progress func(done, total int64)) (string, error) {
			if path, ok := p.binaries[arch]; ok {
				return path, nil
			}
			return "", fmt.Errorf("no k3s binary for %s", arch)
		},
	}
	if kc := p.o.Kubeconfig; kc != nil {
		o.Kubeconfig = func(ctx context.Context, cluster string, data []byte) error {
			name := kc.Context(cluster)
			server := ""
			for _, cp := range p.Plan.Clusters {
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
	return apply.Run(ctx, o)
}

// Close closes every connection.
func (p *Prepared) Close() {
	for _, c := range p.Conns {
		_ = c.Close()
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
