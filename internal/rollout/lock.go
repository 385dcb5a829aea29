package rollout

import (
	"context"
	"errors"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/k3sctl/k3sctl/internal/apply"
	"github.com/k3sctl/k3sctl/internal/hostlock"
	"github.com/k3sctl/k3sctl/internal/plan"
	"github.com/k3sctl/k3sctl/internal/preflight"
	"github.com/k3sctl/k3sctl/internal/ssh"
)

// LockOptions says who takes the host locks of a run.
type LockOptions struct {
	Holder hostlock.Holder // Holder.RunID also names the run's temporary files
	Dir    string          // "": hostlock.DefaultDir
}

// NewLockOptions describes this process, started with args (os.Args),
// under a new run id.
func NewLockOptions(args []string) *LockOptions {
	return &LockOptions{Holder: hostlock.NewHolder(args, hostlock.NewRunID())}
}

// releaseTimeout bounds the release of the locks at the end of a run,
// which also happens after Ctrl-C, when the run's context is gone.
const releaseTimeout = 15 * time.Second

// hostLocks are the locks a run holds; a nil *hostLocks holds none.
type hostLocks struct {
	runID   string
	mu      sync.Mutex
	held    map[string]*hostlock.Lock
	cancels []context.CancelFunc // of the locks' contexts, after release
}

// lockTargets are the hosts a run may change: every host of every
// cluster, but not a running server that is only read from (join's
// --server-ip), so that joins to one server can run side by side.
func lockTargets(spec *plan.Spec) []string {
	seen := map[string]bool{}
	var out []string
	for _, c := range spec.Clusters {
		for _, h := range clusterHosts(c) {
			if !seen[h.Address] {
				seen[h.Address] = true
				out = append(out, h.Address)
			}
		}
	}
	sort.Strings(out)
	return out
}

// lockHosts takes the lock on every target that has a connection. The
// first target (in sorted order) is locked alone before the others, in
// parallel: of two runs started at the same moment on one inventory, the
// one that gets the first host goes on and the other stops there, instead
// of each taking half the hosts and both stopping. Every host that cannot
// be locked is a problem; the caller releases the rest.
func lockHosts(ctx context.Context, o LockOptions, conns map[string]Conn, targets []string, limit int) (*hostLocks, []preflight.Problem) {
	l := &hostLocks{runID: o.Holder.RunID, held: map[string]*hostlock.Lock{}}
	var (
		mu       sync.Mutex
		problems []preflight.Problem
	)
	var reachable []target
	for _, a := range targets {
		if conns[a] != nil {
			reachable = append(reachable, target{addr: a})
		}
	}
	take := func(t target) {
		if p := l.take(ctx, o, t.addr, conns[t.addr]); p != nil {
			mu.Lock()
			problems = append(problems, *p)
			mu.Unlock()
		}
	}
	if len(reachable) > 0 {
		take(reachable[0])
		if len(problems) == 0 {
			parallel(reachable[1:], limit, take)
		}
	}
	return l, problems
}

// take takes the host lock on addr through c; a host that cannot be
// locked comes back as a problem.
func (l *hostLocks) take(ctx context.Context, o LockOptions, addr string, c Conn) *preflight.Problem {
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, cancel)
	lk, err := hostlock.Acquire(lctx, addr, c, o.Holder, hostlock.Options{Dir: o.Dir})
	stop()
	if err != nil {
		cancel()
		p := preflight.FromError(addr, err)
		return &p
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.held[addr] = lk
	l.cancels = append(l.cancels, cancel)
	return nil
}

// drop releases the lock on addr, if held: its host drops out of the run.
func (l *hostLocks) drop(addr string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	lk := l.held[addr]
	delete(l.held, addr)
	l.mu.Unlock()
	if lk == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	_ = lk.Release(ctx)
}

// release lets every lock go and waits until the hosts freed them.
func (l *hostLocks) release() {
	if l == nil {
		return
	}
	l.mu.Lock()
	held, cancels := l.held, l.cancels
	l.held, l.cancels = map[string]*hostlock.Lock{}, nil
	l.mu.Unlock()
	defer func() {
		for _, c := range cancels {
			c()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, lk := range held {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = lk.Release(ctx) // a lost lock already failed its host's steps
		}()
	}
	wg.Wait()
}

// guard is c, failing every command once the host's lock is lost and
// naming the run's temporary files; c itself without locks.
func (l *hostLocks) guard(addr string, c Conn) Conn {
	if l == nil {
		return c
	}
	l.mu.Lock()
	lk := l.held[addr]
	l.mu.Unlock()
	if lk == nil {
		return c
	}
	return newLockedConn(c, lk, l.runID)
}

// errReleased is the cause of a guarded command after the run let its
// lock go.
var errReleased = errors.New("the host lock was released")

// lockedConn is a connection of a host whose lock the run holds. Once the
// lock is lost (its SSH session ended) the host is no longer protected
// from another run, so every command still running is cancelled and every
// later one fails with the *hostlock.LostError.
type lockedConn struct {
	Conn
	lock  *hostlock.Lock
	held  context.Context // cancelled, with the reason, once the lock ends
	runID string
}

func newLockedConn(c Conn, lk *hostlock.Lock, runID string) *lockedConn {
	held, cancel := context.WithCancelCause(context.Background())
	go func() {
		<-lk.Done()
		cancel(lockEnded(lk))
	}()
	return &lockedConn{Conn: c, lock: lk, held: held, runID: runID}
}

// lockEnded is why a lock is no longer held.
func lockEnded(lk *hostlock.Lock) error {
	if err := lk.Err(); err != nil {
		return err
	}
	return errReleased
}

// lost is the reason the lock ended, or nil while it is held.
func (c *lockedConn) lost() error {
	select {
	case <-c.lock.Done():
		return lockEnded(c.lock)
	default:
		return nil
	}
}

// do runs f with a context that ends when the lock does.
func (c *lockedConn) do(ctx context.Context, f func(ctx context.Context) error) error {
	if err := c.lost(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(c.held, func() { cancel(context.Cause(c.held)) })
	defer stop()
	err := f(ctx)
	if err != nil {
		if lost := c.lost(); lost != nil {
			return lost
		}
	}
	return err
}

func (c *lockedConn) Run(ctx context.Context, cmd string, o ssh.RunOptions) (res ssh.Result, err error) {
	err = c.do(ctx, func(ctx context.Context) error {
		res, err = c.Conn.Run(ctx, cmd, o)
		return err
	})
	return res, err
}

func (c *lockedConn) Upload(ctx context.Context, src, dst string, o ssh.UploadOptions) (res ssh.UploadResult, err error) {
	if o.TempName == nil {
		o.TempName = func(dir, base string) string { return hostlock.TempName(dir, base, c.runID) }
	}
	err = c.do(ctx, func(ctx context.Context) error {
		res, err = c.Conn.Upload(ctx, src, dst, o)
		return err
	})
	return res, err
}

func (c *lockedConn) WriteFile(ctx context.Context, dst string, data []byte, mode os.FileMode) (changed bool, err error) {
	err = c.do(ctx, func(ctx context.Context) error {
		changed, err = c.Conn.WriteFile(ctx, dst, data, mode)
		return err
	})
	return changed, err
}

func (c *lockedConn) ReadFile(ctx context.Context, p string) (data []byte, err error) {
	err = c.do(ctx, func(ctx context.Context) error {
		data, err = c.Conn.ReadFile(ctx, p)
		return err
	})
	return data, err
}

var (
	_ apply.LoginConn    = (*lockedConn)(nil)
	_ apply.PeerCopyConn = (*lockedConn)(nil)
)

// Login is how the connection logged in (apply.LoginConn).
func (c *lockedConn) Login() ssh.Login {
	if lc, ok := c.Conn.(apply.LoginConn); ok {
		return lc.Login()
	}
	return ssh.Login{}
}

// CopyFromPeer copies a file from another host (apply.PeerCopyConn).
func (c *lockedConn) CopyFromPeer(ctx context.Context, src ssh.PeerSource, dst string, o ssh.UploadOptions) (res ssh.UploadResult, err error) {
	pc, ok := c.Conn.(apply.PeerCopyConn)
	if !ok {
		return res, errors.New("this connection cannot copy from another host")
	}
	if o.TempName == nil {
		o.TempName = func(dir, base string) string { return hostlock.TempName(dir, base, c.runID) }
	}
	err = c.do(ctx, func(ctx context.Context) error {
		res, err = pc.CopyFromPeer(ctx, src, dst, o)
		return err
	})
	return res, err
}

// TempFor names the run's temporary files (node.TempNamer).
func (c *lockedConn) TempFor(target string) string { return hostlock.TempFor(target, c.runID) }

func sortedCopy(in []string) []string {
	out := append([]string(nil), in...)
	sort.Strings(out)
	return out
}
