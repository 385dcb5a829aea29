package ssh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/k3sctl/k3sctl/internal/secret"
)

// Client is one SSH connection to a host, reused for every step.
type Client struct {
	host  string
	opts  Options
	route *route
	conn  *ssh.Client
	// hops give back the jump connections under conn (closing them, or
	// releasing them to Options.Jumps), after conn is closed.
	hops  []func()
	login Login

	fwdOnce      sync.Once
	fwdErr       error
	fwdMu        sync.Mutex // one forwarding session at a time
	fwdAgent     signersAgent
	fwdRequested bool // sshd granted agent forwarding on this connection

	stopKeepAlive chan struct{}
	closeOnce     sync.Once

	sudoMu       sync.Mutex
	sudoMode     SudoMode // "" until detected
	sudoPass     secret.Value
	sudoVerified bool // sudoPass was accepted by this host
}

// Dial connects to o.Address, through jump hosts if configured, retrying
// while the host refuses or does not answer (still booting) but never after
// an authentication or host key failure.
func Dial(ctx context.Context, o Options) (*Client, error) {
	host := strings.TrimSpace(o.Address)
	r, err := resolve(&o)
	if err != nil {
		return nil, &Error{Host: host, Op: "connect", Err: err}
	}
	retryFor := o.ConnectRetry
	if retryFor == 0 {
		retryFor = defaultConnectRetry
	}
	deadline := time.Now().Add(retryFor)
	backoff := 500 * time.Millisecond
	for attempt := 1; ; attempt++ {
		conn, hops, login, err := connect(ctx, r, &o)
		if err == nil {
			c := &Client{host: host, opts: o, route: r, conn: conn, hops: hops, login: login, stopKeepAlive: make(chan struct{})}
			c.sudoPass = o.SudoPassword
			go c.keepAlive(r.target.aliveInterval, r.target.aliveCountMax)
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, &Error{Host: host, Op: "connect", Err: ctx.Err()}
		}
		if !retryable(err) || retryFor < 0 || time.Now().Add(backoff).After(deadline) {
			return nil, &Error{Host: host, Op: "connect", Err: err}
		}
		o.warnf("%s: connect: %v; retrying in %s", host, err, backoff)
		select {
		case <-ctx.Done():
			return nil, &Error{Host: host, Op: "connect", Err: ctx.Err()}
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, maxConnectRetryBackoff)
	}
}

// connect makes one attempt along the route. Jump connections come from
// o.Jumps when it is set.
func connect(ctx context.Context, r *route, o *Options) (*ssh.Client, []func(), Login, error) {
	var hops []func()
	fail := func(err error) (*ssh.Client, []func(), Login, error) {
		for i := len(hops) - 1; i >= 0; i-- {
			hops[i]()
		}
		return nil, nil, Login{}, err
	}
	var via *ssh.Client
	all := append(append([]*endpoint{}, r.jumps...), r.target)
	key := ""
	for i, e := range all {
		var c *ssh.Client
		var login Login
		var err error
		var release func()
		switch {
		case i == len(all)-1:
			c, login, err = connectOne(ctx, via, e, o)
		case o.Jumps != nil:
			key += " " + e.user + "@" + e.addr()
			through := via
			c, release, err = o.Jumps.get(ctx, key, func() (*ssh.Client, error) {
				hop, _, err := connectOne(ctx, through, e, o)
				return hop, err
			}, func(hop *ssh.Client, stop chan struct{}) { keepAlive(hop, stop, e.aliveInterval, e.aliveCountMax) })
		default:
			c, _, err = connectOne(ctx, via, e, o)
			if err == nil {
				hop := c
				release = func() { _ = hop.Close() }
			}
		}
		if err != nil {
			if i < len(all)-1 {
				err = &jumpError{hop: e.alias, err: err}
			} else if via != nil {
				err = fmt.Errorf("via %s: %w", all[i-1].alias, err)
			}
			return fail(err)
		}
		if i == len(all)-1 {
			return c, hops, login, nil
		}
		hops = append(hops, release)
		via = c
	}
	panic("unreachable")
}

type jumpError struct {
	hop string
	err error
}

func (e *jumpError) Error() string { return "jump host " + e.hop + ": " + e.err.Error() }
func (e *jumpError) Unwrap() error { return e.err }

func connectOne(ctx context.Context, via *ssh.Client, e *endpoint, o *Options) (*ssh.Client, Login, error) {
	dialCtx, cancel := context.WithTimeout(ctx, e.connectTimeout)
	defer cancel()

	var conn net.Conn
	var err error
	if via == nil {
		var d net.Dialer
		conn, err = d.DialContext(dialCtx, "tcp", e.addr())
	} else {
		conn, err = via.DialContext(dialCtx, "tcp", e.addr())
	}
	if err != nil {
		if dialCtx.Err() != nil && ctx.Err() == nil {
			return nil, Login{}, &timeoutError{what: "connecting to " + e.addr(), after: e.connectTimeout}
		}
		return nil, Login{}, err
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetKeepAlive(true)
	}

	keys, err := loadKeyring(e, o.Prompter, o.warnf)
	if err != nil {
		conn.Close()
		return nil, Login{}, err
	}
	defer keys.close()
	hk := newHostKeys(e, o.warnf)
	var hostKeyErr error
	var hostKey ssh.PublicKey
	used := &usedSigner{}
	cfg := &ssh.ClientConfig{
		User: e.user,
		Auth: []ssh.AuthMethod{ssh.PublicKeysCallback(func() ([]ssh.Signer, error) { return used.wrap(keys.signers), nil })},
		HostKeyCallback: func(hostname string, remote net.Addr, key ssh.PublicKey) error {
			hostKeyErr = hk.check(hostname, remote, key)
			if hostKeyErr == nil && hk.mode != HostKeyOff {
				hostKey = key
			}
			return hostKeyErr
		},
		HostKeyAlgorithms: hk.algorithms(e.addr()),
		ClientVersion:     "SSH-2.0-k3sctl",
	}

	// The handshake has no context of its own: a deadline bounds it and
	// cancelling closes the socket under it.
	_ = conn.SetDeadline(time.Now().Add(e.connectTimeout))
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	sc, chans, reqs, err := ssh.NewClientConn(conn, e.addr(), cfg)
	stop()
	if err != nil {
		conn.Close()
		switch {
		case ctx.Err() != nil:
			return nil, Login{}, ctx.Err()
		case hostKeyErr != nil:
			return nil, Login{}, hostKeyErr
		}
		keys.mu.Lock()
		failure := keys.failure
		keys.mu.Unlock()
		if failure != nil {
			return nil, Login{}, failure
		}
		if isAuthFailure(err) {
			return nil, Login{}, &AuthError{User: e.user, Host: e.alias, Port: e.port, Tried: keys.triedKeys(), NoKeys: len(keys.signers) == 0, SSHFail: err.Error()}
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, Login{}, &timeoutError{what: "SSH handshake with " + e.addr(), after: e.connectTimeout}
		}
		return nil, Login{}, err
	}
	_ = conn.SetDeadline(time.Time{})
	login := Login{User: e.user, Port: e.port, HostKey: hostKey}
	if s := used.get(); s != nil {
		login.Signers = []ssh.Signer{s}
	}
	return ssh.NewClient(sc, chans, reqs), login, nil
}

type timeoutError struct {
	what  string
	after time.Duration
}

func (e *timeoutError) Error() string { return fmt.Sprintf("%s timed out after %s", e.what, e.after) }
func (e *timeoutError) Timeout() bool { return true }

func isAuthFailure(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "unable to authenticate") ||
		strings.Contains(msg, "Too many authentication failures") ||
		strings.Contains(msg, "no supported methods remain")
}

// retryable tells a host that is not up yet from one that said no.
func retryable(err error) bool {
	var (
		auth    *AuthError
		changed *HostKeyChangedError
		unknown *HostKeyUnknownError
		pass    *KeyPassphraseError
		dnsErr  *net.DNSError
		openErr *ssh.OpenChannelError
		tmo     *timeoutError
	)
	switch {
	case errors.As(err, &auth), errors.As(err, &changed), errors.As(err, &unknown), errors.As(err, &pass):
		return false
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	case errors.As(err, &dnsErr):
		return dnsErr.IsTemporary || dnsErr.IsTimeout
	case errors.As(err, &tmo):
		return true
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ETIMEDOUT), errors.Is(err, syscall.ECONNABORTED):
		return true
	case errors.As(err, &openErr):
		// The jump host could not reach the next hop; the reason text is
		// the jump host's strerror.
		if openErr.Reason != ssh.ConnectionFailed {
			return false
		}
		m := strings.ToLower(openErr.Message)
		return strings.Contains(m, "refused") || strings.Contains(m, "timed out") || strings.Contains(m, "no route") || strings.Contains(m, "unreachable")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		// sshd closing before the banner: starting up or over MaxStartups.
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (c *Client) keepAlive(interval time.Duration, countMax int) {
	keepAlive(c.conn, c.stopKeepAlive, interval, countMax)
}

// keepAlive asks conn for an answer every interval and closes it when
// countMax go unanswered in a row or one fails; it returns then, or when
// stop is closed.
func keepAlive(conn *ssh.Client, stop chan struct{}, interval time.Duration, countMax int) {
	t := time.NewTicker(interval)
	defer t.Stop()
	missed := 0
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		reply := make(chan error, 1)
		go func() {
			_, _, err := conn.SendRequest("keepalive@openssh.com", true, nil)
			reply <- err
		}()
		select {
		case <-stop:
			return
		case err := <-reply:
			if err != nil {
				conn.Close()
				return
			}
			missed = 0
		case <-time.After(interval):
			missed++
			if missed >= countMax {
				conn.Close()
				return
			}
		}
	}
}

// Host is the address as the user gave it, for messages.
func (c *Client) Host() string { return c.host }

// Close ends the connection and the jump connections under it.
func (c *Client) Close() error {
	var err error
	c.closeOnce.Do(func() {
		close(c.stopKeepAlive)
		err = c.conn.Close()
		for i := len(c.hops) - 1; i >= 0; i-- {
			c.hops[i]()
		}
	})
	return err
}

// DialContext opens a connection to addr as the host sees it, carried by
// the SSH connection (a direct-tcpip channel): a service that listens only
// on the host's loopback is reachable wherever SSH is.
func (c *Client) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, err := c.conn.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("%s: connect to %s through SSH: %w", c.host, addr, err)
	}
	return conn, nil
}
