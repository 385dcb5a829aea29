//go:build !unix

package filelock

import "os"

// TryLock always succeeds where there is no flock: processes are not kept
// apart, goroutines still are by their callers. The download cache then may
// fetch an asset twice (each copy verified); the kubeconfig lock file is
// owned by whoever created it, as kubectl does it.
func TryLock(*os.File) (bool, error) { return true, nil }

// Unlock does nothing where there is no flock.
func Unlock(*os.File) {}
