package e2e

import (
	"os"
	"path/filepath"
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

	// The disk fills up after the check (another writer): the SFTP
	// server's bare "Failure" becomes the same message. A df that reports
	// room once stands for the other writer.
	fakeDF := filepath.Join(t.TempDir(), "df")
	script := `#!/bin/sh
if [ "$*" = "-P -k -- /usr/local/bin" ] && [ ! -e /run/df-once ]; then
  : > /run/df-once
  echo "Filesystem 1024-blocks Used Available Capacity Mounted on"
  echo "tmpfs 20480 0 20480 0% /usr/local/bin"
  exit 0
fi
exec /usr/bin/df "$@"
`
	if err := os.WriteFile(fakeDF, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	h.CopyIn(t, fakeDF, "/usr/local/sbin/df", 0o755)
	r = u.k3sctl(args(common, "install", "--ip", h.IP, "--k3s-version", v1)...)
	h.Exec(t, "rm -f /usr/local/sbin/df /run/df-once")
	if r.code == 0 {
		t.Fatalf("install on a disk that filled up succeeded:\n%s", r)
	}
	for _, want := range []string{"not enough space on the file system of /usr/local/bin", "MiB needed", "filled up during the upload", "free at least"} {
		if !strings.Contains(r.stdout+r.stderr, want) {
			t.Errorf("output after an SFTP failure lacks %q:\n%s", want, r)
		}
	}
	if l := leftovers(t, h); l != "" {
		t.Errorf("temporary files left behind after the SFTP failure:\n%s", l)
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
