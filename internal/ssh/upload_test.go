package ssh

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the test server runs commands as the current user; chown to root needs root")
	}
}

func randomFile(t *testing.T, size int64) (string, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "src")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), rand.Reader, size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return p, hex.EncodeToString(h.Sum(nil))
}

func TestUploadVerifiesMovesAndSkips(t *testing.T) {
	needRoot(t)
	ts := newTestSetup(t)
	c := dialTest(t, ts.opts)
	for _, streams := range []int{1, 3} {
		src, sum := randomFile(t, 20<<20+12345)
		dst := filepath.Join(t.TempDir(), "sub dir", "k3s")
		var last int64
		var calls int
		res, err := c.Upload(context.Background(), src, dst, UploadOptions{Mode: 0o755, Concurrency: streams,
			Progress: func(done, total int64) {
				if done < last || total != 20<<20+12345 {
					t.Errorf("progress %d/%d after %d", done, total, last)
				}
				last = done
				calls++
			}})
		if err != nil {
			t.Fatal(err)
		}
		if res.Skipped || res.SHA256 != sum || last != 20<<20+12345 || calls < 3 {
			t.Errorf("streams %d: %+v, progress ended at %d after %d calls", streams, res, last, calls)
		}
		got, _ := os.ReadFile(dst)
		want, _ := os.ReadFile(src)
		if !bytes.Equal(got, want) {
			t.Fatalf("streams %d: content differs", streams)
		}
		st, _ := os.Stat(dst)
		if st.Mode().Perm() != 0o755 {
			t.Errorf("mode %v", st.Mode())
		}
		entries, _ := os.ReadDir(filepath.Dir(dst))
		if len(entries) != 1 {
			t.Errorf("left behind: %v", entries)
		}

		// Same content, wrong mode: no transfer, mode put right.
		os.Chmod(dst, 0o600)
		before := len(ts.srv.ran())
		res, err = c.Upload(context.Background(), src, dst, UploadOptions{Mode: 0o755})
		if err != nil || !res.Skipped {
			t.Errorf("second upload: %+v %v", res, err)
		}
		if n := len(ts.srv.ran()) - before; n != 1 {
			t.Errorf("skipping took %d commands, want one", n)
		}
		if st, _ := os.Stat(dst); st.Mode().Perm() != 0o755 {
			t.Errorf("mode not repaired: %v", st.Mode())
		}
	}
}

func TestUploadOfEmptyAndSmallFiles(t *testing.T) {
	needRoot(t)
	ts := newTestSetup(t)
	c := dialTest(t, ts.opts)
	for _, size := range []int64{0, 1, 32 << 10, 32<<10 + 1} {
		src, _ := randomFile(t, size)
		dst := filepath.Join(t.TempDir(), "f")
		if _, err := c.Upload(context.Background(), src, dst, UploadOptions{}); err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		got, _ := os.ReadFile(dst)
		want, _ := os.ReadFile(src)
		if !bytes.Equal(got, want) {
			t.Errorf("size %d: content differs (%d bytes)", size, len(got))
		}
	}
}

func TestUploadCancelLeavesNothingBehind(t *testing.T) {
	needRoot(t)
	ts := newTestSetup(t)
	c := dialTest(t, ts.opts)
	src, _ := randomFile(t, 64<<20)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	_, err := c.Upload(ctx, src, filepath.Join(dir, "f"), UploadOptions{Progress: func(done, total int64) {
		if done > 8<<20 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}
}

func TestWriteFileIsAtomicIdempotentAndKeepsDataOffArgv(t *testing.T) {
	needRoot(t)
	ts := newTestSetup(t)
	c := dialTest(t, ts.opts)
	dst := filepath.Join(t.TempDir(), "etc", "config.yaml")
	data := []byte("token: K10secret-token-value\n$(danger) `x` 'q'\n")
	for i, want := range []bool{true, false} {
		changed, err := c.WriteFile(context.Background(), dst, data, 0o600)
		if err != nil || changed != want {
			t.Fatalf("write %d: changed %v, %v", i, changed, err)
		}
	}
	got, _ := os.ReadFile(dst)
	st, _ := os.Stat(dst)
	if !bytes.Equal(got, data) || st.Mode().Perm() != 0o600 {
		t.Errorf("%q %v", got, st.Mode())
	}
	if changed, err := c.WriteFile(context.Background(), dst, data, 0o644); err != nil || !changed {
		t.Errorf("mode change: %v %v", changed, err)
	}
	for _, cmd := range ts.srv.ran() {
		if strings.Contains(cmd, "secret-token-value") {
			t.Errorf("file content in a command line: %s", cmd)
		}
	}
	back, err := c.ReadFile(context.Background(), dst)
	if err != nil || !bytes.Equal(back, data) {
		t.Errorf("ReadFile: %q %v", back, err)
	}
	if _, err := c.ReadFile(context.Background(), dst+".missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// The caller's temporary name is where the content goes before the rename,
// so that two runs never write one temporary file.
func TestUploadUsesTheCallersTempName(t *testing.T) {
	needRoot(t)
	ts := newTestSetup(t)
	c := dialTest(t, ts.opts)
	src, _ := randomFile(t, 1<<20)
	dir := t.TempDir()
	dst := filepath.Join(dir, "k3s")
	var asked []string
	sawTemp := false
	tmp := filepath.Join(dir, ".k3sctl-0123456789abcdef-k3s.tmp")
	_, err := c.Upload(context.Background(), src, dst, UploadOptions{
		TempName: func(d, base string) string {
			asked = append(asked, d+"|"+base)
			return filepath.Join(d, ".k3sctl-0123456789abcdef-"+base+".tmp")
		},
		Progress: func(done, total int64) {
			if _, err := os.Stat(tmp); err == nil {
				sawTemp = true
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(asked) == 0 || asked[0] != dir+"|k3s" {
		t.Errorf("TempName asked for %v", asked)
	}
	if !sawTemp {
		t.Errorf("%s did not exist during the upload", tmp)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("left behind: %v", entries)
	}
}
