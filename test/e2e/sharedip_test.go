package e2e

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/k3sctl/k3sctl/test/e2e/world"
)

// forward listens on a loopback port and passes every connection on to
// target, as a NAT router's port forward does.
func forward(t *testing.T, target string) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				u, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer u.Close()
				done := make(chan struct{})
				go func() {
					_, _ = io.Copy(u, c)
					if tc, ok := u.(*net.TCPConn); ok {
						_ = tc.CloseWrite()
					}
					close(done)
				}()
				_, _ = io.Copy(c, u)
				_ = c.Close()
				<-done
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

// Two hosts behind one address, told apart by their SSH ports (port
// forwards of one public IP): both are installed, each once.
func TestSharedAddressHostsAreEachInstalled(t *testing.T) {
	t.Parallel()
	w := world.New(t)
	m := startMirror(t)
	hs := w.Start(t, "nat-s1", "nat-a1")
	srv, agent := hs[0], hs[1]
	p1, p2 := forward(t, net.JoinHostPort(srv.IP, "22")), forward(t, net.JoinHostPort(agent.IP, "22"))
	u := newUser(t)
	inv := filepath.Join(t.TempDir(), "nat.yaml")
	yaml := fmt.Sprintf(`apiVersion: k3sctl.io/v1alpha1
kind: Inventory
defaults:
  ssh: {user: pi, keyFile: %s}
  version: %s
clusters:
  - name: nat
    apiAddress: %s
    servers:
      - {address: 127.0.0.1, ssh: {port: %d}, privateAddress: %s}
    agents:
      - {address: 127.0.0.1, ssh: {port: %d}, privateAddress: %s}
`, w.Key, v1, srv.IP, p1, srv.IP, p2, agent.IP)
	if err := os.WriteFile(inv, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	planFlags := []string{"--download-url", m.DownloadURL, "--channel-url", m.ChannelURL}
	key1, key2 := fmt.Sprintf("127.0.0.1:%d", p1), fmt.Sprintf("127.0.0.1:%d", p2)

	r := u.mustK3sctl(args(planFlags, "plan", "-f", inv)...)
	for _, key := range []string{key1, key2} {
		if !strings.Contains(r.stdout, key) {
			t.Errorf("the plan does not list host %s:\n%s", key, r.stdout)
		}
	}
	if !strings.Contains(r.stderr+r.stdout, "gathering facts from 2 host(s)") {
		t.Errorf("facts were not gathered from both hosts:\n%s", r)
	}

	u.mustK3sctl(args(append(planFlags, "--timeout", "90s"), "apply", "-f", inv)...)
	nodes := u.waitNodes("nat", 2)
	if nodes["nat-s1"] == nil || nodes["nat-a1"] == nil {
		t.Errorf("nodes %v, want nat-s1 and nat-a1", nodes)
	}
	if !strings.Contains(srv.Exec(t, "systemctl is-active k3s || true"), "active") ||
		!strings.Contains(agent.Exec(t, "systemctl is-active k3s-agent || true"), "active") {
		t.Errorf("k3s on the server or k3s-agent on the agent is not running")
	}
	kh, err := os.ReadFile(filepath.Join(u.home, ".ssh", "known_hosts"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []int{p1, p2} {
		if !strings.Contains(string(kh), fmt.Sprintf("[127.0.0.1]:%d ", p)) {
			t.Errorf("known_hosts has no entry for [127.0.0.1]:%d:\n%s", p, kh)
		}
	}

	// status and kubeconfig reach each host through its own port too.
	r = u.mustK3sctl("status", "-f", inv)
	for _, key := range []string{key1, key2} {
		if !regexp.MustCompile(regexp.QuoteMeta(key) + `\s+\w+\s+yes\s+active\s+yes\s+` + regexp.QuoteMeta(v1)).MatchString(r.stdout) {
			t.Errorf("status does not show %s reachable, active and Ready:\n%s", key, r)
		}
	}
	if !strings.Contains(r.stdout, "1 healthy and in sync") {
		t.Errorf("status:\n%s", r)
	}
	other := filepath.Join(t.TempDir(), "other.yaml")
	u.mustK3sctl("kubeconfig", "-f", inv, "--kubeconfig", other)
	if data, err := os.ReadFile(other); err != nil || !strings.Contains(string(data), "server: https://"+srv.IP+":6443") {
		t.Errorf("kubeconfig -f: %v\n%s", err, data)
	}

	r = u.k3sctl(args(planFlags, "plan", "-f", inv, "--detailed-exitcode")...)
	if r.code != 0 || !strings.Contains(r.stdout, "No changes") {
		t.Errorf("a second plan should change nothing:\n%s", r)
	}
	before := invocation(t, srv, "k3s") + " " + invocation(t, agent, "k3s-agent")
	u.mustK3sctl(args(append(planFlags, "--timeout", "90s"), "apply", "-f", inv)...)
	if after := invocation(t, srv, "k3s") + " " + invocation(t, agent, "k3s-agent"); after != before {
		t.Errorf("a second apply restarted K3s: invocations %s, then %s", before, after)
	}
}
