package e2e

import (
	"bytes"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/k3sctl/k3sctl/test/e2e/world"
	"golang.org/x/crypto/ssh"
)

// dialPi opens a real SSH connection as pi with the world's key. Host keys
// are not the subject here; internal/ssh has its own tests for them.
func dialPi(t *testing.T, w *world.World, addr string) *ssh.Client {
	t.Helper()
	pem, err := os.ReadFile(w.Key)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ssh.Dial("tcp", net.JoinHostPort(addr, "22"), &ssh.ClientConfig{
		User:            "pi",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(),
		Timeout:         10 * time.Second,
	})
	if err != nil {
		t.Fatalf("ssh pi@%s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func run(t *testing.T, c *ssh.Client, cmd string) string {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out, errb bytes.Buffer
	s.Stdout, s.Stderr = &out, &errb
	if err := s.Run(cmd); err != nil {
		t.Fatalf("%s: %v: %s", cmd, err, errb.String())
	}
	return strings.TrimSpace(out.String())
}

func TestWorldTwoHostsOverSSH(t *testing.T) {
	t.Parallel()
	start := time.Now()
	w := world.New(t)
	hosts := w.Start(t, "a", "b")
	t.Logf("two hosts up in %s", time.Since(start).Round(time.Millisecond))
	a, b := hosts[0], hosts[1]
	if a.IP == b.IP {
		t.Fatalf("hosts share address %s", a.IP)
	}

	c := dialPi(t, w, a.IP)
	if got := run(t, c, "uname -m"); got != "x86_64" {
		t.Errorf("uname -m = %q, want x86_64", got)
	}
	if got := run(t, c, "sudo -n id -u"); got != "0" {
		t.Errorf("sudo id -u = %q, want 0", got)
	}
	if got := run(t, c, "id -un"); got != "pi" {
		t.Errorf("id -un = %q, want pi", got)
	}
	// Host A reaches host B's sshd on the shared network.
	banner := run(t, c, "exec 3<>/dev/tcp/"+b.IP+"/22; head -c 7 <&3")
	if banner != "SSH-2.0" {
		t.Errorf("banner from %s seen on %s = %q", b.IP, a.Name, banner)
	}
	// Each host has its own host keys.
	ka := a.Exec(t, "cat /etc/ssh/ssh_host_ed25519_key.pub")
	kb := b.Exec(t, "cat /etc/ssh/ssh_host_ed25519_key.pub")
	if ka == kb {
		t.Error("hosts a and b share a host key")
	}
	// ops needs a password for sudo.
	opsOut, err := a.ExecErr(t.Context(), "su ops -c 'sudo -n true' 2>&1")
	if err == nil {
		t.Errorf("sudo -n as ops succeeded, want a password prompt failure: %s", opsOut)
	}
}

func TestWorldStopAndRestart(t *testing.T) {
	t.Parallel()
	w := world.New(t)
	h := w.Start(t, "solo")[0]
	h.Exec(t, "echo kept > /root/marker")
	h.Kill(t)
	if _, err := net.DialTimeout("tcp", h.IP+":22", time.Second); err == nil {
		t.Fatal("killed host still accepts connections")
	}
	h.Restart(t)
	if got := strings.TrimSpace(h.Exec(t, "cat /root/marker")); got != "kept" {
		t.Errorf("after restart marker = %q", got)
	}
	c := dialPi(t, w, h.IP)
	if got := run(t, c, "systemctl is-active ssh"); got != "active" {
		t.Errorf("ssh unit = %q", got)
	}
}
