// Package hostlock owns the lock k3sctl holds on each host for the length of
// a run, so that two runs never change one host at the same time, and the
// unique names of temporary files on hosts.
//
// The lock is an flock(1) on a file under /run, held by a remote command in
// its own SSH session that blocks reading its standard input. Releasing the
// lock closes that input; a holder that dies loses its SSH session, which
// ends the remote command, and the kernel frees the flock with it. A lock
// whose holder is gone therefore never blocks the next run, and /run being a
// tmpfs, a reboot clears it too.
package hostlock
