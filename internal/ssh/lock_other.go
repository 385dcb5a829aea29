//go:build !unix

package ssh

import (
	"os"
	"sync"
)

var fileLocks sync.Map // path -> *sync.RWMutex

// lockFile only orders readers and writers within this process where flock
// is missing.
func lockFile(f *os.File, exclusive bool) (unlock func(), err error) {
	v, _ := fileLocks.LoadOrStore(f.Name(), &sync.RWMutex{})
	mu := v.(*sync.RWMutex)
	if exclusive {
		mu.Lock()
		return mu.Unlock, nil
	}
	mu.RLock()
	return mu.RUnlock, nil
}
