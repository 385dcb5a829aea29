package kubeconfig

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Problem is a kubeconfig that a run could not update, found before the
// run changes any host.
type Problem struct {
	Path string // the file as given
	What string // "is not a valid kubeconfig: line 3: ..."
	Fix  string
}

func (p *Problem) Error() string {
	msg := "kubeconfig " + p.Path + ": " + p.What
	if p.Fix != "" {
		msg += "\nhint: " + p.Fix
	}
	return msg
}

// Hint is the fix, shown on its own line.
func (p *Problem) Hint() string { return p.Fix }

// preflightLockTimeout is how long Check waits for another process's lock.
const preflightLockTimeout = 5 * time.Second

// Check tells whether Update could read, parse, lock and write the
// kubeconfig at path, without changing it: a missing file is fine when its
// directory exists or can be created; a file that is not a kubeconfig, a
// read-only file or directory, or one that stays locked is a *Problem. A
// run calls it before changing any host, so that a bad kubeconfig does not
// stop the run after the first server is installed.
func Check(path string) error {
	return check(path, preflightLockTimeout)
}

func check(path string, lockWait time.Duration) error {
	if path == "" {
		return &Problem{Path: path, What: "no path given", Fix: "set KUBECONFIG or --kubeconfig"}
	}
	problem := func(what, fix string, a ...any) error {
		return &Problem{Path: path, What: fmt.Sprintf(what, a...), Fix: fix}
	}
	target, err := followLinks(path)
	if err != nil {
		return problem("%v", "point the link at a file, or use another kubeconfig (--kubeconfig or KUBECONFIG)", err)
	}
	st, err := os.Stat(target)
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		return checkCreatable(path, filepath.Dir(target))
	case err != nil:
		return problem("%v", "fix the permissions of its directory, or use another kubeconfig (--kubeconfig or KUBECONFIG)", unwrapPath(err))
	case st.IsDir():
		return problem("is a directory", "give the path of a file (--kubeconfig or KUBECONFIG)")
	}
	data, err := os.ReadFile(target)
	if err != nil {
		return problem("cannot be read: %v", "make it readable (chmod 600 "+target+"), or use another kubeconfig (--kubeconfig or KUBECONFIG)", unwrapPath(err))
	}
	if root, err := parseDoc(data); err != nil {
		return problem("is not a valid kubeconfig: %v", "repair the file, or move it aside and let k3sctl write a new one", err)
	} else if root != nil {
		if err := validate(root); err != nil {
			return problem("is not a valid kubeconfig: %v", "repair the file, or move it aside and let k3sctl write a new one", err)
		}
	}
	if st.Mode().Perm()&0o200 == 0 || !writable(target) {
		return problem("is read-only (mode %04o); k3sctl does not replace a read-only kubeconfig", "make it writable (chmod u+w "+target+"), or use another kubeconfig (--kubeconfig or KUBECONFIG)", st.Mode().Perm())
	}
	dir := filepath.Dir(target)
	if err := checkDirWritable(path, dir); err != nil {
		return err
	}
	unlock, err := acquire(path+".lock", lockWait)
	if err != nil {
		return problem("cannot be locked: %v", "wait for the other kubectl or k3sctl to finish", unwrapPath(err))
	}
	unlock()
	return nil
}

// checkCreatable accepts a missing kubeconfig whose nearest existing
// parent directory can be written.
func checkCreatable(path, dir string) error {
	d := dir
	for {
		st, err := os.Stat(d)
		if err == nil {
			if !st.IsDir() {
				return &Problem{Path: path, What: d + " is not a directory", Fix: "use another kubeconfig (--kubeconfig or KUBECONFIG)"}
			}
			return checkDirWritable(path, d)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return &Problem{Path: path, What: fmt.Sprintf("cannot create it: %v", unwrapPath(err)), Fix: "use another kubeconfig (--kubeconfig or KUBECONFIG)"}
		}
		parent := filepath.Dir(d)
		if parent == d {
			return &Problem{Path: path, What: "cannot create it: no directory of its path exists", Fix: "use another kubeconfig (--kubeconfig or KUBECONFIG)"}
		}
		d = parent
	}
}

// checkDirWritable: the new file is written next to the old one and
// renamed, and the lock file is created there too.
func checkDirWritable(path, dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return &Problem{Path: path, What: fmt.Sprintf("its directory: %v", unwrapPath(err)), Fix: "use another kubeconfig (--kubeconfig or KUBECONFIG)"}
	}
	if st.Mode().Perm()&0o200 == 0 || !writable(dir) {
		return &Problem{Path: path, What: fmt.Sprintf("directory %s is read-only (mode %04o)", dir, st.Mode().Perm()),
			Fix: "make it writable (chmod u+w " + dir + "), or use another kubeconfig (--kubeconfig or KUBECONFIG)"}
	}
	return nil
}

// unwrapPath drops the path an *fs.PathError repeats.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
