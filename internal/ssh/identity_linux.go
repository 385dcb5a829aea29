package ssh

import (
	"os"
	"syscall"
)

// fileIdentity tells a file replaced under the same name (a new inode) or
// changed within the same modification time (ctime) apart.
func fileIdentity(fi os.FileInfo) (dev, ino uint64, ctime int64) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, 0
	}
	sec, nsec := st.Ctim.Unix()
	return uint64(st.Dev), st.Ino, sec*1e9 + nsec
}
