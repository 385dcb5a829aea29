package bench

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"
)

// echoSum is a loopback server that reads a connection to its end, then
// answers with the sha256 of what it read followed by reply(len) bytes.
func echoSum(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				h := sha256.New()
				n, err := io.Copy(h, c)
				if err != nil {
					return
				}
				_, _ = c.Write(h.Sum(nil))
				_, _ = c.Write(reply(n))
			}()
		}
	}()
	return l.Addr().String()
}

// reply is what echoSum sends after the sum for n bytes read: n/3 bytes
// that depend on n.
func reply(n int64) []byte {
	b := make([]byte, n/3)
	r := rand.NewChaCha8([32]byte{byte(n), byte(n >> 8), byte(n >> 16)})
	_, _ = r.Read(b)
	return b
}

func TestUplinkPassesDataUnchangedAndCountsIt(t *testing.T) {
	for _, tc := range []struct {
		name    string
		bits    float64
		latency time.Duration
	}{
		{"no limit", 0, 0},
		{"rate limit and latency", 2e9, 2 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			server := echoSum(t)
			u := NewUplink(tc.bits, tc.latency)
			defer u.Close()
			// Two listeners ("hosts") to the same server, three
			// connections at once: they share the uplink.
			a, err := u.Forward(server)
			if err != nil {
				t.Fatal(err)
			}
			b, err := u.Forward(server)
			if err != nil {
				t.Fatal(err)
			}
			sizes := []int{1 << 20, 300_001, 0}
			addrs := []string{a, b, a}
			var wg sync.WaitGroup
			errs := make([]string, len(sizes))
			for i, size := range sizes {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[i] = roundTrip(addrs[i], size, uint64(i))
				}()
			}
			wg.Wait()
			for i, e := range errs {
				if e != "" {
					t.Errorf("connection %d (%d bytes): %s", i, sizes[i], e)
				}
			}
			// Close waits until every byte is delivered and counted.
			u.Close()
			var wantUp, wantDown int64
			for _, s := range sizes {
				wantUp += int64(s)
				wantDown += sha256.Size + int64(len(reply(int64(s))))
			}
			up, down := u.Bytes()
			if up != wantUp || down != wantDown {
				t.Errorf("bytes counted: up %d, down %d; want up %d, down %d", up, down, wantUp, wantDown)
			}
		})
	}
}

// roundTrip sends size random bytes to addr, half-closes, and checks the
// answer of echoSum; it returns what was wrong, or "".
func roundTrip(addr string, size int, seed uint64) string {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err.Error()
	}
	defer c.Close()
	data := make([]byte, size)
	_, _ = rand.NewChaCha8([32]byte{byte(seed), 1}).Read(data)
	go func() {
		_, _ = c.Write(data)
		_ = c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		return "read: " + err.Error()
	}
	sum := sha256.Sum256(data)
	want := append(sum[:], reply(int64(size))...)
	if !bytes.Equal(got, want) {
		return "the answer differs from what the server sent (or the server got other data)"
	}
	return ""
}

func TestUplinkForwardAfterClose(t *testing.T) {
	u := NewUplink(0, 0)
	u.Close()
	if _, err := u.Forward("127.0.0.1:1"); err == nil {
		t.Error("Forward on a closed uplink: no error")
	}
}
