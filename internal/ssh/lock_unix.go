//go:build unix

package ssh

import (
	"os"
	"syscall"
)

// lockFile takes a lock on f that other processes honour too: exclusive for
// the writer of known_hosts, shared for its readers, so that no reader sees
// a line half written.
func lockFile(f *os.File, exclusive bool) (unlock func(), err error) {
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	for {
		err = syscall.Flock(int(f.Fd()), how)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }, nil
}
