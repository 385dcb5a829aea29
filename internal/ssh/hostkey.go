package ssh

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// globalKnownHosts is read (never written) like OpenSSH's GlobalKnownHostsFile.
var globalKnownHosts = []string{"/etc/ssh/ssh_known_hosts"}

// HostKeyChangedError is a host that presents a different key than the one
// recorded for it: a re-installed host, or someone in the middle.
type HostKeyChangedError struct {
	Host    string // as in known_hosts: "10.0.0.5" or "[10.0.0.5]:2222"
	Offered ssh.PublicKey
	Known   []knownhosts.KnownKey
}

func (e *HostKeyChangedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "host key for %s has changed: the host offered %s %s, but ",
		e.Host, keyTypeName(e.Offered), ssh.FingerprintSHA256(e.Offered))
	for i, k := range e.Known {
		if i > 0 {
			b.WriteString(" and ")
		}
		fmt.Fprintf(&b, "%s:%d has %s %s", k.Filename, k.Line, keyTypeName(k.Key), ssh.FingerprintSHA256(k.Key))
	}
	b.WriteString(" (the host was re-installed, or someone is intercepting the connection)")
	return b.String()
}

// Hint gives the command that removes the old entry.
func (e *HostKeyChangedError) Hint() string {
	file := ""
	if len(e.Known) > 0 {
		file = e.Known[0].Filename
	}
	return fmt.Sprintf("if the host was re-installed, remove the old key with: ssh-keygen -R %s -f %s", Quote(e.Host), Quote(file))
}

// HostKeyUnknownError is a new host under strict checking.
type HostKeyUnknownError struct {
	Host    string
	Offered ssh.PublicKey
	File    string
}

func (e *HostKeyUnknownError) Error() string {
	return fmt.Sprintf("host key for %s is not in %s (%s %s) and host key checking is strict",
		e.Host, e.File, keyTypeName(e.Offered), ssh.FingerprintSHA256(e.Offered))
}

// Hint says how to record the key.
func (e *HostKeyUnknownError) Hint() string {
	return "check the fingerprint, then connect once with --ssh-host-key-checking accept-new (or ssh " + Quote(e.Host) + ") to record it"
}

func keyTypeName(k ssh.PublicKey) string {
	t := strings.TrimPrefix(k.Type(), "ssh-")
	switch {
	case strings.HasPrefix(t, "ecdsa"):
		return "ECDSA key"
	case t == "rsa":
		return "RSA key"
	}
	return strings.ToUpper(t) + " key"
}

// hostKeys checks host keys against known_hosts for one endpoint.
type hostKeys struct {
	mode  HostKeyChecking
	files []string // user files; files[0] receives new keys
	hash  bool
	warnf func(string, ...any)
}

func newHostKeys(e *endpoint, warnf func(string, ...any)) *hostKeys {
	return &hostKeys{mode: e.hostKeyChecking, files: e.knownHosts, hash: e.hashKnownHosts, warnf: warnf}
}

// candidates are the files checked, the user's then the global ones.
func (h *hostKeys) candidates() []string {
	return append(slices.Clone(h.files), globalKnownHosts...)
}

// db is the known_hosts database, parsed once per version of the files.
func (h *hostKeys) db() (ssh.HostKeyCallback, error) {
	return loadKnownHosts(h.candidates())
}

// probeKey never matches a recorded key: checking it reveals which keys are
// recorded for a host.
var probeKey = func() ssh.PublicKey {
	pub, _, _ := ed25519.GenerateKey(zeroReader{})
	k, _ := ssh.NewPublicKey(pub)
	return k
}()

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// algorithms orders host key algorithms so that a type already recorded for
// the host is negotiated first, as ssh does; otherwise a host that also has
// another key type would look changed.
func (h *hostKeys) algorithms(addr string) []string {
	def := defaultHostKeyAlgorithms()
	if h.mode == HostKeyOff {
		return def
	}
	cb, err := h.db()
	if err != nil {
		return def
	}
	var ke *knownhosts.KeyError
	if !errors.As(cb(addr, dummyAddr{}, probeKey), &ke) || len(ke.Want) == 0 {
		return def
	}
	var first []string
	for _, k := range ke.Want {
		for _, a := range algorithmsForKey(k.Key.Type()) {
			if slices.Contains(def, a) && !slices.Contains(first, a) {
				first = append(first, a)
			}
		}
	}
	rest := slices.DeleteFunc(slices.Clone(def), func(a string) bool { return slices.Contains(first, a) })
	return append(first, rest...)
}

// defaultHostKeyAlgorithms puts ed25519 first, as OpenSSH does, so that the
// key k3sctl records is the one ssh would record and look for.
func defaultHostKeyAlgorithms() []string {
	all := ssh.SupportedAlgorithms().HostKeys
	first := []string{ssh.CertAlgoED25519v01, ssh.KeyAlgoED25519}
	out := slices.DeleteFunc(slices.Clone(first), func(a string) bool { return !slices.Contains(all, a) })
	for _, a := range all {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

func algorithmsForKey(keyType string) []string {
	if keyType == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{keyType}
}

type dummyAddr struct{}

func (dummyAddr) Network() string { return "tcp" }
func (dummyAddr) String() string  { return "0.0.0.0:0" }

// check is the ssh.HostKeyCallback.
func (h *hostKeys) check(addr string, remote net.Addr, key ssh.PublicKey) error {
	name := knownhosts.Normalize(addr)
	if h.mode == HostKeyOff {
		h.warnf("%s: host key not checked (--ssh-host-key-checking off): %s %s; the connection could be intercepted",
			name, keyTypeName(key), ssh.FingerprintSHA256(key))
		return nil
	}
	cb, err := h.db()
	if err != nil {
		return err
	}
	err = h.classify(name, cb(addr, remote, key), key)
	var unknown *HostKeyUnknownError
	if !errors.As(err, &unknown) || h.mode != HostKeyAcceptNew {
		return err
	}
	return h.record(addr, remote, key)
}

func (h *hostKeys) classify(name string, err error, key ssh.PublicKey) error {
	if err == nil {
		return nil
	}
	var ke *knownhosts.KeyError
	var re *knownhosts.RevokedError
	switch {
	case errors.As(err, &re):
		return fmt.Errorf("host key for %s (%s) is marked revoked in %s:%d", name, ssh.FingerprintSHA256(key), re.Revoked.Filename, re.Revoked.Line)
	case errors.As(err, &ke) && len(ke.Want) > 0:
		return &HostKeyChangedError{Host: name, Offered: key, Known: ke.Want}
	case errors.As(err, &ke):
		file := "known_hosts"
		if len(h.files) > 0 {
			file = h.files[0]
		}
		return &HostKeyUnknownError{Host: name, Offered: key, File: file}
	}
	return err
}

// record appends key under a lock after reading the file again: another
// connection, here or in another k3sctl, may have recorded it meanwhile.
func (h *hostKeys) record(addr string, remote net.Addr, key ssh.PublicKey) error {
	if len(h.files) == 0 {
		return errors.New("no known_hosts file to record the host key in (HOME is not set)")
	}
	file := h.files[0]
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return fmt.Errorf("known_hosts: %w", err)
	}
	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("known_hosts: %w", err)
	}
	defer f.Close()
	unlock, err := lockFile(f, true)
	if err != nil {
		return fmt.Errorf("known_hosts: lock %s: %w", file, err)
	}
	defer unlock()

	cb, err := loadKnownHostsLocked(h.candidates())
	if err != nil {
		return err
	}
	name := knownhosts.Normalize(addr)
	var unknown *HostKeyUnknownError
	if err := h.classify(name, cb(addr, remote, key), key); !errors.As(err, &unknown) {
		return err
	}

	content, err := io.ReadAll(f)
	if err != nil {
		return fmt.Errorf("known_hosts: %w", err)
	}
	var line bytes.Buffer
	if len(content) > 0 && content[len(content)-1] != '\n' {
		line.WriteByte('\n')
	}
	host := name
	if h.hash {
		host = knownhosts.HashHostname(name)
	}
	line.WriteString(knownhosts.Line([]string{host}, key))
	line.WriteByte('\n')
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		return fmt.Errorf("known_hosts: %w", err)
	}
	if _, err := f.Write(line.Bytes()); err != nil {
		return fmt.Errorf("known_hosts: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("known_hosts: %w", err)
	}
	h.warnf("%s: recorded new host key %s %s in %s", name, keyTypeName(key), ssh.FingerprintSHA256(key), file)
	return nil
}
