package ssh

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
)

func TestDialContextThroughSSH(t *testing.T) {
	ts := newTestSetup(t)
	c := dialTest(t, ts.opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		_, _ = io.WriteString(conn, "hello from the host\n")
		conn.Close()
	}()
	conn, err := c.DialContext(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	b, err := io.ReadAll(conn)
	if err != nil || string(b) != "hello from the host\n" {
		t.Errorf("read %q, %v", b, err)
	}
	// A port nothing listens on: the error names the host and the address.
	addr := ln.Addr().String()
	ln.Close()
	_, err = c.DialContext(context.Background(), "tcp", addr)
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1: connect to "+addr+" through SSH") {
		t.Errorf("error: %v", err)
	}
}
