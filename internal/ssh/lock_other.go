//go:build !unix

package ssh

import (
	"os"
	"sync"
)

var fileLockMu sync.Mutex

// lockFile only orders writers within this process where flock is missing.
func lockFile(*os.File) (unlock func(), err error) {
	fileLockMu.Lock()
	return fileLockMu.Unlock, nil
}
