package ssh

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

var testRemote = &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 22}

func appendFile(t *testing.T, file, text string) {
	t.Helper()
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

// keepMtime sets file's modification time back to what it was before a
// rewrite, so that only its content (and on Linux its change time or
// inode) tells the versions apart.
func keepMtime(t *testing.T, file string, before os.FileInfo) {
	t.Helper()
	if err := os.Chtimes(file, before.ModTime(), before.ModTime()); err != nil {
		t.Fatal(err)
	}
}

func TestFleetParsesConfigAndKnownHostsOnce(t *testing.T) {
	home := isolate(t)
	config, kh, keys := fleetFiles(t, home, 40)
	configBefore, khBefore := configParses.Load(), knownHostsParses.Load()
	for h := range keys {
		o := Options{Address: fmt.Sprintf("node-%d", h), ConfigFile: config, KnownHostsFile: kh, HostKeyChecking: HostKeyStrict}
		if err := resolveAndCheck(o, keys[h]); err != nil {
			t.Fatal(err)
		}
	}
	if n := configParses.Load() - configBefore; n != 1 {
		t.Errorf("ssh config parsed %d times for 40 hosts, want once", n)
	}
	if n := knownHostsParses.Load() - khBefore; n != 1 {
		t.Errorf("known_hosts parsed %d times for 40 hosts, want once", n)
	}
}

func TestKeyAddedAfterTheFirstCheckIsSeenByTheNext(t *testing.T) {
	isolate(t)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	other := newSigner(t).PublicKey()
	if err := os.WriteFile(kh, []byte(knownhosts.Line([]string{"other.example"}, other)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	strict := &hostKeys{mode: HostKeyStrict, files: []string{kh}, warnf: func(string, ...any) {}}
	a := newSigner(t).PublicKey()
	var unknown *HostKeyUnknownError
	if err := strict.check("a.example:22", testRemote, a); !errors.As(err, &unknown) {
		t.Fatalf("before the key is added: %v, want unknown", err)
	}
	// Added by ssh or another k3sctl.
	appendFile(t, kh, knownhosts.Line([]string{"a.example"}, a)+"\n")
	if err := strict.check("a.example:22", testRemote, a); err != nil {
		t.Errorf("after another program added the key: %v", err)
	}
	// Recorded by this process under accept-new.
	b := newSigner(t).PublicKey()
	acceptNew := &hostKeys{mode: HostKeyAcceptNew, files: []string{kh}, warnf: func(string, ...any) {}}
	if err := strict.check("b.example:22", testRemote, b); !errors.As(err, &unknown) {
		t.Fatalf("before recording: %v, want unknown", err)
	}
	if err := acceptNew.check("b.example:22", testRemote, b); err != nil {
		t.Fatal(err)
	}
	if err := strict.check("b.example:22", testRemote, b); err != nil {
		t.Errorf("after recording the key: %v", err)
	}
}

func TestChangedConfigIsReadAgain(t *testing.T) {
	isolate(t)
	cfg := writeConfig(t, "Host x\n  User aa\n")
	user := func() string {
		t.Helper()
		r, err := resolve(&Options{Address: "x", ConfigFile: cfg})
		if err != nil {
			t.Fatal(err)
		}
		return r.target.user
	}
	if u := user(); u != "aa" {
		t.Fatalf("user %q, want aa", u)
	}
	if err := os.WriteFile(cfg, []byte("Host x\n  User bbb\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if u := user(); u != "bbb" {
		t.Errorf("after the config changed: user %q, want bbb", u)
	}
	if runtime.GOOS != "linux" {
		return // elsewhere a version is its size and modification time only
	}
	before, err := os.Stat(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte("Host x\n  User ccc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	keepMtime(t, cfg, before)
	if u := user(); u != "ccc" {
		t.Errorf("after a change of the same size and time: user %q, want ccc", u)
	}
}

func TestStrictStillRefusesAMismatchedKey(t *testing.T) {
	isolate(t)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	known := newSigner(t).PublicKey()
	if err := os.WriteFile(kh, []byte(knownhosts.Line([]string{"a.example"}, known)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []HostKeyChecking{HostKeyStrict, HostKeyAcceptNew} {
		h := &hostKeys{mode: mode, files: []string{kh}, warnf: func(string, ...any) {}}
		if err := h.check("a.example:22", testRemote, known); err != nil {
			t.Fatalf("%s: known key: %v", mode, err)
		}
		// The database is cached now; a different key is still refused.
		var changed *HostKeyChangedError
		if err := h.check("a.example:22", testRemote, newSigner(t).PublicKey()); !errors.As(err, &changed) {
			t.Errorf("%s: other key: %v, want changed", mode, err)
		}
	}
	if data, _ := os.ReadFile(kh); strings.Count(string(data), "\n") != 1 {
		t.Errorf("a refused key was recorded:\n%s", data)
	}

	// The host was re-keyed in the file: the old key is refused now.
	h := &hostKeys{mode: HostKeyStrict, files: []string{kh}, warnf: func(string, ...any) {}}
	before, err := os.Stat(kh)
	if err != nil {
		t.Fatal(err)
	}
	rekeyed := newSigner(t).PublicKey()
	if err := os.WriteFile(kh, []byte(knownhosts.Line([]string{"a.example"}, rekeyed)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS == "linux" {
		keepMtime(t, kh, before) // same size too: ed25519 lines are equally long
	}
	var changed *HostKeyChangedError
	if err := h.check("a.example:22", testRemote, known); !errors.As(err, &changed) {
		t.Errorf("key replaced in known_hosts: old key gave %v, want changed", err)
	}
	if err := h.check("a.example:22", testRemote, rekeyed); err != nil {
		t.Errorf("key replaced in known_hosts: new key: %v", err)
	}

	// A key revoked after it was checked is refused.
	appendFile(t, kh, "@revoked * "+strings.TrimSpace(string(ssh.MarshalAuthorizedKey(rekeyed)))+"\n")
	if err := h.check("a.example:22", testRemote, rekeyed); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("revoked key: %v", err)
	}
}

// A reader never sees the line another process is appending: it waits for
// the writer's lock and then reads the whole line.
func TestReaderWaitsForALineBeingWritten(t *testing.T) {
	isolate(t)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	a := newSigner(t).PublicKey()
	if err := os.WriteFile(kh, []byte(knownhosts.Line([]string{"a.example"}, a)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadKnownHosts([]string{kh}); err != nil {
		t.Fatal(err)
	}

	f, err := os.OpenFile(kh, os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	unlock, err := lockFile(f, true)
	if err != nil {
		t.Fatal(err)
	}
	b := newSigner(t).PublicKey()
	line := knownhosts.Line([]string{"b.example"}, b) + "\n"
	if _, err := f.WriteString(line[:len(line)/2]); err != nil {
		t.Fatal(err)
	}
	type result struct {
		check ssh.HostKeyCallback
		err   error
	}
	done := make(chan result, 1)
	go func() {
		cb, err := loadKnownHosts([]string{kh})
		done <- result{cb, err}
	}()
	// Give a reader that does not wait the time to read the half line.
	select {
	case r := <-done:
		unlock()
		t.Fatalf("known_hosts read while a line was half written (err %v)", r.err)
	case <-time.After(300 * time.Millisecond):
	}
	if _, err := f.WriteString(line[len(line)/2:]); err != nil {
		t.Fatal(err)
	}
	unlock()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if err := r.check("b.example:22", testRemote, b); err != nil {
		t.Errorf("the line written under the lock: %v", err)
	}
}
