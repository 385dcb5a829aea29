package ssh

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// jumpSetup is a jump host and targets behind it that accept one key.
func jumpSetup(t *testing.T, targets int) (*testServer, []*testServer, Options) {
	t.Helper()
	ts := newTestSetup(t)
	pub, err := ssh.ParsePublicKey(ts.srv.allowedKey(t))
	if err != nil {
		t.Fatal(err)
	}
	var behind []*testServer
	for i := 0; i < targets; i++ {
		behind = append(behind, newTestServer(t, nil, pub))
	}
	o := ts.opts
	o.Jump = fmt.Sprintf("tester@127.0.0.1:%d", ts.srv.port)
	return ts.srv, behind, o
}

func (s *testServer) allowedKey(t *testing.T) []byte {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.allowed {
		return []byte(k)
	}
	t.Fatal("no key")
	return nil
}

func (s *testServer) connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// Hosts behind one jump host dialled together with one pool reach the
// jump host over one connection, closed with the last of them.
func TestJumpPoolSharesOneConnection(t *testing.T) {
	jump, targets, o := jumpSetup(t, 4)
	o.Jumps = NewJumpPool()
	var mu sync.Mutex
	var clients []*Client
	var wg sync.WaitGroup
	for _, target := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			to := o
			to.Port = target.port
			c, err := Dial(context.Background(), to)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			clients = append(clients, c)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for _, c := range clients {
		if res, err := c.Run(context.Background(), "echo hi", RunOptions{}); err != nil || string(res.Stdout) != "hi\n" {
			t.Errorf("%s: %q %v", c.Host(), res.Stdout, err)
		}
	}
	if n := jump.connections(); n != 1 {
		t.Errorf("the jump host saw %d connections for %d hosts, want 1", n, len(targets))
	}
	for _, target := range targets {
		if n := target.connections(); n != 1 {
			t.Errorf("target %d saw %d connections", target.port, n)
		}
	}
	for i, c := range clients {
		if o.Jumps.open() != 1 {
			t.Fatalf("after %d closed: pool holds %d hops, want 1", i, o.Jumps.open())
		}
		c.Close()
	}
	if o.Jumps.open() != 0 {
		t.Errorf("pool holds %d hops after every host closed", o.Jumps.open())
	}
	// A later host dials the jump host again.
	to := o
	to.Port = targets[0].port
	c := dialTest(t, to)
	if _, err := c.Run(context.Background(), "true", RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := jump.connections(); n != 2 {
		t.Errorf("jump host connections %d, want a second one after the first closed", n)
	}
}

// A jump connection that died is dialled again for the next host.
func TestJumpPoolRedialsADeadHop(t *testing.T) {
	jump, targets, o := jumpSetup(t, 2)
	o.Jumps = NewJumpPool()
	to := o
	to.Port = targets[0].port
	first := dialTest(t, to)
	var hop *pooledHop
	o.Jumps.mu.Lock()
	for _, h := range o.Jumps.hops {
		hop = h
	}
	o.Jumps.mu.Unlock()
	hop.conn.Close() // the bastion dropped it
	select {
	case <-hop.dead:
	case <-time.After(10 * time.Second):
		t.Fatal("the pool did not see its hop end")
	}
	to.Port = targets[1].port
	second := dialTest(t, to)
	if _, err := second.Run(context.Background(), "true", RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := jump.connections(); n != 2 {
		t.Errorf("jump host connections %d, want 2: the dead one and its replacement", n)
	}
	first.Close()
	if o.Jumps.open() != 1 {
		t.Errorf("closing the host on the dead hop took the new hop: pool holds %d", o.Jumps.open())
	}
}

// Without a pool each host has its own jump connection, as before.
func TestJumpWithoutPool(t *testing.T) {
	jump, targets, o := jumpSetup(t, 2)
	for _, target := range targets {
		to := o
		to.Port = target.port
		dialTest(t, to)
	}
	if n := jump.connections(); n != 2 {
		t.Errorf("jump host connections %d, want one per host", n)
	}
}
