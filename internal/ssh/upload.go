package ssh

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/sync/errgroup"
)

// UploadOptions says how the uploaded file ends up on the host.
type UploadOptions struct {
	Mode     os.FileMode // 0: 0644
	Owner    string      // "": root:root
	Progress func(done, total int64)
	// Concurrency is how many SFTP streams (each its own SSH channel with
	// its own flow-control window) share the file. 0: chosen by size.
	Concurrency int
	// TempName names the temporary file for a target base name in dir, so
	// that a run can give its own files names no other run chooses. nil:
	// a random name.
	TempName func(dir, base string) string
	// SHA256 is the local file's sha256 when the caller knows it already
	// (a cached release, a checked --k3s-binary): the file is then read
	// only to send it. The host still checks what arrived against it.
	SHA256 string
	// Differs says the caller has just seen dst hold other content (or
	// none): the round trip that hashes dst before sending is left out.
	Differs bool
}

// tempName is where the file goes before the rename into dst's place.
func (o UploadOptions) tempName(dir, base string) string {
	if o.TempName != nil {
		return o.TempName(dir, base)
	}
	return path.Join(dir, "."+base+".k3sctl-"+randomSuffix())
}

// UploadResult says what happened.
type UploadResult struct {
	Skipped bool // the target already had this content
	SHA256  string
	Bytes   int64
}

const (
	// sftpRequestsPerStream keeps 64 writes of 32 KiB in flight per stream,
	// which is what one OpenSSH channel window (2 MiB) admits anyway.
	sftpRequestsPerStream = 64
	streamMinBytes        = 8 << 20
	maxStreams            = 8
	defaultStreams        = 4
)

// Upload copies the local file src to dst on the host: into a temporary
// file, checked by sha256 on the host, then moved into place as root with
// the mode and owner asked for. When dst already has the same sha256 nothing
// is sent.
func (c *Client) Upload(ctx context.Context, src, dst string, o UploadOptions) (UploadResult, error) {
	op := "upload " + dst
	fail := func(err error) (UploadResult, error) {
		var ee *ExitError
		if errors.As(err, &ee) {
			return UploadResult{}, err
		}
		var he *Error
		if errors.As(err, &he) {
			return UploadResult{}, err
		}
		return UploadResult{}, &Error{Host: c.host, Op: op, Err: err}
	}
	if !path.IsAbs(dst) {
		return fail(fmt.Errorf("destination must be an absolute path, not %q", dst))
	}
	mode := o.Mode.Perm()
	if o.Mode == 0 {
		mode = 0o644
	}
	owner := o.Owner
	if owner == "" {
		owner = "root:root"
	}

	f, err := os.Open(src)
	if err != nil {
		return fail(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	if !st.Mode().IsRegular() {
		return fail(fmt.Errorf("%s is not a regular file", src))
	}
	size := st.Size()
	sum := strings.ToLower(o.SHA256)
	if sum == "" {
		h := sha256.New()
		if _, err := io.Copy(h, io.NewSectionReader(f, 0, size)); err != nil {
			return fail(fmt.Errorf("read %s: %w", src, err))
		}
		sum = hex.EncodeToString(h.Sum(nil))
	}
	res := UploadResult{SHA256: sum, Bytes: size}

	same := false
	if !o.Differs {
		check := uploadCheckScript(dst, sum, mode, owner)
		out, err := c.Run(ctx, check, RunOptions{Sudo: true})
		if err != nil {
			return fail(err)
		}
		same = strings.TrimSpace(string(out.Stdout)) == "same"
	}
	if same {
		res.Skipped = true
		if o.Progress != nil {
			o.Progress(size, size)
		}
		return res, nil
	}

	tmp, err := c.sftpUpload(ctx, f, size, dst, o)
	if err != nil {
		if tmp != "" {
			c.removeQuietly(tmp)
		}
		return fail(err)
	}
	beside := o.tempName(path.Dir(dst), path.Base(dst))
	if _, err := c.Run(ctx, uploadFinishScript(tmp, beside, dst, sum, mode, owner), RunOptions{Sudo: true}); err != nil {
		c.removeQuietly(tmp)
		return fail(err)
	}
	return res, nil
}

// sha256Func prefers OpenSSL, which uses the CPU's SHA instructions and
// hashes about twice as fast as coreutils on large files. Both print the
// hex digest first.
const sha256Func = `sha256() { if command -v openssl >/dev/null 2>&1; then openssl dgst -sha256 -r; else sha256sum; fi; }
`

func modeString(m os.FileMode) string { return fmt.Sprintf("%04o", m.Perm()) }

// uploadCheckScript prints "same" when dst has the content already (and
// puts mode and owner right), else "send". It creates dst's directory.
func uploadCheckScript(dst, sum string, mode os.FileMode, owner string) string {
	return sha256Func + `d=` + Quote(dst) + `
mkdir -p -- "$(dirname -- "$d")" || exit
if [ -f "$d" ]; then
  s=$(sha256 < "$d") || exit
  if [ "${s%% *}" = ` + Quote(sum) + ` ]; then
    chown ` + Quote(owner) + ` "$d" && chmod ` + modeString(mode) + ` "$d" || exit
    echo same
    exit 0
  fi
fi
echo send`
}

// uploadFinishScript checks the temporary file and moves it into place. A
// rename is atomic only within one file system; across file systems the file
// is copied beside dst first, to beside, and renamed from there.
func uploadFinishScript(tmp, beside, dst, sum string, mode os.FileMode, owner string) string {
	return sha256Func + `t=` + Quote(tmp) + `; d=` + Quote(dst) + `; n=` + Quote(beside) + `
mkdir -p -- "$(dirname -- "$d")" || { rm -f -- "$t"; exit 1; }
s=$(sha256 < "$t") || exit
if [ "${s%% *}" != ` + Quote(sum) + ` ]; then
  rm -f -- "$t"
  echo "sha256 mismatch after upload: got ${s%% *}, want ` + sum + `" >&2
  exit 65
fi
if [ "$(stat -c %d -- "$t")" != "$(stat -c %d -- "$(dirname -- "$d")")" ]; then
  cp -- "$t" "$n" || { rm -f -- "$n" "$t"; exit 1; }
  rm -f -- "$t"
  t=$n
fi
chown ` + Quote(owner) + ` "$t" && chmod ` + modeString(mode) + ` "$t" && mv -f -- "$t" "$d" || { rm -f -- "$t"; exit 1; }`
}

// removeQuietly cleans up a temporary file after a failure, even when the
// caller's context is already cancelled.
func (c *Client) removeQuietly(p string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _ = c.exec(ctx, "rm -f -- "+Quote(p), nil, nil)
}

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// sftpUpload writes f to a new temporary file and returns its name. The
// file is split into contiguous ranges, one per stream.
func (c *Client) sftpUpload(ctx context.Context, f *os.File, size int64, dst string, o UploadOptions) (string, error) {
	streams := o.Concurrency
	if streams <= 0 {
		streams = defaultStreams
	}
	streams = int(max(1, min(int64(streams), int64(maxStreams), size/streamMinBytes)))

	clients := make([]*sftp.Client, streams)
	var g errgroup.Group
	for i := range clients {
		g.Go(func() error {
			sc, err := sftp.NewClient(c.conn,
				sftp.UseConcurrentWrites(true),
				sftp.MaxConcurrentRequestsPerFile(sftpRequestsPerStream))
			if err != nil {
				return fmt.Errorf("start sftp: %w", err)
			}
			clients[i] = sc
			return nil
		})
	}
	closeAll := sync.OnceFunc(func() {
		for _, sc := range clients {
			if sc != nil {
				sc.Close()
			}
		}
	})
	defer closeAll()
	if err := g.Wait(); err != nil {
		return "", err
	}
	// The SFTP requests have no context; closing the streams is what stops them.
	stop := context.AfterFunc(ctx, closeAll)
	defer stop()

	tmp := o.tempName(path.Dir(dst), path.Base(dst))
	first, err := clients[0].OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		// dst's directory is not writable by the SSH user: go through /tmp.
		// The whole path in the name: two targets of one run may share a base name.
		tmp = o.tempName("/tmp", strings.ReplaceAll(strings.TrimPrefix(dst, "/"), "/", "-"))
		first, err = clients[0].OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
		if err != nil {
			return "", fmt.Errorf("create %s: %w", tmp, err)
		}
	}
	if err := first.Chmod(0o600); err != nil {
		first.Close()
		return tmp, fmt.Errorf("chmod %s: %w", tmp, err)
	}

	var done atomic.Int64
	var progressMu sync.Mutex
	report := func(n int64) {
		if o.Progress == nil {
			done.Add(n)
			return
		}
		// Adding under the lock keeps the reported numbers in order.
		progressMu.Lock()
		defer progressMu.Unlock()
		o.Progress(min(done.Add(n), size), size)
	}
	if o.Progress != nil {
		o.Progress(0, size)
	}

	part := (size + int64(streams) - 1) / int64(streams)
	g = errgroup.Group{}
	for i, sc := range clients {
		off := int64(i) * part
		n := min(part, size-off)
		g.Go(func() error {
			w := first
			if i > 0 {
				if n <= 0 {
					return nil
				}
				var err error
				w, err = sc.OpenFile(tmp, os.O_WRONLY)
				if err != nil {
					return fmt.Errorf("open %s: %w", tmp, err)
				}
			}
			defer w.Close()
			if _, err := w.Seek(off, io.SeekStart); err != nil {
				return err
			}
			r := &countingReader{r: io.NewSectionReader(f, off, n), report: report}
			if _, err := w.ReadFromWithConcurrency(r, sftpRequestsPerStream); err != nil {
				return fmt.Errorf("write %s: %w", tmp, err)
			}
			return w.Close()
		})
	}
	if err := g.Wait(); err != nil {
		if ctx.Err() != nil {
			return tmp, ctx.Err()
		}
		return tmp, err
	}
	return tmp, nil
}

type countingReader struct {
	r      io.Reader
	report func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.report(int64(n))
	}
	return n, err
}
