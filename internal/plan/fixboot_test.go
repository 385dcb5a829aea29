package plan

import (
	"strings"
	"testing"
)

func TestMemoryCgroupRefusedOrFixed(t *testing.T) {
	const v = "v1.31.4+k3s1"
	spec := installSpec(v)
	f := fresh()
	f.MemoryCgroup, f.BootCmdline = false, "/boot/firmware/cmdline.txt"
	build := func() HostPlan {
		p, err := Build(Input{Spec: spec, Facts: map[string]*HostFacts{"192.168.1.50": f}, Binaries: bins(v)})
		if err != nil {
			t.Fatal(err)
		}
		return p.Clusters[0].Hosts[0]
	}
	h := build()
	if h.Action != ActionRefuse || len(h.Steps) != 0 {
		t.Fatalf("without the fix: %s %v", h.Action, h.Steps)
	}
	for _, want := range []string{"memory cgroup is disabled", `"failed to find memory cgroup"`, "cgroup_memory=1 cgroup_enable=memory",
		"/boot/firmware/cmdline.txt", "reboot", "fixBoot: true", "--fix-cgroups"} {
		if !strings.Contains(h.Reasons[0], want) {
			t.Errorf("refusal %q lacks %q", h.Reasons[0], want)
		}
	}

	for _, allow := range []func(){
		func() { spec.Clusters[0].FixBoot = true },
		func() { spec.Clusters[0].FixBoot = false; spec.Clusters[0].Servers[0].FixBoot = true },
	} {
		allow()
		h = build()
		if h.Action != ActionInstall || !h.FixBoot || len(h.Steps) == 0 || h.Steps[0].Kind != StepFixBoot || !h.Steps[0].Changes {
			t.Errorf("with the fix: %s fixBoot=%v steps %v", h.Action, h.FixBoot, kinds(h.Steps))
		}
	}

	// The memory cgroup on: no step, whatever the setting.
	f.MemoryCgroup = true
	if h = build(); h.FixBoot || kinds(h.Steps)[0] == StepFixBoot {
		t.Errorf("memory cgroup on: %v", kinds(h.Steps))
	}
}
