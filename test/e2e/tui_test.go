package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/k3sctl/k3sctl/test/e2e/world"
)

// TestLiveViewInTmux runs apply in a real terminal (tmux) and reads the
// screen the way a person would see it.
func TestLiveViewInTmux(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("tmux is missing (scripts/testworld-deps.sh installs it)")
		}
		t.Skip("tmux is missing: apt-get install tmux")
	}
	w := world.New(t)
	m := startMirror(t)
	hs := w.Start(t, "v1", "v2", "v3")
	u := newUser(t)
	inv := filepath.Join(t.TempDir(), "lab.yaml")
	content := "apiVersion: k3sctl.io/v1alpha1\nkind: Inventory\ndefaults:\n  ssh:\n    user: pi\n    keyFile: " + w.Key +
		"\nclusters:\n  - name: lab\n    servers: [" + hs[0].IP + "]\n    agents: [" + hs[1].IP + ", " + hs[2].IP + "]\n"
	if err := os.WriteFile(inv, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}

	session := "k3sctl-e2e-" + filepath.Base(t.TempDir())
	var env []string
	for _, e := range u.env {
		if !strings.HasPrefix(e, "CI=") {
			env = append(env, e)
		}
	}
	script := filepath.Join(t.TempDir(), "run.sh")
	body := "#!/bin/sh\n"
	for _, e := range env {
		k, v, _ := strings.Cut(e, "=")
		if strings.ContainsAny(k, " -.") || k == "" {
			continue
		}
		body += "export " + k + "='" + strings.ReplaceAll(v, "'", `'\''`) + "'\n"
	}
	body += "unset CI\n" + k3sctlBinary(t) + " apply -f " + inv + " --download-url " + m.DownloadURL +
		" --channel-url " + m.ChannelURL + " --timeout 90s\necho EXIT=$?\nsleep 600\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("tmux", "new-session", "-d", "-s", session, "-x", "110", "-y", "32", script).CombinedOutput(); err != nil {
		t.Fatalf("tmux: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("tmux", "kill-session", "-t", session).Run() })

	capture := func() string {
		out, _ := exec.Command("tmux", "capture-pane", "-p", "-J", "-S", "-200", "-t", session).Output()
		return string(out)
	}
	var screen, live string
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		screen = capture()
		if live == "" && strings.Contains(screen, "running") && strings.Contains(screen, "ctrl+c cancels") {
			live = screen
		}
		if strings.Contains(screen, "EXIT=") {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Logf("live view during the run:\n%s", live)
	t.Logf("screen at the end:\n%s", screen)
	if !strings.Contains(screen, "EXIT=0") {
		t.Fatalf("apply in tmux did not exit 0:\n%s", screen)
	}
	if live == "" {
		t.Error("never saw the live view (running hosts with the ctrl+c line)")
	}
	for _, h := range hs {
		if !strings.Contains(screen, "✓ lab/"+h.IP) {
			t.Errorf("screen lacks the finished row of %s", h.IP)
		}
	}
	if !strings.Contains(screen, "3 hosts: 3 done") || !strings.Contains(screen, "CLUSTER") {
		t.Errorf("screen lacks the summary table")
	}
	if strings.Contains(screen, "\x1b") {
		t.Error("raw escape codes on the screen")
	}
}
