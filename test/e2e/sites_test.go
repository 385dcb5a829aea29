package e2e

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/k3sctl/k3sctl/test/e2e/world"
)

// TestSiteProxy: a host whose only way out is a proxy gets K3s with the
// proxy in its service environment, NO_PROXY completed with what must stay
// direct; the proxy password shows nowhere but in that file (mode 0600),
// and a change of proxy restarts K3s.
func TestSiteProxy(t *testing.T) {
	t.Parallel()
	w := world.New(t)
	m := startMirror(t)
	internal := w.NewInternalNetwork(t)
	_, proxyURL := w.Proxy(t, internal)
	h := w.NewHost(t, "behind-proxy", world.WithNetworks(internal))
	u := newUser(t)
	common := append(sshArgs(w), "--download-url", m.DownloadURL, "--channel-url", m.ChannelURL, "--timeout", "90s")

	pu, err := url.Parse(proxyURL)
	if err != nil {
		t.Fatal(err)
	}
	const password = "pr0xy-s3cret"
	withAuth := *pu
	withAuth.User = url.UserPassword("ops", password)

	proxyFlags := []string{"--http-proxy", proxyURL, "--https-proxy", withAuth.String(), "--no-proxy", ".corp.example.com"}
	r := u.mustK3sctl(args(common, "install", append([]string{"--ip", h.IP, "--context", "px", "--k3s-version", v1}, proxyFlags...)...)...)
	if strings.Contains(r.stdout+r.stderr, password) {
		t.Errorf("install output shows the proxy password:\n%s", r)
	}
	u.waitNodes("px", 1)

	env := h.Exec(t, "cat /etc/systemd/system/k3s.service.env")
	noProxy := ".corp.example.com,localhost,127.0.0.1,10.42.0.0/16,10.43.0.0/16,.svc,.cluster.local," + h.IP
	for _, want := range []string{
		"\nHTTP_PROXY=" + proxyURL + "\n",
		"\nHTTPS_PROXY=" + withAuth.String() + "\n",
		"\nNO_PROXY=" + noProxy + "\n",
	} {
		if !strings.Contains(env, want) {
			t.Errorf("k3s.service.env lacks %q:\n%s", strings.TrimSpace(want), env)
		}
	}
	if mode := strings.TrimSpace(h.Exec(t, "stat -c %a /etc/systemd/system/k3s.service.env")); mode != "600" {
		t.Errorf("env file mode %s, want 600", mode)
	}
	// The service was started with it: the simulator logs its proxy
	// environment at start, the password masked.
	logs := h.Logs("k3s", 300)
	redacted := strings.Replace(withAuth.String(), password, "xxxxx", 1)
	wantLog := fmt.Sprintf("Proxy environment: HTTP_PROXY=%s HTTPS_PROXY=%s NO_PROXY=%s", proxyURL, redacted, noProxy)
	if !strings.Contains(logs, wantLog) {
		t.Errorf("service log lacks %q:\n%s", wantLog, logs)
	}
	if strings.Contains(logs, password) {
		t.Errorf("service log shows the proxy password")
	}

	// Another proxy setting is a pending change: the plan names the env
	// file, without the password, and applying it restarts K3s.
	before := invocation(t, h, "k3s")
	other := []string{"--http-proxy", proxyURL, "--https-proxy", withAuth.String(), "--no-proxy", ".corp.example.com,registry.local"}
	r = u.mustK3sctl(args(common, "install", append([]string{"--ip", h.IP, "--context", "px", "--k3s-version", v1, "--dry-run"}, other...)...)...)
	if !strings.Contains(r.stdout+r.stderr, "k3s.service.env") || strings.Contains(r.stdout+r.stderr, password) {
		t.Errorf("dry run of a proxy change:\n%s", r)
	}
	if got := invocation(t, h, "k3s"); got != before {
		t.Errorf("a dry run restarted k3s")
	}
	r = u.mustK3sctl(args(common, "install", append([]string{"--ip", h.IP, "--context", "px", "--k3s-version", v1, "-o", "json"}, other...)...)...)
	if strings.Contains(r.stdout+r.stderr, password) {
		t.Errorf("JSON events show the proxy password:\n%s", r)
	}
	if got := invocation(t, h, "k3s"); got == before || got == "" {
		t.Errorf("k3s not restarted after a proxy change: invocation %q → %q", before, got)
	}
	if env := h.Exec(t, "cat /etc/systemd/system/k3s.service.env"); !strings.Contains(env, "NO_PROXY=.corp.example.com,registry.local,localhost,") {
		t.Errorf("env file after the change:\n%s", env)
	}
	u.waitNodes("px", 1)
}

// defaultRoute is the interface of h's default route and its IPv4
// address, as the host itself reports them.
func defaultRoute(t *testing.T, h *world.Host) (dev, ip string) {
	t.Helper()
	f := strings.Fields(h.Exec(t, "ip -o route get 1.1.1.1"))
	for i := 0; i+1 < len(f); i++ {
		switch f[i] {
		case "dev":
			dev = f[i+1]
		case "src":
			ip = f[i+1]
		}
	}
	if dev == "" || ip == "" {
		t.Fatalf("host %s: no default route: %v", h.Name, f)
	}
	return dev, ip
}

// nodeAddresses is what kubectl shows of a Node's status.addresses.
func nodeAddresses(t *testing.T, u *user, context, node string) map[string]string {
	t.Helper()
	out, err := u.kubectl("--context", context, "get", "node", node, "-o", "jsonpath={.status.addresses}")
	if err != nil {
		t.Fatalf("kubectl get node %s: %v: %s", node, err, out)
	}
	var addrs []struct{ Type, Address string }
	if err := json.Unmarshal([]byte(out), &addrs); err != nil {
		t.Fatalf("node %s addresses %q: %v", node, out, err)
	}
	m := map[string]string{}
	for _, a := range addrs {
		m[a.Type] = a.Address
	}
	return m
}

const sitesInventory = `apiVersion: k3sctl.io/v1alpha1
kind: Inventory
name: dual
version: {{version}}
ssh: {user: pi, keyFile: {{key}}}
servers:
  - address: {{s}}{{sPrivate}}
agents:
  - address: {{a}}{{aPrivate}}
`

// TestSiteTwoNetworks: hosts on two networks. With nothing chosen, plan
// names the interface K3s will advertise; with privateAddress on the
// second network, the Nodes' InternalIPs are there and the agent joins the
// server on it.
func TestSiteTwoNetworks(t *testing.T) {
	t.Parallel()
	w := world.New(t)
	m := startMirror(t)
	first, second := w.DefaultNetwork(), w.NewNetwork(t)
	s := w.NewHost(t, "dual-s", world.WithNetworks(first, second))
	a := w.NewHost(t, "dual-a", world.WithNetworks(first, second))
	u := newUser(t)
	dir := t.TempDir()
	planFlags := []string{"--download-url", m.DownloadURL, "--channel-url", m.ChannelURL}
	write := func(private bool) string {
		sp, ap := "", ""
		if private {
			sp, ap = "\n    privateAddress: "+s.IPOn(second), "\n    privateAddress: "+a.IPOn(second)
		}
		inv := strings.NewReplacer("{{version}}", v1, "{{key}}", w.Key, "{{s}}", s.IP, "{{a}}", a.IP,
			"{{sPrivate}}", sp, "{{aPrivate}}", ap).Replace(sitesInventory)
		path := filepath.Join(dir, "dual.yaml")
		if err := os.WriteFile(path, []byte(inv), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}

	// facts lists both interfaces and the default route's.
	r := u.mustK3sctl(args(sshArgs(w), "facts", "--ip", s.IP, "-o", "json")...)
	var facts struct {
		Interfaces []struct {
			Name      string   `json:"name"`
			Addresses []string `json:"addresses"`
		} `json:"interfaces"`
		DefaultInterface string `json:"defaultInterface"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &facts); err != nil {
		t.Fatalf("facts JSON: %v\n%s", err, r.stdout)
	}
	dev, devIP := defaultRoute(t, s)
	found := map[string]string{}
	for _, ifc := range facts.Interfaces {
		for _, addr := range ifc.Addresses {
			ip, _, _ := strings.Cut(addr, "/")
			found[ip] = ifc.Name
		}
	}
	if len(facts.Interfaces) != 2 || found[s.IP] == "" || found[s.IPOn(second)] == "" || facts.DefaultInterface != dev {
		t.Fatalf("facts: %+v; want %s and %s on two interfaces, default %s", facts, s.IP, s.IPOn(second), dev)
	}
	r = u.mustK3sctl(args(sshArgs(w), "facts", "--ip", s.IP)...)
	if !strings.Contains(r.stdout, "(default route)") || !strings.Contains(r.stdout, "Interface "+found[s.IPOn(second)]) {
		t.Errorf("facts text:\n%s", r.stdout)
	}

	// Nothing chosen: plan says which interface K3s will pick and how to
	// choose another.
	r = u.k3sctl(args(planFlags, "plan", "-f", write(false))...)
	want := fmt.Sprintf("K3s will advertise %s (%s), the default route's; to choose another set privateAddress: or interface: on the host", dev, devIP)
	if r.code != 0 || !strings.Contains(r.stdout, want) {
		t.Fatalf("plan lacks %q:\n%s", want, r)
	}

	// privateAddress on the second network.
	inv := write(true)
	r = u.mustK3sctl(args(planFlags, "plan", "-f", inv)...)
	if strings.Contains(r.stdout, "K3s will advertise") {
		t.Errorf("plan notes the interface although privateAddress is set:\n%s", r.stdout)
	}
	u.mustK3sctl(args(append(planFlags, "--timeout", "90s"), "apply", "-f", inv)...)
	u.waitNodes("dual", 2)
	for _, h := range []*world.Host{s, a} {
		if got := nodeAddresses(t, u, "dual", h.Name)["InternalIP"]; got != h.IPOn(second) {
			t.Errorf("node %s: InternalIP %s, want %s on the second network", h.Name, got, h.IPOn(second))
		}
	}
	cfg := a.Exec(t, "cat /etc/rancher/k3s/config.yaml")
	if !strings.Contains(cfg, "server: https://"+s.IPOn(second)+":6443\n") || !strings.Contains(cfg, "node-ip: "+a.IPOn(second)+"\n") {
		t.Errorf("agent config.yaml:\n%s", cfg)
	}
	cfg = s.Exec(t, "cat /etc/rancher/k3s/config.yaml")
	if !strings.Contains(cfg, "advertise-address: "+s.IPOn(second)+"\n") {
		t.Errorf("server config.yaml:\n%s", cfg)
	}
}
