package hostlock

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/k3sctl/k3sctl/internal/ssh"
)

var alice = Holder{
	User: "alice", Workstation: "laptop", PID: 4242,
	Since:   time.Date(2026, 12, 2, 15, 4, 5, 0, time.UTC),
	Command: "k3sctl apply", RunID: "0123456789abcdef",
}

// scripted answers the lock command with fixed output and exit code.
type scripted struct {
	lines []string // stdout lines, given to OnLine
	exit  int
	err   error
	block bool // after the lines, wait for stdin to close
	cmd   string
	opts  ssh.RunOptions
}

func (s *scripted) Run(ctx context.Context, cmd string, o ssh.RunOptions) (ssh.Result, error) {
	s.cmd, s.opts = cmd, o
	var out bytes.Buffer
	for _, l := range s.lines {
		out.WriteString(l + "\n")
		o.OnLine("stdout", l)
	}
	if s.block {
		_, _ = io.Copy(io.Discard, o.Stdin)
	}
	res := ssh.Result{Stdout: out.Bytes(), ExitCode: s.exit}
	if s.err != nil {
		return res, s.err
	}
	if s.exit != 0 {
		return res, &ssh.ExitError{Host: "10.0.0.5", Cmd: cmd, ExitCode: s.exit}
	}
	return res, nil
}

func TestLockedErrorNamesHolder(t *testing.T) {
	r := &scripted{lines: append([]string{busyMarker}, alice.lines()...), exit: busyExit}
	_, err := Acquire(context.Background(), "10.0.0.5", r, Holder{User: "bob"}, Options{})
	var le *LockedError
	if !errors.As(err, &le) || !le.Known {
		t.Fatalf("err = %#v", err)
	}
	want := `10.0.0.5: locked by alice@laptop (pid 4242) since 2026-12-02T15:04:05Z running "k3sctl apply"; wait for it to finish, or stop it`
	if err.Error() != want {
		t.Errorf("message\n got %s\nwant %s", err, want)
	}
	if le.Holder != alice {
		t.Errorf("holder = %+v", le.Holder)
	}
	if !r.opts.Sudo {
		t.Error("the lock command must run as root")
	}
}

func TestLockedErrorHolderUnknown(t *testing.T) {
	r := &scripted{lines: []string{busyMarker}, exit: busyExit}
	_, err := Acquire(context.Background(), "10.0.0.5", r, alice, Options{})
	want := "10.0.0.5: locked by another k3sctl run (its holder file could not be read); wait for it to finish, or stop it"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v", err)
	}
}

func TestAcquireOtherFailures(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    *scripted
		want string
	}{
		{"no flock", &scripted{exit: noFlockExit}, "10.0.0.5: host lock: flock of util-linux is not installed on the host\nhint: install util-linux on the host (it provides flock; on Alpine: apk add flock)"},
		{"sudo", &scripted{err: &ssh.Error{Host: "10.0.0.5", Op: "sudo", Err: errors.New("user ops needs a password for sudo")}}, "10.0.0.5: host lock: sudo: user ops needs a password for sudo"},
		{"exit 0 without lock", &scripted{}, "10.0.0.5: host lock: the lock command ended without taking the lock"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Acquire(context.Background(), "10.0.0.5", tc.r, alice, Options{})
			if err == nil || err.Error() != tc.want {
				t.Errorf("err = %v\nwant %s", err, tc.want)
			}
			var le *LockedError
			if errors.As(err, &le) {
				t.Error("not a LockedError")
			}
		})
	}
}

func TestAcquireHoldsUntilRelease(t *testing.T) {
	r := &scripted{lines: []string{heldMarker}, block: true}
	l, err := Acquire(context.Background(), "10.0.0.5", r, alice, Options{Dir: "/run/test dir"})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-l.Done():
		t.Fatal("lock ended before release")
	default:
	}
	if err := l.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-l.Done()
	if l.Err() != nil {
		t.Errorf("Err after release = %v", l.Err())
	}
	// The command carries the holder as quoted arguments, the directory too.
	for _, s := range []string{"'/run/test dir'", "'/run/test dir/lock'", "user=alice", "'command=k3sctl apply'", "pid=4242", "since=2026-12-02T15:04:05Z"} {
		if !strings.Contains(r.cmd, s) {
			t.Errorf("command lacks %s:\n%s", s, r.cmd)
		}
	}
}

func TestCommandWordsDropFlags(t *testing.T) {
	for args, want := range map[string]string{
		"/usr/local/bin/k3sctl apply -f inv.yaml --token K10abc": "k3sctl apply",
		"k3sctl --token=secret apply":                            "k3sctl",
		"k3sctl node remove 10.0.0.7 --yes":                      "k3sctl node remove 10.0.0.7",
	} {
		if got := CommandWords(strings.Fields(args)); got != want {
			t.Errorf("CommandWords(%s) = %q, want %q", args, got, want)
		}
	}
}

func TestHolderFieldsStayOnOneLine(t *testing.T) {
	h := alice
	h.Command = "k3sctl apply\nuser=mallory"
	got, ok := parseHolder(strings.Join(h.lines(), "\n"))
	if !ok || got.User != "alice" || got.Command != "k3sctl apply user=mallory" {
		t.Errorf("parsed %+v", got)
	}
}

func TestTempNames(t *testing.T) {
	if got := TempName("/etc/rancher/k3s", "config.yaml", "ab12"); got != "/etc/rancher/k3s/.k3sctl-ab12-config.yaml.tmp" {
		t.Errorf("TempName = %s", got)
	}
	if got := TempFor("/usr/local/bin/k3s", "ab12"); got != "/usr/local/bin/.k3sctl-ab12-k3s.tmp" {
		t.Errorf("TempFor = %s", got)
	}
	a, b := NewRunID(), NewRunID()
	if a == b || len(a) != 16 || TempFor("/x/y", a) == TempFor("/x/y", b) {
		t.Errorf("run ids %s %s", a, b)
	}
}

// localShell runs the lock command with this machine's sh and flock, as
// *ssh.Client does on a host: stdin, output lines, non-zero exits.
type localShell struct {
	mu    sync.Mutex
	procs []*exec.Cmd
}

func (s *localShell) Run(ctx context.Context, cmd string, o ssh.RunOptions) (ssh.Result, error) {
	c := exec.CommandContext(ctx, "sh", "-c", cmd)
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
	in, _ := c.StdinPipe()
	out, _ := c.StdoutPipe()
	var stderr bytes.Buffer
	c.Stderr = &stderr
	if err := c.Start(); err != nil {
		return ssh.Result{ExitCode: -1}, err
	}
	s.mu.Lock()
	s.procs = append(s.procs, c)
	s.mu.Unlock()
	// Like an SSH session, the command's input is closed when the caller's
	// ends, and the caller's reader is left alone once the command exits.
	go func() {
		if o.Stdin != nil {
			_, _ = io.Copy(in, o.Stdin)
		}
		_ = in.Close()
	}()
	var stdout bytes.Buffer
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		stdout.WriteString(sc.Text() + "\n")
		o.OnLine("stdout", sc.Text())
	}
	err := c.Wait()
	res := ssh.Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), ExitCode: c.ProcessState.ExitCode()}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	if err != nil {
		return res, &ssh.ExitError{Host: "local", Cmd: cmd, ExitCode: res.ExitCode, Stderr: stderr.String()}
	}
	return res, nil
}

func needFlock(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("flock"); err != nil {
		t.Fatal("these tests run the lock script for real and need flock(1) (util-linux)")
	}
}

func TestLockScriptForReal(t *testing.T) {
	needFlock(t)
	dir := filepath.Join(t.TempDir(), "k3sctl")
	o := Options{Dir: dir}
	ctx := context.Background()
	first := &localShell{}
	l, err := Acquire(ctx, "local", first, alice, o)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(dir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("lock dir: %v %v", st, err)
	}

	bob := Holder{User: "bob", Workstation: "desk", PID: 7, Since: alice.Since, Command: "k3sctl reset", RunID: "ffff"}
	_, err = Acquire(ctx, "local", &localShell{}, bob, o)
	var le *LockedError
	if !errors.As(err, &le) || le.Holder != alice {
		t.Fatalf("second run: %v", err)
	}

	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(InfoFile(dir)); !os.IsNotExist(err) {
		t.Errorf("holder file left after release: %v", err)
	}
	l2, err := Acquire(ctx, "local", &localShell{}, bob, o)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}

	// The holder dies: its lock command is killed, as when sshd ends a
	// lost session's commands. The next run takes the lock.
	lost := make(chan struct{})
	go func() { <-l2.Done(); close(lost) }()
	ctx2, cancel := context.WithCancel(ctx)
	defer cancel()
	third := &localShell{}
	l3Holder := alice
	l3Holder.RunID = "3333"
	cancel()
	_, err = Acquire(ctx2, "local", third, l3Holder, o)
	if err == nil {
		t.Fatal("acquire with a cancelled context succeeded")
	}
	_ = l2.stdin.CloseWithError(errors.New("holder died")) // the session's input goes away
	<-lost
	if l2.Err() == nil {
		// a closed input without Release is a lost lock
		t.Error("lock that ended without Release has no error")
	}
	var lostErr *LostError
	if !errors.As(l2.Err(), &lostErr) {
		t.Errorf("Err = %v", l2.Err())
	}
	l4, err := Acquire(ctx, "local", &localShell{}, l3Holder, o)
	if err != nil {
		t.Fatalf("after the holder died: %v", err)
	}
	if err := l4.Release(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestLockKilledHolderFreesLock(t *testing.T) {
	needFlock(t)
	dir := filepath.Join(t.TempDir(), "k3sctl")
	o := Options{Dir: dir}
	sh := &localShell{}
	l, err := Acquire(context.Background(), "local", sh, alice, o)
	if err != nil {
		t.Fatal(err)
	}
	// SIGKILL the remote shell and its children: no clean-up code runs.
	sh.mu.Lock()
	p := sh.procs[0].Process
	sh.mu.Unlock()
	if err := syscall.Kill(-p.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-l.Done()
	if l.Err() == nil {
		t.Error("killed holder: no error")
	}
	l2, err := Acquire(context.Background(), "local", &localShell{}, alice, o)
	if err != nil {
		t.Fatalf("after kill: %v", err)
	}
	_ = l2.Release(context.Background())
}

func TestHolderWithShellCharactersForReal(t *testing.T) {
	needFlock(t)
	dir := filepath.Join(t.TempDir(), "k3sctl")
	o := Options{Dir: dir}
	odd := Holder{User: "o'brien", Workstation: "lap$(touch /tmp/x)top", PID: 1, Since: alice.Since, Command: "k3sctl `id` apply; rm -rf /", RunID: "r1"}
	l, err := Acquire(context.Background(), "local", &localShell{}, odd, o)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(context.Background())
	_, err = Acquire(context.Background(), "local", &localShell{}, alice, o)
	var le *LockedError
	if !errors.As(err, &le) || le.Holder != odd {
		t.Fatalf("holder read back: %+v (%v)", le, err)
	}
}

// A run that finds the lock taken an instant after another run took it,
// before the holder file is written, still names the holder.
func TestLockedJustBeforeHolderFileForReal(t *testing.T) {
	needFlock(t)
	dir := filepath.Join(t.TempDir(), "k3sctl")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// The lock is taken; its holder file comes a little later.
	hold := exec.Command("flock", LockFile(dir), "sleep", "30")
	if err := hold.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hold.Process.Kill(); _ = hold.Wait() })
	for {
		if _, err := os.Stat(LockFile(dir)); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // flock(1) holds it once the file exists and sleep runs
	go func() {
		time.Sleep(300 * time.Millisecond)
		_ = os.WriteFile(InfoFile(dir), []byte(strings.Join(alice.lines(), "\n")+"\n"), 0o600)
	}()
	_, err := Acquire(context.Background(), "local", &localShell{}, Holder{User: "bob"}, Options{Dir: dir})
	var le *LockedError
	if !errors.As(err, &le) || !le.Known || le.Holder != alice {
		t.Fatalf("err = %v", err)
	}
}
