package ssh

import (
	"context"
	"errors"
	"sync"

	"golang.org/x/crypto/ssh"
)

// JumpPool shares the connections to jump hosts among the hosts of one
// run: however many hosts sit behind a bastion, it sees one connection
// (sshd's MaxStartups refuses many new ones at once), and each host's
// connection is a channel of it. Set it in Options.Jumps of every host
// of the run. A hop is keyed by its user@host:port and the hops before
// it; it is closed when the last client using it closes, and dialled
// again when it has died.
type JumpPool struct {
	mu   sync.Mutex
	hops map[string]*pooledHop
}

// NewJumpPool returns an empty pool.
func NewJumpPool() *JumpPool { return &JumpPool{hops: map[string]*pooledHop{}} }

type pooledHop struct {
	ready chan struct{} // closed once dialled, well or not
	conn  *ssh.Client
	err   error
	dead  chan struct{} // closed when the connection has ended
	refs  int
}

func (h *pooledHop) ended() bool {
	select {
	case <-h.ready:
	default:
		return false
	}
	if h.err != nil {
		return true
	}
	select {
	case <-h.dead:
		return true
	default:
		return false
	}
}

// get returns the open connection of key, dialling it with dial when
// there is none (or it died), and the function that gives it back.
func (p *JumpPool) get(ctx context.Context, key string, dial func() (*ssh.Client, error), keepAlive func(conn *ssh.Client, stop chan struct{})) (*ssh.Client, func(), error) {
	for {
		p.mu.Lock()
		h := p.hops[key]
		if h != nil && h.ended() {
			delete(p.hops, key)
			h = nil
		}
		if h == nil {
			h = &pooledHop{ready: make(chan struct{}), dead: make(chan struct{}), refs: 1}
			p.hops[key] = h
			p.mu.Unlock()
			c, err := dial()
			h.conn, h.err = c, err
			if err == nil {
				go func() {
					_ = c.Wait()
					close(h.dead)
				}()
				go keepAlive(c, h.dead)
			}
			close(h.ready)
			if err != nil {
				p.put(key, h)
				return nil, nil, err
			}
			return c, p.release(key, h), nil
		}
		h.refs++
		p.mu.Unlock()
		select {
		case <-h.ready:
		case <-ctx.Done():
			p.put(key, h)
			return nil, nil, ctx.Err()
		}
		if h.err != nil {
			p.put(key, h)
			if isContextErr(h.err) && ctx.Err() == nil {
				continue // the host that dialled gave up; this one has not
			}
			return nil, nil, h.err
		}
		if h.ended() {
			p.put(key, h)
			continue
		}
		return h.conn, p.release(key, h), nil
	}
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// release gives h back once, however often it is called.
func (p *JumpPool) release(key string, h *pooledHop) func() {
	var once sync.Once
	return func() { once.Do(func() { p.put(key, h) }) }
}

// put drops a reference to h and closes it with the last one.
func (p *JumpPool) put(key string, h *pooledHop) {
	p.mu.Lock()
	defer p.mu.Unlock()
	h.refs--
	if h.refs > 0 {
		return
	}
	if p.hops[key] == h {
		delete(p.hops, key)
	}
	if h.conn != nil {
		_ = h.conn.Close()
	}
}

// open is how many hop connections the pool holds, for tests.
func (p *JumpPool) open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.hops)
}
