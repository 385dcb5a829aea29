//go:build !linux

package ssh

import "os"

// fileIdentity has only size and modification time to go by here.
func fileIdentity(os.FileInfo) (dev, ino uint64, ctime int64) { return 0, 0, 0 }
