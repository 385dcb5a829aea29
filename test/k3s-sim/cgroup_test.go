package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestMemoryCgroupOff(t *testing.T) {
	root := t.TempDir()
	t.Setenv("K3S_SIM_ROOT", root)
	if memoryCgroupOff() {
		t.Error("no /proc/cmdline read as off")
	}
	os.MkdirAll(filepath.Join(root, "proc"), 0o755)
	for cmdline, off := range map[string]bool{
		"console=tty1 root=/dev/mmcblk0p2 rootwait\n":                                      false,
		"coherent_pool=1M cgroup_disable=memory console=tty1\n":                            true,
		"cgroup_disable=memory root=/dev/mmcblk0p2 cgroup_memory=1 cgroup_enable=memory\n": false,
	} {
		os.WriteFile(filepath.Join(root, "proc", "cmdline"), []byte(cmdline), 0o644)
		if got := memoryCgroupOff(); got != off {
			t.Errorf("%q: off = %v, want %v", cmdline, got, off)
		}
	}
}
