package hostlock

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/k3sctl/k3sctl/internal/ssh"
)

// Runner runs a shell command on one host; *ssh.Client is one.
type Runner interface {
	Run(ctx context.Context, cmd string, o ssh.RunOptions) (ssh.Result, error)
}

var _ Runner = (*ssh.Client)(nil)

// DefaultDir is where the lock and its holder file live on a host: a tmpfs,
// so neither outlives a reboot.
const DefaultDir = "/run/k3sctl"

// Options says where the lock lives.
type Options struct {
	Dir string // "" is DefaultDir
}

func (o Options) dir() string {
	if o.Dir == "" {
		return DefaultDir
	}
	return o.Dir
}

// LockFile is the path of the lock file in dir.
func LockFile(dir string) string { return path.Join(dir, "lock") }

// InfoFile is the path of the file naming the holder, next to the lock.
func InfoFile(dir string) string { return path.Join(dir, "lock.info") }

// Remote exit codes and output markers of the lock command.
const (
	busyExit     = 75 // flock -E: the lock is taken
	noFlockExit  = 127
	heldMarker   = "k3sctl-lock-held"
	busyMarker   = "k3sctl-lock-busy"
	lockArgv0    = "k3sctl-lock"
	holderArgv0  = "k3sctl-lock-holder"
	maxFieldSize = 200
)

// lockScript runs as root with $1 the lock directory, $2 the lock file, $3
// the holder file and the rest the holder's lines. The holder file is
// written under the lock and replaced in one rename, so a run that finds the
// lock taken reads a whole file; it waits a moment first, and up to two
// seconds for the file to appear, since a run that took the lock an
// instant before (two runs started together) writes it just after. The inner shell blocks on its input until
// the run releases the lock or its SSH session goes away; flock's own exit
// then frees the lock. The holder file is removed while the lock is still
// held, so it never removes the next holder's file.
const lockScript = `dir=$1 lock=$2 info=$3; shift 3
umask 077
mkdir -p "$dir" && chmod 0700 "$dir" || exit 1
# BusyBox's flock has no -E: only util-linux's tells "taken" from "failed".
case $(flock --version 2>/dev/null) in *util-linux*) ;; *) echo "flock of util-linux is not installed" >&2; exit 127 ;; esac
flock -n -E 75 "$lock" sh -c '` + holderScript + `' ` + holderArgv0 + ` "$info" "$@"
rc=$?
if [ "$rc" -eq 75 ]; then
  i=0; sleep 0.2
  while [ ! -s "$info" ] && [ "$i" -lt 20 ]; do sleep 0.1; i=$((i+1)); done
  echo ` + busyMarker + `; cat "$info" 2>/dev/null
fi
exit "$rc"`

// holderScript is single-quoted inside lockScript: no single quotes here.
const holderScript = `info=$1; shift
printf "%s\n" "$@" >"$info.tmp" && mv -f "$info.tmp" "$info" || exit 1
echo ` + heldMarker + `
cat >/dev/null
rm -f "$info"`

// Command is the remote command line that takes the lock in dir for h.
func Command(dir string, h Holder) string {
	args := []string{"sh", "-c", lockScript, lockArgv0, dir, LockFile(dir), InfoFile(dir)}
	args = append(args, h.lines()...)
	return ssh.Join(args...)
}

// Lock is a lock held on one host.
type Lock struct {
	Host   string
	stdin  *io.PipeWriter
	done   chan struct{}
	mu     sync.Mutex
	err    error // why the remote command ended; set before done closes
	closed bool  // Release was called
}

// Acquire takes the lock on host for h, through r, and holds it until
// Release, until ctx ends, or until the SSH session is lost. A lock taken by
// another run is a *LockedError naming the holder; Acquire never waits for it.
func Acquire(ctx context.Context, host string, r Runner, h Holder, o Options) (*Lock, error) {
	pr, pw := io.Pipe()
	l := &Lock{Host: host, stdin: pw, done: make(chan struct{})}
	held := make(chan struct{})
	var once sync.Once
	type outcome struct {
		res ssh.Result
		err error
	}
	ended := make(chan outcome, 1)
	go func() {
		res, err := r.Run(ctx, Command(o.dir(), h), ssh.RunOptions{
			Sudo:  true,
			Stdin: pr,
			OnLine: func(stream, line string) {
				if stream == "stdout" && line == heldMarker {
					once.Do(func() { close(held) })
				}
			},
		})
		_ = pr.Close()
		ended <- outcome{res, err}
	}()

	select {
	case <-held:
		go func() {
			out := <-ended
			l.mu.Lock()
			if !l.closed || out.err != nil {
				l.err = endedError(host, out.err, l.closed)
			}
			l.mu.Unlock()
			close(l.done)
		}()
		return l, nil
	case out := <-ended:
		_ = pw.Close()
		select {
		case <-held: // held and ended at once: the session went away
			return nil, &Error{Host: host, Err: fmt.Errorf("the lock command ended right after taking the lock: %w", errOr(out.err))}
		default:
		}
		return nil, acquireError(host, out.res, out.err)
	}
}

func errOr(err error) error {
	if err == nil {
		return errors.New("no error reported")
	}
	return err
}

// acquireError explains why the lock command ended without holding the lock.
func acquireError(host string, res ssh.Result, err error) error {
	var exit *ssh.ExitError
	switch {
	case errors.As(err, &exit) && exit.ExitCode == busyExit:
		return lockedError(host, res.Stdout)
	case errors.As(err, &exit) && exit.ExitCode == noFlockExit:
		return &Error{Host: host, Err: errors.New("flock of util-linux is not installed on the host"),
			Hint: "install util-linux on the host (it provides flock; on Alpine: apk add flock)"}
	case err != nil:
		return &Error{Host: host, Err: err}
	default:
		return &Error{Host: host, Err: errors.New("the lock command ended without taking the lock")}
	}
}

// lockedError reads the holder from what the lock command printed after
// the busy marker.
func lockedError(host string, stdout []byte) *LockedError {
	_, info, found := strings.Cut(string(stdout), busyMarker+"\n")
	if !found {
		return &LockedError{Host: host}
	}
	h, ok := parseHolder(info)
	return &LockedError{Host: host, Holder: h, Known: ok}
}

// endedError says why a held lock ended; nil for a release.
func endedError(host string, err error, released bool) error {
	if err == nil && released {
		return nil
	}
	if err == nil {
		err = errors.New("the lock command ended")
	}
	return &LostError{Host: host, Err: err}
}

// Done is closed once the lock is no longer held: released, or lost with
// the SSH session or the context. Err then says which.
func (l *Lock) Done() <-chan struct{} { return l.done }

// Err is nil while the lock is held and after a clean Release, else a
// *LostError.
func (l *Lock) Err() error {
	select {
	case <-l.done:
	default:
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Release lets the lock go and waits until the host has freed it, or ctx
// ends. A lock lost before Release reports its *LostError here.
func (l *Lock) Release(ctx context.Context) error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	_ = l.stdin.Close()
	select {
	case <-l.done:
		return l.Err()
	case <-ctx.Done():
		return &Error{Host: l.Host, Err: fmt.Errorf("release the host lock: %w", ctx.Err())}
	}
}

// Holder names a run that holds, or held, a host lock.
type Holder struct {
	User        string    // local user name on the workstation
	Workstation string    // workstation host name
	PID         int       // process id on the workstation
	Since       time.Time // when the run started
	Command     string    // "k3sctl apply": command words only, no flags
	RunID       string    // random, unique per run
}

// NewHolder describes this process, started with args (os.Args). Only the
// leading words of args up to the first flag are kept, so flag values such
// as tokens never reach a host.
func NewHolder(args []string, runID string) Holder {
	h := Holder{PID: os.Getpid(), Since: time.Now().UTC().Truncate(time.Second), RunID: runID, Command: CommandWords(args)}
	if u, err := user.Current(); err == nil {
		h.User = u.Username
	}
	if h.User == "" {
		h.User = os.Getenv("USER")
	}
	h.Workstation, _ = os.Hostname()
	return h
}

// CommandWords keeps the program's base name and the words after it up to
// the first flag: ["/usr/bin/k3sctl", "apply", "-f", "x"] is "k3sctl apply".
func CommandWords(args []string) string {
	var words []string
	for i, a := range args {
		if strings.HasPrefix(a, "-") {
			break
		}
		if i == 0 {
			a = path.Base(strings.ReplaceAll(a, `\`, "/"))
		}
		words = append(words, a)
	}
	return strings.Join(words, " ")
}

// NewRunID returns a random run id: 16 lower-case hex digits.
func NewRunID() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("hostlock: no randomness: " + err.Error())
	}
	return hex.EncodeToString(b[:])
}

// lines is the holder file's content, one key=value a line.
func (h Holder) lines() []string {
	return []string{
		"user=" + field(h.User),
		"workstation=" + field(h.Workstation),
		"pid=" + strconv.Itoa(h.PID),
		"since=" + h.Since.UTC().Format(time.RFC3339),
		"command=" + field(h.Command),
		"run=" + field(h.RunID),
	}
}

// field keeps a value on one short line.
func field(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > maxFieldSize {
		s = s[:maxFieldSize]
	}
	return s
}

// parseHolder reads a holder file; ok is false when it names nobody.
func parseHolder(s string) (h Holder, ok bool) {
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		k, v, found := strings.Cut(sc.Text(), "=")
		if !found {
			continue
		}
		switch k {
		case "user":
			h.User = v
		case "workstation":
			h.Workstation = v
		case "pid":
			h.PID, _ = strconv.Atoi(v)
		case "since":
			h.Since, _ = time.Parse(time.RFC3339, v)
		case "command":
			h.Command = v
		case "run":
			h.RunID = v
		}
	}
	return h, h.User != "" || h.Workstation != "" || h.PID != 0
}

// String is "alice@laptop (pid 4242) since 2026-12-02T15:04:05Z running
// "k3sctl apply"", leaving out what is unknown.
func (h Holder) String() string {
	var b strings.Builder
	who := h.User
	if h.Workstation != "" {
		if who == "" {
			who = "someone"
		}
		who += "@" + h.Workstation
	}
	if who == "" {
		who = "another run"
	}
	b.WriteString(who)
	if h.PID != 0 {
		fmt.Fprintf(&b, " (pid %d)", h.PID)
	}
	if !h.Since.IsZero() {
		b.WriteString(" since " + h.Since.UTC().Format(time.RFC3339))
	}
	if h.Command != "" {
		fmt.Fprintf(&b, " running %q", h.Command)
	}
	return b.String()
}

// LockedError is a host locked by another run.
type LockedError struct {
	Host   string
	Holder Holder
	Known  bool // the holder file could be read
}

func (e *LockedError) Error() string {
	if !e.Known {
		return e.Host + ": locked by another k3sctl run (its holder file could not be read); wait for it to finish, or stop it"
	}
	return e.Host + ": locked by " + e.Holder.String() + "; wait for it to finish, or stop it"
}

// LostError is a held lock that ended without Release: the SSH session
// was lost or the context ended. The host is no longer protected.
type LostError struct {
	Host string
	Err  error
}

func (e *LostError) Error() string {
	return e.Host + ": host lock lost: " + strings.TrimPrefix(e.Err.Error(), e.Host+": ")
}

func (e *LostError) Unwrap() error { return e.Err }

// Error is a failure to take or release a host lock.
type Error struct {
	Host string
	Err  error
	Hint string
}

func (e *Error) Error() string {
	// Errors from internal/ssh already start with the host.
	msg := e.Host + ": host lock: " + strings.TrimPrefix(e.Err.Error(), e.Host+": ")
	if e.Hint != "" {
		msg += "\nhint: " + e.Hint
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// TempName is a name for a temporary file in dir on a host that no other
// run can choose: "<dir>/.k3sctl-<runid>-<base>.tmp".
func TempName(dir, base, runID string) string {
	return path.Join(dir, ".k3sctl-"+runID+"-"+path.Base(base)+".tmp")
}

// TempFor is TempName next to target, for writing target by rename.
func TempFor(target, runID string) string {
	return TempName(path.Dir(target), path.Base(target), runID)
}
