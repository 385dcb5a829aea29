package rollout

import (
	"context"
	"slices"
	"testing"

	"github.com/k3sctl/k3sctl/internal/apply"
)

// Apply reports each phase once: those of Prepare before the plan, execute
// just before the summary; each step's time is on its step_done.
func TestPhaseEvents(t *testing.T) {
	w := newFakeHosts()
	f := &fakeFetcher{dir: t.TempDir()}
	rec := &apply.Recorder{}
	o := options(w, f, twoClusters())
	o.Sink = rec
	p, err := Prepare(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if len(rec.Events()) != 0 {
		t.Fatalf("Prepare sent %d events; a dry run must print only the plan", len(rec.Events()))
	}
	if _, err := p.Apply(context.Background()); err != nil {
		t.Fatal(err)
	}
	var order []string
	steps := 0
	for _, e := range rec.Events() {
		switch e.Type {
		case apply.EventPhase:
			if e.Elapsed < 0 {
				t.Errorf("phase %s took %v", e.Phase, e.Elapsed)
			}
			order = append(order, e.Phase)
		case apply.EventPlan, apply.EventSummary:
			order = append(order, string(e.Type))
		case apply.EventStepDone:
			steps++
			if e.Elapsed < 0 {
				t.Errorf("%s %s: step_done took %v", e.Host, e.Step, e.Elapsed)
			}
		}
	}
	want := []string{PhaseConnect, PhaseFacts, PhaseVersions, PhaseTokens, PhaseBinaries, PhasePlan, "plan", PhaseExecute, "summary"}
	if !slices.Equal(order, want) {
		t.Errorf("order %v, want %v", order, want)
	}
	if steps == 0 {
		t.Error("no step_done")
	}
}
