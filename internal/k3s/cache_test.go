package k3s

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var v1314 = MustParseVersion(testVersion)

func binaryBody(n int) []byte {
	return bytes.Repeat([]byte("\x7fELF k3s binary "), n)
}

func TestCacheBinaryDownloadsOnceAndVerifies(t *testing.T) {
	f := newFakeReleases(t)
	body := binaryBody(5000)
	want := f.publish(testVersion, AMD64, "k3s", body)
	var told []string
	c := &Cache{Dir: t.TempDir(), Downloading: func(asset string) { told = append(told, asset) }}

	var last, total int64 = -1, -2
	path, sum, err := c.Binary(context.Background(), f.release(), v1314, AMD64, func(done, tot int64) {
		if done < last {
			t.Errorf("progress went back from %d to %d", last, done)
		}
		last, total = done, tot
	})
	if err != nil {
		t.Fatal(err)
	}
	if sum != want {
		t.Errorf("sha256 = %s, want %s", sum, want)
	}
	if wantPath := filepath.Join(c.Dir, testVersion, "amd64", "k3s"); path != wantPath {
		t.Errorf("path = %s, want %s", path, wantPath)
	}
	if last != int64(len(body)) || total != int64(len(body)) {
		t.Errorf("last progress %d of %d, want %d of %d", last, total, len(body), len(body))
	}
	got, _ := os.ReadFile(path)
	if !bytes.Equal(got, body) {
		t.Error("cached bytes differ from the release")
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o755 {
		t.Errorf("binary mode %v, want 0755", st.Mode().Perm())
	}
	for _, p := range []string{"/download/v1.31.4+k3s1/k3s", "/download/v1.31.4+k3s1/sha256sum-amd64.txt"} {
		if n := f.count(p); n != 1 {
			t.Errorf("%s fetched %d times, want 1", p, n)
		}
	}
	for _, uri := range f.requests() {
		if strings.Contains(uri, "+") {
			t.Errorf("request %s has a raw +; want %%2B", uri)
		}
	}
	assertNoPartFiles(t, filepath.Dir(path))

	// Second use: no network at all.
	f.srv.Close()
	path2, sum2, err := c.Binary(context.Background(), f.release(), v1314, AMD64, nil)
	if err != nil || path2 != path || sum2 != want {
		t.Fatalf("cache hit with the server gone: %s %s %v", path2, sum2, err)
	}
	// Also from a new Cache value (a later k3sctl run).
	if _, _, err := (&Cache{Dir: c.Dir, Downloading: c.Downloading}).Binary(context.Background(), f.release(), v1314, AMD64, nil); err != nil {
		t.Fatalf("cache hit from a new process: %v", err)
	}
	// Only the download was told, not the hits.
	if len(told) != 1 || told[0] != "k3s" {
		t.Errorf("Downloading told %q, want once, of k3s", told)
	}
}

func assertNoPartFiles(t *testing.T, dir string) {
	t.Helper()
	parts, _ := filepath.Glob(filepath.Join(dir, "*.part"))
	if len(parts) > 0 {
		t.Errorf("temporary files left: %v", parts)
	}
}

func TestCacheRefetchesChangedFile(t *testing.T) {
	f := newFakeReleases(t)
	body := binaryBody(100)
	f.publish(testVersion, ARM64, "k3s-arm64", body)
	c := &Cache{Dir: t.TempDir()}
	path, _, err := c.Binary(context.Background(), f.release(), v1314, ARM64, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A truncated or tampered cache entry is not trusted.
	if err := os.WriteFile(path, []byte("tampered"), 0o755); err != nil {
		t.Fatal(err)
	}
	path, _, err = c.Binary(context.Background(), f.release(), v1314, ARM64, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, body) {
		t.Error("tampered cache entry was used")
	}
	if n := f.count("/download/v1.31.4+k3s1/k3s-arm64"); n != 2 {
		t.Errorf("downloaded %d times, want 2", n)
	}
	// A file without its record of verification is not trusted either.
	os.Remove(path + ".sha256")
	if _, _, err := c.Binary(context.Background(), f.release(), v1314, ARM64, nil); err != nil {
		t.Fatal(err)
	}
	if n := f.count("/download/v1.31.4+k3s1/k3s-arm64"); n != 3 {
		t.Errorf("downloaded %d times, want 3", n)
	}
}

func TestCacheChecksumMismatch(t *testing.T) {
	f := newFakeReleases(t)
	good := f.publish(testVersion, AMD64, "k3s", binaryBody(10))
	f.set("/download/v1.31.4+k3s1/k3s", []byte("evil"))
	evil := sha256.Sum256([]byte("evil"))
	c := &Cache{Dir: t.TempDir()}
	_, _, err := c.Binary(context.Background(), f.release(), v1314, AMD64, nil)
	if err == nil {
		t.Fatal("a download with the wrong hash was accepted")
	}
	for _, want := range []string{good, hex.EncodeToString(evil[:]), f.srv.URL + "/download/v1.31.4%2Bk3s1/k3s"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
	dir := filepath.Join(c.Dir, testVersion, "amd64")
	if _, err := os.Stat(filepath.Join(dir, "k3s")); !errors.Is(err, fs.ErrNotExist) {
		t.Error("the bad download was stored")
	}
	assertNoPartFiles(t, dir)
}

func TestCacheChecksumLineMustMatchExactly(t *testing.T) {
	f := newFakeReleases(t)
	body := binaryBody(10)
	// Only lookalikes: images for the same arch and the arm64 binary.
	f.publish(testVersion, AMD64, "k3s-airgap-images-amd64.tar.gz", []byte("images"))
	f.set("/download/v1.31.4+k3s1/k3s", body)
	sums := string(f.get("/download/v1.31.4+k3s1/sha256sum-amd64.txt"))
	sum := sha256.Sum256(body)
	sums += hex.EncodeToString(sum[:]) + "  k3s-arm64\n" + hex.EncodeToString(sum[:]) + "  dist/k3s\n"
	f.set("/download/v1.31.4+k3s1/sha256sum-amd64.txt", []byte(sums))

	_, _, err := (&Cache{Dir: t.TempDir()}).Binary(context.Background(), f.release(), v1314, AMD64, nil)
	if err == nil || !strings.Contains(err.Error(), "no checksum for k3s") {
		t.Errorf("err = %v, want no checksum for k3s", err)
	}
	if n := f.count("/download/v1.31.4+k3s1/k3s"); n != 0 {
		t.Errorf("downloaded the binary %d times without a checksum to check it against", n)
	}
}

func TestChecksumFor(t *testing.T) {
	h := strings.Repeat("ab", 32)
	sums := []byte("# comment\n" + strings.Repeat("cd", 32) + "  k3s-airgap-images-amd64.tar\n" + h + " *k3s\n")
	if got, err := ChecksumFor(sums, "k3s"); err != nil || got != h {
		t.Errorf("binary-mode line: %q %v", got, err)
	}
	if _, err := ChecksumFor([]byte("xyz  k3s\n"), "k3s"); err == nil {
		t.Error("malformed hash accepted")
	}
}

func TestCacheMissingRelease(t *testing.T) {
	f := newFakeReleases(t)
	_, _, err := (&Cache{Dir: t.TempDir()}).Binary(context.Background(), f.release(), MustParseVersion("v1.99.0+k3s1"), AMD64, nil)
	if err == nil || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "hint:") {
		t.Errorf("err = %v, want a 404 with a hint", err)
	}
	if _, _, err := (&Cache{Dir: t.TempDir()}).Binary(context.Background(), f.release(), Version{}, AMD64, nil); err == nil {
		t.Error("no version accepted")
	}
	if _, _, err := (&Cache{Dir: t.TempDir()}).Binary(context.Background(), f.release(), v1314, Arch("s390x"), nil); err == nil {
		t.Error("unsupported arch accepted")
	}
}

func TestCacheConcurrentCallersDownloadOnce(t *testing.T) {
	f := newFakeReleases(t)
	want := f.publish(testVersion, AMD64, "k3s", binaryBody(2000))
	f.setDelay(200 * time.Millisecond)
	dir := t.TempDir()
	shared := &Cache{Dir: dir}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := shared
			if i%2 == 1 {
				// Separate Cache values meet at the lock file instead.
				c = &Cache{Dir: dir}
			}
			_, sum, err := c.Binary(context.Background(), f.release(), v1314, AMD64, nil)
			if err == nil && sum != want {
				err = fmt.Errorf("sha256 %s, want %s", sum, want)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := f.count("/download/v1.31.4+k3s1/k3s"); n != 1 {
		t.Errorf("16 concurrent callers downloaded %d times, want 1", n)
	}
}

// TestCacheConcurrentProcessesDownloadOnce runs this test binary several
// times against one cache directory.
func TestCacheConcurrentProcessesDownloadOnce(t *testing.T) {
	if dir := os.Getenv("K3S_CACHE_TEST_DIR"); dir != "" {
		rel := Release{DownloadURL: os.Getenv("K3S_CACHE_TEST_URL")}
		if _, _, err := (&Cache{Dir: dir}).Binary(context.Background(), rel, v1314, AMD64, nil); err != nil {
			t.Fatal(err)
		}
		return
	}
	f := newFakeReleases(t)
	f.publish(testVersion, AMD64, "k3s", binaryBody(2000))
	f.setDelay(300 * time.Millisecond)
	dir := t.TempDir()
	var cmds []*exec.Cmd
	for range 4 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCacheConcurrentProcessesDownloadOnce$")
		cmd.Env = append(os.Environ(), "K3S_CACHE_TEST_DIR="+dir, "K3S_CACHE_TEST_URL="+f.release().DownloadURL)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Error(err)
		}
	}
	if n := f.count("/download/v1.31.4+k3s1/k3s"); n != 1 {
		t.Errorf("4 processes downloaded %d times, want 1", n)
	}
}

func TestCacheWaitGivesUpWithContext(t *testing.T) {
	f := newFakeReleases(t)
	f.publish(testVersion, AMD64, "k3s", binaryBody(10))
	f.setDelay(2 * time.Second)
	c := &Cache{Dir: t.TempDir()}
	first := make(chan error)
	go func() {
		_, _, err := c.Binary(context.Background(), f.release(), v1314, AMD64, nil)
		first <- err
	}()
	defer func() {
		if err := <-first; err != nil {
			t.Errorf("first caller: %v", err)
		}
	}()
	time.Sleep(100 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, _, err := c.Binary(ctx, f.release(), v1314, AMD64, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the context's", err)
	}
	if time.Since(start) > 1200*time.Millisecond {
		t.Error("waited for the other download despite the context")
	}
}

func TestCacheAirgapImages(t *testing.T) {
	f := newFakeReleases(t)
	want := f.publish(testVersion, ARM, "k3s-airgap-images-arm.tar.zst", []byte("zstd images"))
	f.publish(testVersion, ARM, "k3s-armhf", binaryBody(10))
	c := &Cache{Dir: t.TempDir()}
	path, sum, err := c.AirgapImages(context.Background(), f.release(), v1314, ARM, "tar.zst", nil)
	if err != nil || sum != want || filepath.Base(path) != "k3s-airgap-images-arm.tar.zst" {
		t.Fatalf("%s %s %v", path, sum, err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o644 {
		t.Errorf("images mode %v, want 0644", st.Mode().Perm())
	}
	if n := f.count("/download/v1.31.4+k3s1/sha256sum-arm.txt"); n != 1 {
		t.Errorf("checksum file for arm fetched %d times", n)
	}
	if _, _, err := c.AirgapImages(context.Background(), f.release(), v1314, ARM, "zip", nil); err == nil {
		t.Error("unknown image format accepted")
	}
}

func TestLocalBinary(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "k3s")
	if err := os.WriteFile(p, []byte("abc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if sum, err := LocalBinary(p); err != nil || sum != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Errorf("LocalBinary = %s, %v", sum, err)
	}
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o755)
	for _, bad := range []string{dir, empty, filepath.Join(dir, "missing")} {
		if _, err := LocalBinary(bad); err == nil {
			t.Errorf("LocalBinary(%s) accepted", bad)
		}
	}
}

func TestDefaultCacheDir(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", "/xdg/cache")
	if d, _ := DefaultCacheDir(); d != "/xdg/cache/k3sctl" {
		t.Errorf("with XDG_CACHE_HOME: %s", d)
	}
	home := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("HOME", home)
	if d, _ := DefaultCacheDir(); d != filepath.Join(home, ".cache", "k3sctl") {
		t.Errorf("without: %s", d)
	}
}
