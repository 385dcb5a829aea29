package ssh

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/k3sctl/k3sctl/internal/secret"
)

// SudoMode is how a user on a host becomes root.
type SudoMode string

// Sudo modes.
const (
	SudoRoot         SudoMode = "root"     // already root
	SudoNoPassword   SudoMode = "nopasswd" // sudo -n works
	SudoWithPassword SudoMode = "password" // sudo asks for a password
	SudoNone         SudoMode = "none"     // no sudo on the host
)

// RunOptions changes how a command runs.
type RunOptions struct {
	Sudo   bool      // run as root (through sudo unless the user is root)
	Stdin  io.Reader // nil: empty
	OnLine func(stream, line string)
	// PasswordFirst sends the known sudo password, if any, as the first
	// line of stdin of a command that is not run with Sudo: for a script
	// that calls `sudo -S` itself (see SudoPasswordKnown).
	PasswordFirst bool
	// Stdout, when set, receives the command's standard output as it
	// arrives instead of Result.Stdout (large downloads); OnLine then sees
	// stderr only.
	Stdout io.Writer

	// forwardAgent asks for agent forwarding on the session
	// (RunWithAgent).
	forwardAgent bool
}

// Result is what a command printed and how it exited.
type Result struct {
	Stdout, Stderr []byte
	ExitCode       int
}

// Run runs cmd, a POSIX shell command line (build it with Quote and Join).
// A non-zero exit is an *ExitError; the Result is filled either way.
// Cancelling ctx signals the remote command and closes its session.
func (c *Client) Run(ctx context.Context, cmd string, o RunOptions) (Result, error) {
	line, stdin := cmd, o.Stdin
	if o.Sudo {
		prefix, pass, err := c.sudoPrefix(ctx)
		if err != nil {
			return Result{ExitCode: -1}, err
		}
		if prefix != "" {
			line = prefix + " sh -c " + Quote(sudoWrapper) + " k3sctl " + Quote(cmd)
		}
		if !pass.IsZero() {
			stdin = withPassword(pass, stdin)
		}
	} else if o.PasswordFirst {
		c.sudoMu.Lock()
		pass := c.sudoPass
		c.sudoMu.Unlock()
		if !pass.IsZero() {
			stdin = withPassword(pass, stdin)
		}
	}
	res, err := c.exec(ctx, line, stdin, o.OnLine, o.Stdout, o.forwardAgent)
	if err != nil {
		return res, &Error{Host: c.host, Op: shortCmd(cmd), Err: err}
	}
	if res.ExitCode != 0 {
		return res, &ExitError{Host: c.host, Cmd: cmd, ExitCode: res.ExitCode, Stderr: string(res.Stderr)}
	}
	return res, nil
}

// sudoWrapper runs $1 under a root shell that, when sudo passes on the
// cancel signal, ends the whole process group: sudo passes it to its direct
// child only, and the login user cannot signal root's orphans. A background
// job's stdin would be /dev/null, so it is handed over explicitly.
const sudoWrapper = `trap 'trap - TERM HUP INT; kill -TERM 0' TERM HUP INT; exec 3<&0; sh -c "$1" 0<&3 3<&- & wait $!`

// withPassword puts the sudo password line before the command's own input:
// sudo -S reads exactly one line and leaves the rest to the command.
func withPassword(pass secret.Value, stdin io.Reader) io.Reader {
	pw := strings.NewReader(pass.Reveal() + "\n")
	if stdin == nil {
		return pw
	}
	return io.MultiReader(pw, stdin)
}

// exec runs line as given and reports a non-zero exit in Result only.
func (c *Client) exec(ctx context.Context, line string, stdin io.Reader, onLine func(stream, line string), stdoutTo io.Writer, forwardAgent bool) (Result, error) {
	res := Result{ExitCode: -1}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	sess, err := c.conn.NewSession()
	if err != nil {
		return res, fmt.Errorf("open session: %w", err)
	}
	defer sess.Close()
	if forwardAgent {
		if err := agent.RequestAgentForwarding(sess); err != nil {
			return res, fmt.Errorf("agent forwarding refused by the host's sshd (AllowAgentForwarding): %w", err)
		}
		c.fwdRequested = true // under fwdMu (RunWithAgent)
	}
	if stdin != nil {
		sess.Stdin = stdin
	}
	stdout, err := sess.StdoutPipe()
	if err != nil {
		return res, err
	}
	stderr, err := sess.StderrPipe()
	if err != nil {
		return res, err
	}
	if err := sess.Start(line); err != nil {
		return res, fmt.Errorf("start: %w", err)
	}
	// sshd sends a channel's signal to the command's whole process group
	// (as the login user; sudo passes it on to what it runs). Closing the
	// channel also takes the command's output pipes away.
	stop := context.AfterFunc(ctx, func() {
		_ = sess.Signal(ssh.SIGTERM)
		_ = sess.Close()
	})
	defer stop()

	var outBuf, errBuf bytes.Buffer
	var mu sync.Mutex // OnLine is called from one goroutine at a time
	var wg sync.WaitGroup
	read := func(r io.Reader, buf *bytes.Buffer, stream string) {
		defer wg.Done()
		br := bufio.NewReaderSize(r, 64<<10)
		for {
			l, err := br.ReadBytes('\n')
			if len(l) > 0 {
				buf.Write(l)
				if onLine != nil {
					mu.Lock()
					onLine(stream, strings.TrimRight(string(l), "\r\n"))
					mu.Unlock()
				}
			}
			if err != nil {
				return
			}
		}
	}
	var copyErr error
	wg.Add(2)
	if stdoutTo != nil {
		w := stdoutTo
		go func() {
			defer wg.Done()
			if _, err := io.Copy(w, stdout); err != nil {
				copyErr = err
				_ = sess.Close()
			}
		}()
	} else {
		go read(stdout, &outBuf, "stdout")
	}
	go read(stderr, &errBuf, "stderr")
	wg.Wait()
	werr := sess.Wait()
	res.Stdout, res.Stderr = outBuf.Bytes(), errBuf.Bytes()
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	if copyErr != nil {
		return res, fmt.Errorf("write output: %w", copyErr)
	}
	var exit *ssh.ExitError
	switch {
	case werr == nil:
		res.ExitCode = 0
	case errors.As(werr, &exit):
		res.ExitCode = exit.ExitStatus()
		if exit.Signal() != "" && res.ExitCode == 0 {
			res.ExitCode = 128
		}
	default:
		return res, werr
	}
	return res, nil
}

// SudoDetectScript is a shell command that prints the sudo mode of the
// login user: root, nopasswd, password or none.
const SudoDetectScript = sudoDetectCmd

// SudoPasswordKnown reports whether the client has a sudo password to send
// (given up front or asked for earlier) without asking for one.
func (c *Client) SudoPasswordKnown() bool {
	c.sudoMu.Lock()
	defer c.sudoMu.Unlock()
	return !c.sudoPass.IsZero()
}

// NoteSudo records what a script run by the caller found out: the user's
// sudo mode, and whether the known password was accepted. It saves the
// detection round trip of the next Sudo command.
func (c *Client) NoteSudo(mode SudoMode, passwordAccepted bool) {
	c.sudoMu.Lock()
	defer c.sudoMu.Unlock()
	switch mode {
	case SudoRoot, SudoNoPassword, SudoWithPassword, SudoNone:
		c.sudoMode = mode
	}
	if passwordAccepted && mode == SudoWithPassword && !c.sudoPass.IsZero() {
		c.sudoVerified = true
	}
}

const sudoDetectCmd = `if [ "$(id -u)" = 0 ]; then echo root; ` +
	`elif ! command -v sudo >/dev/null 2>&1; then echo none; ` +
	`elif sudo -n true >/dev/null 2>&1; then echo nopasswd; ` +
	`else echo password; fi`

const (
	sudoNoPasswordPrefix = "sudo -n --"
	// -k makes sudo ask even with a cached credential, so the password
	// line is always consumed by sudo and never reaches the command.
	sudoPasswordPrefix = "sudo -S -k -p '' --"
)

// sudoPrefix detects the sudo mode once per connection and returns what to
// put before "sh -c", and the password to send first on stdin.
func (c *Client) sudoPrefix(ctx context.Context) (string, secret.Value, error) {
	c.sudoMu.Lock()
	defer c.sudoMu.Unlock()
	if c.sudoMode == "" {
		res, err := c.exec(ctx, sudoDetectCmd, nil, nil, nil, false)
		if err != nil {
			return "", secret.Value{}, &Error{Host: c.host, Op: "sudo", Err: err}
		}
		mode := SudoMode(strings.TrimSpace(string(res.Stdout)))
		switch mode {
		case SudoRoot, SudoNoPassword, SudoWithPassword, SudoNone:
			c.sudoMode = mode
		default:
			return "", secret.Value{}, &Error{Host: c.host, Op: "sudo", Err: fmt.Errorf("cannot tell whether user %s may use sudo: %q", c.route.target.user, res.Stdout)}
		}
	}
	switch c.sudoMode {
	case SudoRoot:
		return "", secret.Value{}, nil
	case SudoNoPassword:
		return sudoNoPasswordPrefix, secret.Value{}, nil
	case SudoNone:
		return "", secret.Value{}, &Error{Host: c.host, Op: "sudo",
			Err:  fmt.Errorf("user %s is not root and sudo is not installed", c.route.target.user),
			Hint: "log in as root (--user root) or install sudo on the host"}
	}
	if err := c.verifySudoPassword(ctx); err != nil {
		return "", secret.Value{}, err
	}
	return sudoPasswordPrefix, c.sudoPass, nil
}

const sudoPasswordTries = 3

// verifySudoPassword asks for the password if needed and checks it once, so
// that a wrong one fails here and not halfway through a step.
func (c *Client) verifySudoPassword(ctx context.Context) error {
	if c.sudoVerified {
		return nil
	}
	user := c.route.target.user
	prompt := fmt.Sprintf("[sudo] password for %s@%s: ", user, c.host)
	asked := false
	for try := 0; try < sudoPasswordTries; try++ {
		if c.sudoPass.IsZero() || asked {
			if c.opts.Prompter == nil {
				return &Error{Host: c.host, Op: "sudo",
					Err:  fmt.Errorf("user %s needs a password for sudo and there is no terminal to ask for it", user),
					Hint: "set K3SCTL_SUDO_PASSWORD, or allow passwordless sudo for " + user + " on the host (NOPASSWD in /etc/sudoers.d)"}
			}
			p, err := c.opts.Prompter.Secret(prompt)
			if err != nil {
				return &Error{Host: c.host, Op: "sudo", Err: fmt.Errorf("sudo password for %s: %w", user, err)}
			}
			c.sudoPass, asked = p, true
		}
		res, err := c.exec(ctx, sudoPasswordPrefix+" true", withPassword(c.sudoPass, nil), nil, nil, false)
		if err != nil {
			return &Error{Host: c.host, Op: "sudo", Err: err}
		}
		if res.ExitCode == 0 {
			c.sudoVerified = true
			return nil
		}
		msg := string(res.Stderr)
		if !strings.Contains(msg, "incorrect password") && !strings.Contains(msg, "try again") {
			return &Error{Host: c.host, Op: "sudo", Err: fmt.Errorf("user %s cannot use sudo: %s", user, lastLine(msg)),
				Hint: "allow " + user + " to use sudo on the host, or log in as a user who can (--user)"}
		}
		forget(c.opts.Prompter, prompt)
		c.sudoPass = secret.Value{}
		if c.opts.Prompter == nil {
			break
		}
	}
	return &Error{Host: c.host, Op: "sudo", Err: fmt.Errorf("sudo password for %s was not accepted", user)}
}
