package e2e

import (
	"strings"
	"testing"

	"github.com/k3sctl/k3sctl/test/e2e/world"
)

// leftovers lists k3sctl's temporary files anywhere on the host's own file
// systems and the small disk.
func leftovers(t *testing.T, h *world.Host) string {
	t.Helper()
	return strings.TrimSpace(h.Exec(t, `find / \( -path /proc -o -path /sys -o -path /dev \) -prune -o -type f \( -name '.k3sctl-*' -o -name '*.k3sctl-*' -o -name 'k3sctl-upload-*' \) -print 2>/dev/null || true`))
}

func TestFullDiskFailsBeforeTheUpload(t *testing.T) {
	t.Parallel()
	w := world.New(t)
	m := startMirror(t)
	h := w.NewHost(t, "full", world.WithSmallDisk("/usr/local/bin", 20))
	u := newUser(t)
	common := append(sshArgs(w), "--download-url", m.DownloadURL, "--channel-url", m.ChannelURL, "--timeout", "90s")
	h.FillDisk(t, "/usr/local/bin", 5)

	r := u.k3sctl(args(common, "install", "--ip", h.IP, "--k3s-version", v1)...)
	if r.code == 0 {
		t.Fatalf("install on a full disk succeeded:\n%s", r)
	}
	out := r.stdout + r.stderr
	for _, want := range []string{h.IP, "not enough space on the file system of /usr/local/bin", "MiB free", "MiB needed", "free at least"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, r)
		}
	}
	if strings.Contains(out, "Failure") {
		t.Errorf("the SFTP failure reached the user instead of the free-space message:\n%s", r)
	}
	if l := leftovers(t, h); l != "" {
		t.Errorf("temporary files left behind:\n%s", l)
	}
	if got := strings.TrimSpace(h.Exec(t, "ls -A /usr/local/bin")); got != ".testworld-fill" {
		t.Errorf("/usr/local/bin holds %q, want only the fill file", got)
	}

	// An earlier interrupted run's files are removed when the next run starts.
	h.Exec(t, "rm /usr/local/bin/.testworld-fill && head -c 1048576 /dev/zero > /usr/local/bin/.k3sctl-0a1b2c3d-k3s.tmp && head -c 1048576 /dev/zero > /tmp/k3sctl-upload-0a1b2c3d4e5f")
	r = u.mustK3sctl(args(common, "install", "--ip", h.IP, "--context", "edge", "--k3s-version", v1)...)
	for _, want := range []string{"removed /usr/local/bin/.k3sctl-0a1b2c3d-k3s.tmp", "removed /tmp/k3sctl-upload-0a1b2c3d4e5f"} {
		if !strings.Contains(r.stdout+r.stderr, want) {
			t.Errorf("output lacks %q:\n%s", want, r)
		}
	}
	if l := leftovers(t, h); l != "" {
		t.Errorf("temporary files left behind after the install:\n%s", l)
	}
	u.waitNodes("edge", 1)
}
