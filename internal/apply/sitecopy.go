package apply

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/k3sctl/k3sctl/internal/plan"
	"github.com/k3sctl/k3sctl/internal/ssh"
)

// LoginConn says how a connection logged in; *ssh.Client is one.
type LoginConn interface {
	Login() ssh.Login
}

// PeerCopyConn copies a file from another host into its own host;
// *ssh.Client is one.
type PeerCopyConn interface {
	CopyFromPeer(ctx context.Context, src ssh.PeerSource, dst string, o ssh.UploadOptions) (ssh.UploadResult, error)
}

var (
	_ LoginConn    = (*ssh.Client)(nil)
	_ PeerCopyConn = (*ssh.Client)(nil)
)

// peerCopiesPerSeed is how many hosts copy from one seed at once: well
// under sshd's MaxStartups (10 unauthenticated connections by default).
const peerCopiesPerSeed = 4

// seedFile is a file of a seed that peers wait for: ready is closed once
// the seed's step that puts it there ended (or the seed ended), and ok
// then says whether the file is there.
type seedFile struct {
	ready chan struct{}
	once  sync.Once
	ok    bool
}

func newSeedFile() *seedFile { return &seedFile{ready: make(chan struct{})} }

// finish says the file's step ended; only the first call counts.
func (s *seedFile) finish(ok bool) {
	s.once.Do(func() {
		s.ok = ok
		close(s.ready)
	})
}

// siteCopy is one file a host copies from its seed.
type siteCopy struct {
	step  plan.StepKind
	src   plan.SiteSource
	path  string // on the seed and on the host
	local string // the same file on the workstation (its size and sha256)
	sum   string // its sha256 when known
	mode  os.FileMode
	// file is the seed's file to wait for.
	file func(seed *job) *seedFile
}

// copyFromSeed copies c's file from j's seed over the LAN. copied is
// false when the host should get the file from the workstation instead;
// the log says why. An error is a failure direct upload would not fix.
func (r *runner) copyFromSeed(ctx context.Context, j *job, conn Conn, c siteCopy) (res ssh.UploadResult, copied bool, err error) {
	direct := func(why string) (ssh.UploadResult, bool, error) {
		r.emit(j, Event{Type: EventLog, Step: c.step, Message: why + "; uploading directly"})
		return ssh.UploadResult{}, false, nil
	}
	seed := r.byKey[j.cplan.Name+"/"+c.src.Host]
	if seed == nil {
		return direct("copy from " + c.src.Host + " not possible: it is not part of this run")
	}
	sf := c.file(seed)
	select {
	case <-sf.ready:
	default:
		r.emit(j, Event{Type: EventLog, Step: c.step, Message: "waiting for " + c.src.Host + " to have it"})
		// The host's turn goes to others meanwhile: the seed may need it.
		<-r.sem
		select {
		case <-sf.ready:
		case <-ctx.Done():
		}
		r.sem <- struct{}{}
		if ctx.Err() != nil {
			return res, false, ctx.Err()
		}
	}
	if !sf.ok {
		return direct("copy from " + c.src.Host + " not possible: its upload did not finish")
	}
	lc, ok := r.conn(c.src.Host).(LoginConn)
	if !ok {
		return direct("copy from " + c.src.Host + " not possible: no SSH connection to it")
	}
	login := lc.Login()
	switch {
	case len(login.Signers) == 0:
		return direct("copy from " + c.src.Host + " not possible: it was not reached with a key, and only a key is forwarded")
	case login.HostKey == nil:
		return direct("copy from " + c.src.Host + " not possible: its host key was not checked")
	}
	pc, ok := conn.(PeerCopyConn)
	if !ok {
		return direct("copy from " + c.src.Host + " not possible: this connection cannot forward a key")
	}
	st, err := os.Stat(c.local)
	if err != nil {
		return res, false, err
	}
	sum := c.sum
	if sum == "" {
		if sum, err = fileSHA256(c.local); err != nil {
			return res, false, err
		}
	}
	slots := r.peerSlots[j.cplan.Name+"/"+c.src.Host]
	select {
	case slots <- struct{}{}:
	case <-ctx.Done():
		return res, false, ctx.Err()
	}
	defer func() { <-slots }()
	r.emit(j, Event{Type: EventLog, Step: c.step, Message: "copying from " + c.src.Host + " (" + c.src.String() + ") over the LAN"})
	progress := func(done, total int64) {
		r.emit(j, Event{Type: EventProgress, Step: c.step, Bytes: done, Total: total})
	}
	res, err = pc.CopyFromPeer(ctx, ssh.PeerSource{
		Name: c.src.Host, Address: c.src.Address, Port: c.src.Port, User: login.User,
		HostKey: login.HostKey, Signers: login.Signers, Path: c.path, SHA256: sum, Size: st.Size(),
	}, c.path, ssh.UploadOptions{Mode: c.mode, Progress: progress, Differs: true})
	if err != nil {
		var ns *ssh.NoSpaceError
		if ctx.Err() != nil || errors.As(err, &ns) {
			return res, false, err
		}
		var pe *ssh.PeerCopyError
		if errors.As(err, &pe) {
			return direct("copy from " + c.src.Address + " failed: " + pe.Reason())
		}
		return direct(fmt.Sprintf("copy from %s failed: %v", c.src.Address, err))
	}
	r.emit(j, Event{Type: EventLog, Step: c.step, Message: "copied from " + c.src.Host + " over the LAN"})
	return res, true, nil
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
