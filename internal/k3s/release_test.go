package k3s

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeReleases serves a channel server and a release download area on
// 127.0.0.1, counting requests per path.
type fakeReleases struct {
	srv    *httptest.Server
	mu     sync.Mutex
	hits   map[string]int
	raw    []string          // request URIs as sent
	files  map[string][]byte // path (unescaped) → body
	delay  time.Duration     // before the body of an asset
	status map[string]int    // path → status to answer instead
}

const testVersion = "v1.31.4+k3s1"

func newFakeReleases(t *testing.T) *fakeReleases {
	f := &fakeReleases{hits: map[string]int{}, files: map[string][]byte{}, status: map[string]int{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeReleases) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.hits[r.URL.Path]++
	f.raw = append(f.raw, r.RequestURI)
	body, ok := f.files[r.URL.Path]
	status := f.status[r.URL.Path]
	delay := f.delay
	f.mu.Unlock()
	switch {
	case status != 0:
		w.WriteHeader(status)
	case strings.HasPrefix(r.URL.Path, "/channels/"):
		ch := strings.TrimPrefix(r.URL.Path, "/channels/")
		v := map[string]string{"stable": testVersion, "latest": "v1.32.4-rc1+k3s1", "v1.30": "v1.30.10+k3s2"}[ch]
		if v == "" {
			http.NotFound(w, r)
			return
		}
		// Pointing at this server shows whether the redirect is followed.
		w.Header().Set("Location", f.srv.URL+"/releases/tag/"+strings.ReplaceAll(v, "+", "%2B"))
		w.WriteHeader(http.StatusFound)
	case ok:
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.WriteHeader(http.StatusOK)
		if delay > 0 {
			w.(http.Flusher).Flush()
			time.Sleep(delay)
		}
		w.Write(body)
	default:
		http.NotFound(w, r)
	}
}

// set changes what a path serves; the server reads under the same lock.
func (f *fakeReleases) set(path string, body []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.files[path] = body
}

func (f *fakeReleases) get(path string) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.files[path]
}

func (f *fakeReleases) setDelay(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.delay = d
}

func (f *fakeReleases) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.raw...)
}

func (f *fakeReleases) count(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hits[path]
}

func (f *fakeReleases) release() Release {
	return Release{DownloadURL: f.srv.URL + "/download", ChannelURL: f.srv.URL + "/channels", HTTP: f.srv.Client()}
}

// publish puts an asset and a checksum file listing it (plus lookalike
// names) under version.
func (f *fakeReleases) publish(version string, arch Arch, asset string, body []byte) string {
	sum := sha256.Sum256(body)
	h := hex.EncodeToString(sum[:])
	f.mu.Lock()
	defer f.mu.Unlock()
	base := "/download/" + version + "/"
	f.files[base+asset] = body
	sums := string(f.files[base+arch.ChecksumAsset()])
	sums += h + "  " + asset + "\n"
	sums += strings.Repeat("0", 64) + "  " + asset + ".sig\n"
	f.files[base+arch.ChecksumAsset()] = []byte(sums)
	return h
}

func TestResolveChannel(t *testing.T) {
	f := newFakeReleases(t)
	rel := f.release()
	for ch, want := range map[string]string{"stable": testVersion, "latest": "v1.32.4-rc1+k3s1", "v1.30": "v1.30.10+k3s2"} {
		v, err := rel.ResolveChannel(context.Background(), ch)
		if err != nil || v.String() != want {
			t.Errorf("ResolveChannel(%s) = %v, %v; want %s", ch, v, err, want)
		}
	}
	for _, uri := range f.requests() {
		if strings.HasPrefix(uri, "/releases/") {
			t.Errorf("the redirect to %s was followed", uri)
		}
	}
	if _, err := rel.ResolveChannel(context.Background(), "v1.99"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("unknown minor channel: %v", err)
	}
	n := len(f.requests())
	if _, err := rel.ResolveChannel(context.Background(), "nightly"); err == nil {
		t.Error("accepted a channel that does not exist")
	}
	if len(f.requests()) != n {
		t.Error("asked the server about a channel name that cannot exist")
	}
}

func TestResolveChannelBadAnswers(t *testing.T) {
	for name, h := range map[string]http.HandlerFunc{
		"200":             func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("v1.31.4+k3s1")) },
		"302-no-location": func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusFound) },
		"302-not-a-version": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Location", "https://github.com/k3s-io/k3s/releases")
			w.WriteHeader(http.StatusFound)
		},
	} {
		srv := httptest.NewServer(h)
		_, err := Release{ChannelURL: srv.URL}.ResolveChannel(context.Background(), "stable")
		if err == nil || !strings.Contains(err.Error(), `channel "stable"`) {
			t.Errorf("%s: err = %v", name, err)
		}
		srv.Close()
	}
}

func TestResolve(t *testing.T) {
	f := newFakeReleases(t)
	rel := f.release()
	v, err := rel.Resolve(context.Background(), "v1.29.1+k3s2")
	if err != nil || v.String() != "v1.29.1+k3s2" || len(f.requests()) != 0 {
		t.Errorf("explicit version: %v %v, %d requests", v, err, len(f.requests()))
	}
	v, err = rel.Resolve(context.Background(), "")
	if err != nil || v.String() != testVersion {
		t.Errorf("empty means stable: %v %v", v, err)
	}
	if _, err := rel.Resolve(context.Background(), "1.31"); err == nil || !strings.Contains(err.Error(), "neither") {
		t.Errorf("bad input: %v", err)
	}
}

func TestParseVersionOrChannel(t *testing.T) {
	for in, wantCh := range map[string]string{"": "stable", "stable": "stable", "latest": "latest", "testing": "testing", "v1.31": "v1.31"} {
		v, ch, err := ParseVersionOrChannel(in)
		if err != nil || ch != wantCh || !v.IsZero() {
			t.Errorf("%q: %v %q %v", in, v, ch, err)
		}
	}
	v, ch, err := ParseVersionOrChannel("v1.31.4+k3s1")
	if err != nil || ch != "" || v.String() != "v1.31.4+k3s1" {
		t.Errorf("version: %v %q %v", v, ch, err)
	}
	for _, bad := range []string{"v1", "1.31", "stabel", "v1.31.4", "v1.31.x"} {
		if _, _, err := ParseVersionOrChannel(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestAssetURL(t *testing.T) {
	v := MustParseVersion("v1.31.4+k3s1")
	if got := (Release{}).AssetURL(v, "k3s-arm64"); got != "https://github.com/k3s-io/k3s/releases/download/v1.31.4%2Bk3s1/k3s-arm64" {
		t.Errorf("default AssetURL = %s", got)
	}
	if got := (Release{DownloadURL: "http://mirror/k3s/"}).AssetURL(v, "sha256sum-arm.txt"); got != "http://mirror/k3s/v1.31.4%2Bk3s1/sha256sum-arm.txt" {
		t.Errorf("mirror AssetURL = %s", got)
	}
}
