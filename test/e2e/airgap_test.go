package e2e

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/k3sctl/k3sctl/test/e2e/world"
	"github.com/k3sctl/k3sctl/test/mirror"
)

// mirrorSum is the sha256 the mirror's checksum file of arch lists for asset.
func mirrorSum(t *testing.T, dir, version, arch, asset string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, version, mirror.ChecksumAsset(arch)))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[1] == asset {
			return f[0]
		}
	}
	t.Fatalf("%s lists no %s", mirror.ChecksumAsset(arch), asset)
	return ""
}

func hostSum(t *testing.T, h *world.Host, path string) string {
	t.Helper()
	f := strings.Fields(h.Exec(t, "sha256sum "+path))
	if len(f) == 0 {
		t.Fatalf("%s: sha256sum %s: no output", h.Name, path)
	}
	return f[0]
}

func TestMixedArchitecturesAndAirgapImages(t *testing.T) {
	t.Parallel()
	w := world.New(t)
	dir := t.TempDir()
	mirror.Build(t, dir, []string{v1}, []string{"amd64", "arm64"})
	m := mirror.Start(t, dir)
	server := w.NewHost(t, "srv")
	pi := w.NewHost(t, "pi", world.WithArch("arm64"))
	u := newUser(t)
	common := append(sshArgs(w), "--download-url", m.DownloadURL, "--channel-url", m.ChannelURL, "--timeout", "180s")

	r := u.mustK3sctl(args(common, "install", "--ip", server.IP, "--context", "mixed", "--k3s-version", v1)...)
	if !strings.Contains(r.stderr, "downloading k3s "+v1+" for amd64") {
		t.Errorf("install with an empty cache does not say it downloads:\n%s", r)
	}
	u.mustK3sctl(args(common, "join", "--ip", pi.IP, "--server-ip", server.IP)...)
	nodes := u.waitNodes("mixed", 2)
	if nodes["pi"] == nil || nodes["pi"][2] != v1 {
		t.Errorf("arm64 agent: %v", nodes)
	}
	for _, tc := range []struct {
		h       *world.Host
		machine string
		arch    string
	}{{server, "x86_64", "amd64"}, {pi, "aarch64", "arm64"}} {
		if got := strings.TrimSpace(tc.h.Exec(t, "uname -m")); got != tc.machine {
			t.Errorf("%s: uname -m = %s, want %s", tc.h.Name, got, tc.machine)
		}
		want := mirrorSum(t, dir, v1, tc.arch, mirror.Asset(tc.arch))
		if got := hostSum(t, tc.h, "/usr/local/bin/k3s"); got != want {
			t.Errorf("%s: /usr/local/bin/k3s sha256 %s, want the mirror's %s for %s", tc.h.Name, got, want, tc.arch)
		}
	}

	// The same cluster air-gapped: each node gets its architecture's
	// images archive, and nothing but the archives and their checksum
	// files is downloaded (the binaries are in the cache).
	m.ResetRequests()
	r = u.mustK3sctl(args(common, "install", "--ip", server.IP, "--context", "mixed", "--k3s-version", v1, "--airgap")...)
	if !strings.Contains(r.stderr, "upload images") {
		t.Errorf("install --airgap shows no upload images step:\n%s", r)
	}
	if !strings.Contains(r.stderr, "downloading the images archive of k3s "+v1+" for amd64") || strings.Contains(r.stderr, "downloading k3s ") {
		t.Errorf("install --airgap: want it to say it downloads the images archive, and not the cached binary:\n%s", r)
	}
	u.mustK3sctl(args(common, "join", "--ip", pi.IP, "--server-ip", server.IP, "--airgap")...)
	for _, tc := range []struct {
		h    *world.Host
		arch string
	}{{server, "amd64"}, {pi, "arm64"}} {
		asset := "k3s-airgap-images-" + tc.arch + ".tar.zst"
		want := mirrorSum(t, dir, v1, tc.arch, asset)
		if got := hostSum(t, tc.h, "/var/lib/rancher/k3s/agent/images/"+asset); got != want {
			t.Errorf("%s: %s sha256 %s, want the mirror's %s", tc.h.Name, asset, got, want)
		}
		if ls := strings.Fields(tc.h.Exec(t, "ls -A /var/lib/rancher/k3s/agent/images")); len(ls) != 1 {
			t.Errorf("%s: images folder holds %v, want only %s", tc.h.Name, ls, asset)
		}
	}
	var got []string
	for p, n := range m.AllRequests() {
		for i := 0; i < n; i++ {
			got = append(got, p)
		}
	}
	sort.Strings(got)
	want := []string{
		"/download/" + v1 + "/k3s-airgap-images-amd64.tar.zst",
		"/download/" + v1 + "/k3s-airgap-images-arm64.tar.zst",
		"/download/" + v1 + "/sha256sum-amd64.txt",
		"/download/" + v1 + "/sha256sum-arm64.txt",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("mirror requests during the air-gapped runs:\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	u.waitNodes("mixed", 2)

	// Again: the archives are there, nothing is uploaded or downloaded.
	m.ResetRequests()
	r = u.mustK3sctl(args(common, "join", "--ip", pi.IP, "--server-ip", server.IP, "--airgap")...)
	if !strings.Contains(r.stderr, "No changes") || strings.Contains(r.stderr, "downloading") {
		t.Errorf("second air-gapped join changed or downloaded something:\n%s", r)
	}
	if n := m.Total(); n != 0 {
		t.Errorf("second air-gapped join downloaded: %v", m.AllRequests())
	}
}

func TestInventoryAirgapAndRegistries(t *testing.T) {
	t.Parallel()
	w := world.New(t)
	dir := t.TempDir()
	mirror.Build(t, dir, []string{v1}, []string{"amd64"})
	m := mirror.Start(t, dir)
	h := w.NewHost(t, "cabin")
	u := newUser(t)
	u.env = append(u.env, "REG_PASS=s3cret-registry-pw")
	inv := filepath.Join(dir, "cabin.yaml")
	src := `apiVersion: k3sctl.io/v1alpha1
kind: Inventory
name: cabin
version: ` + v1 + `
airgap: true
registries:
  mirrors:
    docker.io:
      endpoint: ["https://mirror.lan:5000"]
  configs:
    "mirror.lan:5000":
      auth: {username: k3s, password: "${REG_PASS}"}
ssh: {user: pi, keyFile: ` + w.Key + `}
servers: [` + h.IP + `]
`
	if err := os.WriteFile(inv, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	flags := []string{"--download-url", m.DownloadURL, "--channel-url", m.ChannelURL, "--timeout", "90s"}
	r := u.mustK3sctl(args(flags, "apply", "-f", inv)...)
	if strings.Contains(r.stdout+r.stderr, "s3cret") {
		t.Errorf("the registry password reached the output:\n%s", r)
	}
	got := h.Exec(t, "stat -c '%a %U' /etc/rancher/k3s/registries.yaml && cat /etc/rancher/k3s/registries.yaml")
	for _, want := range []string{"600 root", "docker.io:", "- https://mirror.lan:5000", "username: k3s", "password: s3cret-registry-pw"} {
		if !strings.Contains(got, want) {
			t.Errorf("registries.yaml lacks %q:\n%s", want, got)
		}
	}
	asset := "k3s-airgap-images-amd64.tar.zst"
	if sum := hostSum(t, h, "/var/lib/rancher/k3s/agent/images/"+asset); sum != mirrorSum(t, dir, v1, "amd64", asset) {
		t.Errorf("%s on the host has sha256 %s", asset, sum)
	}
	u.waitNodes("cabin", 1)

	// Converged: a second apply changes nothing.
	r = u.mustK3sctl(args(flags, "apply", "-f", inv)...)
	if !strings.Contains(r.stderr, "No changes") {
		t.Errorf("second apply:\n%s", r)
	}
}
