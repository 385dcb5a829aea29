package bench

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Uplink is a site's one shared link to the workstation, as a TCP proxy:
// one loopback listener per host of the site forwards to that host's
// address, and every connection through any of them shares one token bucket
// per direction, so that the hosts' uploads queue behind each other as on
// one DSL or LTE line. Each direction also delays data by a fixed latency
// (after the rate limit: serialisation, then propagation). It counts the
// bytes it delivers in each direction.
type Uplink struct {
	up, down *pacer        // workstation → site, site → workstation
	latency  time.Duration // added one way, in each direction
	sent     atomic.Int64  // bytes delivered to the site
	received atomic.Int64  // bytes delivered back to the workstation

	mu        sync.Mutex
	listeners []net.Listener
	conns     map[net.Conn]struct{}
	closed    bool
	wg        sync.WaitGroup
}

// NewUplink returns an uplink of bitsPerSec in each direction (0: no
// limit) that adds latency one way in each direction.
func NewUplink(bitsPerSec float64, latency time.Duration) *Uplink {
	return &Uplink{
		up:      newPacer(bitsPerSec / 8),
		down:    newPacer(bitsPerSec / 8),
		latency: latency,
		conns:   map[net.Conn]struct{}{},
	}
}

// Forward opens a listener on 127.0.0.1 whose connections go to target
// through the uplink, and returns its address.
func (u *Uplink) Forward(target string) (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		l.Close()
		return "", errors.New("uplink closed")
	}
	u.listeners = append(u.listeners, l)
	u.wg.Add(1)
	u.mu.Unlock()
	go func() {
		defer u.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			u.wg.Add(1)
			go func() {
				defer u.wg.Done()
				u.serve(c, target)
			}()
		}
	}()
	return l.Addr().String(), nil
}

// Bytes returns the bytes delivered so far: to the site (up) and back to
// the workstation (down).
func (u *Uplink) Bytes() (up, down int64) { return u.sent.Load(), u.received.Load() }

// Close stops every listener and connection and waits for them.
func (u *Uplink) Close() {
	u.mu.Lock()
	u.closed = true
	for _, l := range u.listeners {
		l.Close()
	}
	for c := range u.conns {
		c.Close()
	}
	u.mu.Unlock()
	u.wg.Wait()
}

func (u *Uplink) track(c net.Conn) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return false
	}
	u.conns[c] = struct{}{}
	return true
}

func (u *Uplink) untrack(c net.Conn) {
	u.mu.Lock()
	delete(u.conns, c)
	u.mu.Unlock()
}

func (u *Uplink) serve(client net.Conn, target string) {
	defer client.Close()
	if !u.track(client) {
		return
	}
	defer u.untrack(client)
	server, err := net.DialTimeout("tcp", target, 10*time.Second)
	if err != nil {
		return
	}
	defer server.Close()
	if !u.track(server) {
		return
	}
	defer u.untrack(server)
	done := make(chan struct{}, 2)
	go func() { u.pipe(server, client, u.up, &u.sent); done <- struct{}{} }()
	go func() { u.pipe(client, server, u.down, &u.received); done <- struct{}{} }()
	// One direction ending (EOF) only half-closes the other side; an
	// error in either ends both.
	<-done
	<-done
}

// chunk is a piece of data in flight and when it arrives.
type chunk struct {
	data []byte
	due  time.Time
}

// pipeChunk is the most a direction reads, paces and sends at once: small
// enough that connections sharing the uplink take turns often.
const pipeChunk = 16 << 10

// pipe copies src to dst through p, delaying each piece by the latency,
// and counts the bytes written to dst. At EOF it half-closes dst; on an
// error it closes both.
func (u *Uplink) pipe(dst, src net.Conn, p *pacer, count *atomic.Int64) {
	// The queue holds what is "on the wire": with a latency, about
	// rate×latency bytes are in flight before the first arrives.
	q := make(chan chunk, 1024)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for c := range q {
			if d := time.Until(c.due); d > 0 {
				time.Sleep(d)
			}
			n, err := dst.Write(c.data)
			count.Add(int64(n))
			if err != nil {
				src.Close()
				dst.Close()
				for range q {
				}
				return
			}
		}
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		} else {
			dst.Close()
		}
	}()
	for {
		buf := make([]byte, pipeChunk)
		n, err := src.Read(buf)
		if n > 0 {
			p.wait(n)
			q <- chunk{data: buf[:n], due: time.Now().Add(u.latency)}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				dst.Close()
			}
			break
		}
	}
	close(q)
	<-writerDone
}

// pacer is a token bucket shared by every connection in one direction: a
// piece of n bytes may pass once the link has had time to send it after
// everything before it.
type pacer struct {
	bytesPerSec float64
	burst       time.Duration // how far the link may fall behind and catch up

	mu   sync.Mutex
	next time.Time // when the link is free again
}

func newPacer(bytesPerSec float64) *pacer {
	return &pacer{bytesPerSec: bytesPerSec, burst: 5 * time.Millisecond}
}

// wait blocks until n more bytes fit through the link.
func (p *pacer) wait(n int) {
	if p.bytesPerSec <= 0 {
		return
	}
	cost := time.Duration(float64(n) / p.bytesPerSec * float64(time.Second))
	p.mu.Lock()
	now := time.Now()
	if p.next.Before(now.Add(-p.burst)) {
		p.next = now.Add(-p.burst)
	}
	p.next = p.next.Add(cost)
	until := p.next
	p.mu.Unlock()
	if d := time.Until(until); d > 0 {
		time.Sleep(d)
	}
}

// String describes the uplink for the table's notes.
func (u *Uplink) String() string {
	rate := "no rate limit"
	if u.up.bytesPerSec > 0 {
		rate = fmt.Sprintf("%.0f Mbit/s each way", u.up.bytesPerSec*8/1e6)
	}
	return fmt.Sprintf("%s, +%s each way", rate, u.latency)
}
