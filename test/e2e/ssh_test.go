package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	xssh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/k3sctl/k3sctl/internal/cli"
	"github.com/k3sctl/k3sctl/internal/node"
	"github.com/k3sctl/k3sctl/internal/secret"
	"github.com/k3sctl/k3sctl/internal/ssh"
	"github.com/k3sctl/k3sctl/test/e2e/world"
)

// sshHome gives the test its own HOME (no default keys, no ~/.ssh/config,
// an empty known_hosts) and no ssh-agent.
func sshHome(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("SSH_AUTH_SOCK", "")
	return home
}

func piOptions(w *world.World, home, addr string) ssh.Options {
	return ssh.Options{
		Address:        addr,
		User:           "pi",
		KeyFiles:       []string{w.Key},
		KnownHostsFile: filepath.Join(home, "known_hosts"),
		ConnectRetry:   -1,
	}
}

func mustDial(t *testing.T, o ssh.Options) *ssh.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := ssh.Dial(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func mustRun(t *testing.T, c *ssh.Client, cmd string, o ssh.RunOptions) string {
	t.Helper()
	res, err := c.Run(context.Background(), cmd, o)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(res.Stdout))
}

// answers is a Prompter with fixed answers that caches like the terminal
// one does and counts how often it had to ask.
type answers struct {
	mu      sync.Mutex
	values  map[string]string // prompt prefix → answer
	asked   []string
	cache   map[string]secret.Value
	noCache bool
}

func (a *answers) Secret(prompt string) (secret.Value, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if v, ok := a.cache[prompt]; ok && !a.noCache {
		return v, nil
	}
	a.asked = append(a.asked, prompt)
	for prefix, v := range a.values {
		if strings.HasPrefix(prompt, prefix) {
			if a.cache == nil {
				a.cache = map[string]secret.Value{}
			}
			a.cache[prompt] = secret.New(v)
			return secret.New(v), nil
		}
	}
	return secret.Value{}, fmt.Errorf("unexpected prompt %q", prompt)
}

func TestSSHAuthAgentAndPassphraseKey(t *testing.T) {
	w := world.New(t)
	h := w.Start(t, "a")[0]

	t.Run("agent", func(t *testing.T) {
		home := sshHome(t)
		sock := startAgent(t, w.Key)
		t.Setenv("SSH_AUTH_SOCK", sock)
		o := piOptions(w, home, h.IP)
		o.KeyFiles = nil // only the agent has the key
		c := mustDial(t, o)
		if got := mustRun(t, c, "id -un", ssh.RunOptions{}); got != "pi" {
			t.Fatalf("id -un = %q", got)
		}
	})

	t.Run("passphrase key asks once", func(t *testing.T) {
		home := sshHome(t)
		o := piOptions(w, home, h.IP)
		o.KeyFiles = []string{w.PassphraseKey}
		p := &answers{values: map[string]string{"Enter passphrase for key ": w.Passphrase}}
		o.Prompter = p
		for i := 0; i < 3; i++ {
			c := mustDial(t, o)
			if got := mustRun(t, c, "id -un", ssh.RunOptions{}); got != "pi" {
				t.Fatalf("id -un = %q", got)
			}
		}
		if len(p.asked) != 1 || !strings.Contains(p.asked[0], w.PassphraseKey) {
			t.Errorf("asked %q, want one question naming the key", p.asked)
		}
	})

	t.Run("passphrase key without terminal", func(t *testing.T) {
		home := sshHome(t)
		o := piOptions(w, home, h.IP)
		o.KeyFiles = []string{w.PassphraseKey}
		start := time.Now()
		_, err := ssh.Dial(context.Background(), o)
		var kp *ssh.KeyPassphraseError
		if !errors.As(err, &kp) {
			t.Fatalf("err = %v, want a KeyPassphraseError", err)
		}
		msg := err.Error()
		for _, want := range []string{h.IP + ": connect: ", "protected by a passphrase", "no terminal", "hint: ", "ssh-add " + w.PassphraseKey} {
			if !strings.Contains(msg, want) {
				t.Errorf("message lacks %q:\n%s", want, msg)
			}
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("took %s", d)
		}
	})

	t.Run("wrong key fails at once", func(t *testing.T) {
		home := sshHome(t)
		o := piOptions(w, home, h.IP)
		o.KeyFiles = []string{writeStrangerKey(t)}
		o.ConnectRetry = time.Minute // retries are allowed, but not for this
		start := time.Now()
		_, err := ssh.Dial(context.Background(), o)
		var ae *ssh.AuthError
		if !errors.As(err, &ae) {
			t.Fatalf("err = %v, want an AuthError", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("auth failure took %s: it must not be retried", d)
		}
		if msg := err.Error(); !strings.Contains(msg, "ssh-copy-id") || !strings.Contains(msg, o.KeyFiles[0]) {
			t.Errorf("message should name the key tried and ssh-copy-id:\n%s", msg)
		}
	})
}

func startAgent(t *testing.T, keyFile string) string {
	t.Helper()
	pemBytes, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := xssh.ParseRawPrivateKey(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	keyring := agent.NewKeyring()
	if err := keyring.Add(agent.AddedKey{PrivateKey: raw, Comment: "world key"}); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "agent")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "s")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _ = agent.ServeAgent(keyring, c) }()
		}
	}()
	return sock
}

func writeStrangerKey(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "stranger")
	out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", p).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	return p
}

func TestSSHSudoPasswordUser(t *testing.T) {
	w := world.New(t)
	h := w.Start(t, "a")[0]
	home := sshHome(t)
	o := piOptions(w, home, h.IP)
	o.User = "ops"
	p := &answers{values: map[string]string{"[sudo] password for ops@": w.OpsPassword}}
	o.Prompter = p
	c := mustDial(t, o)

	f, err := node.GatherFacts(context.Background(), c, node.FactsOptions{HashFiles: []string{"/etc/shadow"}})
	if err != nil {
		t.Fatal(err)
	}
	if f.Sudo != ssh.SudoWithPassword || !f.Privileged || f.FileHashes["/etc/shadow"] == "" {
		t.Errorf("facts as ops: sudo %q, privileged %v, shadow hash %q", f.Sudo, f.Privileged, f.FileHashes["/etc/shadow"])
	}
	if got := mustRun(t, c, "id -u", ssh.RunOptions{Sudo: true}); got != "0" {
		t.Errorf("sudo id -u = %q", got)
	}
	// The command's own stdin comes after the password line.
	if got := mustRun(t, c, "cat", ssh.RunOptions{Sudo: true, Stdin: strings.NewReader("payload\n")}); got != "payload" {
		t.Errorf("sudo cat read %q", got)
	}
	if len(p.asked) != 1 {
		t.Errorf("asked %d times: %q", len(p.asked), p.asked)
	}

	// Without a terminal and without the password: a clear failure.
	o2 := piOptions(w, home, h.IP)
	o2.User = "ops"
	c2 := mustDial(t, o2)
	_, err = c2.Run(context.Background(), "true", ssh.RunOptions{Sudo: true})
	if err == nil || !strings.Contains(err.Error(), "no terminal") {
		t.Errorf("err = %v", err)
	}
	// Known up front (K3SCTL_SUDO_PASSWORD): no question at all, facts in
	// one round trip.
	o3 := o2
	o3.SudoPassword = secret.New(w.OpsPassword)
	c3 := mustDial(t, o3)
	f, err = node.GatherFacts(context.Background(), c3, node.FactsOptions{})
	if err != nil || !f.Privileged {
		t.Errorf("facts with the password given: %+v, %v", f, err)
	}
}

func TestSSHCancelKillsRemoteCommand(t *testing.T) {
	w := world.New(t)
	h := w.Start(t, "a")[0]
	home := sshHome(t)
	for _, tc := range []struct {
		user string
		sudo bool
	}{{"pi", false}, {"pi", true}, {"ops", true}} {
		o := piOptions(w, home, h.IP)
		o.User = tc.user
		o.SudoPassword = secret.New(w.OpsPassword)
		c := mustDial(t, o)
		marker := fmt.Sprintf("/tmp/cancel-%s-%v", tc.user, tc.sudo)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := c.Run(ctx, "sleep 300 && touch "+marker, ssh.RunOptions{Sudo: tc.sudo})
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s sudo=%v: err = %v", tc.user, tc.sudo, err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			out, _ := h.ExecErr(context.Background(), "pgrep -x -f 'sleep 300' || true")
			if strings.TrimSpace(out) == "" {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("%s sudo=%v: remote sleep still running after cancel: %s", tc.user, tc.sudo, out)
				h.Exec(t, "pkill -x -f 'sleep 300' || true")
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

func TestSSHProxyJumpAndConfigAlias(t *testing.T) {
	w := world.New(t)
	a := w.Start(t, "a")[0]
	n2 := w.NewNetwork(t)
	aInner := a.Connect(t, n2)
	b := w.StartOn(t, n2, "b")
	home := sshHome(t)

	// B sees the connection coming from A's address on the inner network.
	from := func(c *ssh.Client) string {
		return strings.Fields(mustRun(t, c, "echo $SSH_CONNECTION", ssh.RunOptions{}))[0]
	}

	t.Run("--ssh-jump", func(t *testing.T) {
		o := piOptions(w, home, b.IP)
		o.Jump = "pi@" + a.IP + ":22"
		c := mustDial(t, o)
		if got := from(c); got != aInner {
			t.Errorf("B saw the connection from %s, want A (%s)", got, aInner)
		}
	})

	t.Run("two hops", func(t *testing.T) {
		// A, then A again by its inner address (reachable from A only
		// through its own network), then B.
		o := piOptions(w, home, b.IP)
		o.Jump = "pi@" + a.IP + ",pi@" + aInner
		c := mustDial(t, o)
		if got := from(c); got != aInner {
			t.Errorf("B saw the connection from %s, want %s", got, aInner)
		}
	})

	t.Run("hosts of one run share the jump connection", func(t *testing.T) {
		// sshd logs one "Accepted publickey" per connection it lets in.
		accepted := func() int {
			out, _ := a.ExecErr(context.Background(), "journalctl --no-pager -o cat | grep -c 'Accepted publickey for pi' || true")
			n, _ := strconv.Atoi(strings.TrimSpace(out))
			return n
		}
		before := accepted()
		pool := ssh.NewJumpPool()
		for i := 0; i < 3; i++ {
			o := piOptions(w, home, b.IP)
			o.Jump = "pi@" + a.IP + ":22"
			o.Jumps = pool
			if got := mustRun(t, mustDial(t, o), "hostname", ssh.RunOptions{}); got != "b" {
				t.Errorf("hostname = %q", got)
			}
		}
		// The journal may lag a moment behind sshd: read it until it
		// has the first connection, and once more a little later.
		n := accepted()
		for i := 0; i < 20 && n < before+1; i++ {
			time.Sleep(100 * time.Millisecond)
			n = accepted()
		}
		time.Sleep(500 * time.Millisecond)
		n = accepted()
		if n != before+1 {
			t.Errorf("the jump host accepted %d connections for 3 hosts of one pool, want 1", n-before)
		}
	})

	t.Run("ssh config alias with ProxyJump", func(t *testing.T) {
		cfg := filepath.Join(t.TempDir(), "config")
		writeFile(t, cfg, fmt.Sprintf(`Host bastion
  HostName %s
  User pi
  IdentityFile %s

Host inner-*
  User pi
  IdentityFile %s
  IdentitiesOnly yes
  ProxyJump bastion
  UserKnownHostsFile %s

Host inner-b
  HostName %s
`, a.IP, w.Key, w.Key, filepath.Join(home, "known_hosts"), b.IP))
		c := mustDial(t, ssh.Options{Address: "inner-b", ConfigFile: cfg, ConnectRetry: -1})
		if got := mustRun(t, c, "hostname", ssh.RunOptions{}); got != "b" {
			t.Errorf("hostname = %q", got)
		}
		if got := from(c); got != aInner {
			t.Errorf("B saw the connection from %s, want %s", got, aInner)
		}

		// The facts command, as a user runs it.
		var out, errb bytes.Buffer
		code := cli.Execute(context.Background(), &cli.IO{In: strings.NewReader(""), Out: &out, Err: &errb},
			[]string{"facts", "--host", "inner-b", "--ssh-config", cfg, "--output", "json"})
		if code != 0 {
			t.Fatalf("k3sctl facts: exit %d: %s", code, errb.String())
		}
		var f node.Facts
		if err := json.Unmarshal(out.Bytes(), &f); err != nil {
			t.Fatalf("%v: %s", err, out.String())
		}
		if f.Hostname != "b" || f.User != "pi" || f.Sudo != ssh.SudoNoPassword || f.Arch != "amd64" || f.InitSystem != "systemd" {
			t.Errorf("facts: %+v", f)
		}
		out.Reset()
		errb.Reset()
		code = cli.Execute(context.Background(), &cli.IO{In: strings.NewReader(""), Out: &out, Err: &errb},
			[]string{"facts", "--host", "inner-b", "--ssh-config", cfg})
		if code != 0 || !strings.Contains(out.String(), "Hostname") || !strings.Contains(out.String(), "b") {
			t.Errorf("k3sctl facts (text): exit %d\n%s\n%s", code, out.String(), errb.String())
		}
		t.Logf("k3sctl facts:\n%s%s", out.String(), errb.String())
	})
}

func TestSSHHostKeys(t *testing.T) {
	w := world.New(t)
	h := w.Start(t, "a")[0]
	home := sshHome(t)
	o := piOptions(w, home, h.IP)
	kh := o.KnownHostsFile

	c := mustDial(t, o)
	c.Close()
	data, err := os.ReadFile(kh)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], h.IP+" ssh-ed25519 ") {
		t.Fatalf("known_hosts after first contact:\n%s", data)
	}
	// OpenSSH agrees with what was recorded.
	if out, err := exec.Command("ssh-keygen", "-F", h.IP, "-f", kh).CombinedOutput(); err != nil || !strings.Contains(string(out), h.IP) {
		t.Errorf("ssh-keygen -F: %v: %s", err, out)
	}
	mustDial(t, o) // known now: no change, no error
	if after, _ := os.ReadFile(kh); !bytes.Equal(after, data) {
		t.Errorf("known_hosts changed on the second contact:\n%s", after)
	}

	h.Recreate(t)
	_, err = ssh.Dial(context.Background(), o)
	var changed *ssh.HostKeyChangedError
	if !errors.As(err, &changed) {
		t.Fatalf("after re-creating the host: err = %v, want HostKeyChangedError", err)
	}
	msg := err.Error()
	t.Logf("%s", msg)
	fps := keyFingerprints(t, h)
	oldFP := strings.Fields(lines[0])
	oldKey, _, _, _, err := xssh.ParseAuthorizedKey([]byte(oldFP[1] + " " + oldFP[2]))
	if err != nil {
		t.Fatal(err)
	}
	wantParts := []string{h.IP + ": connect: ", xssh.FingerprintSHA256(oldKey), kh + ":1",
		"ssh-keygen -R " + h.IP + " -f " + kh}
	if len(fps) > 0 {
		wantParts = append(wantParts, fps[0])
	}
	for _, want := range wantParts {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q", want)
		}
	}
	// The command the hint gives does the job.
	if out, err := exec.Command("ssh-keygen", "-R", h.IP, "-f", kh).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -R: %v: %s", err, out)
	}
	mustDial(t, o)

	t.Run("strict refuses an unknown host", func(t *testing.T) {
		o := o
		o.KnownHostsFile = filepath.Join(t.TempDir(), "known_hosts")
		o.HostKeyChecking = ssh.HostKeyStrict
		_, err := ssh.Dial(context.Background(), o)
		var unknown *ssh.HostKeyUnknownError
		if !errors.As(err, &unknown) {
			t.Fatalf("err = %v", err)
		}
	})

	t.Run("off warns every time", func(t *testing.T) {
		o := o
		o.KnownHostsFile = filepath.Join(t.TempDir(), "known_hosts")
		o.HostKeyChecking = ssh.HostKeyOff
		var warnings []string
		o.Warnf = func(f string, a ...any) { warnings = append(warnings, fmt.Sprintf(f, a...)) }
		mustDial(t, o)
		mustDial(t, o)
		if len(warnings) != 2 || !strings.Contains(warnings[0], "not checked") {
			t.Errorf("warnings: %q", warnings)
		}
		if _, err := os.Stat(o.KnownHostsFile); err == nil {
			t.Error("off must not record keys")
		}
	})
}

// keyFingerprints are the host's ed25519 host key fingerprints, read inside
// the container.
func keyFingerprints(t *testing.T, h *world.Host) []string {
	out := h.Exec(t, "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub")
	var fps []string
	for _, f := range strings.Fields(out) {
		if strings.HasPrefix(f, "SHA256:") {
			fps = append(fps, f)
		}
	}
	return fps
}

func TestSSHUpload100MB(t *testing.T) {
	w := world.New(t)
	h := w.Start(t, "a")[0]
	home := sshHome(t)
	c := mustDial(t, piOptions(w, home, h.IP))

	src := filepath.Join(t.TempDir(), "payload")
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	hash := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, hash), rand.Reader, 100<<20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	want := hex.EncodeToString(hash.Sum(nil))

	dst := "/usr/local/lib/uploadtest/payload.bin" // pi cannot write there: goes through /tmp
	var last, calls int64
	var backwards bool
	res, err := c.Upload(context.Background(), src, dst, ssh.UploadOptions{Mode: 0o750, Progress: func(done, total int64) {
		if done < last || total != 100<<20 {
			backwards = true
		}
		last = done
		calls++
	}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Skipped || res.SHA256 != want || res.Bytes != 100<<20 {
		t.Errorf("result %+v", res)
	}
	if backwards || last != 100<<20 || calls < 10 {
		t.Errorf("progress: last %d after %d calls, backwards %v", last, calls, backwards)
	}
	got := h.Exec(t, "sha256sum "+dst+" | cut -d' ' -f1; stat -c '%a %U:%G' "+dst+"; ls -a /tmp /usr/local/lib/uploadtest")
	if !strings.HasPrefix(got, want+"\n750 root:root\n") {
		t.Errorf("on the host:\n%s", got)
	}
	if strings.Contains(got, "k3sctl-") {
		t.Errorf("temporary file left behind:\n%s", got)
	}

	start := time.Now()
	res, err = c.Upload(context.Background(), src, dst, ssh.UploadOptions{Mode: 0o750})
	if err != nil || !res.Skipped {
		t.Errorf("second upload: %+v %v, want skipped", res, err)
	}
	t.Logf("second upload skipped in %s", time.Since(start))

	// A writable destination directory: the temporary file goes beside it.
	dst2 := "/home/pi/payload.bin"
	if _, err := c.Upload(context.Background(), src, dst2, ssh.UploadOptions{Owner: "pi:pi", Concurrency: 1}); err != nil {
		t.Fatal(err)
	}
	if got := h.Exec(t, "sha256sum "+dst2+" | cut -d' ' -f1"); strings.TrimSpace(got) != want {
		t.Errorf("single stream upload: %s", got)
	}
}

func TestSSHFilesAndFacts(t *testing.T) {
	w := world.New(t)
	h := w.Start(t, "a")[0]
	home := sshHome(t)
	c := mustDial(t, piOptions(w, home, h.IP))
	ctx := context.Background()

	secretData := []byte("token: K10abc::server:s3cr3t\n'quotes' $(and) `more`\n")
	changed, err := c.WriteFile(ctx, "/etc/rancher/k3s/config.yaml", secretData, 0o600)
	if err != nil || !changed {
		t.Fatalf("WriteFile: %v %v", changed, err)
	}
	changed, err = c.WriteFile(ctx, "/etc/rancher/k3s/config.yaml", secretData, 0o600)
	if err != nil || changed {
		t.Errorf("second WriteFile: changed %v, %v", changed, err)
	}
	if got := h.Exec(t, "stat -c '%a %U:%G' /etc/rancher/k3s/config.yaml"); strings.TrimSpace(got) != "600 root:root" {
		t.Errorf("mode/owner: %s", got)
	}
	back, err := c.ReadFile(ctx, "/etc/rancher/k3s/config.yaml")
	if err != nil || !bytes.Equal(back, secretData) {
		t.Errorf("ReadFile: %q %v", back, err)
	}
	if _, err := c.ReadFile(ctx, "/nonexistent"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadFile of a missing file: %v", err)
	}

	sum := sha256.Sum256(secretData)
	f, err := node.GatherFacts(ctx, c, node.FactsOptions{HashFiles: []string{"/etc/rancher/k3s/config.yaml", "/missing"}})
	if err != nil {
		t.Fatal(err)
	}
	if f.FileHashes["/etc/rancher/k3s/config.yaml"] != hex.EncodeToString(sum[:]) || f.FileHashes["/missing"] != "" {
		t.Errorf("file hashes: %v", f.FileHashes)
	}
	if f.Hostname != "a" || f.Machine != "x86_64" || f.Arch != "amd64" || f.InitSystem != "systemd" ||
		f.Sudo != ssh.SudoNoPassword || f.User != "pi" || f.OS.ID != "debian" || f.K3sVersion != "" ||
		f.Services.K3s.Installed || f.MemTotalBytes == 0 || f.DiskFreeBytes == 0 || f.DiskFreePath == "" ||
		f.PrimaryIP != h.IP || !f.Privileged {
		t.Errorf("facts: %+v", f)
	}

	// A fake k3s and a token: the facts notice both.
	h.Exec(t, `printf '#!/bin/sh\necho "k3s version v1.31.4+k3s1 (94e29e2e)"\necho "go version go1.22.9"\n' > /usr/local/bin/k3s && chmod 755 /usr/local/bin/k3s
mkdir -p /var/lib/rancher/k3s/server && chmod 700 /var/lib/rancher/k3s/server && echo K10x::server:y > /var/lib/rancher/k3s/server/token`)
	f, err = node.GatherFacts(ctx, c, node.FactsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if f.K3sVersion != "v1.31.4+k3s1" || len(f.K3sBinarySHA256) != 64 || !f.ServerTokenExists || f.DiskFreePath != "/var/lib/rancher" {
		t.Errorf("facts after install: %+v", f)
	}
}

func TestSSHRetriesWhileHostBoots(t *testing.T) {
	w := world.New(t)
	h := w.Start(t, "a")[0]
	home := sshHome(t)
	o := piOptions(w, home, h.IP)
	mustDial(t, o) // records the key

	h.Exec(t, "systemctl stop ssh.socket ssh.service 2>/dev/null; systemctl stop ssh")
	go func() {
		time.Sleep(3 * time.Second)
		_, _ = h.ExecErr(context.Background(), "systemctl start ssh")
	}()
	o.ConnectRetry = 30 * time.Second
	var warnings []string
	var mu sync.Mutex
	o.Warnf = func(f string, a ...any) { mu.Lock(); warnings = append(warnings, fmt.Sprintf(f, a...)); mu.Unlock() }
	start := time.Now()
	c := mustDial(t, o)
	if got := mustRun(t, c, "hostname", ssh.RunOptions{}); got != "a" {
		t.Errorf("hostname %q", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(warnings) == 0 || time.Since(start) < 2*time.Second {
		t.Errorf("connected after %s with warnings %q: expected retries while sshd was down", time.Since(start), warnings)
	}
}

func writeFile(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}
