package ui

import (
	"strings"
	"testing"

	"github.com/k3sctl/k3sctl/internal/apply"
)

// rolloutRun is a rollout that stops after wave 1: its events as
// internal/rollout sends them.
func rolloutRun() []apply.Event {
	host := func(sec float64, typ apply.EventType, cluster, wave, addr string) apply.Event {
		return apply.Event{Time: at(sec), Type: typ, Cluster: cluster, Wave: wave, Host: addr, Role: "server"}
	}
	failed := host(9, apply.EventHostFailed, "lab-01", "1", "10.0.2.1")
	failed.Error = "10.0.2.1: start k3s: exit status 1"
	return []apply.Event{
		{Time: at(0), Type: apply.EventWaveStart, Wave: "canary", Message: "canary: shop-01"},
		host(1, apply.EventHostDone, "shop-01", "canary", "10.0.0.1"),
		{Time: at(1), Type: apply.EventWaveDone, Wave: "canary", Message: "canary: 1 done, 0 failed"},
		{Time: at(1), Type: apply.EventLog, Wave: "1", Message: "pausing 5s before wave 1/2"},
		{Time: at(6), Type: apply.EventWaveStart, Wave: "1", Message: "wave 1/2: shop-02, lab-01"},
		host(8, apply.EventHostDone, "shop-02", "1", "10.0.1.1"),
		failed,
		{Time: at(9), Type: apply.EventWaveDone, Wave: "1", Message: "wave 1/2: 1 done, 1 failed"},
		{Time: at(9), Type: apply.EventRolloutStopped, Wave: "1", Error: "failure budget exceeded: 1 cluster(s) failed, 0 allowed", Message: "not started: lab-02"},
		{Time: at(9), Type: apply.EventSummary, Results: []apply.HostResult{
			{Cluster: "shop-01", Wave: "canary", Host: "10.0.0.1", Role: "server", Action: "upgrade", Status: apply.StatusDone},
			{Cluster: "shop-02", Wave: "1", Host: "10.0.1.1", Role: "server", Action: "upgrade", Status: apply.StatusDone},
			{Cluster: "lab-01", Wave: "1", Host: "10.0.2.1", Role: "server", Action: "install", Status: apply.StatusFailed, Error: "10.0.2.1: start k3s: exit status 1"},
			{Cluster: "lab-02", Wave: "2", Host: "10.0.3.1", Role: "server", Status: apply.StatusNotStarted},
		}},
	}
}

func TestPlainShowsWaves(t *testing.T) {
	got := render(t, ModePlain, rolloutRun())
	for _, want := range []string{
		"15:04:00 ▶ canary: shop-01\n",
		"15:04:01 ■ canary: 1 done, 0 failed\n",
		"15:04:01 | pausing 5s before wave 1/2\n",
		"15:04:06 ▶ wave 1/2: shop-02, lab-01\n",
		"15:04:09 ✗ rollout stopped: failure budget exceeded: 1 cluster(s) failed, 0 allowed\n         not started: lab-02\n",
		"CLUSTER  WAVE    HOST      ROLE    ACTION   STATUS       ELAPSED  ERROR\n",
		"lab-02   2       10.0.3.1  server           not_started  0s\n",
		"4 hosts: 2 done, 1 failed, 1 not_started in 9s\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("plain output lacks %q:\n%s", want, got)
		}
	}
}

func TestLiveViewShowsWaves(t *testing.T) {
	m := testModel(120, 30, 9)
	feed(m, rolloutRun()...)
	got := printed(m)
	for _, want := range []string{
		"▶ canary: shop-01",
		"pausing 5s before wave 1/2",
		"▶ wave 1/2: shop-02, lab-01",
		"■ wave 1/2: 1 done, 1 failed",
		"✗ rollout stopped: failure budget exceeded",
		"not started: lab-02",
		"CLUSTER  WAVE    HOST",
		"not_started",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("live view printed no %q:\n%s", want, got)
		}
	}
}
