package ssh

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Login is how the client reached and logged in to its host.
type Login struct {
	User string
	Port int // the port the client connected to (before any port forwarding)
	// HostKey is the host key the client verified against known_hosts;
	// nil when host keys were not checked.
	HostKey ssh.PublicKey
	// Signers is the key the host accepted. It stays usable for the
	// client's life (an agent key signs through a new agent connection).
	Signers []ssh.Signer
}

// Login says how the client logged in.
func (c *Client) Login() Login { return c.login }

// usedSigner records which of the offered keys signed the accepted
// authentication: x/crypto signs only with a key the server said it would
// take, so the last one that signed is the one that logged in.
type usedSigner struct {
	mu sync.Mutex
	s  ssh.Signer
}

func (u *usedSigner) wrap(signers []ssh.Signer) []ssh.Signer {
	out := make([]ssh.Signer, len(signers))
	for i, s := range signers {
		out[i] = recordingSigner{Signer: s, u: u}
	}
	return out
}

func (u *usedSigner) get() ssh.Signer {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.s
}

type recordingSigner struct {
	ssh.Signer
	u *usedSigner
}

func (r recordingSigner) Sign(rand io.Reader, data []byte) (*ssh.Signature, error) {
	return r.SignWithAlgorithm(rand, data, "")
}

func (r recordingSigner) SignWithAlgorithm(rand io.Reader, data []byte, algorithm string) (*ssh.Signature, error) {
	sig, err := signWithAlgorithm(r.Signer, rand, data, algorithm)
	if err == nil {
		r.u.mu.Lock()
		r.u.s = lasting(r.Signer)
		r.u.mu.Unlock()
	}
	return sig, err
}

// lasting is a signer that outlives the keyring it came from.
func lasting(s ssh.Signer) ssh.Signer {
	if o, ok := s.(offeredSigner); ok {
		if o.agentSock != "" {
			return &agentKeySigner{sock: o.agentSock, pub: o.Signer.PublicKey()}
		}
		return o.Signer
	}
	if l, ok := s.(*lockedSigner); ok {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.signer != nil {
			return l.signer
		}
	}
	return s
}

// agentKeySigner signs with a key of the user's ssh-agent, through a new
// connection each time.
type agentKeySigner struct {
	sock string
	pub  ssh.PublicKey
}

func (a *agentKeySigner) PublicKey() ssh.PublicKey { return a.pub }

func (a *agentKeySigner) Sign(rand io.Reader, data []byte) (*ssh.Signature, error) {
	return a.SignWithAlgorithm(rand, data, "")
}

func (a *agentKeySigner) SignWithAlgorithm(_ io.Reader, data []byte, algorithm string) (*ssh.Signature, error) {
	conn, err := net.Dial("unix", a.sock)
	if err != nil {
		return nil, fmt.Errorf("ssh-agent at %s: %w", a.sock, err)
	}
	defer conn.Close()
	var flags agent.SignatureFlags
	switch algorithm {
	case ssh.KeyAlgoRSASHA256:
		flags = agent.SignatureFlagRsaSha256
	case ssh.KeyAlgoRSASHA512:
		flags = agent.SignatureFlagRsaSha512
	}
	return agent.NewClient(conn).SignWithFlags(a.pub, data, flags)
}

// signersAgent is the agent a host sees through forwarding: it lists and
// signs with the given keys only, and refuses every change. It is empty
// outside a RunWithAgent call.
type signersAgent struct {
	mu      sync.Mutex
	signers []ssh.Signer
}

var _ agent.ExtendedAgent = (*signersAgent)(nil)

var errAgentRefused = errors.New("refused: this agent only signs with the key k3sctl logged in with")

func (a *signersAgent) set(signers []ssh.Signer) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.signers = append([]ssh.Signer(nil), signers...)
}

func (a *signersAgent) List() ([]*agent.Key, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	keys := make([]*agent.Key, 0, len(a.signers))
	for _, s := range a.signers {
		pub := s.PublicKey()
		keys = append(keys, &agent.Key{Format: pub.Type(), Blob: pub.Marshal(), Comment: "k3sctl login key"})
	}
	return keys, nil
}

func (a *signersAgent) Sign(key ssh.PublicKey, data []byte) (*ssh.Signature, error) {
	return a.SignWithFlags(key, data, 0)
}

func (a *signersAgent) SignWithFlags(key ssh.PublicKey, data []byte, flags agent.SignatureFlags) (*ssh.Signature, error) {
	a.mu.Lock()
	var signer ssh.Signer
	for _, s := range a.signers {
		if bytes.Equal(s.PublicKey().Marshal(), key.Marshal()) {
			signer = s
			break
		}
	}
	a.mu.Unlock()
	if signer == nil {
		return nil, errors.New("agent: no such key")
	}
	algorithm := ""
	if key.Type() == ssh.KeyAlgoRSA {
		switch {
		case flags&agent.SignatureFlagRsaSha512 != 0:
			algorithm = ssh.KeyAlgoRSASHA512
		case flags&agent.SignatureFlagRsaSha256 != 0:
			algorithm = ssh.KeyAlgoRSASHA256
		}
	}
	return signWithAlgorithm(signer, rand.Reader, data, algorithm)
}

func (a *signersAgent) Signers() ([]ssh.Signer, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]ssh.Signer(nil), a.signers...), nil
}

func (a *signersAgent) Add(agent.AddedKey) error   { return errAgentRefused }
func (a *signersAgent) Remove(ssh.PublicKey) error { return errAgentRefused }
func (a *signersAgent) RemoveAll() error           { return errAgentRefused }
func (a *signersAgent) Lock([]byte) error          { return errAgentRefused }
func (a *signersAgent) Unlock([]byte) error        { return errAgentRefused }
func (a *signersAgent) Extension(string, []byte) ([]byte, error) {
	return nil, agent.ErrExtensionUnsupported
}

// RunWithAgent runs cmd as the login user (never through sudo) in a
// session that forwards an agent offering only keys: the host can log in
// where those keys are accepted while the command runs, and the private
// keys never leave this machine. One such session runs at a time per
// client.
func (c *Client) RunWithAgent(ctx context.Context, cmd string, keys []ssh.Signer, o RunOptions) (Result, error) {
	if len(keys) == 0 {
		return Result{ExitCode: -1}, &Error{Host: c.host, Op: shortCmd(cmd), Err: errors.New("no key to forward")}
	}
	c.fwdOnce.Do(func() { c.fwdErr = agent.ForwardToAgent(c.conn, &c.fwdAgent) })
	if c.fwdErr != nil {
		return Result{ExitCode: -1}, &Error{Host: c.host, Op: shortCmd(cmd), Err: c.fwdErr}
	}
	c.fwdMu.Lock()
	defer c.fwdMu.Unlock()
	c.fwdAgent.set(keys)
	defer c.fwdAgent.set(nil)
	// sshd grants forwarding once per connection and then gives every
	// later session of it the agent's socket: it is asked for once, and
	// the agent offers keys only while a RunWithAgent command runs.
	o.Sudo, o.PasswordFirst, o.forwardAgent = false, false, !c.fwdRequested
	return c.Run(ctx, cmd, o)
}

// KnownHostsLine is the known_hosts line that pins key for host:port, as
// OpenSSH looks it up.
func KnownHostsLine(host string, port int, key ssh.PublicKey) string {
	return knownhosts.Line([]string{knownhosts.Normalize(net.JoinHostPort(host, strconv.Itoa(port)))}, key)
}

// PeerSource is a file on another host that the receiving host copies
// itself over SSH, logging in with the forwarded key.
type PeerSource struct {
	Name    string // for messages: the source host as the user named it
	Address string // as the receiving host reaches it
	Port    int
	User    string
	HostKey ssh.PublicKey // pinned: the copy refuses any other
	Signers []ssh.Signer
	Path    string // the file on the source host
	SHA256  string // what the file must hash to
	Size    int64
}

// peerConnectTimeout bounds the receiving host's connection to the source.
const peerConnectTimeout = 10 * time.Second

// peerCopyScript runs as the login user of the receiving host, with the
// known_hosts line on stdin: it writes the source's file into tmp (or,
// when tmp's folder is closed to the user, a new file in /tmp) and prints
// "staged <path>". Every path and option is quoted; the script holds no
// secret.
func peerCopyScript(src PeerSource, tmp string) string {
	// A file only root reads (K3s's images folder) is read through sudo,
	// which must not ask for a password.
	remote := "if test -r " + Quote(src.Path) + "; then exec " + Join("cat", "--", src.Path) +
		"; else exec " + Join("sudo", "-n", "cat", "--", src.Path) + "; fi"
	args := []string{"ssh", "-n", "-F", "/dev/null",
		"-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "IdentitiesOnly=no",
		"-o", "ConnectTimeout=" + strconv.Itoa(int(peerConnectTimeout/time.Second)),
		"-o", "ServerAliveInterval=15",
		"-o", "ServerAliveCountMax=3",
		"-o", "LogLevel=ERROR",
		"-p", strconv.Itoa(src.Port),
		"-l", src.User,
	}
	return `t=` + Quote(tmp) + `
kh=$(mktemp "${TMPDIR:-/tmp}/k3sctl-upload-known-hosts.XXXXXX") || exit
s=
trap 'rm -f -- "$kh"' EXIT
cat > "$kh" || exit
if ( : >> "$t" ) 2>/dev/null; then s=$t
else s=$(mktemp /tmp/k3sctl-upload-XXXXXX) || exit
fi
` + Join(args...) + ` -o UserKnownHostsFile="$kh" -- ` + Quote(src.Address) + ` ` + Quote(remote) + ` > "$s" || { rc=$?; [ "$s" = "$t" ] || rm -f -- "$s"; exit $rc; }
echo "staged $s"`
}

// CopyFromPeer puts src's file at dst on the client's host the way Upload
// does (a temporary file beside dst, sha256 checked as root, then moved in
// place with mode and owner), but the bytes come from the source host: the
// receiving host's ssh client fetches them with the forwarded key, pinned
// to the source's host key. When dst already has src.SHA256 nothing is
// copied (unless o.Differs).
func (c *Client) CopyFromPeer(ctx context.Context, src PeerSource, dst string, o UploadOptions) (UploadResult, error) {
	fail := c.failer("copy " + dst + " from " + src.Name)
	switch {
	case !path.IsAbs(dst) || !path.IsAbs(src.Path):
		return fail(fmt.Errorf("paths must be absolute, not %q and %q", dst, src.Path))
	case src.HostKey == nil:
		return fail(fmt.Errorf("the host key of %s is not known", src.Name))
	case len(src.Signers) == 0:
		return fail(fmt.Errorf("%s was not reached with a key", src.Name))
	case src.SHA256 == "":
		return fail(errors.New("no sha256 to check the copy against"))
	}
	mode, owner := o.modeOwner()
	port := src.Port
	if port == 0 {
		port = 22
	}
	src.Port = port
	sum := strings.ToLower(src.SHA256)
	res := UploadResult{SHA256: sum, Bytes: src.Size}
	tmp := o.tempFor(dst)
	needed := src.Size + SpaceMargin(src.Size)
	same, err := c.checkTarget(ctx, dst, tmp, sum, needed, o)
	if err != nil {
		return fail(err)
	}
	if same {
		res.Skipped = true
		return res, nil
	}
	// No byte progress while the host copies: the caller says what runs.
	line := KnownHostsLine(src.Address, port, src.HostKey) + "\n"
	cres, err := c.RunWithAgent(ctx, peerCopyScript(src, tmp), src.Signers, RunOptions{Stdin: strings.NewReader(line)})
	if err != nil {
		c.removeQuietly(tmp)
		return UploadResult{}, &PeerCopyError{Host: c.host, Source: src.Name, Err: err}
	}
	staged, ok := strings.CutPrefix(strings.TrimSpace(string(cres.Stdout)), "staged ")
	if !ok || !path.IsAbs(staged) {
		c.removeQuietly(tmp)
		return UploadResult{}, &PeerCopyError{Host: c.host, Source: src.Name, Err: fmt.Errorf("unexpected answer %q", strings.TrimSpace(string(cres.Stdout)))}
	}
	if _, err := c.Run(ctx, uploadFinishScript(staged, tmp, dst, sum, mode, owner), RunOptions{Sudo: true}); err != nil {
		c.removeQuietly(tmp, staged)
		return UploadResult{}, &PeerCopyError{Host: c.host, Source: src.Name, Err: err}
	}
	if o.Progress != nil {
		o.Progress(src.Size, src.Size)
	}
	return res, nil
}

// PeerCopyError is a copy from another host that did not work; Reason is
// what the receiving host's ssh or the check said.
type PeerCopyError struct {
	Host, Source string
	Err          error
}

func (e *PeerCopyError) Error() string {
	return fmt.Sprintf("%s: copy from %s failed: %s", e.Host, e.Source, e.Reason())
}

// Reason is the cause in one line: the last line the host's ssh printed,
// else the error.
func (e *PeerCopyError) Reason() string {
	var ee *ExitError
	if errors.As(e.Err, &ee) {
		if s := strings.TrimSpace(ee.Stderr); s != "" {
			lines := strings.Split(s, "\n")
			return strings.TrimSpace(lines[len(lines)-1])
		}
		return fmt.Sprintf("exit status %d", ee.ExitCode)
	}
	var he *Error
	if errors.As(e.Err, &he) {
		return he.Err.Error()
	}
	return e.Err.Error()
}

func (e *PeerCopyError) Unwrap() error { return e.Err }
