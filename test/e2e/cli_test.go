package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	builtPath string
	buildErr  error
)

// k3sctlBinary builds the CLI once per test process.
func k3sctlBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "k3sctl-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtPath = filepath.Join(dir, "k3sctl")
		out, err := exec.Command("go", "build", "-o", builtPath, "github.com/k3sctl/k3sctl/cmd/k3sctl").CombinedOutput()
		if err != nil {
			buildErr = err
			builtPath = string(out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build k3sctl: %v\n%s", buildErr, builtPath)
	}
	return builtPath
}

// user is a workstation: its own HOME (known_hosts, kubeconfig, cache).
type user struct {
	t    *testing.T
	home string
	env  []string
}

func newUser(t *testing.T) *user {
	home := t.TempDir()
	u := &user{t: t, home: home}
	u.env = append(os.Environ(),
		"HOME="+home,
		"KUBECONFIG="+filepath.Join(home, ".kube", "config"),
		"XDG_CACHE_HOME="+filepath.Join(home, ".cache"),
		"SSH_AUTH_SOCK=",
		"CI=true", // plain output, no terminal view
	)
	return u
}

func (u *user) kubeconfig() string { return filepath.Join(u.home, ".kube", "config") }

type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return "exit " + strconv.Itoa(r.code) + "\n--- stdout\n" + r.stdout + "\n--- stderr\n" + r.stderr
}

// k3sctl runs the CLI as a user would.
func (u *user) k3sctl(args ...string) result {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, k3sctlBinary(u.t), args...)
	cmd.Env = u.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			r.code = ee.ExitCode()
		} else {
			u.t.Fatalf("run k3sctl %v: %v", args, err)
		}
	}
	u.t.Logf("$ k3sctl %s\n%s", strings.Join(args, " "), r)
	return r
}

func (u *user) mustK3sctl(args ...string) result {
	u.t.Helper()
	r := u.k3sctl(args...)
	if r.code != 0 {
		u.t.Fatalf("k3sctl %s failed:\n%s", strings.Join(args, " "), r)
	}
	return r
}

// kubectl runs the real kubectl with the user's kubeconfig.
func (u *user) kubectl(args ...string) (string, error) {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kubectl", append([]string{"--kubeconfig", u.kubeconfig(), "--request-timeout", "10s"}, args...)...)
	cmd.Env = u.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// nodes returns "name status roles version" for each node kubectl lists.
func (u *user) nodes(context string) (map[string][]string, error) {
	out, err := u.kubectl("--context", context, "get", "nodes", "--no-headers")
	if err != nil {
		return nil, &kubectlError{out}
	}
	m := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 5 {
			m[f[0]] = []string{f[1], f[2], f[4]}
		}
	}
	return m, nil
}

type kubectlError struct{ out string }

func (e *kubectlError) Error() string { return "kubectl: " + e.out }

// waitNodes waits until kubectl lists want Ready nodes.
func (u *user) waitNodes(context string, want int) map[string][]string {
	u.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	var last map[string][]string
	var lastErr error
	for time.Now().Before(deadline) {
		last, lastErr = u.nodes(context)
		ready := 0
		for _, n := range last {
			if n[0] == "Ready" {
				ready++
			}
		}
		if lastErr == nil && ready == want && len(last) == want {
			return last
		}
		time.Sleep(2 * time.Second)
	}
	u.t.Fatalf("kubectl --context %s: want %d Ready nodes, have %v (err %v)", context, want, last, lastErr)
	return nil
}
