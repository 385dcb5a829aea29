package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/k3sctl/k3sctl/internal/apply"
	"github.com/k3sctl/k3sctl/internal/plan"
)

func TestTracePrintsPhasesAndStepsPerHost(t *testing.T) {
	var passed []apply.EventType
	tr := newTraceSink(apply.SinkFunc(func(e apply.Event) { passed = append(passed, e.Type) }))
	events := []apply.Event{
		{Type: apply.EventPhase, Phase: "connect", Elapsed: 120 * time.Millisecond},
		{Type: apply.EventPhase, Phase: "facts", Elapsed: 800 * time.Millisecond},
		{Type: apply.EventStepStart, Cluster: "home", Host: "10.0.0.10", Role: "server", Step: plan.StepUploadBinary},
		{Type: apply.EventStepDone, Cluster: "home", Host: "10.0.0.10", Role: "server", Step: plan.StepUploadBinary, Elapsed: 1500 * time.Millisecond},
		{Type: apply.EventStepDone, Cluster: "home", Host: "10.0.0.11", Role: "agent", Step: plan.StepUploadBinary, Elapsed: 1250 * time.Millisecond},
		{Type: apply.EventStepDone, Cluster: "home", Host: "10.0.0.10", Role: "server", Step: plan.StepWaitReady, Elapsed: 3 * time.Second},
		{Type: apply.EventStepFailed, Cluster: "home", Host: "10.0.0.11", Role: "agent", Step: plan.StepStartAgent, Elapsed: 40 * time.Millisecond},
		{Type: apply.EventPhase, Phase: "execute", Elapsed: 5 * time.Second},
		{Type: apply.EventSummary, Results: []apply.HostResult{
			{Cluster: "home", Host: "10.0.0.10", Role: "server", Elapsed: 4600 * time.Millisecond},
			{Cluster: "home", Host: "10.0.0.11", Role: "agent", Elapsed: 1300 * time.Millisecond},
		}},
	}
	for _, e := range events {
		tr.Event(e)
	}
	if len(passed) != len(events) {
		t.Errorf("passed on %d of %d events", len(passed), len(events))
	}
	var out bytes.Buffer
	tr.print(&out)
	got := out.String()
	for _, want := range []string{
		"Trace: phases",
		"  connect  0.12",
		"  facts    0.80",
		"  execute  5.00",
		"HOST",
		"UPLOAD K3S",
		"WAIT FOR READY",
		"START K3S-AGENT",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("trace lacks %q:\n%s", want, got)
		}
	}
	lines := strings.Split(got, "\n")
	row := func(host string) []string {
		for _, l := range lines {
			if f := strings.Fields(l); len(f) > 1 && f[1] == host {
				return f
			}
		}
		t.Fatalf("no row for %s:\n%s", host, got)
		return nil
	}
	// Columns: cluster host role, upload, start k3s-agent, wait, total.
	if s := strings.Join(row("10.0.0.10"), " "); s != "home 10.0.0.10 server 1.50 - 3.00 4.60" {
		t.Errorf("server row %q", s)
	}
	if s := strings.Join(row("10.0.0.11"), " "); s != "home 10.0.0.11 agent 1.25 0.04 - 1.30" {
		t.Errorf("agent row %q", s)
	}
}
