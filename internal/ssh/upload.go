package ssh

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
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
	// a random name (TempName).
	TempName func(dir, base string) string
	// SHA256 is the local file's sha256 when the caller knows it already
	// (a cached release, a checked --k3s-binary): the file is then read
	// only to send it. The host still checks what arrived against it.
	SHA256 string
	// Differs says the caller has just seen dst hold other content (or
	// none): the host is not asked to hash dst before sending; the check
	// that the file fits still runs.
	Differs bool
}

// tempFor is where an upload to dst is written before the rename.
func (o UploadOptions) tempFor(dst string) string {
	if o.TempName != nil {
		return o.TempName(path.Dir(dst), path.Base(dst))
	}
	return TempName(dst)
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

// failer returns what an upload or copy gives back on err: err itself when
// it already names the host, else err wrapped as op on this host.
func (c *Client) failer(op string) func(error) (UploadResult, error) {
	return func(err error) (UploadResult, error) {
		var ee *ExitError
		if errors.As(err, &ee) {
			return UploadResult{}, err
		}
		var he *Error
		if errors.As(err, &he) {
			return UploadResult{}, err
		}
		var ns *NoSpaceError
		if errors.As(err, &ns) {
			return UploadResult{}, err
		}
		return UploadResult{}, &Error{Host: c.host, Op: op, Err: err}
	}
}

// modeOwner are the mode and owner the file gets on the host.
func (o UploadOptions) modeOwner() (os.FileMode, string) {
	mode, owner := o.Mode.Perm(), o.Owner
	if o.Mode == 0 {
		mode = 0o644
	}
	if owner == "" {
		owner = "root:root"
	}
	return mode, owner
}

// checkTarget asks the host whether dst has sum already (then mode and
// owner are put right, and same is true) and, if not, whether needed bytes
// fit beside it (else a *NoSpaceError), creating the empty temporary file
// tmp for the login user to write. With o.Differs the host is not asked
// about dst's content; the check still makes sure the file fits.
func (c *Client) checkTarget(ctx context.Context, dst, tmp, sum string, needed int64, o UploadOptions) (same bool, err error) {
	mode, owner := o.modeOwner()
	compare := sum
	if o.Differs {
		compare = ""
	}
	out, err := c.Run(ctx, uploadCheckScript(dst, tmp, compare, mode, owner, needed), RunOptions{Sudo: true})
	if err != nil {
		return false, err
	}
	answer := strings.TrimSpace(string(out.Stdout))
	if answer == "same" {
		return true, nil
	}
	if free, ok := strings.CutPrefix(answer, "nospace "); ok {
		n, _ := strconv.ParseInt(free, 10, 64)
		return false, &NoSpaceError{Host: c.host, Path: path.Dir(dst), Free: n, Needed: needed}
	}
	return false, nil
}

// Upload copies the local file src to dst on the host: into a temporary
// file, checked by sha256 on the host, then moved into place as root with
// the mode and owner asked for. When dst already has the same sha256 nothing
// is sent.
func (c *Client) Upload(ctx context.Context, src, dst string, o UploadOptions) (UploadResult, error) {
	fail := c.failer("upload " + dst)
	if !path.IsAbs(dst) {
		return fail(fmt.Errorf("destination must be an absolute path, not %q", dst))
	}
	mode, owner := o.modeOwner()

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

	tmp := o.tempFor(dst)
	needed := size + SpaceMargin(size)
	same, err := c.checkTarget(ctx, dst, tmp, sum, needed, o)
	if err != nil {
		return fail(err)
	}
	if same {
		res.Skipped = true
		if o.Progress != nil {
			o.Progress(size, size)
		}
		return res, nil
	}

	staged := tmp
	err = c.sftpUpload(ctx, f, size, tmp, false, o)
	if err != nil && ctx.Err() == nil && isPermissionDenied(err) {
		// A folder on the way to dst is closed to the login user (K3s
		// keeps some at 0700): send the file to /tmp, then root copies
		// it to tmp beside dst.
		staged = o.tempFor(path.Join("/tmp", strings.ReplaceAll(strings.TrimPrefix(dst, "/"), "/", "-")))
		if free, ok := c.freeBytes("/tmp"); ok && free < needed {
			c.removeQuietly(tmp)
			return UploadResult{}, &NoSpaceError{Host: c.host, Path: "/tmp", Free: free, Needed: needed}
		}
		err = c.sftpUpload(ctx, f, size, staged, true, o)
	}
	if err != nil {
		c.removeQuietly(tmp, staged)
		if ctx.Err() == nil && isSFTPFailure(err) {
			// A full file system answers a write with a bare "Failure".
			dir := path.Dir(staged)
			if free, ok := c.freeBytes(dir); ok && free < needed {
				return UploadResult{}, &NoSpaceError{Host: c.host, Path: dir, Free: free, Needed: needed, Err: err}
			}
		}
		return fail(err)
	}
	if _, err := c.Run(ctx, uploadFinishScript(staged, tmp, dst, sum, mode, owner), RunOptions{Sudo: true}); err != nil {
		c.removeQuietly(tmp, staged)
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
// puts mode and owner right), "nospace <free bytes>" when dst's file system
// has less than needed bytes free, else "send" once it has created the
// empty temporary file tmp beside dst, owned by the login user so that SFTP
// can write it. It creates dst's directory.
func uploadCheckScript(dst, tmp, sum string, mode os.FileMode, owner string, needed int64) string {
	script := `d=` + Quote(dst) + `; t=` + Quote(tmp) + `
mkdir -p -- "$(dirname -- "$d")" || exit
`
	if sum != "" {
		script = sha256Func + script + `if [ -f "$d" ]; then
  s=$(sha256 < "$d") || exit
  if [ "${s%% *}" = ` + Quote(sum) + ` ]; then
    chown ` + Quote(owner) + ` "$d" && chmod ` + modeString(mode) + ` "$d" || exit
    echo same
    exit 0
  fi
fi
`
	}
	return script + freeBytesFunc + `f=$(free_bytes "$(dirname -- "$d")")
if [ -n "$f" ] && [ "$f" -lt ` + strconv.FormatInt(needed, 10) + ` ]; then
  echo "nospace $f"
  exit 0
fi
rm -f -- "$t"
(umask 077 && : > "$t") && chown "${SUDO_UID:-$(id -u)}:${SUDO_GID:-$(id -g)}" "$t" || { rm -f -- "$t"; exit 1; }
echo send`
}

// freeBytesFunc defines free_bytes DIR: the bytes free for unprivileged
// writers on DIR's file system (POSIX df output, 1024-byte blocks), or
// nothing when df cannot tell.
const freeBytesFunc = `free_bytes() { df -P -k -- "$1" 2>/dev/null | awk 'NR==2 && $4 ~ /^[0-9]+$/ { printf "%.0f\n", $4 * 1024 }'; }
`

// freeBytes asks for the free bytes of dir's file system.
func (c *Client) freeBytes(dir string) (int64, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	out, err := c.Run(ctx, freeBytesFunc+`free_bytes `+Quote(dir), RunOptions{Sudo: true})
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(out.Stdout)), 10, 64)
	return n, err == nil
}

// SpaceMargin is what an upload of size bytes wants free beyond the file
// itself: a twentieth, at least 1 MiB, so that a file system is never
// filled to the last block (K3s and the system still have to write logs).
func SpaceMargin(size int64) int64 { return max(size/20, 1<<20) }

// TempName is the temporary file an upload to dst is written to: beside
// dst, so the final rename stays on one file system and a file system that
// is too small fails before anything lands elsewhere. The facts find such
// files that an interrupted run left behind (StalePatterns).
func TempName(dst string) string {
	return path.Join(path.Dir(dst), ".k3sctl-"+randomSuffix()+"-"+path.Base(dst)+".tmp")
}

// StalePatterns are the names of temporary files of uploads and file writes
// that a run interrupted before its cleanup leaves behind: the current
// ones beside their targets, and those of older releases (in /tmp, or
// beside the target with the suffix after the name).
var StalePatterns = []string{".k3sctl-*.tmp", ".*.k3sctl-*", "*.k3sctl-new", "k3sctl-upload-*"}

// NoSpaceError is an upload that does not fit on the host's file system.
type NoSpaceError struct {
	Host   string
	Path   string // the target's directory
	Free   int64
	Needed int64 // the file plus SpaceMargin
	Err    error // the SFTP failure that led to the check, if any
}

func (e *NoSpaceError) Error() string {
	msg := fmt.Sprintf("%s: not enough space on the file system of %s: %s free, %s needed (%d of %d bytes)",
		e.Host, e.Path, humanBytes(e.Free), humanBytes(e.Needed), e.Free, e.Needed)
	if e.Err != nil {
		msg += "; it filled up during the upload"
	}
	return msg
}

func (e *NoSpaceError) Unwrap() error { return e.Err }

// Hint says what to do about it.
func (e *NoSpaceError) Hint() string {
	return fmt.Sprintf("free at least %s on the file system of %s on %s (df -h %s shows it), then run again",
		humanBytes(e.Needed-e.Free), e.Path, e.Host, e.Path)
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// isPermissionDenied reports an SFTP open the server refused for want of
// permission.
func isPermissionDenied(err error) bool {
	var se *sftp.StatusError
	if errors.As(err, &se) {
		return se.FxCode() == sftp.ErrSSHFxPermissionDenied
	}
	return errors.Is(err, fs.ErrPermission)
}

// isSFTPFailure reports SFTP's generic failure status, which is what
// OpenSSH's server answers a write on a full file system with.
func isSFTPFailure(err error) bool {
	var se *sftp.StatusError
	return errors.As(err, &se) && se.FxCode() == sftp.ErrSSHFxFailure
}

// uploadFinishScript checks the uploaded file staged and moves it into
// place through tmp, the temporary file beside dst: staged is tmp itself,
// or a file in /tmp that is renamed or, across file systems, copied to tmp.
func uploadFinishScript(staged, tmp, dst, sum string, mode os.FileMode, owner string) string {
	return sha256Func + `s=` + Quote(staged) + `; t=` + Quote(tmp) + `; d=` + Quote(dst) + `
h=$(sha256 < "$s") || exit
if [ "${h%% *}" != ` + Quote(sum) + ` ]; then
  rm -f -- "$s" "$t"
  echo "sha256 mismatch after upload: got ${h%% *}, want ` + sum + `" >&2
  exit 65
fi
if [ "$s" != "$t" ]; then
  if [ "$(stat -c %d -- "$s")" = "$(stat -c %d -- "$(dirname -- "$d")")" ]; then
    mv -f -- "$s" "$t" || { rm -f -- "$s" "$t"; exit 1; }
  else
    cp -- "$s" "$t" || { rm -f -- "$s" "$t"; exit 1; }
    rm -f -- "$s"
  fi
fi
chown ` + Quote(owner) + ` "$t" && chmod ` + modeString(mode) + ` "$t" && mv -f -- "$t" "$d" || { rm -f -- "$t"; exit 1; }`
}

// removeQuietly cleans up a temporary file after a failure, even when the
// caller's context is already cancelled.
// The file sits in a directory only root may write, so root removes it.
func (c *Client) removeQuietly(paths ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := "rm -f --"
	for _, p := range paths {
		cmd += " " + Quote(p)
	}
	_, _ = c.Run(ctx, cmd, RunOptions{Sudo: true})
}

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// sftpUpload writes f to the temporary file tmp, which the check script
// created. The file is split into contiguous ranges, one per stream.
func (c *Client) sftpUpload(ctx context.Context, f *os.File, size int64, tmp string, create bool, o UploadOptions) error {
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
		return err
	}
	// The SFTP requests have no context; closing the streams is what stops them.
	stop := context.AfterFunc(ctx, closeAll)
	defer stop()

	flags := os.O_WRONLY | os.O_TRUNC
	if create {
		flags = os.O_WRONLY | os.O_CREATE | os.O_EXCL
	}
	first, err := clients[0].OpenFile(tmp, flags)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("open %s: %w", tmp, err)
	}
	if create {
		// Nobody else may read it in /tmp on its way.
		if err := first.Chmod(0o600); err != nil {
			first.Close()
			return fmt.Errorf("chmod %s: %w", tmp, err)
		}
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
			return ctx.Err()
		}
		return err
	}
	return nil
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
