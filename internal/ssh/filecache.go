package ssh

import (
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/kevinburke/ssh_config"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// The ssh config and the known_hosts files are parsed once per version of
// each file and shared by every dial of the run: parsing them per host made
// a fleet's cost grow with the square of its size. A version is the file's
// size, modification time and (on Linux) inode and change time; a file
// that changed is read again, so a key recorded by this run, another
// k3sctl or ssh is seen by the next check. The stamp is always taken
// before the content is read: a change in between leaves an entry that the
// next stat no longer matches, never a stale entry that looks current.

// configParses and knownHostsParses count the parses, for the tests.
var configParses, knownHostsParses atomic.Int64

// fileStamp is one version of a file.
type fileStamp struct {
	size  int64
	mtime int64
	dev   uint64
	ino   uint64
	ctime int64
}

func stampOf(fi os.FileInfo) fileStamp {
	dev, ino, ctime := fileIdentity(fi)
	return fileStamp{size: fi.Size(), mtime: fi.ModTime().UnixNano(), dev: dev, ino: ino, ctime: ctime}
}

// configEntry is one parsed version of an ssh config file: the config, or
// why it does not parse.
type configEntry struct {
	stamp fileStamp
	home  string // Include paths are relative to it
	cfg   *ssh_config.Config
	err   error
}

var configCache = struct {
	sync.Mutex
	m map[string]*configEntry
}{m: map[string]*configEntry{}}

// parseSSHConfig parses file, from the cache when it has not changed. The
// error is os.ReadFile's; a file that does not parse is an entry with err.
func parseSSHConfig(file string) (*configEntry, error) {
	home, _ := os.UserHomeDir()
	fi, statErr := os.Stat(file)
	cacheable := statErr == nil && fi.Mode().IsRegular()
	e := &configEntry{home: home}
	if cacheable {
		e.stamp = stampOf(fi)
		configCache.Lock()
		cached := configCache.m[file]
		configCache.Unlock()
		if cached != nil && cached.stamp == e.stamp && cached.home == home {
			return cached, nil
		}
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	configParses.Add(1)
	e.cfg, e.err = ssh_config.DecodeBytes(data)
	if cacheable {
		configCache.Lock()
		configCache.m[file] = e
		configCache.Unlock()
	}
	return e, nil
}

// knownHostsEntry is one parsed version of a list of known_hosts files.
type knownHostsEntry struct {
	stamps []fileStamp
	check  ssh.HostKeyCallback
}

var knownHostsCache = struct {
	sync.Mutex
	m map[string]*knownHostsEntry // by the files' names, NUL-separated
	// load lets one caller at a time parse, so that the dials of a fleet
	// starting together parse a file once, not once each.
	load sync.Mutex
}{m: map[string]*knownHostsEntry{}}

func cachedKnownHosts(files []string, stamps []fileStamp) ssh.HostKeyCallback {
	knownHostsCache.Lock()
	defer knownHostsCache.Unlock()
	e := knownHostsCache.m[strings.Join(files, "\x00")]
	if e == nil || len(e.stamps) != len(stamps) {
		return nil
	}
	for i := range stamps {
		if e.stamps[i] != stamps[i] {
			return nil
		}
	}
	return e.check
}

func storeKnownHosts(files []string, stamps []fileStamp, check ssh.HostKeyCallback) {
	knownHostsCache.Lock()
	defer knownHostsCache.Unlock()
	knownHostsCache.m[strings.Join(files, "\x00")] = &knownHostsEntry{stamps: stamps, check: check}
}

// statKnownHosts keeps the candidates that are regular files, with their
// stamps.
func statKnownHosts(candidates []string) (files []string, stamps []fileStamp) {
	for _, f := range candidates {
		if fi, err := os.Stat(f); err == nil && fi.Mode().IsRegular() {
			files = append(files, f)
			stamps = append(stamps, stampOf(fi))
		}
	}
	return files, stamps
}

// noKnownHosts is the database when there is no known_hosts file: every
// host is unknown.
func noKnownHosts(string, net.Addr, ssh.PublicKey) error { return &knownhosts.KeyError{} }

// loadKnownHosts returns the database of the candidate files that exist.
// It reads them under a shared lock, so that a key being appended by
// another connection or process is read whole or not at all.
func loadKnownHosts(candidates []string) (ssh.HostKeyCallback, error) {
	files, stamps := statKnownHosts(candidates)
	if len(files) == 0 {
		return noKnownHosts, nil
	}
	if cb := cachedKnownHosts(files, stamps); cb != nil {
		return cb, nil
	}

	knownHostsCache.load.Lock()
	defer knownHostsCache.load.Unlock()
	files, stamps = nil, nil
	for _, name := range candidates {
		if fi, err := os.Stat(name); err != nil || !fi.Mode().IsRegular() {
			continue // not opened: a FIFO would block
		}
		f, err := os.Open(name)
		if err != nil {
			continue
		}
		defer f.Close()
		unlock, err := lockFile(f, false)
		if err != nil {
			return nil, fmt.Errorf("known_hosts: lock %s: %w", name, err)
		}
		defer unlock()
		fi, err := f.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		files = append(files, name)
		stamps = append(stamps, stampOf(fi))
	}
	// Another caller may have parsed this version while this one waited.
	return parseKnownHosts(files, stamps)
}

// loadKnownHostsLocked is loadKnownHosts for the writer, which holds the
// exclusive lock on the file it appends to (a shared lock would wait for
// it forever).
func loadKnownHostsLocked(candidates []string) (ssh.HostKeyCallback, error) {
	return parseKnownHosts(statKnownHosts(candidates))
}

// parseKnownHosts is the callback for files at stamps: the cached one
// when that version was parsed already, else parsed now and cached.
func parseKnownHosts(files []string, stamps []fileStamp) (ssh.HostKeyCallback, error) {
	if len(files) == 0 {
		return noKnownHosts, nil
	}
	if cb := cachedKnownHosts(files, stamps); cb != nil {
		return cb, nil
	}
	knownHostsParses.Add(1)
	cb, err := knownhosts.New(files...)
	if err != nil {
		return nil, fmt.Errorf("known_hosts: %w", err)
	}
	storeKnownHosts(files, stamps, cb)
	return cb, nil
}
