package world

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

//go:embed build-variant.sh
var variantScript []byte

const (
	// ProxyPort is the port the proxy host's tinyproxy listens on.
	ProxyPort = 8888
	// PostgresPort is the port of the PostgreSQL host.
	PostgresPort = 5432
)

// HostOption changes how NewHost starts a host.
type HostOption func(*Host)

// WithNetworks puts the host on these networks, in this order: the first
// gives Host.IP, every one an address for IPOn. Without it a host is on the
// world's first network.
func WithNetworks(nets ...*Network) HostOption {
	return func(h *Host) {
		if len(nets) == 0 {
			return
		}
		h.net = nets[0]
		for _, n := range nets[1:] {
			h.extra = append(h.extra, netAddr{net: n})
		}
	}
}

// WithSmallDisk mounts a file system of sizeMB megabytes (a tmpfs, programs
// may run from it) at path, so uploads there run out of space.
func WithSmallDisk(path string, sizeMB int) HostOption {
	return func(h *Host) {
		h.tmpfs = append(h.tmpfs, fmt.Sprintf("%s:exec,mode=755,size=%dm", path, sizeMB))
	}
}

// WithArch starts the host for another CPU: "arm64" runs an arm64 Debian
// under qemu-user emulation (uname -m says aarch64). Its image is built the
// first time a test asks for it (a few minutes) and cached.
func WithArch(arch string) HostOption {
	return func(h *Host) { h.Arch = arch }
}

// withImage starts the host from an image variant.
func withImage(tag string) HostOption {
	return func(h *Host) { h.image = tag }
}

// NewHost starts one host named name and waits until it answers SSH.
func (w *World) NewHost(t testing.TB, name string, opts ...HostOption) *Host {
	t.Helper()
	began := time.Now()
	h := &Host{Name: name, Arch: "amd64", w: w, Container: fmt.Sprintf("k3sctl-tw-%s-%s", w.id, name)}
	w.mu.Lock()
	h.net = w.nets[0]
	w.mu.Unlock()
	for _, o := range opts {
		o(h)
	}
	if h.Arch != "amd64" {
		if h.image != "" {
			t.Fatalf("test world: host %s: image variants are amd64 only", name)
		}
		tag, err := archImage(h.Arch)
		if err != nil {
			t.Fatalf("test world: host %s: %s image: %v", name, h.Arch, err)
		}
		if err := checkEmulation(h.Arch); err != nil {
			t.Fatalf("test world: host %s: %v", name, err)
		}
		h.image = tag
		// systemd and sshd boot slowly under emulation.
		h.boot = 8 * time.Minute
	}
	w.mu.Lock()
	h.net.next++
	h.IP = h.net.Prefix + strconv.Itoa(10+h.net.next)
	for i := range h.extra {
		n := h.extra[i].net
		n.next++
		h.extra[i].ip = n.Prefix + strconv.Itoa(10+n.next)
	}
	w.hosts = append(w.hosts, h)
	w.mu.Unlock()
	if err := h.create(); err != nil {
		t.Fatalf("test world: %v", err)
	}
	t.Logf("test world: host %s (%s) up in %s", name, h.Arch, time.Since(began).Round(time.Millisecond))
	return h
}

// DefaultNetwork returns the world's first network, where Start puts hosts.
func (w *World) DefaultNetwork() *Network {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.nets[0]
}

// IPOn returns the host's address on network n, or "" when it is not on n.
func (h *Host) IPOn(n *Network) string {
	h.w.mu.Lock()
	defer h.w.mu.Unlock()
	if h.net == n {
		return h.IP
	}
	for _, a := range h.extra {
		if a.net == n {
			return a.ip
		}
	}
	return ""
}

// NewInternalNetwork creates a bridge network whose hosts reach nothing
// outside it: docker drops what they send to other networks and beyond.
// The test process still reaches them, and so does a host that is also on
// another network (a proxy or jump host). The machine's own addresses stay
// reachable from inside (docker filters forwarded traffic only).
func (w *World) NewInternalNetwork(t testing.TB) *Network {
	t.Helper()
	return w.newNetwork(t, true)
}

// FillDisk fills the file system at path (with a file named
// .testworld-fill) until about freeMB megabytes are left.
func (h *Host) FillDisk(t testing.TB, path string, freeMB int) {
	t.Helper()
	out := strings.TrimSpace(h.Exec(t, "df -B1 --output=avail "+path+" | tail -n1"))
	avail, err := strconv.ParseInt(out, 10, 64)
	if err != nil {
		t.Fatalf("host %s: df %s: %q", h.Name, path, out)
	}
	fill := avail - int64(freeMB)<<20
	if fill <= 0 {
		return
	}
	h.Exec(t, fmt.Sprintf("fallocate -l %d %s/.testworld-fill", fill, path))
}

var (
	buildMu  sync.Mutex
	built    = map[string]*buildResult{}
	hostSeq  = map[string]int{}
	hostSeqM sync.Mutex
)

type buildResult struct {
	once sync.Once
	tag  string
	err  error
}

// cached builds the image named key once per test process.
func cached(key string, build func() (string, error)) (string, error) {
	buildMu.Lock()
	r := built[key]
	if r == nil {
		r = &buildResult{}
		built[key] = r
	}
	buildMu.Unlock()
	r.once.Do(func() { r.tag, r.err = build() })
	return r.tag, r.err
}

func archImage(arch string) (string, error) {
	if arch != "arm64" {
		return "", fmt.Errorf("arch %q: the test world emulates arm64 only", arch)
	}
	return cached("arch-"+arch, func() (string, error) { return ensureImage(arch) })
}

// variantImage returns the tag of an image variant (see build-variant.sh)
// on top of base, building it once per machine. The tag carries a hash of
// the base tag and the variant recipe.
func variantImage(base, variant string) (string, error) {
	return cached("variant-"+variant, func() (string, error) {
		sum := sha256.Sum256([]byte(base + "\x00" + variant + "\x00" + string(variantScript)))
		tag := fmt.Sprintf("%s:%s-%s", imageRepo, variant, hex.EncodeToString(sum[:6]))
		return buildOnce(tag, variantScript, nil, base, tag, variant)
	})
}

// checkEmulation says why hosts for arch cannot run on this machine.
func checkEmulation(arch string) error {
	entry := "/proc/sys/fs/binfmt_misc/qemu-aarch64"
	b, err := os.ReadFile(entry)
	if err != nil {
		return fmt.Errorf("no qemu-aarch64 emulator registered (%s missing): run scripts/testworld-deps.sh as root (installs qemu-user-static, binfmt-support)", entry)
	}
	var enabled bool
	var flags string
	for _, l := range strings.Split(string(b), "\n") {
		if l == "enabled" {
			enabled = true
		}
		if f, ok := strings.CutPrefix(l, "flags: "); ok {
			flags = f
		}
	}
	if !enabled || !strings.Contains(flags, "F") || !strings.Contains(flags, "C") {
		return fmt.Errorf("qemu-aarch64 is registered with flags %q (enabled: %v); %s hosts need F (containers find the emulator) and C (sudo works): run scripts/testworld-deps.sh as root", flags, enabled, arch)
	}
	return nil
}

// uniqueName returns base, or base-2, base-3… for later calls in this process.
func uniqueName(base string) string {
	hostSeqM.Lock()
	defer hostSeqM.Unlock()
	hostSeq[base]++
	if n := hostSeq[base]; n > 1 {
		return fmt.Sprintf("%s-%d", base, n)
	}
	return base
}

// Postgres starts a host running Debian's PostgreSQL with a database and a
// login role of its own, and returns it with a DSN
// (postgres://user:password@ip:5432/db) reachable from the test process and
// from the world's hosts on the same network. Options as for NewHost.
func (w *World) Postgres(t testing.TB, opts ...HostOption) (*Host, string) {
	t.Helper()
	tag, err := variantImage(w.Image, "postgres")
	if err != nil {
		t.Fatalf("test world: postgres image: %v", err)
	}
	h := w.NewHost(t, uniqueName("postgres"), append([]HostOption{withImage(tag)}, opts...)...)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for {
		if _, err := h.ExecErr(ctx, "runuser -u postgres -- pg_isready -q"); err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("test world: host %s: PostgreSQL not ready after 3m:\n%s", h.Name, h.Logs("postgresql@15-main", 30))
		}
		time.Sleep(300 * time.Millisecond)
	}
	user, db, pass := "k3s", "k3s", randHex(12)
	sql := fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s';\nCREATE DATABASE %s OWNER %s;\n", user, pass, db, user)
	// The password goes in on stdin, not on a command line.
	c := exec.CommandContext(ctx, "docker", "exec", "-i", h.Container, "runuser", "-u", "postgres", "--", "psql", "-q", "-v", "ON_ERROR_STOP=1")
	c.Stdin = strings.NewReader(sql)
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("test world: host %s: create PostgreSQL role and database: %v: %s", h.Name, err, out)
	}
	if err := waitPort(h.IP, PostgresPort, time.Minute); err != nil {
		t.Fatalf("test world: host %s: %v", h.Name, err)
	}
	return h, fmt.Sprintf("postgres://%s:%s@%s/%s", user, pass, net.JoinHostPort(h.IP, strconv.Itoa(PostgresPort)), db)
}

// Proxy starts a forward HTTP proxy host (tinyproxy, CONNECT to any port
// allowed) on the world's first network and on each of nets, and returns it
// with its URL (http://ip:8888) on nets[0], or on the first network when no
// nets are given. A host on an internal network (NewInternalNetwork) that is
// one of nets reaches the rest of the world only through this proxy.
func (w *World) Proxy(t testing.TB, nets ...*Network) (*Host, string) {
	t.Helper()
	tag, err := variantImage(w.Image, "proxy")
	if err != nil {
		t.Fatalf("test world: proxy image: %v", err)
	}
	w.mu.Lock()
	all := append([]*Network{w.nets[0]}, nets...)
	w.mu.Unlock()
	h := w.NewHost(t, uniqueName("proxy"), withImage(tag), WithNetworks(all...))
	if err := waitPort(h.IP, ProxyPort, 2*time.Minute); err != nil {
		t.Fatalf("test world: host %s: %v\n%s", h.Name, err, h.Logs("tinyproxy", 30))
	}
	ip := h.IP
	if len(nets) > 0 {
		ip = h.IPOn(nets[0])
	}
	return h, "http://" + net.JoinHostPort(ip, strconv.Itoa(ProxyPort))
}

// waitPort waits until ip:port accepts TCP connections.
func waitPort(ip string, port int, limit time.Duration) error {
	addr := net.JoinHostPort(ip, strconv.Itoa(port))
	deadline := time.Now().Add(limit)
	for {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not accepting connections after %s: %v", addr, limit, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
