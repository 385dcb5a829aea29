// Package mirror gives tests a K3s release server on loopback: simulator
// binaries cross-built as any versions and architectures, their checksum
// files and airgap image tarballs, laid out and served like GitHub releases
// and the update.k3s.io channel server.
//
//	dir := t.TempDir()
//	mirror.Build(t, dir, []string{"v1.30.8+k3s1", "v1.31.4+k3s1"}, []string{"amd64", "arm64"})
//	m := mirror.Start(t, dir)
//	// m.DownloadURL + "/v1.31.4+k3s1/k3s"         (the + may also be %2B)
//	// m.ChannelURL + "/stable"  -> 302 to m.URL + "/releases/tag/v1.31.4+k3s1"
//	m.SetChannel("stable", "v1.30.8+k3s1")
//	m.Requests("/download/v1.31.4+k3s1/k3s")    // how often it was asked for
package mirror

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Asset is the release asset name of the k3s binary for a Go architecture:
// "amd64" -> "k3s", "arm64" -> "k3s-arm64", "arm" -> "k3s-armhf".
func Asset(arch string) string {
	switch arch {
	case "arm64":
		return "k3s-arm64"
	case "arm":
		return "k3s-armhf"
	}
	return "k3s"
}

// ChecksumAsset is the checksum file of an architecture ("sha256sum-arm.txt").
func ChecksumAsset(arch string) string { return "sha256sum-" + arch + ".txt" }

// ImageAssets are the airgap image tarballs of an architecture.
func ImageAssets(arch string) []string {
	base := "k3s-airgap-images-" + arch
	return []string{base + ".tar", base + ".tar.gz", base + ".tar.zst"}
}

// BinaryPath is where Build put the binary of a version and architecture.
func BinaryPath(dir, version, arch string) string {
	return filepath.Join(dir, version, Asset(arch))
}

func checkArch(t testing.TB, arch string) {
	switch arch {
	case "amd64", "arm64", "arm":
	default:
		t.Fatalf("mirror: unsupported architecture %q (want amd64, arm64 or arm)", arch)
	}
}

// Build writes, for every version, dir/<version>/<asset> for each arch,
// the airgap image tarballs and dir/<version>/sha256sum-<arch>.txt listing
// them all. Binaries come from Binary, so they are built once per process
// and kept across runs.
func Build(t testing.TB, dir string, versions []string, arches []string) {
	t.Helper()
	type job struct{ version, arch string }
	var jobs []job
	for _, v := range versions {
		for _, a := range arches {
			checkArch(t, a)
			jobs = append(jobs, job{v, a})
		}
	}
	paths := make([]string, len(jobs))
	errs := make([]error, len(jobs))
	sem := make(chan struct{}, 2)
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			paths[i], errs[i] = binary(j.version, j.arch)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("mirror: build %s for %s: %v", jobs[i].version, jobs[i].arch, err)
		}
	}
	sums := map[string][]string{} // version/arch -> lines
	for i, j := range jobs {
		vdir := filepath.Join(dir, j.version)
		if err := os.MkdirAll(vdir, 0o755); err != nil {
			t.Fatal(err)
		}
		key := j.version + "/" + j.arch
		sum, err := copyFile(paths[i], filepath.Join(vdir, Asset(j.arch)), 0o755)
		if err != nil {
			t.Fatalf("mirror: %v", err)
		}
		for _, img := range ImageAssets(j.arch) {
			data := imageTarball(j.version, j.arch, img)
			if err := os.WriteFile(filepath.Join(vdir, img), data, 0o644); err != nil {
				t.Fatal(err)
			}
			d := sha256.Sum256(data)
			sums[key] = append(sums[key], hex.EncodeToString(d[:])+"  "+img)
		}
		sums[key] = append(sums[key], sum+"  "+Asset(j.arch))
	}
	for key, lines := range sums {
		version, arch, _ := strings.Cut(key, "/")
		content := strings.Join(lines, "\n") + "\n"
		if err := os.WriteFile(filepath.Join(dir, version, ChecksumAsset(arch)), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Binary returns the path of a simulator binary built as version for arch.
// The file is shared between tests: copy it, do not change it.
func Binary(t testing.TB, version, arch string) string {
	t.Helper()
	checkArch(t, arch)
	p, err := binary(version, arch)
	if err != nil {
		t.Fatalf("mirror: build %s for %s: %v", version, arch, err)
	}
	return p
}

func copyFile(src, dst string, mode os.FileMode) (string, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(out, h), in); err != nil {
		out.Close()
		return "", err
	}
	if err := out.Close(); err != nil {
		return "", err
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), os.Rename(tmp, dst)
}

// imageTarball is a small, valid tarball standing in for the airgap images,
// compressed as its name says. Its content names the version, so versions
// differ in checksum as real releases do.
func imageTarball(version, arch, name string) []byte {
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	body := []byte(fmt.Sprintf(`[{"Config":"config.json","RepoTags":["rancher/k3s-sim-images:%s-%s"],"Layers":[]}]`, strings.ReplaceAll(version, "+", "-"), arch))
	_ = tw.WriteHeader(&tar.Header{Name: "manifest.json", Mode: 0o644, Size: int64(len(body)), ModTime: time.Unix(0, 0)})
	_, _ = tw.Write(body)
	_ = tw.Close()
	switch {
	case strings.HasSuffix(name, ".tar.gz"):
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		_, _ = zw.Write(raw.Bytes())
		_ = zw.Close()
		return gz.Bytes()
	case strings.HasSuffix(name, ".tar.zst"):
		return zstdStored(raw.Bytes())
	}
	return raw.Bytes()
}

// zstdStored wraps data in a valid zstd frame of uncompressed blocks, so
// that zstd -d and any decoder read it without a compressor here.
func zstdStored(data []byte) []byte {
	const maxBlock = 128 << 10
	out := []byte{0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x38} // magic, no checksum, window 128 KiB
	for first := true; first || len(data) > 0; first = false {
		n := min(len(data), maxBlock)
		last := 0
		if n == len(data) {
			last = 1
		}
		h := uint32(n)<<3 | uint32(last) // block type 0: raw
		out = append(out, byte(h), byte(h>>8), byte(h>>16))
		out = append(out, data[:n]...)
		data = data[n:]
	}
	return out
}

// Mirror is a running release server.
type Mirror struct {
	// URL is the server's base address, http://127.0.0.1:<port>.
	URL string
	// DownloadURL is the base of binary and checksum downloads:
	// DownloadURL + "/<version>/<asset>".
	DownloadURL string
	// ChannelURL is the base of channel lookups: ChannelURL + "/<channel>".
	ChannelURL string

	dir      string
	mu       sync.Mutex
	channels map[string]string
	counts   map[string]int
}

// Option changes how Start sets up a mirror.
type Option func(*Mirror)

// WithChannel points a channel (stable, latest, testing, v1.NN) at a
// version, replacing what Start derives from the versions in dir.
func WithChannel(channel, version string) Option {
	return func(m *Mirror) { m.channels[channel] = version }
}

// Start serves dir (as filled by Build) on 127.0.0.1 until the test ends.
// Channels default to what update.k3s.io would say for the versions in dir:
// stable and latest the newest release, testing the newest including
// release candidates, v1.NN the newest patch of each minor.
func Start(t testing.TB, dir string, opts ...Option) *Mirror {
	t.Helper()
	m := &Mirror{dir: dir, channels: defaultChannels(dir), counts: map[string]int{}}
	for _, o := range opts {
		o(m)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mirror: listen: %v", err)
	}
	srv := &http.Server{Handler: m, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	m.URL = "http://" + ln.Addr().String()
	m.DownloadURL = m.URL + "/download"
	m.ChannelURL = m.URL + "/v1-release/channels"
	return m
}

// SetChannel points a channel at a version; an empty version removes it.
func (m *Mirror) SetChannel(channel, version string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if version == "" {
		delete(m.channels, channel)
		return
	}
	m.channels[channel] = version
}

// Channels returns the current channel table.
func (m *Mirror) Channels() map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]string, len(m.channels))
	for k, v := range m.channels {
		out[k] = v
	}
	return out
}

// Requests says how many requests reached a path, as decoded ("+" and
// "%2B" count as the same path), whatever the answer was.
func (m *Mirror) Requests(path string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.counts[path]
}

// AllRequests returns the request count of every path asked for.
func (m *Mirror) AllRequests() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]int, len(m.counts))
	for k, v := range m.counts {
		out[k] = v
	}
	return out
}

// Total is the number of requests of any kind.
func (m *Mirror) Total() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, v := range m.counts {
		n += v
	}
	return n
}

// ResetRequests forgets all counts.
func (m *Mirror) ResetRequests() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.counts = map[string]int{}
}

func (m *Mirror) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	m.mu.Lock()
	m.counts[p]++
	m.mu.Unlock()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.NotFound(w, r)
		return
	}
	switch {
	case strings.HasPrefix(p, "/download/"):
		version, asset, ok := strings.Cut(strings.TrimPrefix(p, "/download/"), "/")
		if !ok || !safeName(version) || !safeName(asset) {
			http.NotFound(w, r)
			return
		}
		f, err := os.Open(filepath.Join(m.dir, version, asset))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil || st.IsDir() {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		http.ServeContent(w, r, asset, st.ModTime(), f)
	case strings.HasPrefix(p, "/v1-release/channels/"):
		ch := strings.TrimPrefix(p, "/v1-release/channels/")
		m.mu.Lock()
		v, ok := m.channels[ch]
		m.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Location", m.URL+"/releases/tag/"+v)
		w.WriteHeader(http.StatusFound)
	case strings.HasPrefix(p, "/releases/tag/"):
		v := strings.TrimPrefix(p, "/releases/tag/")
		if !safeName(v) {
			http.NotFound(w, r)
			return
		}
		if st, err := os.Stat(filepath.Join(m.dir, v)); err != nil || !st.IsDir() {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!DOCTYPE html><html><head><title>Release %s · k3s-io/k3s</title></head><body>%s</body></html>\n", v, v)
	default:
		http.NotFound(w, r)
	}
}

func safeName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, `/\`)
}

// release is a parsed K3s version, enough to order them.
type release struct {
	raw                 string
	major, minor, patch int
	rc                  int // 0 for a release
	k3s                 int
}

func parseRelease(s string) (release, bool) {
	r := release{raw: s}
	core, build, ok := strings.Cut(strings.TrimPrefix(s, "v"), "+")
	if !ok || !strings.HasPrefix(build, "k3s") {
		return r, false
	}
	var err error
	if r.k3s, err = strconv.Atoi(strings.TrimPrefix(build, "k3s")); err != nil {
		return r, false
	}
	core, pre, hasPre := strings.Cut(core, "-")
	if hasPre {
		if r.rc, err = strconv.Atoi(strings.TrimPrefix(pre, "rc")); err != nil || !strings.HasPrefix(pre, "rc") {
			return r, false
		}
	}
	parts := strings.Split(core, ".")
	if len(parts) != 3 {
		return r, false
	}
	nums := []*int{&r.major, &r.minor, &r.patch}
	for i, p := range parts {
		if *nums[i], err = strconv.Atoi(p); err != nil {
			return r, false
		}
	}
	return r, true
}

func (a release) less(b release) bool {
	if a.major != b.major {
		return a.major < b.major
	}
	if a.minor != b.minor {
		return a.minor < b.minor
	}
	if a.patch != b.patch {
		return a.patch < b.patch
	}
	if (a.rc == 0) != (b.rc == 0) {
		return a.rc != 0 // a release candidate comes before its release
	}
	if a.rc != b.rc {
		return a.rc < b.rc
	}
	return a.k3s < b.k3s
}

func defaultChannels(dir string) map[string]string {
	entries, _ := os.ReadDir(dir)
	var all []release
	for _, e := range entries {
		if r, ok := parseRelease(e.Name()); ok && e.IsDir() {
			all = append(all, r)
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].less(all[j]) })
	ch := map[string]string{}
	for _, r := range all {
		ch["testing"] = r.raw
		minor := fmt.Sprintf("v%d.%d", r.major, r.minor)
		if r.rc == 0 {
			ch["stable"], ch["latest"], ch[minor] = r.raw, r.raw, r.raw
		} else if _, ok := ch[minor]; !ok {
			ch[minor] = r.raw
		}
	}
	return ch
}
