package world

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

//go:embed build-image.sh
var buildScript []byte

const (
	labelKey    = "k3sctl-testworld"
	labelPID    = "k3sctl-testworld.pid"
	imageRepo   = "k3sctl-testhost"
	opsPassword = "ops-sudo-Pa55"
	// Passphrase protects World.PassphraseKey.
	passphrase = "correct horse battery staple"
)

// World is one test's set of hosts and networks.
type World struct {
	Image         string
	Key           string // private key file for users pi and ops
	PublicKey     string // authorized_keys line of Key
	PassphraseKey string // a second key for pi, encrypted with Passphrase
	Passphrase    string
	OpsPassword   string

	id      string
	dir     string
	mu      sync.Mutex
	nets    []*Network
	hosts   []*Host
	pubKeys []string
}

// Network is a docker bridge network with its own /24.
type Network struct {
	Name   string
	Prefix string // "172.28.5." — host n is Prefix+strconv.Itoa(10+n)
	next   int
}

// Host is one container.
type Host struct {
	Name      string
	IP        string // address on the host's first network
	Container string
	Arch      string // "amd64" or "arm64"
	w         *World
	net       *Network
	image     string    // "" for the world's image
	extra     []netAddr // further networks, attached before boot and again on Recreate
	tmpfs     []string  // docker --tmpfs arguments
	boot      time.Duration
}

// netAddr is a host's address on one network.
type netAddr struct {
	net *Network
	ip  string
}

// dockerAvailable says why docker cannot be used, or "".
func dockerAvailable() string {
	if _, err := exec.LookPath("docker"); err != nil {
		return "docker client not installed"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		return "docker engine not answering: " + strings.TrimSpace(string(out))
	}
	return ""
}

// Require skips (outside CI) or fails (in CI) when the test world cannot start.
func Require(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("test world: skipped with -short")
	}
	if why := dockerAvailable(); why != "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("test world cannot start (CI is set, so this fails): %s; run scripts/testworld-deps.sh as root", why)
		}
		t.Skipf("test world cannot start: %s (run scripts/testworld-deps.sh as root; under CI=true this fails)", why)
	}
}

var (
	imageOnce sync.Once
	imageTag  string
	imageErr  error
	sweepOnce sync.Once
)

// New prepares docker, the host image and a fresh network, and removes it all
// when the test ends.
func New(t testing.TB) *World {
	t.Helper()
	Require(t)
	sweepOnce.Do(sweepLeftovers)
	imageOnce.Do(func() { imageTag, imageErr = ensureImage("amd64") })
	if imageErr != nil {
		t.Fatalf("test world: host image: %v", imageErr)
	}
	w := &World{
		Image:       imageTag,
		Passphrase:  passphrase,
		OpsPassword: opsPassword,
		id:          fmt.Sprintf("%d-%s", os.Getpid(), randHex(3)),
		dir:         t.TempDir(),
	}
	w.Key, w.PublicKey = w.writeKey(t, "id_ed25519", "")
	var pp string
	w.PassphraseKey, pp = w.writeKey(t, "id_passphrase", passphrase)
	w.pubKeys = []string{w.PublicKey, pp}
	t.Cleanup(w.destroy)
	w.NewNetwork(t)
	return w
}

func (w *World) writeKey(t testing.TB, name, pass string) (path, authorized string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var block *pem.Block
	if pass == "" {
		block, err = ssh.MarshalPrivateKey(priv, "k3sctl-testworld")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "k3sctl-testworld", []byte(pass))
	}
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(w.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	authorized = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp)))
	if err := os.WriteFile(path+".pub", []byte(authorized+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, authorized
}

// NewNetwork creates another bridge network for this world.
func (w *World) NewNetwork(t testing.TB) *Network {
	t.Helper()
	return w.newNetwork(t, false)
}

func (w *World) newNetwork(t testing.TB, internal bool) *Network {
	t.Helper()
	w.mu.Lock()
	name := fmt.Sprintf("k3sctl-tw-%s-n%d", w.id, len(w.nets))
	w.mu.Unlock()
	// Pick a free /24 in 172.28.0.0/14; docker refuses overlapping pools.
	start := int(randByte())
	var lastErr string
	for i := 0; i < 256; i++ {
		third := (start + i) % 256
		second := 28 + (start+i)/256%4
		prefix := fmt.Sprintf("172.%d.%d.", second, third)
		args := []string{"network", "create", "--driver", "bridge",
			"--subnet", prefix + "0/24", "--gateway", prefix + "1",
			"--label", labelKey + "=1", "--label", labelPID + "=" + strconv.Itoa(os.Getpid()), name}
		if internal {
			args = append(args, "--internal")
		}
		out, err := docker(args...)
		if err == nil {
			n := &Network{Name: name, Prefix: prefix}
			w.mu.Lock()
			w.nets = append(w.nets, n)
			w.mu.Unlock()
			return n
		}
		lastErr = out
		if !strings.Contains(out, "overlap") && !strings.Contains(out, "in use") {
			break
		}
	}
	t.Fatalf("test world: create network: %s", lastErr)
	return nil
}

// Start starts hosts on the world's first network and waits until each
// answers SSH.
func (w *World) Start(t testing.TB, names ...string) []*Host {
	t.Helper()
	began := time.Now()
	defer func() {
		t.Logf("test world: %d host(s) up in %s", len(names), time.Since(began).Round(time.Millisecond))
	}()
	hosts := make([]*Host, len(names))
	for i, name := range names {
		w.mu.Lock()
		n := w.nets[0]
		n.next++
		h := &Host{Name: name, IP: n.Prefix + strconv.Itoa(10+n.next), w: w, net: n,
			Container: fmt.Sprintf("k3sctl-tw-%s-%s", w.id, name)}
		w.hosts = append(w.hosts, h)
		w.mu.Unlock()
		hosts[i] = h
	}
	errs := make([]error, len(hosts))
	var wg sync.WaitGroup
	// Booting many systemd containers at once starves a small machine;
	// a few at a time come up sooner overall.
	limit := make(chan struct{}, 6)
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			limit <- struct{}{}
			defer func() { <-limit }()
			errs[i] = h.create()
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("test world: %v", err)
		}
	}
	return hosts
}

func (h *Host) create() error {
	image := h.w.Image
	if h.image != "" {
		image = h.image
	}
	h.w.mu.Lock()
	extra := append([]netAddr(nil), h.extra...)
	h.w.mu.Unlock()
	// The container is created, given a machine-id of its own and then
	// started: the image's /etc/machine-id is empty, and systemd on a
	// virtual machine derives one from the (shared) DMI product UUID, so
	// every host would otherwise have the same machine-id, as if its disk
	// were cloned.
	idFile, err := h.machineIDFile()
	if err != nil {
		return fmt.Errorf("host %s: machine-id: %v", h.Name, err)
	}
	args := append([]string{"create"}, "--name", h.Container, "--hostname", h.Name,
		"--network", h.net.Name, "--ip", h.IP,
		"--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN", "--security-opt", "seccomp=unconfined",
		"--tmpfs", "/run", "--tmpfs", "/run/lock", "--stop-signal", "SIGRTMIN+3", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:ro",
		"--label", labelKey+"=1", "--label", labelPID+"="+strconv.Itoa(os.Getpid()))
	for _, fs := range h.tmpfs {
		args = append(args, "--tmpfs", fs)
	}
	// No --platform for other arches: docker 20.10 records an imported
	// image as amd64 whatever import --platform says, and would then try to
	// pull. binfmt_misc runs the arm64 binaries either way.
	args = append(args, image, "/lib/systemd/systemd")
	if out, err := docker(args...); err != nil {
		return fmt.Errorf("start host %s: %s", h.Name, out)
	}
	for _, a := range extra {
		if out, err := docker("network", "connect", "--ip", a.ip, a.net.Name, h.Container); err != nil {
			return fmt.Errorf("host %s: connect to %s: %s", h.Name, a.net.Name, out)
		}
	}
	if out, err := docker("cp", idFile, h.Container+":/etc/machine-id"); err != nil {
		return fmt.Errorf("host %s: write /etc/machine-id: %s", h.Name, out)
	}
	if out, err := docker("start", h.Container); err != nil {
		return fmt.Errorf("start host %s: %s", h.Name, out)
	}
	keys := strings.Join(h.w.pubKeys, "\n") + "\n"
	script := "for u in pi ops; do printf '%s' \"$KEYS\" > /home/$u/.ssh/authorized_keys; " +
		"chown $u:$u /home/$u/.ssh/authorized_keys; chmod 600 /home/$u/.ssh/authorized_keys; done"
	// docker exec can fail while a loaded machine is still starting the
	// container; it is retried a few times.
	var out string
	for attempt := 0; attempt < 5; attempt++ {
		if out, err = docker("exec", "-e", "KEYS="+keys, h.Container, "sh", "-c", script); err == nil {
			break
		}
		time.Sleep(time.Duration(attempt+1) * time.Second)
	}
	if err != nil {
		return fmt.Errorf("host %s: install keys: %v: %s", h.Name, err, out)
	}
	boot := h.boot
	if boot == 0 {
		boot = 3 * time.Minute
	}
	return h.waitSSH(boot)
}

// machineIDFile writes a new random machine-id (32 hex digits, as
// systemd-machine-id-setup makes) to a file in the world's directory, for
// docker cp into a created container. Each call, and so each Recreate, gives
// a new id.
func (h *Host) machineIDFile() (string, error) {
	path := filepath.Join(h.w.dir, "machine-id-"+h.Name+"-"+randHex(4))
	if err := os.WriteFile(path, []byte(randHex(16)+"\n"), 0o444); err != nil {
		return "", err
	}
	return path, nil
}

// MachineID returns the host's /etc/machine-id.
func (h *Host) MachineID(t testing.TB) string {
	t.Helper()
	return strings.TrimSpace(h.Exec(t, "cat /etc/machine-id"))
}

// waitSSH waits for an SSH banner on port 22.
func (h *Host) waitSSH(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(h.IP, "22"), 2*time.Second)
		if err == nil {
			_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
			buf := make([]byte, 8)
			n, _ := c.Read(buf)
			c.Close()
			if n >= 4 && string(buf[:4]) == "SSH-" {
				return nil
			}
		}
		if time.Now().After(deadline) {
			state, _ := docker("exec", h.Container, "systemctl", "is-system-running")
			return fmt.Errorf("host %s (%s): sshd not answering after %s (systemd: %s)", h.Name, h.IP, limit, strings.TrimSpace(state))
		}
		time.Sleep(150 * time.Millisecond)
	}
}

// ExecErr runs a shell command in the host as root.
func (h *Host) ExecErr(ctx context.Context, cmd string) (string, error) {
	c := exec.CommandContext(ctx, "docker", "exec", h.Container, "sh", "-c", cmd)
	out, err := c.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("host %s: %s: %w: %s", h.Name, cmd, err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Exec runs a shell command in the host as root; a failure fails the test.
func (h *Host) Exec(t testing.TB, cmd string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := h.ExecErr(ctx, cmd)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// CopyIn copies a local file into the host and sets its mode.
func (h *Host) CopyIn(t testing.TB, local, remote string, mode os.FileMode) {
	t.Helper()
	if out, err := docker("cp", local, h.Container+":"+remote); err != nil {
		t.Fatalf("copy %s to %s:%s: %s", local, h.Name, remote, out)
	}
	h.Exec(t, fmt.Sprintf("chown root:root %s && chmod %o %s", remote, mode, remote))
}

// Stop stops the host cleanly (systemd shuts down).
func (h *Host) Stop(t testing.TB) {
	t.Helper()
	if out, err := docker("stop", "-t", "10", h.Container); err != nil {
		t.Fatalf("stop %s: %s", h.Name, out)
	}
}

// Kill kills the host at once, like pulling its power.
func (h *Host) Kill(t testing.TB) {
	t.Helper()
	if out, err := docker("kill", h.Container); err != nil {
		t.Fatalf("kill %s: %s", h.Name, out)
	}
}

// Restart starts a stopped or killed host (or restarts a running one) and
// waits for SSH.
func (h *Host) Restart(t testing.TB) {
	t.Helper()
	if out, err := docker("restart", "-t", "10", h.Container); err != nil {
		t.Fatalf("restart %s: %s", h.Name, out)
	}
	if err := h.waitSSH(90 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// Disconnect cuts the host off its first network.
func (h *Host) Disconnect(t testing.TB) {
	t.Helper()
	if out, err := docker("network", "disconnect", "-f", h.net.Name, h.Container); err != nil {
		t.Fatalf("disconnect %s: %s", h.Name, out)
	}
}

// Reconnect puts the host back on its first network at the same address.
func (h *Host) Reconnect(t testing.TB) {
	t.Helper()
	if out, err := docker("network", "connect", "--ip", h.IP, h.net.Name, h.Container); err != nil {
		t.Fatalf("reconnect %s: %s", h.Name, out)
	}
}

// Connect attaches the host to another network and returns its address
// there. Recreate attaches the new container to it again at that address.
func (h *Host) Connect(t testing.TB, n *Network) string {
	t.Helper()
	h.w.mu.Lock()
	n.next++
	ip := n.Prefix + strconv.Itoa(10+n.next)
	h.w.mu.Unlock()
	if out, err := docker("network", "connect", "--ip", ip, n.Name, h.Container); err != nil {
		t.Fatalf("connect %s to %s: %s", h.Name, n.Name, out)
	}
	h.w.mu.Lock()
	h.extra = append(h.extra, netAddr{net: n, ip: ip})
	h.w.mu.Unlock()
	return ip
}

// StartOn starts a host attached only to network n (not the world's first).
func (w *World) StartOn(t testing.TB, n *Network, name string) *Host {
	t.Helper()
	w.mu.Lock()
	n.next++
	h := &Host{Name: name, IP: n.Prefix + strconv.Itoa(10+n.next), w: w, net: n,
		Container: fmt.Sprintf("k3sctl-tw-%s-%s", w.id, name)}
	w.hosts = append(w.hosts, h)
	w.mu.Unlock()
	if err := h.create(); err != nil {
		t.Fatalf("test world: %v", err)
	}
	return h
}

// Recreate replaces the container with a new one: same name and address,
// new host keys, nothing installed.
func (h *Host) Recreate(t testing.TB) {
	t.Helper()
	if out, err := docker("rm", "-f", h.Container); err != nil {
		t.Fatalf("remove %s: %s", h.Name, out)
	}
	if err := h.create(); err != nil {
		t.Fatalf("test world: %v", err)
	}
}

// Logs returns the journal of a unit on the host (for failure messages).
func (h *Host) Logs(unit string, lines int) string {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, _ := h.ExecErr(ctx, fmt.Sprintf("journalctl -u %s --no-pager -n %d", unit, lines))
	return out
}

func (w *World) destroy() {
	if os.Getenv("K3SCTL_TESTWORLD_KEEP") != "" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var names []string
	for _, h := range w.hosts {
		names = append(names, h.Container)
	}
	if len(names) > 0 {
		_, _ = docker(append([]string{"rm", "-f", "-v"}, names...)...)
	}
	for _, n := range w.nets {
		_, _ = docker("network", "rm", n.Name)
	}
}

// sweepLeftovers removes containers and networks of test runs whose process
// is gone (a killed run cannot clean up after itself).
func sweepLeftovers() {
	for _, kind := range []string{"container", "network"} {
		var out string
		if kind == "container" {
			out, _ = docker("ps", "-a", "--filter", "label="+labelKey, "--format", `{{.ID}} {{.Label "`+labelPID+`"}}`)
		} else {
			out, _ = docker("network", "ls", "--filter", "label="+labelKey, "--format", `{{.ID}} {{.Label "`+labelPID+`"}}`)
		}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			id, pidStr, ok := strings.Cut(line, " ")
			if !ok {
				continue
			}
			if pid, err := strconv.Atoi(pidStr); err == nil && processAlive(pid) {
				continue
			}
			if kind == "container" {
				_, _ = docker("rm", "-f", "-v", id)
			} else {
				_, _ = docker("network", "rm", id)
			}
		}
	}
}

func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// ensureImage returns the tag of the host image for arch, building it once
// per machine. The tag carries a hash of the recipe, so changing the recipe
// builds a new image.
func ensureImage(arch string) (string, error) {
	sum := sha256.Sum256(append(append([]byte{}, buildScript...), []byte(arch+opsPassword)...))
	tag := fmt.Sprintf("%s:%s-%s", imageRepo, arch, hex.EncodeToString(sum[:6]))
	return buildOnce(tag, buildScript, func() error {
		if arch != "amd64" {
			return checkEmulation(arch)
		}
		return nil
	}, tag, opsPassword, arch)
}

// buildOnce runs script with args unless an image tagged tag exists, one
// build at a time on this machine (across processes). check runs before a
// build and says why the build cannot work.
func buildOnce(tag string, script []byte, check func() error, args ...string) (string, error) {
	if _, err := docker("image", "inspect", tag); err == nil {
		return tag, nil
	}
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "k3sctl-testhost.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := docker("image", "inspect", tag); err == nil {
		return tag, nil
	}
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("building %s needs root (debootstrap, chroot)", tag)
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		return "", fmt.Errorf("building %s needs debootstrap: apt-get install -y debootstrap", tag)
	}
	if check != nil {
		if err := check(); err != nil {
			return "", fmt.Errorf("building %s: %v", tag, err)
		}
	}
	path := filepath.Join(os.TempDir(), fmt.Sprintf("k3sctl-build-image-%d-%s.sh", os.Getpid(), randHex(3)))
	if err := os.WriteFile(path, script, 0o700); err != nil {
		return "", err
	}
	defer os.Remove(path)
	start := time.Now()
	cmd := exec.Command("bash", append([]string{path}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build %s: %v\n%s", tag, err, out.String())
	}
	fmt.Fprintf(os.Stderr, "test world: built image %s in %s\n", tag, time.Since(start).Round(time.Second))
	return tag, nil
}

func docker(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func randByte() byte {
	b := make([]byte, 1)
	_, _ = rand.Read(b)
	return b[0]
}
