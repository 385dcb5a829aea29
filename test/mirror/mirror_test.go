package mirror

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func get(t *testing.T, url string) (int, http.Header, []byte) {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func TestBuildAndServe(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the simulator for three architectures")
	}
	dir := t.TempDir()
	versions := []string{"v1.30.8+k3s1", "v1.31.4+k3s1"}
	Build(t, dir, versions, []string{"amd64", "arm64", "arm"})

	machines := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "arm": elf.EM_ARM}
	for arch, want := range machines {
		f, err := elf.Open(BinaryPath(dir, "v1.31.4+k3s1", arch))
		if err != nil {
			t.Fatalf("%s: %v", arch, err)
		}
		if f.Machine != want {
			t.Errorf("%s binary is for %v, want %v", arch, f.Machine, want)
		}
		f.Close()
	}
	out, err := exec.Command(BinaryPath(dir, "v1.30.8+k3s1", "amd64"), "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 || strings.Fields(lines[0])[2] != "v1.30.8+k3s1" || !strings.HasPrefix(lines[1], "go version go1.") {
		t.Errorf("k3s --version = %q", out)
	}

	// The checksum file lists every asset of its arch and nothing else.
	sums, err := os.ReadFile(filepath.Join(dir, "v1.31.4+k3s1", "sha256sum-arm.txt"))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(sums)), "\n") {
		sum, name, ok := strings.Cut(l, "  ")
		if !ok || len(sum) != 64 {
			t.Fatalf("bad checksum line %q", l)
		}
		names[name] = sum
	}
	for _, n := range append(ImageAssets("arm"), "k3s-armhf") {
		b, err := os.ReadFile(filepath.Join(dir, "v1.31.4+k3s1", n))
		if err != nil {
			t.Fatal(err)
		}
		d := sha256.Sum256(b)
		if names[n] != hex.EncodeToString(d[:]) {
			t.Errorf("checksum of %s = %q, file hashes to %x", n, names[n], d)
		}
	}
	if len(names) != 4 {
		t.Errorf("sha256sum-arm.txt lists %d assets, want 4: %v", len(names), names)
	}

	m := Start(t, dir, WithChannel("v1.30", "v1.30.8+k3s1"))
	code, _, body := get(t, m.DownloadURL+"/v1.31.4+k3s1/k3s-arm64")
	code2, _, body2 := get(t, m.DownloadURL+"/v1.31.4%2Bk3s1/k3s-arm64")
	want, _ := os.ReadFile(BinaryPath(dir, "v1.31.4+k3s1", "arm64"))
	if code != 200 || code2 != 200 || !bytes.Equal(body, want) || !bytes.Equal(body2, want) {
		t.Errorf("download: %d/%d, %d/%d bytes, want %d", code, code2, len(body), len(body2), len(want))
	}
	if n := m.Requests("/download/v1.31.4+k3s1/k3s-arm64"); n != 2 {
		t.Errorf("requests counted %d, want 2 (raw + and %%2B are one path)", n)
	}
	if code, _, _ := get(t, m.DownloadURL+"/v1.31.4+k3s1/sha256sum-amd64.txt"); code != 200 {
		t.Errorf("checksum download: %d", code)
	}

	for ch, v := range map[string]string{"stable": "v1.31.4+k3s1", "latest": "v1.31.4+k3s1", "v1.30": "v1.30.8+k3s1", "v1.31": "v1.31.4+k3s1"} {
		code, h, _ := get(t, m.ChannelURL+"/"+ch)
		if code != http.StatusFound || h.Get("Location") != m.URL+"/releases/tag/"+v {
			t.Errorf("channel %s: %d Location=%q, want 302 to tag %s", ch, code, h.Get("Location"), v)
		}
	}
	m.SetChannel("stable", "v1.30.8+k3s1")
	if _, h, _ := get(t, m.ChannelURL+"/stable"); !strings.HasSuffix(h.Get("Location"), "/v1.30.8+k3s1") {
		t.Errorf("after SetChannel, stable -> %q", h.Get("Location"))
	}
	if code, _, _ := get(t, m.URL+"/releases/tag/v1.30.8+k3s1"); code != 200 {
		t.Errorf("release page: %d", code)
	}
	for _, p := range []string{"/", "/download/v1.31.4+k3s1/nope", "/download/v9.9.9+k3s1/k3s", "/v1-release/channels/v1.99",
		"/download/v1.31.4+k3s1/../v1.30.8+k3s1/k3s", "/releases/download/v1.31.4+k3s1/k3s", "/download/v1.31.4+k3s1"} {
		if code, _, _ := get(t, m.URL+p); code != 404 {
			t.Errorf("GET %s = %d, want 404", p, code)
		}
	}
}

func TestImageTarballsAreValid(t *testing.T) {
	for _, name := range ImageAssets("amd64") {
		data := imageTarball("v1.31.4+k3s1", "amd64", name)
		var r io.Reader = bytes.NewReader(data)
		switch {
		case strings.HasSuffix(name, ".gz"):
			zr, err := gzip.NewReader(r)
			if err != nil {
				t.Fatal(err)
			}
			r = zr
		case strings.HasSuffix(name, ".zst"):
			if _, err := exec.LookPath("zstd"); err == nil {
				cmd := exec.Command("zstd", "-d", "-c")
				cmd.Stdin = bytes.NewReader(data)
				out, err := cmd.Output()
				if err != nil {
					t.Fatalf("zstd -d rejects %s: %v", name, err)
				}
				r = bytes.NewReader(out)
			} else {
				r = bytes.NewReader(unzstdStored(t, data))
			}
		}
		tr := tar.NewReader(r)
		h, err := tr.Next()
		if err != nil || h.Name != "manifest.json" {
			t.Errorf("%s: first entry %v, %v", name, h, err)
		}
	}
}

// unzstdStored reads back the raw-block frames zstdStored writes.
func unzstdStored(t *testing.T, b []byte) []byte {
	if len(b) < 6 || !bytes.Equal(b[:4], []byte{0x28, 0xB5, 0x2F, 0xFD}) {
		t.Fatal("no zstd magic")
	}
	b = b[6:]
	var out []byte
	for {
		if len(b) < 3 {
			t.Fatal("truncated block header")
		}
		h := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16
		n := int(h >> 3)
		if (h>>1)&3 != 0 || len(b) < 3+n {
			t.Fatalf("unexpected block header %x", h)
		}
		out = append(out, b[3:3+n]...)
		b = b[3+n:]
		if h&1 == 1 {
			return out
		}
	}
}

func TestDefaultChannels(t *testing.T) {
	dir := t.TempDir()
	for _, v := range []string{"v1.30.8+k3s1", "v1.31.4+k3s1", "v1.31.4+k3s2", "v1.32.1-rc1+k3s1", "not-a-version"} {
		if err := os.MkdirAll(filepath.Join(dir, v), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	got := defaultChannels(dir)
	want := map[string]string{"stable": "v1.31.4+k3s2", "latest": "v1.31.4+k3s2", "testing": "v1.32.1-rc1+k3s1",
		"v1.30": "v1.30.8+k3s1", "v1.31": "v1.31.4+k3s2", "v1.32": "v1.32.1-rc1+k3s1"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("channel %s = %q, want %q", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("channels %v, want %v", got, want)
	}
}
