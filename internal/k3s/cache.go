package k3s

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/k3sctl/k3sctl/internal/filelock"
	"hash"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Cache keeps verified release assets on the workstation, under
// <Dir>/<version>/<arch>/<asset>, so that installing a hundred nodes
// downloads K3s once, and a second run downloads nothing.
//
// Beside each asset, <asset>.sha256 records the hash that was verified
// against the release's checksum file. A cached asset is used only while its
// bytes still have that hash; the network is not asked.
//
// Concurrent callers, in one process or several, download an asset once: a
// lock file per asset serialises processes, and callers within the process
// queue on the asset before taking it. Use a Cache through a pointer.
type Cache struct {
	// Dir is the cache root; empty means DefaultCacheDir.
	Dir string
	// Downloading, when set, is told the asset's name just before it is
	// downloaded; a cache hit downloads nothing and tells nothing.
	Downloading func(asset string)

	mu    sync.Mutex
	slots map[string]chan struct{}
}

// DefaultCacheDir is $XDG_CACHE_HOME/k3sctl, or ~/.cache/k3sctl.
func DefaultCacheDir() (string, error) {
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "k3sctl"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find the download cache: %w (set XDG_CACHE_HOME)", err)
	}
	return filepath.Join(home, ".cache", "k3sctl"), nil
}

// Binary returns the path and sha256 of the verified k3s binary for version
// and arch, downloading it if the cache does not hold it. progress, if not
// nil, is told how many bytes arrived; total is -1 when the server did not
// say.
func (c *Cache) Binary(ctx context.Context, rel Release, v Version, arch Arch, progress func(done, total int64)) (string, string, error) {
	return c.fetch(ctx, rel, v, arch, arch.BinaryAsset(), BinaryMode, progress)
}

// airgapImageExts are the forms the image tarballs are released in, all of
// which K3s imports from ImagesDir.
var airgapImageExts = []string{"tar", "tar.gz", "tar.zst"}

// AirgapImages returns the path and sha256 of the verified image tarball for
// version and arch; ext is "tar", "tar.gz" or "tar.zst".
func (c *Cache) AirgapImages(ctx context.Context, rel Release, v Version, arch Arch, ext string, progress func(done, total int64)) (string, string, error) {
	ok := false
	for _, e := range airgapImageExts {
		ok = ok || e == ext
	}
	if !ok {
		return "", "", fmt.Errorf("airgap images come as %s, not %q", strings.Join(airgapImageExts, ", "), ext)
	}
	return c.fetch(ctx, rel, v, arch, arch.AirgapImagesAsset(ext), 0o644, progress)
}

// LocalBinary checks a k3s binary the user brought (air-gapped sites) and
// returns its sha256, which then stands for the binary the way a release
// checksum does.
func LocalBinary(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("k3s binary: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("k3s binary: %w", err)
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("k3s binary %s: not a regular file", path)
	}
	if st.Size() == 0 {
		return "", fmt.Errorf("k3s binary %s: file is empty", path)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("k3s binary %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func (c *Cache) root() (string, error) {
	if c.Dir != "" {
		return c.Dir, nil
	}
	return DefaultCacheDir()
}

func (c *Cache) fetch(ctx context.Context, rel Release, v Version, arch Arch, asset string, mode os.FileMode, progress func(done, total int64)) (string, string, error) {
	if v.IsZero() {
		return "", "", errors.New("download K3s: no version given (resolve the channel first)")
	}
	if _, err := ArchFromUname(string(arch)); err != nil {
		return "", "", fmt.Errorf("download K3s: %w", err)
	}
	root, err := c.root()
	if err != nil {
		return "", "", err
	}
	dir := filepath.Join(root, v.String(), string(arch))
	target := filepath.Join(dir, asset)

	release, err := c.claim(ctx, target)
	if err != nil {
		return "", "", err
	}
	defer release()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("download cache: %w", err)
	}
	unlock, err := lockPath(ctx, target+".lock")
	if err != nil {
		return "", "", fmt.Errorf("download cache: lock %s: %w", target, err)
	}
	defer unlock()

	if sum, ok := cachedSum(target); ok {
		return target, sum, nil
	}
	if c.Downloading != nil {
		c.Downloading(asset)
	}
	want, err := c.expectedSum(ctx, rel, v, arch, asset)
	if err != nil {
		return "", "", err
	}
	if err := download(ctx, rel, rel.AssetURL(v, asset), target, want, mode, progress); err != nil {
		return "", "", err
	}
	return target, want, nil
}

// claim makes callers in this process take turns on one asset. The first
// one downloads; the others then find it cached. A turn is a one-slot
// channel so that waiting can give up with the context.
func (c *Cache) claim(ctx context.Context, key string) (func(), error) {
	c.mu.Lock()
	if c.slots == nil {
		c.slots = map[string]chan struct{}{}
	}
	slot, ok := c.slots[key]
	if !ok {
		slot = make(chan struct{}, 1)
		c.slots[key] = slot
	}
	c.mu.Unlock()
	select {
	case slot <- struct{}{}:
		return func() { <-slot }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func sumPath(target string) string { return target + ".sha256" }

// cachedSum returns the recorded hash of a cached asset if the file still
// has it. Anything else (no record, a truncated or changed file) removes
// both so the asset is fetched again. The file is hashed once; after that
// a stamp of its size and modification time stands for the hash until
// either changes.
func cachedSum(target string) (string, bool) {
	rec, err := os.ReadFile(sumPath(target))
	if err != nil {
		return "", false
	}
	f := strings.Fields(string(rec))
	if len(f) == 0 || !isSHA256(f[0]) {
		_ = os.Remove(sumPath(target))
		return "", false
	}
	if stampMatches(target, f[0]) {
		return f[0], true
	}
	got, err := fileSHA256(target)
	if err != nil || got != f[0] {
		_ = os.Remove(target)
		_ = os.Remove(sumPath(target))
		_ = os.Remove(stampPath(target))
		return "", false
	}
	writeStamp(target, got)
	return got, true
}

func stampPath(target string) string { return target + ".stamp" }

// stamp is what stands for a file's content between runs.
func stamp(st os.FileInfo, sum string) string {
	return fmt.Sprintf("%d %d %s\n", st.Size(), st.ModTime().UnixNano(), sum)
}

// stampMatches reports whether target is, by size and modification time,
// the file that was hashed to sum.
func stampMatches(target, sum string) bool {
	rec, err := os.ReadFile(stampPath(target))
	if err != nil {
		return false
	}
	st, err := os.Stat(target)
	if err != nil || !st.Mode().IsRegular() {
		return false
	}
	return string(rec) == stamp(st, sum)
}

// writeStamp records target's size and modification time beside its
// hash; failing to is only slower next time.
func writeStamp(target, sum string) {
	if st, err := os.Stat(target); err == nil {
		_ = writeFileAtomic(stampPath(target), []byte(stamp(st, sum)), 0o644)
	}
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func isSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

// expectedSum fetches the release's checksum file and picks the line of the
// asset.
func (c *Cache) expectedSum(ctx context.Context, rel Release, v Version, arch Arch, asset string) (string, error) {
	u := rel.AssetURL(v, arch.ChecksumAsset())
	resp, err := get(ctx, rel, u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("download %s: %w", u, err)
	}
	sum, err := ChecksumFor(body, asset)
	if err != nil {
		return "", fmt.Errorf("%s: %w", u, err)
	}
	return sum, nil
}

// ChecksumFor finds the sha256 of asset in the output of sha256sum. Only a
// line whose file name is exactly asset counts: the checksum files list the
// binary next to image tarballs whose names start the same way.
func ChecksumFor(sums []byte, asset string) (string, error) {
	sc := bufio.NewScanner(bytes.NewReader(sums))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 || strings.TrimPrefix(f[1], "*") != asset {
			continue
		}
		sum := strings.ToLower(f[0])
		if !isSHA256(sum) {
			return "", fmt.Errorf("checksum line for %s is malformed: %q", asset, sc.Text())
		}
		return sum, nil
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("no checksum for %s; refusing to use a download that cannot be verified", asset)
}

func get(ctx context.Context, rel Release, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", u, err)
	}
	resp, err := rel.client().Do(req)
	if err != nil {
		return nil, fmt.Errorf("download %s: %w\nhint: on a site without internet access, pass the binary with --k3s-binary", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		err := fmt.Errorf("download %s: %w: %s", u, errHTTPStatus, resp.Status)
		if resp.StatusCode == http.StatusNotFound {
			err = fmt.Errorf("%w\nhint: check that the version exists and is released for this architecture", err)
		}
		return nil, err
	}
	return resp, nil
}

// download stores the asset at target only once its bytes match want. The
// bytes go to a temporary file beside target and are renamed into place, so
// a reader never sees half a file.
func download(ctx context.Context, rel Release, u, target, want string, mode os.FileMode, progress func(done, total int64)) error {
	dir, base := filepath.Split(target)
	// Left over by a process that died mid-download; the lock says no one
	// else is writing them now.
	if old, _ := filepath.Glob(filepath.Join(dir, "."+base+".*.part")); len(old) > 0 {
		for _, p := range old {
			_ = os.Remove(p)
		}
	}
	resp, err := get(ctx, rel, u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()

	tmp, err := os.CreateTemp(dir, "."+base+".*.part")
	if err != nil {
		return fmt.Errorf("download cache: %w", err)
	}
	defer func() {
		if tmp != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	w := &progressWriter{w: io.MultiWriter(tmp, h), total: resp.ContentLength, report: progress}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return fmt.Errorf("download %s: %w", u, err)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return fmt.Errorf("download %s: got %d of %d bytes", u, n, resp.ContentLength)
	}
	if got := hexSum(h); got != want {
		return fmt.Errorf("download %s: sha256 mismatch: got %s, the release's checksum file says %s; the download is corrupt or was tampered with, so it was discarded", u, got, want)
	}
	if err := tmp.Chmod(mode); err != nil {
		return fmt.Errorf("download cache: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("download cache: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("download cache: %w", err)
	}
	if err := os.Rename(tmp.Name(), target); err != nil {
		return fmt.Errorf("download cache: %w", err)
	}
	tmp = nil
	// The record goes last: an asset without one is fetched again, never
	// trusted.
	if err := writeFileAtomic(sumPath(target), []byte(want+"  "+base+"\n"), 0o644); err != nil {
		return fmt.Errorf("download cache: %w", err)
	}
	writeStamp(target, want)
	return nil
}

func hexSum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.part")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

type progressWriter struct {
	w      io.Writer
	done   int64
	total  int64
	report func(done, total int64)
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.done += int64(n)
	if p.report != nil {
		p.report(p.done, p.total)
	}
	return n, err
}

// lockPath takes an exclusive lock on a lock file shared by every k3sctl
// process on the workstation. The file stays after unlocking: removing it
// would let a waiter lock a file that is no longer the lock.
func lockPath(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		ok, err := filelock.TryLock(f)
		if err != nil {
			f.Close()
			return nil, err
		}
		if ok {
			return func() { filelock.Unlock(f); f.Close() }, nil
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// errHTTPStatus marks downloads answered with anything but 200.
var errHTTPStatus = errors.New("unexpected HTTP status")
