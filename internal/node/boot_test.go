package node

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func runFixBoot(t *testing.T, files ...string) (string, int) {
	t.Helper()
	out, err := exec.Command("sh", "-c", fixBootScript(files...)).CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

func TestFixBootScript(t *testing.T) {
	dir := t.TempDir()
	firmware, old := filepath.Join(dir, "firmware", "cmdline.txt"), filepath.Join(dir, "cmdline.txt")
	os.MkdirAll(filepath.Dir(firmware), 0o755)
	line := "console=serial0,115200 console=tty1 root=PARTUUID=2c5e-02 rootfstype=ext4 fsck.repair=yes rootwait"

	// Only the older layout: that file is changed, every word kept.
	os.WriteFile(old, []byte(line+"\n"), 0o644)
	out, code := runFixBoot(t, firmware, old)
	if code != 0 || strings.TrimSpace(out) != "changed "+old {
		t.Fatalf("exit %d: %s", code, out)
	}
	got, _ := os.ReadFile(old)
	if string(got) != line+" cgroup_memory=1 cgroup_enable=memory\n" {
		t.Errorf("cmdline.txt = %q", got)
	}
	// Again: nothing to do.
	if out, code := runFixBoot(t, firmware, old); code != 0 || out != "" {
		t.Errorf("second run: exit %d: %q", code, out)
	}

	// The firmware file wins; a word already there is not repeated; a
	// second line (which the firmware ignores) is kept.
	os.WriteFile(firmware, []byte("root=/dev/mmcblk0p2 cgroup_enable=memory rootwait\n# note\n"), 0o644)
	out, code = runFixBoot(t, firmware, old)
	if code != 0 || strings.TrimSpace(out) != "changed "+firmware {
		t.Fatalf("exit %d: %s", code, out)
	}
	got, _ = os.ReadFile(firmware)
	if string(got) != "root=/dev/mmcblk0p2 cgroup_enable=memory rootwait cgroup_memory=1\n# note\n" {
		t.Errorf("firmware cmdline.txt = %q", got)
	}
	if entries, _ := os.ReadDir(filepath.Dir(firmware)); len(entries) != 1 {
		t.Errorf("left behind: %v", entries)
	}

	// Neither file: a clear error.
	out, code = runFixBoot(t, filepath.Join(dir, "none"), filepath.Join(dir, "nothing"))
	if code != 66 || !strings.Contains(out, "no boot command line file") || !strings.Contains(out, "cgroup_memory=1 cgroup_enable=memory") {
		t.Errorf("no file: exit %d: %s", code, out)
	}
}

func TestKernelMemoryCgroup(t *testing.T) {
	for cmdline, want := range map[string]bool{
		"":                                       true,
		"console=tty1 root=/dev/sda1":            true,
		"coherent_pool=1M cgroup_disable=memory": false,
		"cgroup_disable=cpuset,memory quiet":     false,
		"cgroup_disable=memory root=/dev/mmcblk0p2 cgroup_memory=1 cgroup_enable=memory": true,
		"cgroup_enable=memory cgroup_disable=memory":                                     false,
		"cgroup_disable=cpuset": true,
	} {
		if got := KernelMemoryCgroup(cmdline); got != want {
			t.Errorf("%q: %v, want %v", cmdline, got, want)
		}
	}
	kv := map[string]string{"cgroup2": "cpuset cpu io memory pids", "cmdline": "cgroup_disable=memory"}
	if memoryCgroup(kv) {
		t.Error("kernel command line with cgroup_disable=memory read as on")
	}
	kv["cmdline"] = "quiet"
	if !memoryCgroup(kv) {
		t.Error("v2 controllers with memory read as off")
	}
	if memoryCgroup(map[string]string{"cgroupmem": "0", "cgroup2": "memory"}) {
		t.Error("v1 enabled column 0 read as on")
	}
}
