package rollout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/k3sctl/k3sctl/internal/apply"
	"github.com/k3sctl/k3sctl/internal/hostlock"
	"github.com/k3sctl/k3sctl/internal/preflight"
	"github.com/k3sctl/k3sctl/internal/ssh"
)

// factsOutput is the facts script's answer: root with a hostname made from
// the address, unless the test says otherwise.
func (w *fakeHosts) factsOutput(c *fakeConn) (out, privileged string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	hostname, user, sudo := c.hostname(), "root", "root"
	if h := w.hostnames[c.addr]; h != "" {
		hostname = h
	}
	privileged = "done"
	if s := w.sudo[c.addr]; s != "" {
		user, sudo, privileged = "ops", s, "unprivileged"
	}
	return "user\t" + user + "\nhostname\t" + hostname + "\nmachineid\t0123456789abcdef0123456789abcdef\nmachine\tx86_64\ninit\tsystemd\nsudo\t" + sudo + "\ncgroupmem\t1\n", privileged
}

// fakeLocks answers the lock command of internal/hostlock the way flock
// does on a host: the first run holds the lock until its input closes or
// its session is lost; others are told who holds it.
type fakeLocks struct {
	mu      sync.Mutex
	holders map[string]string        // host → holder lines
	lost    map[string]chan struct{} // host → closed to end the session
	taken   []string                 // hosts in the order they were locked
}

var holderField = regexp.MustCompile(`(user|workstation|pid|since|run)=([^' ]*)`)

func (l *fakeLocks) run(ctx context.Context, host, cmd string, o ssh.RunOptions) (ssh.Result, error) {
	var lines []string
	for _, m := range holderField.FindAllStringSubmatch(cmd, -1) {
		lines = append(lines, m[1]+"="+m[2])
	}
	l.mu.Lock()
	if l.holders == nil {
		l.holders, l.lost = map[string]string{}, map[string]chan struct{}{}
	}
	if h, ok := l.holders[host]; ok {
		l.mu.Unlock()
		out := "k3sctl-lock-busy\n" + h + "\n"
		return ssh.Result{Stdout: []byte(out), ExitCode: 75}, &ssh.ExitError{Host: host, Cmd: cmd, ExitCode: 75}
	}
	l.holders[host] = strings.Join(lines, "\n")
	lost := make(chan struct{})
	l.lost[host] = lost
	l.taken = append(l.taken, host)
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.holders, host)
		delete(l.lost, host)
		l.mu.Unlock()
	}()

	o.OnLine("stdout", "k3sctl-lock-held")
	eof := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, o.Stdin); close(eof) }()
	select {
	case <-eof:
		return ssh.Result{}, nil
	case <-lost:
		return ssh.Result{ExitCode: -1}, &ssh.Error{Host: host, Op: "lock", Err: errors.New("connection lost")}
	case <-ctx.Done():
		return ssh.Result{ExitCode: -1}, ctx.Err()
	}
}

// loseSession ends the SSH session that holds host's lock.
func (l *fakeLocks) loseSession(host string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ch := l.lost[host]; ch != nil {
		close(ch)
		delete(l.lost, host)
	}
}

func (l *fakeLocks) held() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.holders)
}

func lockAs(user string, pid int) *LockOptions {
	return &LockOptions{Holder: hostlock.Holder{User: user, Workstation: "laptop", PID: pid,
		Since: time.Date(2026, 12, 2, 15, 4, 5, 0, time.UTC), Command: "k3sctl apply", RunID: user + "0000000000"}}
}

// Problems on hosts and on this machine are reported together, before
// anything is fetched, locked or changed, and no connection stays open.
func TestPreflightStopsBeforeAnyChange(t *testing.T) {
	w := newFakeHosts()
	w.hostnames["10.0.0.2"] = "node-10-0-0-1" // as 10.0.0.1, in the same cluster
	w.sudo["10.0.1.1"] = string(ssh.SudoNone)
	f := &fakeFetcher{dir: t.TempDir()}
	o := options(w, f, twoClusters())
	o.Preflight = []preflight.Problem{{Kind: preflight.KindToken, What: "--token: the token is empty", Fix: "give the token"}}
	o.Lock = lockAs("alice", 42)
	_, err := Prepare(context.Background(), o)
	var rep *preflight.Report
	if !errors.As(err, &rep) {
		t.Fatalf("err = %v", err)
	}
	var kinds []string
	for _, p := range rep.Problems {
		kinds = append(kinds, string(p.Kind)+"@"+p.Host)
	}
	if got := strings.Join(kinds, " "); got != "token@ duplicate-hostname@10.0.0.2 sudo@10.0.1.1" {
		t.Errorf("problems: %s\n%v", got, err)
	}
	for _, want := range []string{
		`10.0.0.2: hostname "node-10-0-0-1" is also the hostname of 10.0.0.1 in cluster "old"`,
		"10.0.1.1: user ops is not root and sudo is not installed\nhint: log in as root (--user root), or install sudo on the host",
		"--token: the token is empty",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("report lacks %q:\n%v", want, err)
		}
	}
	if len(f.keys) != 0 {
		t.Errorf("binaries fetched before the problems were fixed: %v", f.keys)
	}
	if w.locks.held() != 0 || len(w.locks.taken) != 0 {
		t.Errorf("locks taken although the checks failed: %v", w.locks.taken)
	}
	if n := w.openConns(); n != 0 {
		t.Errorf("%d connection(s) left open", n)
	}
}

// Locks are taken beside the facts; when a host's checks fail, none is
// left held and no connection stays open.
func TestHostProblemReleasesLocks(t *testing.T) {
	w := newFakeHosts()
	w.sudo["10.0.1.1"] = string(ssh.SudoNone)
	f := &fakeFetcher{dir: t.TempDir()}
	o := options(w, f, twoClusters())
	o.Lock = lockAs("alice", 42)
	_, err := Prepare(context.Background(), o)
	var rep *preflight.Report
	if !errors.As(err, &rep) {
		t.Fatalf("err = %v", err)
	}
	if len(rep.Problems) != 1 || rep.Problems[0].Kind != preflight.KindSudo {
		t.Errorf("problems: %v", rep.Problems)
	}
	if len(f.keys) != 0 {
		t.Errorf("binaries fetched before the problems were fixed: %v", f.keys)
	}
	if w.locks.held() != 0 {
		t.Errorf("%d lock(s) still held", w.locks.held())
	}
	if n := w.openConns(); n != 0 {
		t.Errorf("%d connection(s) left open", n)
	}
}

// A second run stops at a host the first one holds, names the holder, and
// leaves nothing locked; once the first run ends the next one proceeds.
func TestSecondRunStopsAtTheLockedHost(t *testing.T) {
	w := newFakeHosts()
	f := &fakeFetcher{dir: t.TempDir()}
	first := options(w, f, twoClusters())
	first.Lock = lockAs("alice", 42)
	var said []string
	first.Progress = func(format string, a ...any) { said = append(said, fmt.Sprintf(format, a...)) }
	p1, err := Prepare(context.Background(), first)
	if err != nil {
		t.Fatal(err)
	}
	// Every fake host has one machine-id: told, but not in the way.
	if !strings.Contains(strings.Join(said, "\n"), `warning: 10.0.0.2: machine-id 01234567… is also the machine-id of 10.0.0.1 in cluster "old"`) {
		t.Errorf("no machine-id warning:\n%s", strings.Join(said, "\n"))
	}
	if w.locks.held() != 3 || w.locks.taken[0] != "10.0.0.1" {
		t.Fatalf("first run holds %d locks, first taken %v", w.locks.held(), w.locks.taken)
	}

	second := options(w, f, twoClusters())
	second.Lock = lockAs("bob", 43)
	_, err = Prepare(context.Background(), second)
	var rep *preflight.Report
	if !errors.As(err, &rep) || len(rep.Problems) != 1 {
		t.Fatalf("second run: %v", err)
	}
	p := rep.Problems[0]
	want := "10.0.0.1: locked by alice@laptop (pid 42) since 2026-12-02T15:04:05Z; wait for it to finish, or stop it"
	if p.Kind != preflight.KindLocked || p.Error() != want {
		t.Errorf("second run:\n got %v\nwant %s", p, want)
	}
	if w.locks.held() != 3 {
		t.Errorf("%d locks held after the second run stopped, want the first run's 3", w.locks.held())
	}
	if n := w.openConns(); n != 3 {
		t.Errorf("%d connections open, want the first run's 3", n)
	}

	p1.Close()
	if w.locks.held() != 0 {
		t.Errorf("%d locks held after Close", w.locks.held())
	}
	p3, err := Prepare(context.Background(), second)
	if err != nil {
		t.Fatalf("after the first run ended: %v", err)
	}
	p3.Close()
}

// A host whose lock is lost during the run fails its remaining steps with
// the lost lock; the others finish, and uploads carry the run's id.
func TestLostLockFailsTheHost(t *testing.T) {
	w := newFakeHosts()
	f := &fakeFetcher{dir: t.TempDir()}
	o := options(w, f, twoClusters())
	o.Lock = lockAs("alice", 42)
	p, err := Prepare(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	w.locks.loseSession("10.0.1.1")
	<-p.locks.held["10.0.1.1"].Done()
	res, err := p.Apply(context.Background())
	if !errors.Is(err, apply.ErrHostsFailed) {
		t.Fatalf("apply: %v", err)
	}
	for _, r := range res {
		switch {
		case r.Host == "10.0.1.1" && (r.Status != apply.StatusFailed || !strings.Contains(r.Error, "10.0.1.1: host lock lost")):
			t.Errorf("host with the lost lock: %s %q", r.Status, r.Error)
		case r.Host != "10.0.1.1" && r.Status != apply.StatusDone:
			t.Errorf("%s: %s %q", r.Host, r.Status, r.Error)
		}
	}
	if _, ok := w.uploads["10.0.1.1"]; ok {
		t.Error("the binary was uploaded to the host whose lock was lost")
	}
	for _, h := range []string{"10.0.0.1", "10.0.0.2"} {
		if got, want := w.tempNames[h], "/usr/local/bin/.k3sctl-alice0000000000-k3s.tmp"; got != want {
			t.Errorf("%s: upload's temporary name %q, want %q", h, got, want)
		}
	}
}

// A private key file others may read is one problem for the run, not an
// unreachable host per address.
func TestOpenKeyFileIsOneProblem(t *testing.T) {
	w := newFakeHosts()
	w.dialErr = func(addr string) error {
		return &ssh.Error{Host: addr, Op: "connect", Err: &ssh.KeyPermissionError{Path: "/home/u/.ssh/id", Mode: 0o644}}
	}
	f := &fakeFetcher{dir: t.TempDir()}
	_, err := Prepare(context.Background(), options(w, f, twoClusters()))
	var rep *preflight.Report
	if !errors.As(err, &rep) || len(rep.Problems) != 1 || rep.Problems[0].Kind != preflight.KindKeyFile {
		t.Fatalf("err = %v", err)
	}
	if want := "hint: chmod 600 /home/u/.ssh/id"; !strings.Contains(err.Error(), want) {
		t.Errorf("report lacks %q:\n%v", want, err)
	}
}

// Ctrl-C cancels the run's context: the locks stay held until Close
// releases them cleanly, rather than being cut with the sessions.
func TestInterruptedRunReleasesItsLocks(t *testing.T) {
	w := newFakeHosts()
	f := &fakeFetcher{dir: t.TempDir()}
	o := options(w, f, twoClusters())
	o.Lock = lockAs("alice", 42)
	ctx, cancel := context.WithCancel(context.Background())
	p, err := Prepare(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	locks := p.locks.held
	cancel()
	if _, err := p.Apply(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("apply after Ctrl-C: %v", err)
	}
	for a, lk := range locks {
		if lk.Err() != nil {
			t.Errorf("%s: lock ended with the run's context: %v", a, lk.Err())
		}
	}
	p.Close()
	for a, lk := range locks {
		select {
		case <-lk.Done():
		default:
			t.Errorf("%s: lock not released by Close", a)
		}
		if lk.Err() != nil {
			t.Errorf("%s: release: %v", a, lk.Err())
		}
	}
	if w.locks.held() != 0 || w.openConns() != 0 {
		t.Errorf("%d locks held, %d connections open after Close", w.locks.held(), w.openConns())
	}
}
