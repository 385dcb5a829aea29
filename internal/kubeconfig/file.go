package kubeconfig

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/k3sctl/k3sctl/internal/filelock"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// DefaultPath is the kubeconfig kubectl uses: the first entry of
// $KUBECONFIG, else ~/.kube/config.
func DefaultPath() (string, error) {
	for _, p := range filepath.SplitList(os.Getenv("KUBECONFIG")) {
		if p != "" {
			return p, nil
		}
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find the kubeconfig: %w (set KUBECONFIG)", err)
	}
	return filepath.Join(home, ".kube", "config"), nil
}

// FileMode is the mode of a kubeconfig k3sctl writes: it holds admin
// credentials.
const FileMode fs.FileMode = 0o600

const (
	lockTimeout = 30 * time.Second
	// A lock file older than this that no process holds is left over from
	// a crash. kubectl, which holds no flock, keeps its lock for
	// milliseconds.
	staleLockAge = 10 * time.Second
)

// Update changes the kubeconfig at path in one step: under a lock, it reads
// the file (nil if there is none), passes it to fn and replaces the file
// with what fn returns. Nothing is written if fn fails or changes nothing.
//
// The lock is path+".lock", the file kubectl also takes, so k3sctl and
// kubectl do not overwrite each other's changes. The new content goes to a
// temporary file in the same directory, mode 0600 (or the old mode if that
// was stricter), which is synced and renamed over the old one: a crash
// leaves the old file or the new one, never a mix. If path is a symlink,
// the file it points to is replaced and the link kept.
func Update(path string, fn func(old []byte) ([]byte, error)) error {
	return update(path, fn, lockTimeout)
}

func update(path string, fn func([]byte) ([]byte, error), timeout time.Duration) error {
	if path == "" {
		return errors.New("kubeconfig: no path given")
	}
	target, err := followLinks(path)
	if err != nil {
		return fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
		return fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	unlock, err := acquire(path+".lock", timeout)
	if err != nil {
		return fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	defer unlock()

	mode := FileMode
	old, err := os.ReadFile(target)
	exists := err == nil
	switch {
	case exists:
		if st, err := os.Stat(target); err == nil {
			mode = st.Mode().Perm() & FileMode
		}
	case errors.Is(err, fs.ErrNotExist):
	default:
		return fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	data, err := fn(old)
	if err != nil {
		return err
	}
	if exists && bytes.Equal(old, data) {
		return nil
	}
	if err := replaceFile(target, data, mode); err != nil {
		return fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	return nil
}

// followLinks resolves path to the file that holds the data, even if that
// file does not exist yet.
func followLinks(path string) (string, error) {
	p := path
	for range 40 {
		st, err := os.Lstat(p)
		if err != nil || st.Mode()&fs.ModeSymlink == 0 {
			return p, nil
		}
		t, err := os.Readlink(p)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(t) {
			t = filepath.Join(filepath.Dir(p), t)
		}
		p = t
	}
	return "", errors.New("too many levels of symbolic links")
}

func replaceFile(path string, data []byte, mode fs.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".k3sctl-*")
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(mode); err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	done = true
	// Make the rename itself durable; not every platform can sync a
	// directory, and the data is safe either way.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// acquire takes the kubeconfig lock. The protocol is kubectl's (whoever
// creates the lock file exclusively owns it; the owner deletes it) plus a
// flock on the file while it is owned. The flock tells a live owner from a
// dead one, so a lock file left by a crashed process does not block every
// later run. Processes that hold no flock (kubectl) are waited for unless
// their lock file is older than staleLockAge.
func acquire(lockPath string, timeout time.Duration) (func(), error) {
	deadline := time.Now().Add(timeout)
	for {
		f, owned, err := tryAcquire(lockPath)
		if err != nil {
			return nil, err
		}
		if owned {
			return func() {
				// Removed while still locked, so no one can take a lock
				// file that is about to vanish. Windows cannot remove an
				// open file; there it goes after closing.
				mine := same(f, lockPath)
				removed := mine && os.Remove(lockPath) == nil
				filelock.Unlock(f)
				f.Close()
				if mine && !removed && runtime.GOOS == "windows" {
					_ = os.Remove(lockPath)
				}
			}, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("locked by another process for %s; if no kubectl or k3sctl is running, delete %s", timeout, lockPath)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func tryAcquire(lockPath string) (*os.File, bool, error) {
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		// Another process may flock the new file for a moment to judge
		// whether it is stale; it is not, so that process lets go.
		for {
			ok, err := filelock.TryLock(f)
			if err != nil {
				f.Close()
				os.Remove(lockPath)
				return nil, false, err
			}
			if ok {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		if same(f, lockPath) {
			return f, true, nil
		}
		filelock.Unlock(f)
		f.Close()
		return nil, false, nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return nil, false, err
	}
	f, err = os.OpenFile(lockPath, os.O_RDWR, 0)
	if err != nil {
		// Gone since: the next try may create it.
		return nil, false, nil
	}
	ok, err := filelock.TryLock(f)
	if err != nil || !ok {
		f.Close()
		return nil, false, nil
	}
	st, err := f.Stat()
	if err == nil && time.Since(st.ModTime()) > staleLockAge && same(f, lockPath) {
		// Left by a process that died holding it: take it over.
		now := time.Now()
		_ = os.Chtimes(lockPath, now, now)
		return f, true, nil
	}
	filelock.Unlock(f)
	f.Close()
	return nil, false, nil
}

// same reports whether f is still the file at path: after its owner
// deletes a lock file, a process that opened it earlier holds a lock on
// nothing.
func same(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(path)
	return err == nil && os.SameFile(a, b)
}

// MergeFile merges a K3s admin kubeconfig into the file at path, under the
// file's lock; see Merge and Update.
func MergeFile(path string, k3sYAML []byte, o MergeOptions) error {
	return Update(path, func(old []byte) ([]byte, error) { return Merge(old, k3sYAML, o) })
}
