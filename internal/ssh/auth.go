package ssh

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// defaultKeyNames are tried after the agent and the configured keys, in
// OpenSSH's order.
var defaultKeyNames = []string{"id_ed25519", "id_ecdsa", "id_rsa"}

// KeyPassphraseError is a key that needs a passphrase nobody could give.
type KeyPassphraseError struct {
	Path string
	Err  error
}

func (e *KeyPassphraseError) Error() string {
	if errors.Is(e.Err, ErrNoTerminal) {
		return fmt.Sprintf("key %s is protected by a passphrase and there is no terminal to ask for it", e.Path)
	}
	return fmt.Sprintf("key %s: %v", e.Path, e.Err)
}

func (e *KeyPassphraseError) Unwrap() error { return e.Err }

// Hint suggests the agent, which is how ssh avoids the question too.
func (e *KeyPassphraseError) Hint() string {
	if !errors.Is(e.Err, ErrNoTerminal) {
		return ""
	}
	return "add the key to ssh-agent with: ssh-add " + Quote(e.Path) + " (or run k3sctl from a terminal)"
}

// AuthError is a host that accepted none of the keys offered.
type AuthError struct {
	User    string
	Host    string
	Port    int
	Tried   []string
	NoKeys  bool
	SSHFail string
}

func (e *AuthError) Error() string {
	if e.NoKeys {
		return fmt.Sprintf("no SSH key to log in as %s: ssh-agent has none and no key file was found", e.User)
	}
	return fmt.Sprintf("permission denied for user %s (publickey); tried %s", e.User, strings.Join(e.Tried, ", "))
}

// Hint names the usual fix.
func (e *AuthError) Hint() string {
	cmd := "ssh-copy-id "
	if e.Port != 0 && e.Port != 22 {
		cmd += fmt.Sprintf("-p %d ", e.Port)
	}
	cmd += Quote(e.User + "@" + e.Host)
	if e.NoKeys {
		return "create a key with ssh-keygen -t ed25519, copy it to the host with " + cmd + ", or pass one with --ssh-key"
	}
	return "copy your public key to the host with: " + cmd + ", or pass the right key with --ssh-key / --user"
}

// keyring is the ordered set of keys offered to one endpoint.
type keyring struct {
	signers []ssh.Signer
	closers []io.Closer

	mu      sync.Mutex
	offered []string
	failure error // a key that could not be unlocked when the server wanted it
}

func (k *keyring) close() {
	for _, c := range k.closers {
		c.Close()
	}
}

func (k *keyring) noteOffered(desc string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, d := range k.offered {
		if d == desc {
			return
		}
	}
	k.offered = append(k.offered, desc)
}

func (k *keyring) triedKeys() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.offered...)
}

// loadKeyring collects keys in OpenSSH's order: agent, configured key files,
// default key files. Encrypted keys are unlocked only when the host says it
// would accept them.
func loadKeyring(e *endpoint, prompter Prompter, warnf func(string, ...any)) (*keyring, error) {
	k := &keyring{}
	seen := map[string]bool{}

	type fileKey struct {
		path     string
		explicit bool
	}
	var files []fileKey
	for i, f := range e.identityFiles {
		files = append(files, fileKey{f, i < e.explicitKeys})
	}
	if !e.identitiesOnly || len(e.identityFiles) == 0 {
		if home, err := os.UserHomeDir(); err == nil {
			for _, n := range defaultKeyNames {
				files = append(files, fileKey{filepath.Join(home, ".ssh", n), false})
			}
		}
	}

	var fromFiles []ssh.Signer
	wanted := map[string]bool{} // public keys of the files, for IdentitiesOnly
	for _, f := range files {
		s, err := loadKeyFile(f.path, prompter, k)
		if err != nil {
			if f.explicit {
				k.close()
				return nil, err
			}
			if !errors.Is(err, os.ErrNotExist) {
				warnf("skipping key %s: %v", f.path, err)
			}
			continue
		}
		if s == nil {
			continue
		}
		blob := string(s.PublicKey().Marshal())
		wanted[blob] = true
		fromFiles = append(fromFiles, s)
	}

	if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
		conn, err := net.Dial("unix", sock)
		if err != nil {
			warnf("ssh-agent at SSH_AUTH_SOCK=%s: %v", sock, err)
		} else {
			k.closers = append(k.closers, conn)
			ag := agent.NewClient(conn)
			comments := map[string]string{}
			if list, err := ag.List(); err == nil {
				for _, key := range list {
					comments[string(key.Marshal())] = key.Comment
				}
			}
			signers, err := ag.Signers()
			if err != nil {
				warnf("ssh-agent: %v", err)
			}
			for _, s := range signers {
				blob := string(s.PublicKey().Marshal())
				if e.identitiesOnly && !wanted[blob] || seen[blob] {
					continue
				}
				seen[blob] = true
				desc := "agent key " + describeKey(s.PublicKey(), comments[blob])
				k.signers = append(k.signers, offeredSigner{Signer: s, desc: desc, k: k, agentSock: sock})
			}
		}
	}
	for _, s := range fromFiles {
		blob := string(s.PublicKey().Marshal())
		if seen[blob] {
			continue
		}
		seen[blob] = true
		k.signers = append(k.signers, s)
	}
	return k, nil
}

func describeKey(pub ssh.PublicKey, comment string) string {
	d := keyTypeName(pub) + " " + ssh.FingerprintSHA256(pub)
	if comment != "" {
		d = comment + " (" + d + ")"
	}
	return d
}

// loadKeyFile returns a signer for a private key file; nil, nil for a file
// that holds no private key.
func loadKeyFile(path string, prompter Prompter, k *keyring) (ssh.Signer, error) {
	pemBytes, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if err := CheckKeyFilePermissions(path); err != nil {
		return nil, err
	}
	signer, err := ssh.ParsePrivateKey(pemBytes)
	if err == nil {
		return offeredSigner{Signer: signer, desc: path, k: k}, nil
	}
	var missing *ssh.PassphraseMissingError
	if !errors.As(err, &missing) {
		return nil, fmt.Errorf("key %s: %w", path, err)
	}
	ls := &lockedSigner{path: path, pem: pemBytes, prompter: prompter, k: k, pub: missing.PublicKey}
	if ls.pub == nil {
		if pubBytes, err := os.ReadFile(path + ".pub"); err == nil {
			if pub, _, _, _, err := ssh.ParseAuthorizedKey(pubBytes); err == nil {
				ls.pub = pub
			}
		}
	}
	if ls.pub == nil {
		// Without the public half the host cannot be asked first, so the
		// passphrase is needed now.
		if err := ls.unlock(); err != nil {
			return nil, err
		}
	}
	return ls, nil
}

// offeredSigner records which keys were offered, for the error message.
type offeredSigner struct {
	ssh.Signer
	desc string
	k    *keyring
	// agentSock is the ssh-agent socket of an agent key, whose signer
	// ends with the keyring's agent connection.
	agentSock string
}

func (s offeredSigner) PublicKey() ssh.PublicKey {
	s.k.noteOffered(s.desc)
	return s.Signer.PublicKey()
}

func (s offeredSigner) SignWithAlgorithm(rand io.Reader, data []byte, algorithm string) (*ssh.Signature, error) {
	return signWithAlgorithm(s.Signer, rand, data, algorithm)
}

func signWithAlgorithm(s ssh.Signer, rand io.Reader, data []byte, algorithm string) (*ssh.Signature, error) {
	if as, ok := s.(ssh.AlgorithmSigner); ok {
		return as.SignWithAlgorithm(rand, data, algorithm)
	}
	if algorithm == "" || algorithm == s.PublicKey().Type() {
		return s.Sign(rand, data)
	}
	return nil, fmt.Errorf("ssh: key %s cannot sign with %s", s.PublicKey().Type(), algorithm)
}

// lockedSigner is a passphrase-protected key, unlocked on first use.
type lockedSigner struct {
	path     string
	pem      []byte
	pub      ssh.PublicKey
	prompter Prompter
	k        *keyring

	mu     sync.Mutex
	signer ssh.Signer
}

func (s *lockedSigner) PublicKey() ssh.PublicKey {
	s.k.noteOffered(s.path)
	if s.pub != nil {
		return s.pub
	}
	return s.signer.PublicKey()
}

func (s *lockedSigner) Sign(rand io.Reader, data []byte) (*ssh.Signature, error) {
	return s.SignWithAlgorithm(rand, data, "")
}

func (s *lockedSigner) SignWithAlgorithm(rand io.Reader, data []byte, algorithm string) (*ssh.Signature, error) {
	if err := s.unlock(); err != nil {
		s.k.mu.Lock()
		s.k.failure = err
		s.k.mu.Unlock()
		return nil, err
	}
	return signWithAlgorithm(s.signer, rand, data, algorithm)
}

const passphraseTries = 3

func (s *lockedSigner) unlock() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.signer != nil {
		return nil
	}
	if s.prompter == nil {
		return &KeyPassphraseError{Path: s.path, Err: ErrNoTerminal}
	}
	prompt := fmt.Sprintf("Enter passphrase for key %s: ", s.path)
	for range passphraseTries {
		pass, err := s.prompter.Secret(prompt)
		if err != nil {
			return &KeyPassphraseError{Path: s.path, Err: err}
		}
		signer, err := ssh.ParsePrivateKeyWithPassphrase(s.pem, []byte(pass.Reveal()))
		if errors.Is(err, x509.IncorrectPasswordError) {
			forget(s.prompter, prompt)
			continue
		}
		if err != nil {
			return &KeyPassphraseError{Path: s.path, Err: err}
		}
		if s.pub != nil && !bytes.Equal(signer.PublicKey().Marshal(), s.pub.Marshal()) {
			return &KeyPassphraseError{Path: s.path, Err: errors.New("the private key does not match " + s.path + ".pub")}
		}
		s.signer = signer
		return nil
	}
	return &KeyPassphraseError{Path: s.path, Err: fmt.Errorf("wrong passphrase (asked %d times)", passphraseTries)}
}
