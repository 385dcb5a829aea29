package node

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"

	"github.com/k3sctl/k3sctl/internal/ssh"
)

// localConn runs commands with the local /bin/sh, as the user running the
// tests (root where the tests run), the way sshd would run them on a host.
type localConn struct {
	runs  int
	cmds  []string
	noted ssh.SudoMode
}

func (c *localConn) Host() string { return "local" }

func (c *localConn) Run(ctx context.Context, cmd string, o ssh.RunOptions) (ssh.Result, error) {
	c.runs++
	c.cmds = append(c.cmds, cmd)
	x := exec.CommandContext(ctx, "/bin/sh", "-c", cmd)
	var out, errb bytes.Buffer
	x.Stdout, x.Stderr = &out, &errb
	if o.Stdin != nil {
		x.Stdin = o.Stdin
	} else {
		x.Stdin = bytes.NewReader(nil)
	}
	err := x.Run()
	res := ssh.Result{Stdout: out.Bytes(), Stderr: errb.Bytes()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.ExitCode = ee.ExitCode()
		return res, &ssh.ExitError{Host: c.Host(), Cmd: cmd, ExitCode: res.ExitCode, Stderr: errb.String()}
	default:
		return res, err
	}
	return res, nil
}

func (c *localConn) ReadFile(ctx context.Context, path string) ([]byte, error) {
	return os.ReadFile(path)
}

func (c *localConn) SudoPasswordKnown() bool { return false }

func (c *localConn) NoteSudo(mode ssh.SudoMode, _ bool) { c.noted = mode }

// scriptedConn answers each command with the output of the first rule
// whose substring it contains, and records what it was asked.
type scriptedConn struct {
	answers map[string]string
	cmds    []string
	files   map[string]string
	readErr error
}

func (c *scriptedConn) Host() string { return "10.0.0.5" }

func (c *scriptedConn) Run(_ context.Context, cmd string, o ssh.RunOptions) (ssh.Result, error) {
	c.cmds = append(c.cmds, cmd)
	if o.Stdin != nil {
		_, _ = io.Copy(io.Discard, o.Stdin)
	}
	for k, v := range c.answers {
		if bytes.Contains([]byte(cmd), []byte(k)) {
			return ssh.Result{Stdout: []byte(v)}, nil
		}
	}
	return ssh.Result{}, nil
}

func (c *scriptedConn) ReadFile(_ context.Context, path string) ([]byte, error) {
	if c.readErr != nil {
		return nil, c.readErr
	}
	d, ok := c.files[path]
	if !ok {
		return nil, os.ErrNotExist
	}
	return []byte(d), nil
}
