package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	osuser "os/user"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/k3sctl/k3sctl/internal/cli"
	"github.com/k3sctl/k3sctl/internal/hostlock"
	"github.com/k3sctl/k3sctl/test/e2e/world"
)

// smallFleet is one cluster of a server and agents; hostSSH, when set, is
// the ssh: settings of the server.
func smallFleet(t *testing.T, dir, key, version, serverSSH string, server string, agents ...string) string {
	t.Helper()
	s := server
	if serverSSH != "" {
		s = "{address: " + server + ", ssh: " + serverSSH + "}"
	}
	inv := fmt.Sprintf(`apiVersion: k3sctl.io/v1alpha1
kind: Inventory
defaults:
  ssh:
    user: pi
    keyFile: %s
  version: %s
clusters:
  - name: locks
    servers: [%s]
    agents: [%s]
`, key, version, s, strings.Join(agents, ", "))
	path := filepath.Join(dir, "fleet.yaml")
	if err := os.WriteFile(path, []byte(inv), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// started is a k3sctl process running in the background.
type started struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	code           int
}

func (u *user) start(args ...string) *started {
	u.t.Helper()
	s := &started{cmd: exec.Command(k3sctlBinary(u.t), args...)}
	s.cmd.Env = u.env
	s.cmd.Stdout, s.cmd.Stderr = &s.stdout, &s.stderr
	if err := s.cmd.Start(); err != nil {
		u.t.Fatal(err)
	}
	u.t.Cleanup(func() { _ = s.cmd.Process.Kill() })
	return s
}

func (s *started) wait(t *testing.T) {
	t.Helper()
	err := s.cmd.Wait()
	if ee, ok := err.(*exec.ExitError); ok {
		s.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	t.Logf("$ k3sctl %s (pid %d)\nexit %d\n--- stdout\n%s\n--- stderr\n%s", strings.Join(s.cmd.Args[1:], " "), s.cmd.Process.Pid, s.code, s.stdout.String(), s.stderr.String())
}

// stepStarted is a plain line of a step that starts: "15:04:05 shop/10.0.0.5 → upload k3s".
var stepStarted = regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d \S+/\S+ → `)

// waitLocksGone waits until no host runs a lock command any more: after
// a run was killed, a host notices that its SSH session is gone.
func waitLocksGone(t *testing.T, hs []*world.Host) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for _, h := range hs {
		for {
			out, _ := h.ExecErr(context.Background(), "pgrep -c -x flock || true")
			if strings.TrimSpace(out) == "0" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: flock still running after the run was killed", h.Name)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// Two applies started at the same moment: one proceeds, the other stops
// before changing anything and names the holder. Killing an apply
// mid-run leaves no lock that blocks the next one.
func TestApplyHostLocks(t *testing.T) {
	t.Parallel()
	w := world.New(t)
	m := startMirror(t)
	hs := w.Start(t, "lk-s", "lk-a1", "lk-a2")
	u := newUser(t)
	dir := t.TempDir()
	inv := smallFleet(t, dir, w.Key, v1, "", hs[0].IP, hs[1].IP, hs[2].IP)
	flags := []string{"apply", "-f", inv, "--download-url", m.DownloadURL, "--channel-url", m.ChannelURL, "--timeout", "90s"}

	runs := []*started{u.start(flags...), u.start(flags...)}
	for _, r := range runs {
		r.wait(t)
	}
	winner, loser := runs[0], runs[1]
	if winner.code != 0 {
		winner, loser = loser, winner
	}
	if winner.code != 0 || loser.code != cli.ExitPreflight {
		t.Fatalf("exit codes %d and %d, want 0 and %d", winner.code, loser.code, cli.ExitPreflight)
	}
	me, err := osuser.Current()
	if err != nil {
		t.Fatal(err)
	}
	workstation, _ := os.Hostname()
	holder := fmt.Sprintf("locked by %s@%s (pid %d) since ", me.Username, workstation, winner.cmd.Process.Pid)
	errText := loser.stderr.String()
	if !strings.Contains(errText, "nothing was changed") || !strings.Contains(errText, holder) || !strings.Contains(errText, `running "k3sctl apply"`) {
		t.Errorf("the stopped run does not name the holder (%s…):\n%s", holder, errText)
	}
	if stepStarted.MatchString(errText) {
		t.Errorf("the stopped run started steps:\n%s", errText)
	}
	u.waitNodes("locks", 3)
	for _, h := range hs {
		if out, _ := h.ExecErr(context.Background(), "test -e /run/k3sctl/lock.info && echo held"); strings.TrimSpace(out) == "held" {
			t.Errorf("%s: lock still held after the run ended", h.Name)
		}
	}

	// An upgrade stopped once it starts to upload: first by Ctrl-C, which
	// releases every lock before k3sctl exits, then by SIGKILL, after
	// which no clean-up runs.
	inv = smallFleet(t, dir, w.Key, v2, "", hs[0].IP, hs[1].IP, hs[2].IP)
	stopAtUpload := func(sig syscall.Signal) int {
		cmd := exec.Command(k3sctlBinary(t), flags...)
		cmd.Env = u.env
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill() })
		sc := bufio.NewScanner(stderr)
		var seen []string
		upload := false
		for !upload && sc.Scan() {
			seen = append(seen, sc.Text())
			upload = stepStarted.MatchString(sc.Text()) && strings.HasSuffix(sc.Text(), "→ upload k3s")
		}
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		for sc.Scan() {
			seen = append(seen, sc.Text())
		}
		_ = cmd.Wait()
		t.Logf("apply stopped by %v after:\n%s", sig, strings.Join(seen, "\n"))
		if !upload {
			t.Fatal("the apply ended before it started to upload")
		}
		return cmd.ProcessState.ExitCode()
	}
	if code := stopAtUpload(syscall.SIGINT); code != cli.ExitInterrupted {
		t.Errorf("apply after Ctrl-C: exit %d, want %d", code, cli.ExitInterrupted)
	}
	for _, h := range hs {
		out, _ := h.ExecErr(context.Background(), "ls /run/k3sctl; pgrep -x flock || true")
		if strings.TrimSpace(out) != "lock" {
			t.Errorf("%s: the interrupted run left its lock: %q", h.Name, out)
		}
	}
	stopAtUpload(syscall.SIGKILL)
	waitLocksGone(t, hs)
	u.mustK3sctl(flags...)
	for name, n := range u.waitNodes("locks", 3) {
		if n[2] != v2 {
			t.Errorf("node %s after the run that followed the killed one: %v", name, n)
		}
	}

	// reset and uninstall stop at a host another run holds, before
	// anything is removed from any host.
	c := mustDial(t, piOptions(w, t.TempDir(), hs[2].IP))
	held, err := hostlock.Acquire(context.Background(), hs[2].IP, c, lockHolder("alice", "aaaa"), hostlock.Options{})
	if err != nil {
		t.Fatal(err)
	}
	lockedBy := hs[2].IP + `: locked by alice@laptop (pid ` + fmt.Sprint(os.Getpid()) + `) since `
	r := u.k3sctl("reset", "-f", inv, "--yes")
	if r.code != cli.ExitPreflight || !strings.Contains(r.stderr, lockedBy) || !strings.Contains(r.stderr, "nothing was changed") {
		t.Errorf("reset of a locked host: %s", r)
	}
	r = u.k3sctl(args(sshArgs(w), "uninstall", "--ip", hs[2].IP)...)
	if r.code != cli.ExitPreflight || !strings.Contains(r.stderr, lockedBy) {
		t.Errorf("uninstall of a locked host: %s", r)
	}
	for _, h := range hs {
		h.Exec(t, "test -x /usr/local/bin/k3s")
	}
	if err := held.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	u.mustK3sctl("reset", "-f", inv, "--yes")
	for _, h := range hs {
		if out, _ := h.ExecErr(context.Background(), "test -e /usr/local/bin/k3s && echo left"); strings.TrimSpace(out) == "left" {
			t.Errorf("%s: K3s left after reset", h.Name)
		}
	}
}

// Problems found before the first change: all of them together, with the
// fix, and nothing on any host.
func TestApplyPreflight(t *testing.T) {
	t.Parallel()
	w := world.New(t)
	m := startMirror(t)
	hs := w.Start(t, "pf-1", "pf-2")
	u := newUser(t)
	dir := t.TempDir()
	mirror := []string{"--download-url", m.DownloadURL, "--channel-url", m.ChannelURL}
	noK3s := func() {
		t.Helper()
		for _, h := range hs {
			out, _ := h.ExecErr(context.Background(), "ls -d /usr/local/bin/k3s /etc/rancher/k3s /etc/systemd/system/k3s*.service 2>/dev/null || true")
			if strings.TrimSpace(out) != "" {
				t.Errorf("%s: K3s files appeared: %s", h.Name, out)
			}
		}
	}

	// A user whose sudo needs a password, and none given: a sudo problem
	// with its fix, in plan and apply, and in the JSON error event.
	inv := smallFleet(t, dir, w.Key, v1, "{user: ops}", hs[0].IP, hs[1].IP)
	sudo := hs[0].IP + ": user ops has no passwordless sudo and no sudo password was given\n" +
		"hint: give the sudo password (set K3SCTL_SUDO_PASSWORD, or run on a terminal to be asked), or add a NOPASSWD rule for ops in /etc/sudoers.d on the host"
	for _, cmd := range []string{"plan", "apply"} {
		r := u.k3sctl(args(mirror, cmd, "-f", inv)...)
		if r.code != cli.ExitPreflight || !strings.Contains(r.stderr, sudo) || strings.Contains(r.stdout+r.stderr, "UNREACHABLE") {
			t.Errorf("%s with a sudo that needs a password: %s", cmd, r)
		}
	}
	r := u.k3sctl(args(mirror, "apply", "-f", inv, "-o", "json")...)
	evs := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != cli.ExitPreflight || !strings.Contains(evs[len(evs)-1], `"problems":[{"host":"`+hs[0].IP+`","kind":"sudo","error":"user ops has no passwordless sudo and no sudo password was given"`) {
		t.Errorf("apply -o json: %s", r)
	}
	noK3s()

	// Two hosts of the cluster with one hostname, and a kubeconfig that
	// does not parse: both told, before the first server is installed.
	first := strings.TrimSpace(hs[0].Exec(t, "hostname"))
	second := strings.TrimSpace(hs[1].Exec(t, "hostname"))
	hs[1].Exec(t, "hostname "+first)
	inv = smallFleet(t, dir, w.Key, v1, "", hs[0].IP, hs[1].IP)
	if err := os.MkdirAll(filepath.Dir(u.kubeconfig()), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(u.kubeconfig(), []byte("clusters: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = u.k3sctl(args(mirror, "apply", "-f", inv)...)
	for _, want := range []string{
		"preflight: 2 problems, nothing was changed:\n",
		"kubeconfig " + u.kubeconfig() + ": is not a valid kubeconfig",
		fmt.Sprintf(`%s: hostname %q is also the hostname of %s in cluster "locks"`, hs[1].IP, first, hs[0].IP),
		"hint: give each host its own hostname (hostnamectl set-hostname <name> on " + hs[1].IP + ")",
	} {
		if r.code != cli.ExitPreflight || !strings.Contains(r.stderr, want) {
			t.Errorf("duplicate hostname and broken kubeconfig: want %q in\n%s", want, r)
		}
	}
	noK3s()

	// A private key file others may read is refused, as OpenSSH does.
	data, err := os.ReadFile(w.Key)
	if err != nil {
		t.Fatal(err)
	}
	openKey := filepath.Join(dir, "open_key")
	if err := os.WriteFile(openKey, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(openKey, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(u.kubeconfig()); err != nil {
		t.Fatal(err)
	}
	hs[1].Exec(t, "hostname "+second)
	inv = smallFleet(t, dir, openKey, v1, "", hs[0].IP, hs[1].IP)
	r = u.k3sctl(args(mirror, "apply", "-f", inv)...)
	for _, want := range []string{
		"preflight: 1 problem, nothing was changed:\n",
		"key " + openKey + ": UNPROTECTED PRIVATE KEY FILE: permissions 0644 are too open",
		"hint: chmod 600 " + openKey,
	} {
		if r.code != cli.ExitPreflight || !strings.Contains(r.stderr, want) {
			t.Errorf("open key file: want %q in\n%s", want, r)
		}
	}
	noK3s()
}
