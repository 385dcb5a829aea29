package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/k3sctl/k3sctl/test/e2e/world"
	"github.com/k3sctl/k3sctl/test/mirror"
)

// countingProxy forwards TCP connections from a loopback address to a
// host's sshd and counts the bytes the workstation sends.
type countingProxy struct {
	ln   net.Listener
	sent atomic.Int64 // workstation → host
	port int
}

func startCountingProxy(t *testing.T, listenIP, target string) *countingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(listenIP, "0"))
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{ln: ln, port: ln.Addr().(*net.TCPAddr).Port}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			wg.Add(2)
			go func() {
				defer wg.Done()
				n, _ := io.Copy(up, c)
				p.sent.Add(n)
				up.(*net.TCPConn).CloseWrite()
			}()
			go func() {
				defer wg.Done()
				_, _ = io.Copy(c, up)
				c.Close()
				up.Close()
			}()
		}
	}()
	return p
}

const imagesAsset = "k3s-airgap-images-amd64.tar.zst"

// fanoutWorld is one server and two agents reached through counting
// proxies on loopback addresses, as a site behind one uplink.
type fanoutWorld struct {
	hosts   []*world.Host // server, agent 1, agent 2
	proxies []*countingProxy
	addrs   []string // the inventory's addresses
	inv     string
	dir     string // the mirror
	mirror  *mirror.Mirror
	binSize int64
	binSum  string
	// imgSize and imgSum are the images archive's, with airgap.
	imgSize int64
	imgSum  string
}

// sent is what the workstation sent to the hosts so far.
func (f *fanoutWorld) sent() int64 {
	var n int64
	for _, p := range f.proxies {
		n += p.sent.Load()
	}
	return n
}

func newFanoutWorld(t *testing.T, name, upload string, airgap bool, loopback int) *fanoutWorld {
	t.Helper()
	w := world.New(t)
	f := &fanoutWorld{dir: t.TempDir()}
	mirror.Build(t, f.dir, []string{v1}, []string{"amd64"})
	f.mirror = mirror.Start(t, f.dir)
	st, err := os.Stat(filepath.Join(f.dir, v1, mirror.Asset("amd64")))
	if err != nil {
		t.Fatal(err)
	}
	f.binSize = st.Size()
	f.binSum = mirrorSum(t, f.dir, v1, "amd64", mirror.Asset("amd64"))
	if airgap {
		st, err := os.Stat(filepath.Join(f.dir, v1, imagesAsset))
		if err != nil {
			t.Fatal(err)
		}
		f.imgSize = st.Size()
		f.imgSum = mirrorSum(t, f.dir, v1, "amd64", imagesAsset)
	}
	f.hosts = w.Start(t, name+"-srv", name+"-a1", name+"-a2")
	for i, h := range f.hosts {
		ip := fmt.Sprintf("127.0.0.%d", loopback+i)
		f.proxies = append(f.proxies, startCountingProxy(t, ip, net.JoinHostPort(h.IP, "22")))
		f.addrs = append(f.addrs, ip)
	}
	host := func(i int) string {
		return fmt.Sprintf("{address: %s, privateAddress: %s, ssh: {port: %d}}", f.addrs[i], f.hosts[i].IP, f.proxies[i].port)
	}
	inv := fmt.Sprintf(`apiVersion: k3sctl.io/v1alpha1
kind: Inventory
defaults:
  ssh: {user: pi, keyFile: %s}
  version: %s
clusters:
  - name: %s
    apiAddress: %s
    upload: %s
    airgap: %t
    servers:
      - %s
    agents:
      - %s
      - %s
`, w.Key, v1, name, f.hosts[0].IP, upload, airgap, host(0), host(1), host(2))
	f.inv = filepath.Join(t.TempDir(), "site.yaml")
	if err := os.WriteFile(f.inv, []byte(inv), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fanoutWorld) flags() []string {
	return []string{"--download-url", f.mirror.DownloadURL, "--channel-url", f.mirror.ChannelURL}
}

type fanoutEvent struct {
	Type    string          `json:"type"`
	Host    string          `json:"host"`
	Step    string          `json:"step"`
	Message string          `json:"message"`
	Plan    json.RawMessage `json:"plan"`
}

func fanoutEvents(t *testing.T, out string) []fanoutEvent {
	t.Helper()
	var evs []fanoutEvent
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var e fanoutEvent
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("not a JSON event line: %q: %v", line, err)
		}
		evs = append(evs, e)
	}
	return evs
}

// planUploads is each host's upload step reason and uploadFrom, from the
// plan event.
func planUploads(t *testing.T, evs []fanoutEvent) map[string]string {
	t.Helper()
	var p struct {
		Clusters []struct {
			Hosts []struct {
				Address    string `json:"address"`
				UploadFrom *struct {
					Host    string `json:"host"`
					Address string `json:"address"`
				} `json:"uploadFrom"`
				Steps []struct {
					Kind   string `json:"kind"`
					Reason string `json:"reason"`
				} `json:"steps"`
			} `json:"hosts"`
		} `json:"clusters"`
	}
	for _, e := range evs {
		if e.Type == "plan" {
			if err := json.Unmarshal(e.Plan, &p); err != nil {
				t.Fatal(err)
			}
		}
	}
	out := map[string]string{}
	for _, c := range p.Clusters {
		for _, h := range c.Hosts {
			for _, s := range h.Steps {
				if s.Kind == "upload k3s" {
					out[h.Address] = s.Reason
				}
			}
			if h.UploadFrom != nil {
				out[h.Address] += " | from " + h.UploadFrom.Host + " " + h.UploadFrom.Address
			}
		}
	}
	return out
}

func logged(evs []fanoutEvent, host, prefix string) string {
	for _, e := range evs {
		if e.Type == "log" && e.Host == host && strings.HasPrefix(e.Message, prefix) {
			return e.Message
		}
	}
	return ""
}

func loggedStep(evs []fanoutEvent, host, step, message string) bool {
	for _, e := range evs {
		if e.Type == "log" && e.Host == host && e.Step == step && e.Message == message {
			return true
		}
	}
	return false
}

// TestSiteCopyOneUploadPerSite: the workstation sends the binary and the
// images archive once; the agents copy them from the server over their
// network.
func TestSiteCopyOneUploadPerSite(t *testing.T) {
	t.Parallel()
	f := newFanoutWorld(t, "fan", "auto", true, 2)
	u := newUser(t)

	before := f.sent()
	r := u.mustK3sctl(args(append(f.flags(), "--timeout", "120s"), "apply", "-f", f.inv, "-o", "json")...)
	sent := f.sent() - before
	files := f.binSize + f.imgSize
	t.Logf("workstation sent %d bytes to the 3 hosts (binary %d + images archive %d bytes): %.2f× the files", sent, f.binSize, f.imgSize, float64(sent)/float64(files))
	if sent >= files*3/2 {
		t.Errorf("workstation sent %d bytes, want less than 1.5× the binary and images archive (%d)", sent, files)
	}
	if sent < files {
		t.Errorf("workstation sent %d bytes, less than the files (%d): the proxies counted wrong", sent, files)
	}
	evs := fanoutEvents(t, r.stdout)
	reasons := planUploads(t, evs)
	srv := f.hosts[0]
	for _, a := range f.addrs[1:] {
		want := "copy from " + f.addrs[0] + " (" + srv.IP + ") over the LAN (upload: auto) | from " + f.addrs[0] + " " + srv.IP
		if !strings.HasSuffix(reasons[a], want) {
			t.Errorf("%s: plan says %q, want it to end with %q", a, reasons[a], want)
		}
		for _, step := range []string{"upload k3s", "upload images"} {
			if !loggedStep(evs, a, step, "copied from "+f.addrs[0]+" over the LAN") {
				t.Errorf("%s: no log line saying %s copied from the server", a, step)
			}
		}
	}
	if strings.Contains(reasons[f.addrs[0]], "copy") {
		t.Errorf("the server copies: %q", reasons[f.addrs[0]])
	}
	nodes := u.waitNodes("fan", 3)
	if len(nodes) != 3 {
		t.Errorf("nodes %v", nodes)
	}
	for _, h := range f.hosts {
		if got := hostSum(t, h, "/usr/local/bin/k3s"); got != f.binSum {
			t.Errorf("%s: k3s sha256 %s, want %s", h.Name, got, f.binSum)
		}
		if got := hostSum(t, h, "/var/lib/rancher/k3s/agent/images/"+imagesAsset); got != f.imgSum {
			t.Errorf("%s: images archive sha256 %s, want %s", h.Name, got, f.imgSum)
		}
		if left := strings.TrimSpace(h.Exec(t, "ls -A /tmp /usr/local/bin /var/lib/rancher/k3s/agent/images | grep k3sctl || true")); left != "" {
			t.Errorf("%s: temporary files left: %s", h.Name, left)
		}
	}

	// Again: nothing to change, nothing sent but the checks.
	r = u.k3sctl(args(f.flags(), "plan", "-f", f.inv, "--detailed-exitcode")...)
	if r.code != 0 || !strings.Contains(r.stdout, "No changes") {
		t.Errorf("plan after apply: want exit 0 and no changes:\n%s", r)
	}
	before = f.sent()
	u.mustK3sctl(args(append(f.flags(), "--timeout", "120s"), "apply", "-f", f.inv)...)
	t.Logf("the no-change apply sent %d bytes", f.sent()-before)
	if n := f.sent() - before; n >= f.binSize/2 {
		t.Errorf("a no-change apply sent %d bytes", n)
	}
}

// TestSiteCopyFallsBack: a host whose copy fails, and one that cannot
// copy, get the binary from the workstation and say why.
func TestSiteCopyFallsBack(t *testing.T) {
	t.Parallel()
	f := newFanoutWorld(t, "fb", "site", false, 5)
	u := newUser(t)
	srv, a1, a2 := f.hosts[0], f.hosts[1], f.hosts[2]
	// a1 cannot reach the server's sshd; a2 has no ssh client.
	a1.Exec(t, "iptables -A OUTPUT -p tcp -d "+srv.IP+" --dport 22 -j REJECT --reject-with tcp-reset")
	a2.Exec(t, "rm /usr/bin/ssh")

	r := u.k3sctl(args(f.flags(), "plan", "-f", f.inv)...)
	if !strings.Contains(r.stdout, "from the workstation: no ssh client on the host (install openssh-client) (upload: site)") {
		t.Errorf("plan does not say why a2 uploads directly:\n%s", r)
	}
	before := f.sent()
	r = u.mustK3sctl(args(append(f.flags(), "--timeout", "120s"), "apply", "-f", f.inv, "-o", "json")...)
	sent := f.sent() - before
	t.Logf("workstation sent %d bytes to the 3 hosts (binary %d bytes): %.2f× the binary", sent, f.binSize, float64(sent)/float64(f.binSize))
	if sent < f.binSize*3 {
		t.Errorf("workstation sent %d bytes, want at least 3× the binary (%d): every host uploads directly", sent, f.binSize)
	}
	evs := fanoutEvents(t, r.stdout)
	want := "copy from " + srv.IP + " failed: ssh: connect to host " + srv.IP + " port 22: Connection refused; uploading directly"
	if m := logged(evs, f.addrs[1], "copy from "); m != want {
		t.Errorf("a1 logged %q, want %q", m, want)
	}
	u.waitNodes("fb", 3)
	for _, h := range f.hosts {
		if got := hostSum(t, h, "/usr/local/bin/k3s"); got != f.binSum {
			t.Errorf("%s: k3s sha256 %s, want %s", h.Name, got, f.binSum)
		}
		if left := strings.TrimSpace(h.Exec(t, "ls -A /tmp /usr/local/bin | grep k3sctl || true")); left != "" {
			t.Errorf("%s: temporary files left: %s", h.Name, left)
		}
	}
}

// TestSiteCopyDirect: upload: direct sends every host its binary from the
// workstation.
func TestSiteCopyDirect(t *testing.T) {
	t.Parallel()
	f := newFanoutWorld(t, "dir", "direct", false, 8)
	u := newUser(t)
	before := f.sent()
	r := u.mustK3sctl(args(append(f.flags(), "--timeout", "120s"), "apply", "-f", f.inv, "-o", "json")...)
	sent := f.sent() - before
	t.Logf("workstation sent %d bytes to the 3 hosts (binary %d bytes): %.2f× the binary", sent, f.binSize, float64(sent)/float64(f.binSize))
	if sent < f.binSize*3 {
		t.Errorf("workstation sent %d bytes, want at least 3× the binary (%d)", sent, f.binSize)
	}
	for a, reason := range planUploads(t, fanoutEvents(t, r.stdout)) {
		if strings.Contains(reason, "copy") || strings.Contains(reason, "from ") {
			t.Errorf("%s: plan says %q with upload: direct", a, reason)
		}
	}
	u.waitNodes("dir", 3)
}
