package e2e

import (
	"context"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/k3sctl/k3sctl/test/e2e/world"
)

// powerCycle plays the power supply of a host that reboots itself: a test
// host's systemd stops the container on reboot, and this starts it again.
// It returns how many times it did, once stop is called.
func powerCycle(t *testing.T, h *world.Host) (stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var starts atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			out, err := exec.CommandContext(ctx, "docker", "inspect", "-f", "{{.State.Running}}", h.Container).Output()
			if err == nil && strings.TrimSpace(string(out)) == "false" {
				if exec.CommandContext(ctx, "docker", "start", h.Container).Run() == nil {
					starts.Add(1)
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(300 * time.Millisecond):
			}
		}
	}()
	return func() int {
		cancel()
		<-done
		return int(starts.Load())
	}
}

func TestMemoryCgroupRefusedThenFixedWithReboot(t *testing.T) {
	t.Parallel()
	w := world.New(t)
	m := startMirror(t)
	h := w.NewHost(t, "rpi")
	u := newUser(t)
	common := append(sshArgs(w), "--download-url", m.DownloadURL, "--channel-url", m.ChannelURL, "--timeout", "120s")

	// A Raspberry Pi as its firmware boots it: the kernel command line
	// turns the memory cgroup off. The host's kernel is shared, so its
	// /proc/cmdline is replaced until the next boot.
	const line = "console=serial0,115200 console=tty1 root=PARTUUID=2c5e-02 rootfstype=ext4 fsck.repair=yes rootwait"
	h.Exec(t, "mkdir -p /boot/firmware && echo '"+line+"' > /boot/firmware/cmdline.txt && "+
		"echo \"coherent_pool=1M cgroup_disable=memory $(cat /boot/firmware/cmdline.txt)\" > /run/pi-cmdline && mount --bind /run/pi-cmdline /proc/cmdline")

	r := u.k3sctl(args(common, "install", "--ip", h.IP, "--context", "pi", "--k3s-version", v1)...)
	if r.code == 0 {
		t.Fatalf("install without the memory cgroup succeeded:\n%s", r)
	}
	for _, want := range []string{"memory cgroup is disabled", "failed to find memory cgroup", "cgroup_memory=1 cgroup_enable=memory",
		"/boot/firmware/cmdline.txt", "--fix-cgroups", "fixBoot: true"} {
		if !strings.Contains(r.stdout+r.stderr, want) {
			t.Errorf("refusal lacks %q:\n%s", want, r)
		}
	}
	if out, _ := h.ExecErr(t.Context(), "test -e /usr/local/bin/k3s && echo present"); strings.Contains(out, "present") {
		t.Error("the refused host got a k3s binary")
	}

	stop := powerCycle(t, h)
	r = u.mustK3sctl(args(common, "install", "--ip", h.IP, "--context", "pi", "--k3s-version", v1, "--fix-cgroups")...)
	if n := stop(); n != 1 {
		t.Errorf("the host was started %d times by its power supply, want one reboot", n)
	}
	for _, want := range []string{"fix boot", "added cgroup_memory=1 cgroup_enable=memory to /boot/firmware/cmdline.txt", "rebooting", "memory cgroup on"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("install --fix-cgroups output lacks %q:\n%s", want, r)
		}
	}
	if got := strings.TrimSpace(h.Exec(t, "cat /boot/firmware/cmdline.txt")); got != line+" cgroup_memory=1 cgroup_enable=memory" {
		t.Errorf("cmdline.txt = %q", got)
	}
	if got := h.Exec(t, "cat /proc/cmdline"); strings.Contains(got, "cgroup_disable=memory") {
		t.Errorf("the host did not reboot: /proc/cmdline %q", got)
	}
	u.waitNodes("pi", 1)

	// Again: nothing to do, no reboot, the line as it was.
	stop = powerCycle(t, h)
	r = u.mustK3sctl(args(common, "install", "--ip", h.IP, "--context", "pi", "--k3s-version", v1, "--fix-cgroups")...)
	if n := stop(); n != 0 || !strings.Contains(r.stderr, "No changes") {
		t.Errorf("second run: %d reboots:\n%s", n, r)
	}
	if got := strings.TrimSpace(h.Exec(t, "cat /boot/firmware/cmdline.txt")); got != line+" cgroup_memory=1 cgroup_enable=memory" {
		t.Errorf("cmdline.txt after the second run = %q", got)
	}
}
