package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/k3sctl/k3sctl/internal/hostlock"
	"github.com/k3sctl/k3sctl/internal/secret"
	"github.com/k3sctl/k3sctl/internal/ssh"
	"github.com/k3sctl/k3sctl/test/e2e/world"
)

func lockHolder(user, runID string) hostlock.Holder {
	return hostlock.Holder{User: user, Workstation: "laptop", PID: os.Getpid(),
		Since: time.Now().UTC().Truncate(time.Second), Command: "k3sctl apply", RunID: runID}
}

// acquireEventually retries while the host has not yet noticed that the
// previous holder's session is gone; any other error fails at once.
func acquireEventually(t *testing.T, c *ssh.Client, host string, h hostlock.Holder) *hostlock.Lock {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		l, err := hostlock.Acquire(context.Background(), host, c, h, hostlock.Options{})
		if err == nil {
			return l
		}
		var le *hostlock.LockedError
		if !errors.As(err, &le) || time.Now().After(deadline) {
			t.Fatalf("lock after the holder went away: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestHostLock(t *testing.T) {
	// Not parallel: sshHome sets HOME for the process.
	if addr := os.Getenv("K3SCTL_E2E_LOCK_HOLDER"); addr != "" {
		holdLockUntilKilled(addr)
		return
	}
	w := world.New(t)
	h := w.Start(t, "a")[0]
	home := sshHome(t)
	ctx := context.Background()

	c1 := mustDial(t, piOptions(w, home, h.IP))
	alice := lockHolder("alice", "aaaa")
	l1, err := hostlock.Acquire(ctx, h.IP, c1, alice, hostlock.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(h.Exec(t, "stat -c '%a %U' /run/k3sctl")); got != "700 root" {
		t.Errorf("lock directory: %s", got)
	}
	if got := h.Exec(t, "cat /run/k3sctl/lock.info"); !strings.Contains(got, "user=alice") || !strings.Contains(got, "run=aaaa") {
		t.Errorf("holder file while held:\n%s", got)
	}

	// A second run, as the user whose sudo needs a password: refused, and
	// told who holds the lock.
	o := piOptions(w, home, h.IP)
	o.User = "ops"
	o.SudoPassword = secret.New(w.OpsPassword)
	c2 := mustDial(t, o)
	bob := lockHolder("bob", "bbbb")
	_, err = hostlock.Acquire(ctx, h.IP, c2, bob, hostlock.Options{})
	var le *hostlock.LockedError
	if !errors.As(err, &le) {
		t.Fatalf("second run: %v", err)
	}
	want := fmt.Sprintf(`%s: locked by alice@laptop (pid %d) since %s running "k3sctl apply"; wait for it to finish, or stop it`,
		h.IP, os.Getpid(), alice.Since.Format(time.RFC3339))
	if err.Error() != want {
		t.Errorf("second run:\n got %v\nwant %s", err, want)
	}
	t.Log(err)

	// Released: the second run takes it at once.
	if err := l1.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if out, _ := h.ExecErr(ctx, "test -e /run/k3sctl/lock.info && echo left"); strings.TrimSpace(out) == "left" {
		t.Error("holder file left after release")
	}
	l2, err := hostlock.Acquire(ctx, h.IP, c2, bob, hostlock.Options{})
	if err != nil {
		t.Fatalf("after release: %v", err)
	}

	// The holder's connection goes away without a release: the next run
	// takes the lock without anyone cleaning up, and the holder learns
	// that its lock is lost.
	c2.Close()
	<-l2.Done()
	var lost *hostlock.LostError
	if !errors.As(l2.Err(), &lost) {
		t.Errorf("lock of a closed client: Err = %v", l2.Err())
	}
	c3 := mustDial(t, piOptions(w, home, h.IP))
	l3 := acquireEventually(t, c3, h.IP, lockHolder("carol", "cccc"))
	if err := l3.Release(ctx); err != nil {
		t.Fatal(err)
	}

	// The holder process is killed (SIGKILL, no clean-up code runs).
	cmd := exec.Command(os.Args[0], "-test.run=^TestHostLock$")
	cmd.Env = append(os.Environ(), "K3SCTL_E2E_LOCK_HOLDER="+h.IP, "K3SCTL_E2E_LOCK_KEY="+w.Key)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	sc := bufio.NewScanner(out)
	if !sc.Scan() || sc.Text() != "held" {
		t.Fatalf("holder process: %q %v", sc.Text(), sc.Err())
	}
	_, err = hostlock.Acquire(ctx, h.IP, c3, lockHolder("dave", "dddd"), hostlock.Options{})
	if !errors.As(err, &le) || le.Holder.PID != cmd.Process.Pid || le.Holder.RunID != "eeee" {
		t.Fatalf("while the holder process runs: %v", err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	l4 := acquireEventually(t, c3, h.IP, lockHolder("dave", "dddd"))
	if err := l4.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(h.Exec(t, "pgrep -c -x flock || true")); got != "0" {
		t.Errorf("flock processes left on the host: %s", got)
	}
}

// holdLockUntilKilled is the holder process of TestHostLock: it takes the
// lock, says so, and waits to be killed.
func holdLockUntilKilled(addr string) {
	home, err := os.MkdirTemp("", "k3sctl-lock-holder")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	c, err := ssh.Dial(ctx, ssh.Options{Address: addr, User: "pi", KeyFiles: []string{os.Getenv("K3SCTL_E2E_LOCK_KEY")},
		KnownHostsFile: home + "/known_hosts", ConnectRetry: -1})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	h := lockHolder("eve", "eeee")
	h.PID = os.Getpid()
	if _, err := hostlock.Acquire(context.Background(), addr, c, h, hostlock.Options{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Println("held")
	time.Sleep(time.Hour)
	os.Exit(3) // never reached in the test: the parent kills this process
}
