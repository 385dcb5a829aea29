package rollout

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/k3sctl/k3sctl/internal/apply"
	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/plan"
	"github.com/k3sctl/k3sctl/internal/ssh"
)

// Every test names exact versions: nothing here resolves a channel over
// the network.

// fakeHosts is a set of hosts behind a fake dialer. It counts the
// connections that are open and records what the hosts were asked.
type fakeHosts struct {
	mu       sync.Mutex
	open     int
	dialed   int
	uploads  map[string]string // host → local binary uploaded
	versions map[string]string // host → version answered by kubectl

	// Failure injection; each may be nil.
	dialErr     func(addr string) error
	factsErr    func(addr string) error
	tokenOnDisk map[string]bool
	readErr     error
	uploadErr   error

	// Host locks and preflight (lock_test.go).
	locks     fakeLocks
	hostnames map[string]string // host → hostname, instead of node-<address>
	sudo      map[string]string // host → sudo mode, instead of root
	tempNames map[string]string // host → temporary name of the binary upload
}

func newFakeHosts() *fakeHosts {
	return &fakeHosts{uploads: map[string]string{}, versions: map[string]string{}, tokenOnDisk: map[string]bool{},
		hostnames: map[string]string{}, sudo: map[string]string{}, tempNames: map[string]string{}}
}

func (w *fakeHosts) dial(ctx context.Context, addr string) (Conn, error) {
	if w.dialErr != nil {
		if err := w.dialErr(addr); err != nil {
			return nil, err
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.open++
	w.dialed++
	return &fakeConn{w: w, addr: addr}, nil
}

func (w *fakeHosts) openConns() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.open
}

type fakeConn struct {
	w      *fakeHosts
	addr   string
	closed bool
}

func (c *fakeConn) Host() string { return c.addr }

func (c *fakeConn) Close() error {
	c.w.mu.Lock()
	defer c.w.mu.Unlock()
	if c.closed {
		return errors.New("closed twice")
	}
	c.closed = true
	c.w.open--
	return nil
}

func (c *fakeConn) hostname() string { return "node-" + strings.ReplaceAll(c.addr, ".", "-") }

func (c *fakeConn) Run(ctx context.Context, cmd string, o ssh.RunOptions) (ssh.Result, error) {
	switch {
	case strings.Contains(cmd, "k3sctl-lock"):
		return c.w.locks.run(ctx, c.addr, cmd, o)
	case strings.HasPrefix(cmd, "sh -c "): // the facts script
		if c.w.factsErr != nil {
			if err := c.w.factsErr(c.addr); err != nil {
				return ssh.Result{}, err
			}
		}
		out, privileged := c.w.factsOutput(c)
		if c.w.tokenOnDisk[c.addr] {
			out += "token\t1\n"
		}
		return ssh.Result{Stdout: []byte(out + "privileged\t" + privileged + "\n")}, nil
	case strings.Contains(cmd, "--no-block"):
		return ssh.Result{Stdout: []byte("started\n")}, nil
	case strings.Contains(cmd, "is-active"):
		return ssh.Result{Stdout: []byte("active\n")}, nil
	case strings.Contains(cmd, "kubectl get nodes"):
		c.w.mu.Lock()
		defer c.w.mu.Unlock()
		var out strings.Builder
		out.WriteString("NAME STATUS ROLES AGE VERSION\n")
		for addr, v := range c.w.versions {
			fmt.Fprintf(&out, "node-%s Ready <none> 1m %s\n", strings.ReplaceAll(addr, ".", "-"), v)
		}
		return ssh.Result{Stdout: []byte(out.String())}, nil
	}
	return ssh.Result{}, nil
}

func (c *fakeConn) Upload(ctx context.Context, src, dst string, o ssh.UploadOptions) (ssh.UploadResult, error) {
	if c.w.uploadErr != nil {
		return ssh.UploadResult{}, c.w.uploadErr
	}
	c.w.mu.Lock()
	defer c.w.mu.Unlock()
	if dst == k3s.BinaryPath {
		if o.TempName != nil {
			c.w.tempNames[c.addr] = o.TempName(filepath.Dir(dst), filepath.Base(dst))
		}
		c.w.uploads[c.addr] = src
		c.w.versions[c.addr] = strings.TrimSuffix(filepath.Base(src), ".bin")
	}
	return ssh.UploadResult{}, nil
}

func (c *fakeConn) WriteFile(ctx context.Context, dst string, data []byte, mode os.FileMode) (bool, error) {
	return true, nil
}

func (c *fakeConn) ReadFile(ctx context.Context, path string) ([]byte, error) {
	if c.w.readErr != nil {
		return nil, c.w.readErr
	}
	switch path {
	case k3s.TokenPath:
		return []byte("K10" + strings.Repeat("a", 64) + "::server:s3cret\n"), nil
	case k3s.KubeconfigPath:
		return []byte(kubeconfigYAML), nil
	}
	return nil, os.ErrNotExist
}

func (c *fakeConn) SudoPasswordKnown() bool            { return false }
func (c *fakeConn) NoteSudo(mode ssh.SudoMode, _ bool) {}

const kubeconfigYAML = `apiVersion: v1
kind: Config
clusters:
- cluster:
    server: https://127.0.0.1:6443
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
users:
- name: default
  user:
    token: x
`

// fakeFetcher "downloads" a binary per key into dir and records the keys.
type fakeFetcher struct {
	mu   sync.Mutex
	dir  string
	keys []plan.BinaryKey
	err  error
}

func (f *fakeFetcher) fetch(ctx context.Context, k plan.BinaryKey) (Fetched, error) {
	if f.err != nil {
		return Fetched{}, f.err
	}
	f.mu.Lock()
	f.keys = append(f.keys, k)
	f.mu.Unlock()
	path := filepath.Join(f.dir, string(k.Arch), k.Version+".bin")
	return Fetched{Path: path, SHA256: "sha-" + k.Version + "-" + string(k.Arch)}, nil
}

func twoClusters() *plan.Spec {
	return &plan.Spec{Clusters: []plan.Cluster{
		{Name: "old", Servers: []plan.Host{{Address: "10.0.0.1", Role: k3s.Server}}, Agents: []plan.Host{{Address: "10.0.0.2", Role: k3s.Agent}}},
		{Name: "new", Servers: []plan.Host{{Address: "10.0.1.1", Role: k3s.Server}}},
	}}
}

func options(w *fakeHosts, f *fakeFetcher, spec *plan.Spec) Options {
	return Options{
		Spec:             spec,
		Dial:             w.dial,
		Fetch:            f.fetch,
		VersionOrChannel: map[string]string{"old": "v1.31.4+k3s1", "new": "v1.32.2+k3s1"},
		ReadyTimeout:     2 * time.Second,
		// Loopback only, should a test ever ask for a channel.
		Release: k3s.Release{ChannelURL: "http://127.0.0.1:1", DownloadURL: "http://127.0.0.1:1"},
	}
}

func TestClustersOnDifferentVersionsPlanAndApply(t *testing.T) {
	w := newFakeHosts()
	f := &fakeFetcher{dir: t.TempDir()}
	spec := twoClusters()
	p, err := Prepare(context.Background(), options(w, f, spec))
	if err != nil {
		t.Fatalf("two clusters on different versions: %v", err)
	}
	defer p.Close()
	sort.Slice(f.keys, func(i, j int) bool { return f.keys[i].Version < f.keys[j].Version })
	want := []plan.BinaryKey{{Version: "v1.31.4+k3s1", Arch: k3s.AMD64}, {Version: "v1.32.2+k3s1", Arch: k3s.AMD64}}
	if fmt.Sprint(f.keys) != fmt.Sprint(want) {
		t.Errorf("fetched %v, want %v (one per version and architecture)", f.keys, want)
	}
	for _, c := range spec.Clusters {
		if c.Version != "" {
			t.Errorf("the caller's spec was changed: cluster %s version %q", c.Name, c.Version)
		}
	}
	if p.Versions["old"] != "v1.31.4+k3s1" || p.Versions["new"] != "v1.32.2+k3s1" {
		t.Errorf("resolved versions %v", p.Versions)
	}
	for _, cp := range p.Plan.Clusters {
		for _, h := range cp.Hosts {
			if h.To != p.Versions[cp.Name] || h.Action != plan.ActionInstall || !h.Upload {
				t.Errorf("%s/%s: %s to %q upload %v %v", cp.Name, h.Address, h.Action, h.To, h.Upload, h.Reasons)
			}
		}
	}
	if w.openConns() != 3 {
		t.Errorf("%d connections open after Prepare, want 3", w.openConns())
	}

	// Each host gets its own cluster's binary.
	if _, err := p.Apply(context.Background()); err != nil {
		t.Fatal(err)
	}
	for addr, v := range map[string]string{"10.0.0.1": "v1.31.4+k3s1", "10.0.0.2": "v1.31.4+k3s1", "10.0.1.1": "v1.32.2+k3s1"} {
		if got := w.uploads[addr]; filepath.Base(got) != v+".bin" {
			t.Errorf("%s was sent %s, want k3s %s", addr, got, v)
		}
	}
	p.Close()
	if w.openConns() != 0 {
		t.Errorf("%d connections open after Close", w.openConns())
	}
}

// Whatever phase fails, no connection stays open.
func TestNoConnectionLeaksWhenAPhaseFails(t *testing.T) {
	for _, tc := range []struct {
		phase string
		setup func(w *fakeHosts, f *fakeFetcher, o *Options, cancel context.CancelFunc)
		want  string // in the error
	}{
		{"connect", func(w *fakeHosts, f *fakeFetcher, o *Options, cancel context.CancelFunc) {
			w.dialErr = func(addr string) error {
				if addr == "10.0.1.1" {
					cancel()
					return context.Canceled
				}
				return nil
			}
		}, "context canceled"},
		{"facts", func(w *fakeHosts, f *fakeFetcher, o *Options, cancel context.CancelFunc) {
			w.factsErr = func(addr string) error {
				if addr == "10.0.0.2" {
					cancel()
					return context.Canceled
				}
				return nil
			}
		}, "context canceled"},
		{"versions", func(w *fakeHosts, f *fakeFetcher, o *Options, cancel context.CancelFunc) {
			o.VersionOrChannel["new"] = "v1.bogus"
		}, `cluster new: K3s version "v1.bogus"`},
		{"token", func(w *fakeHosts, f *fakeFetcher, o *Options, cancel context.CancelFunc) {
			w.tokenOnDisk["10.0.0.1"] = true
			w.readErr = errors.New("permission denied")
		}, "read the join token " + k3s.TokenPath + " on 10.0.0.1: permission denied"},
		{"binaries", func(w *fakeHosts, f *fakeFetcher, o *Options, cancel context.CancelFunc) {
			f.err = errors.New("k3s v1.32.2+k3s1 for amd64: 404 Not Found")
		}, "404 Not Found"},
		{"plan", func(w *fakeHosts, f *fakeFetcher, o *Options, cancel context.CancelFunc) {
			o.Spec.Clusters = append(o.Spec.Clusters, plan.Cluster{Name: "headless", Agents: []plan.Host{{Address: "10.0.2.1", Role: k3s.Agent}}})
			o.VersionOrChannel["headless"] = "v1.31.4+k3s1"
		}, "no server"},
	} {
		t.Run(tc.phase, func(t *testing.T) {
			w := newFakeHosts()
			f := &fakeFetcher{dir: t.TempDir()}
			o := options(w, f, twoClusters())
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			tc.setup(w, f, &o, cancel)
			p, err := Prepare(ctx, o)
			if err == nil {
				p.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			if w.dialed == 0 {
				t.Error("nothing was dialed: the test does not reach the phase")
			}
			if n := w.openConns(); n != 0 {
				t.Errorf("%d connection(s) left open after a failure in phase %s", n, tc.phase)
			}
		})
	}

	// Execute and kubeconfig merge fail inside Apply; Close closes all.
	for _, phase := range []string{"execute", "kubeconfig"} {
		t.Run(phase, func(t *testing.T) {
			w := newFakeHosts()
			f := &fakeFetcher{dir: t.TempDir()}
			o := options(w, f, twoClusters())
			want := "no space left on device"
			if phase == "execute" {
				w.uploadErr = errors.New(want)
			} else {
				want = "merge into"
				blocker := filepath.Join(t.TempDir(), "file")
				if err := os.WriteFile(blocker, nil, 0o600); err != nil {
					t.Fatal(err)
				}
				o.Kubeconfig = &KubeconfigOptions{Path: filepath.Join(blocker, "config"), Context: func(c string) string { return c }}
			}
			p, err := Prepare(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			res, err := p.Apply(context.Background())
			if !errors.Is(err, apply.ErrHostsFailed) {
				t.Errorf("apply: %v", err)
			}
			failed := 0
			for _, r := range res {
				if strings.Contains(r.Error, want) {
					failed++
				}
			}
			if failed == 0 {
				t.Errorf("no host failed with %q: %+v", want, res)
			}
			p.Close()
			if n := w.openConns(); n != 0 {
				t.Errorf("%d connection(s) left open", n)
			}
		})
	}
}

// A host that cannot be reached or inspected is reported, not fatal, and
// its connection is not kept.
func TestUnreachableHostsAreFactsNotErrors(t *testing.T) {
	w := newFakeHosts()
	w.dialErr = func(addr string) error {
		if addr == "10.0.0.2" {
			return errors.New("connect: no route to host")
		}
		return nil
	}
	w.factsErr = func(addr string) error {
		if addr == "10.0.1.1" {
			return errors.New("facts: broken pipe")
		}
		return nil
	}
	f := &fakeFetcher{dir: t.TempDir()}
	p, err := Prepare(context.Background(), options(w, f, twoClusters()))
	if err != nil {
		t.Fatal(err)
	}
	if n := w.openConns(); n != 1 {
		t.Errorf("%d connections open, want 1 (the one host that answered)", n)
	}
	var hosts []string
	for _, u := range p.Unreachable() {
		hosts = append(hosts, u.Host)
	}
	if strings.Join(hosts, ",") != "10.0.0.2,10.0.1.1" {
		t.Errorf("unreachable %v", hosts)
	}
	p.Close()
	if n := w.openConns(); n != 0 {
		t.Errorf("%d connections open after Close", n)
	}
}

// A token found on the first server is read once and passed to the plan;
// it never appears in the plan's text.
func TestTokenOfARunningClusterIsReused(t *testing.T) {
	w := newFakeHosts()
	w.tokenOnDisk["10.0.0.1"] = true
	f := &fakeFetcher{dir: t.TempDir()}
	p, err := Prepare(context.Background(), options(w, f, twoClusters()))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if tok := p.tokens["old"]; !strings.HasPrefix(tok.Reveal(), "K10") {
		t.Errorf("token of cluster old not read: %v", tok)
	}
	if _, ok := p.tokens["new"]; ok {
		t.Error("cluster new has no token on disk, yet one was read")
	}
	var b strings.Builder
	plan.Print(&b, p.Plan)
	if strings.Contains(b.String(), "s3cret") {
		t.Error("token in the printed plan")
	}
}
