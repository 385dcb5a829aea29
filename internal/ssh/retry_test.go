package ssh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func TestRetryable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, true},
		{fmt.Errorf("x: %w", syscall.EHOSTUNREACH), true},
		{&timeoutError{what: "x"}, true},
		{fmt.Errorf("ssh: handshake failed: %w", io.EOF), true},
		{&ssh.OpenChannelError{Reason: ssh.ConnectionFailed, Message: "Connection refused"}, true},
		{&ssh.OpenChannelError{Reason: ssh.Prohibited, Message: "administratively prohibited"}, false},
		{&AuthError{}, false},
		{fmt.Errorf("wrapped: %w", &HostKeyChangedError{}), false},
		{&HostKeyUnknownError{}, false},
		{&KeyPassphraseError{Err: ErrNoTerminal}, false},
		{&net.DNSError{Err: "no such host", IsNotFound: true}, false},
		{context.Canceled, false},
		{errors.New("something else"), false},
	} {
		if got := retryable(tc.err); got != tc.want {
			t.Errorf("retryable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// A host that is still booting refuses connections for a while.
func TestDialRetriesUntilTheHostAnswers(t *testing.T) {
	ts := newTestSetup(t)
	// Reserve a port, close it, and let a proxy to the server listen there
	// only after a second.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	go func() {
		time.Sleep(time.Second)
		pl, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Error(err)
			return
		}
		t.Cleanup(func() { pl.Close() })
		for {
			c, err := pl.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", ts.srv.addr)
			if err != nil {
				c.Close()
				continue
			}
			wg.Add(2)
			go func() { defer wg.Done(); io.Copy(up, c); up.Close() }()
			go func() { defer wg.Done(); io.Copy(c, up); c.Close() }()
		}
	}()
	o := ts.opts
	o.Port = port
	o.ConnectRetry = 20 * time.Second
	var retries int
	o.Warnf = func(string, ...any) { retries++ }
	c, err := Dial(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if retries == 0 {
		t.Error("connected without a retry: the test did not exercise anything")
	}

	o.ConnectRetry = -1
	o.Port = port + 1 // nobody there
	start := time.Now()
	if _, err := Dial(context.Background(), o); err == nil || time.Since(start) > 2*time.Second {
		t.Errorf("no-retry dial: %v after %s", err, time.Since(start))
	}
}

func TestDialHonoursContext(t *testing.T) {
	ts := newTestSetup(t)
	o := ts.opts
	o.Port = 1 // refused
	o.ConnectRetry = time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Dial(ctx, o)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Errorf("err = %v after %s", err, time.Since(start))
	}
}
