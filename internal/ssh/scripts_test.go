package ssh

import (
	"os/exec"
	"strings"
	"testing"
)

func TestScriptsAreValidShell(t *testing.T) {
	for _, sh := range []string{"/bin/sh", "dash", "bash", "busybox"} {
		path, err := exec.LookPath(strings.Fields(sh)[0])
		if err != nil {
			continue
		}
		args := []string{"-n", "-c"}
		if sh == "busybox" {
			args = []string{"sh", "-n", "-c"}
		}
		for _, s := range []string{uploadCheckScript("/x y", "/.k3sctl-1-x y.tmp", "ab", 0o644, "root:root", 1<<20),
			uploadFinishScript("/tmp/t", "/.k3sctl-1-x.tmp", "/x", "ab", 0o755, "a:b"), writeFileScript("/x'y", "ab", 0o600), sudoWrapper, sudoDetectCmd} {
			if out, err := exec.Command(path, append(args, s)...).CombinedOutput(); err != nil {
				t.Errorf("%s -n: %v: %s\n%s", sh, err, out, s)
			}
		}
	}
}
