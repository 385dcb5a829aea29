package main

import (
	"os"
	"slices"
	"strings"
)

// memoryCgroupOff tells whether the kernel runs without the memory cgroup,
// which K3s refuses to run without. A kernel booted with
// cgroup_disable=memory (what Raspberry Pi firmware passes) has it off
// unless a later cgroup_enable=memory turns it on again; the simulator
// reads that decision from /proc/cmdline, since the kernel under a test
// host is shared and cannot be booted with other parameters.
func memoryCgroupOff() bool {
	data, err := os.ReadFile(hostPath("/proc/cmdline"))
	if err != nil {
		return false
	}
	off := false
	for _, w := range strings.Fields(string(data)) {
		k, v, ok := strings.Cut(w, "=")
		if !ok || !slices.Contains(strings.Split(v, ","), "memory") {
			continue
		}
		switch k {
		case "cgroup_disable":
			off = true
		case "cgroup_enable":
			off = false
		}
	}
	return off
}
