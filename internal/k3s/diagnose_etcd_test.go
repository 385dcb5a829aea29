package k3s

import (
	"strings"
	"testing"
)

func TestDiagnoseEtcdQuorum(t *testing.T) {
	// As the simulator and K3s log them; the journal's condensed repeats
	// end in " (×N)".
	lines := []string{
		`time="2026-12-02T10:00:00Z" level=warning msg="Failed to reach etcd member s2-1a2b3c4d at https://172.28.0.12:2380: connection refused"`,
		`time="2026-12-02T10:00:01Z" level=warning msg="Failed to reach etcd member s3-5e6f7a8b at https://172.28.0.13:2380: i/o timeout" (×4)`,
		`time="2026-12-02T10:00:02Z" level=error msg="etcd cluster has lost quorum: etcdserver: no leader"`,
		`time="2026-12-02T10:00:03Z" level=error msg="Get \"https://127.0.0.1:6443/api\": dial tcp 127.0.0.1:6443: connect: connection refused"`,
	}
	got := DiagnoseLog(lines)
	for _, w := range []string{
		"cannot reach a quorum", "more than half", "2379-2380/tcp", "systemctl status k3s", "cluster-reset",
		"s2-1a2b3c4d at https://172.28.0.12:2380 (connection refused)",
		"s3-5e6f7a8b at https://172.28.0.13:2380 (i/o timeout)",
	} {
		if !strings.Contains(got, w) {
			t.Errorf("hint %q lacks %q", got, w)
		}
	}
	if strings.Contains(got, "cannot reach 127.0.0.1:6443") {
		t.Errorf("the API symptom won over the quorum cause: %q", got)
	}

	// K3s's own etcd client errors, without member notes.
	for _, l := range []string{
		`level=error msg="Failed to get etcd status: etcdserver: request timed out"`,
		`E1202 10:00:00 controller.go:1 "Unhandled Error" err="etcdserver: no leader"`,
	} {
		got := DiagnoseLog([]string{l})
		if !strings.Contains(got, "cannot reach a quorum") || strings.Contains(got, "Unreachable:") {
			t.Errorf("%s: hint %q", l, got)
		}
	}

	// A wrong token still says so, even when etcd complains too.
	got = DiagnoseLog([]string{
		`level=error msg="etcdserver: request timed out"`,
		`level=fatal msg="starting kubernetes: preparing server: bootstrap data already found and encrypted with different token"`,
	})
	if !strings.Contains(got, "original token") {
		t.Errorf("token cause lost to etcd: %q", got)
	}
}

func TestDiagnoseMemoryCgroup(t *testing.T) {
	got := DiagnoseLog([]string{`time="2026-12-02T10:00:00Z" level=fatal msg="Error: failed to find memory cgroup (v2)"`})
	for _, w := range []string{"memory cgroup", "cgroup_memory=1 cgroup_enable=memory", "/boot/firmware/cmdline.txt", "--fix-cgroups"} {
		if !strings.Contains(got, w) {
			t.Errorf("hint %q lacks %q", got, w)
		}
	}
}
