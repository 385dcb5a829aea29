package ssh

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func dialTest(t *testing.T, o Options) *Client {
	t.Helper()
	c, err := Dial(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestRunExitErrorCarriesStatusAndStderr(t *testing.T) {
	ts := newTestSetup(t)
	c := dialTest(t, ts.opts)
	res, err := c.Run(context.Background(), "echo out; echo first >&2; echo 'it broke' >&2; exit 3", RunOptions{})
	var ee *ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("err = %v, want *ExitError", err)
	}
	if ee.ExitCode != 3 || res.ExitCode != 3 {
		t.Errorf("exit code %d / %d, want 3", ee.ExitCode, res.ExitCode)
	}
	want := "127.0.0.1: echo out; echo first >&2; echo 'it broke' >&2; exit 3: exit status 3: it broke"
	if err.Error() != want {
		t.Errorf("message\n got %q\nwant %q", err.Error(), want)
	}
	if string(res.Stdout) != "out\n" {
		t.Errorf("stdout %q", res.Stdout)
	}
}

func TestRunStreamsLinesAndPassesStdin(t *testing.T) {
	ts := newTestSetup(t)
	c := dialTest(t, ts.opts)
	var got []string
	_, err := c.Run(context.Background(), "while read -r l; do echo \"out:$l\"; echo \"err:$l\" >&2; done; printf tail",
		RunOptions{Stdin: strings.NewReader("a\nb\n"), OnLine: func(stream, line string) { got = append(got, stream+" "+line) }})
	if err != nil {
		t.Fatal(err)
	}
	// Order between the two streams is not defined; within each it is.
	var out, errs []string
	for _, g := range got {
		if strings.HasPrefix(g, "stdout ") {
			out = append(out, g)
		} else {
			errs = append(errs, g)
		}
	}
	if strings.Join(out, "|") != "stdout out:a|stdout out:b|stdout tail" || strings.Join(errs, "|") != "stderr err:a|stderr err:b" {
		t.Errorf("lines: %q", got)
	}
}

func TestRunCancelKillsRemoteCommand(t *testing.T) {
	ts := newTestSetup(t)
	c := dialTest(t, ts.opts)
	marker := filepath.Join(t.TempDir(), "still-running")
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Run(ctx, "sleep 3; touch "+Quote(marker), RunOptions{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Run returned after %s", d)
	}
	time.Sleep(3500 * time.Millisecond)
	if _, err := os.Stat(marker); err == nil {
		t.Error("the remote command went on after the cancel")
	}
	// The connection is still good for the next step.
	if _, err := c.Run(context.Background(), "true", RunOptions{}); err != nil {
		t.Fatal(err)
	}
}

// fakeSudo makes the test server look like a host where the user is not
// root and sudo wants a password: id and sudo are scripts first in PATH.
func fakeSudo(t *testing.T, ts *testSetup, password string) (argvLog string) {
	t.Helper()
	bin := t.TempDir()
	argvLog = filepath.Join(bin, "argv.log")
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write("id", `if [ "$1" = -u ]; then echo 1000; else echo ops; fi`+"\n")
	write("sudo", `echo "$*" >> `+Quote(argvLog)+`
case "$1" in -n) exit 1 ;; esac
IFS= read -r pw
if [ "$pw" != `+Quote(password)+` ]; then echo "Sorry, try again." >&2; echo "sudo: 1 incorrect password attempt" >&2; exit 1; fi
while [ "$1" != -- ]; do shift; done; shift
exec "$@"
`)
	ts.srv.env = append(ts.srv.env, "PATH="+bin+":"+os.Getenv("PATH"))
	return argvLog
}

type countingPrompter struct {
	answers []string
	prompts []string
}

func (p *countingPrompter) Secret(prompt string) (secretValue, error) {
	p.prompts = append(p.prompts, prompt)
	if len(p.answers) == 0 {
		return secretValue{}, errors.New("no more answers")
	}
	a := p.answers[0]
	p.answers = p.answers[1:]
	return newSecret(a), nil
}

func TestSudoPasswordIsAskedOnceAndSentOnStdin(t *testing.T) {
	ts := newTestSetup(t)
	argv := fakeSudo(t, ts, "s3cret pw")
	p := &countingPrompter{answers: []string{"wrong", "s3cret pw"}}
	ts.opts.Prompter = p
	c := dialTest(t, ts.opts)
	for i := 0; i < 3; i++ {
		res, err := c.Run(context.Background(), "cat", RunOptions{Sudo: true, Stdin: strings.NewReader("payload\n")})
		if err != nil {
			t.Fatal(err)
		}
		if string(res.Stdout) != "payload\n" {
			t.Fatalf("command read %q: the password line must not reach it", res.Stdout)
		}
	}
	if len(p.prompts) != 2 || p.prompts[0] != "[sudo] password for tester@127.0.0.1: " {
		t.Errorf("prompts = %q, want the wrong answer and one retry", p.prompts)
	}
	log, _ := os.ReadFile(argv)
	if strings.Contains(string(log), "s3cret") {
		t.Errorf("password in sudo's argv:\n%s", log)
	}
	for _, cmd := range ts.srv.ran() {
		if strings.Contains(cmd, "s3cret") {
			t.Errorf("password in a command line: %s", cmd)
		}
	}
}

func TestSudoPasswordWithoutTerminalFailsClearly(t *testing.T) {
	ts := newTestSetup(t)
	fakeSudo(t, ts, "pw")
	c := dialTest(t, ts.opts)
	_, err := c.Run(context.Background(), "true", RunOptions{Sudo: true})
	if err == nil || !strings.Contains(err.Error(), "needs a password for sudo and there is no terminal") || HintOf(err) == "" {
		t.Fatalf("err = %v", err)
	}
}

func TestSudoPasswordFromOptionsNeedsNoPrompt(t *testing.T) {
	ts := newTestSetup(t)
	fakeSudo(t, ts, "pw")
	ts.opts.SudoPassword = newSecret("pw")
	c := dialTest(t, ts.opts)
	res, err := c.Run(context.Background(), "echo ok", RunOptions{Sudo: true})
	if err != nil || string(res.Stdout) != "ok\n" {
		t.Fatalf("%q %v", res.Stdout, err)
	}
}

// A script that runs sudo -S itself gets the known password as the first
// line of its stdin, and what it learnt spares the next Sudo command the
// detection round trip.
func TestPasswordFirstAndNoteSudo(t *testing.T) {
	ts := newTestSetup(t)
	fakeSudo(t, ts, "pw")
	c := dialTest(t, ts.opts)
	if c.SudoPasswordKnown() {
		t.Fatal("no password was given")
	}
	res, err := c.Run(context.Background(), "cat", RunOptions{PasswordFirst: true, Stdin: strings.NewReader("rest\n")})
	if err != nil || string(res.Stdout) != "rest\n" {
		t.Errorf("without a known password stdin is the command's own: %q %v", res.Stdout, err)
	}

	ts.opts.SudoPassword = newSecret("pw")
	c = dialTest(t, ts.opts)
	if !c.SudoPasswordKnown() {
		t.Fatal("the given password is not known")
	}
	res, err = c.Run(context.Background(), "cat", RunOptions{PasswordFirst: true, Stdin: strings.NewReader("rest\n")})
	if err != nil || string(res.Stdout) != "pw\nrest\n" {
		t.Errorf("stdin %q %v, want the password line first", res.Stdout, err)
	}
	c.NoteSudo(SudoWithPassword, true)
	before := len(ts.srv.ran())
	if res, err := c.Run(context.Background(), "echo ok", RunOptions{Sudo: true}); err != nil || string(res.Stdout) != "ok\n" {
		t.Fatalf("%q %v", res.Stdout, err)
	}
	if n := len(ts.srv.ran()) - before; n != 1 {
		t.Errorf("%d commands after NoteSudo, want 1 (no detection, no password check)", n)
	}
}
