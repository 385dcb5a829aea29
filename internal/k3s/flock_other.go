//go:build !unix

package k3s

import "os"

// Without flock, processes are not kept apart; goroutines still are. The
// worst case is the same asset downloaded twice, each copy verified.
func tryLock(*os.File) (bool, error) { return true, nil }

func unlockFile(*os.File) {}
