package ui

import (
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/k3sctl/k3sctl/internal/apply"
	"github.com/k3sctl/k3sctl/internal/plan"
)

// TestEventsDocumented keeps docs/events.md in step with the Event type:
// every type has a section, every field a row, every example parses.
func TestEventsDocumented(t *testing.T) {
	raw, err := os.ReadFile("../../docs/events.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)

	for _, typ := range []apply.EventType{
		apply.EventPlan, apply.EventHostQueued, apply.EventStepStart, apply.EventProgress, apply.EventLog,
		apply.EventStepDone, apply.EventStepFailed, apply.EventHostDone, apply.EventHostFailed, apply.EventSummary,
		apply.EventWaveStart, apply.EventWaveDone, apply.EventRolloutStopped, apply.EventPhase,
	} {
		if !strings.Contains(doc, "### `"+string(typ)+"`") {
			t.Errorf("event type %q has no section", typ)
		}
	}
	fields := func(v any) {
		rt := reflect.TypeOf(v)
		for i := range rt.NumField() {
			name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
			if !strings.Contains(doc, "| `"+name+"` |") {
				t.Errorf("field %q of %s has no row", name, rt.Name())
			}
		}
	}
	fields(apply.Event{})
	fields(apply.HostResult{})
	fields(plan.Step{})

	seen := map[string]bool{}
	for _, m := range regexp.MustCompile("(?s)```json\n(.*?)\n```").FindAllStringSubmatch(doc, -1) {
		var line jsonEvent
		if err := json.Unmarshal([]byte(m[1]), &line); err != nil {
			t.Errorf("example does not parse: %v\n%s", err, m[1])
			continue
		}
		if line.Schema != Schema {
			t.Errorf("example has schema %q", line.Schema)
		}
		seen[string(line.Type)] = true
		if line.Step != "" && !slices.Contains(plan.StepKinds(), line.Step) {
			t.Errorf("example names step %q, which is not a step kind", line.Step)
		}
		if line.Type == apply.EventPlan {
			checkPlanExample(t, m[1])
		}
	}
	// The ten apply events, the three of a rollout in waves, phase, and
	// "error", which internal/cli writes when a run ends without a summary.
	if len(seen) != 15 || !seen["error"] {
		t.Errorf("examples cover %d types, want 15 with error: %v", len(seen), seen)
	}
}

// TestStepsDocumented keeps the table of steps in docs/events.md equal to
// plan.StepKinds, in order, with the right answer to "changes the host".
func TestStepsDocumented(t *testing.T) {
	raw, err := os.ReadFile("../../docs/events.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(raw), "\n## Steps\n")
	if !ok {
		t.Fatal("docs/events.md has no Steps section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	row := regexp.MustCompile("(?m)^\\| `([^`]+)` \\| (yes|no) \\|")
	var kinds []plan.StepKind
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		k := plan.StepKind(m[1])
		kinds = append(kinds, k)
		if changes := m[2] == "yes"; changes != k.MayChange() {
			t.Errorf("step %q: documented as changing the host: %v; MayChange: %v", k, changes, k.MayChange())
		}
	}
	if !slices.Equal(kinds, plan.StepKinds()) {
		t.Errorf("documented steps %q, want plan.StepKinds %q", kinds, plan.StepKinds())
	}
}

// checkPlanExample checks the plan event example against the plan's Go
// type: every field known, every step of a known kind.
func checkPlanExample(t *testing.T, line string) {
	t.Helper()
	var ev struct {
		Plan json.RawMessage `json:"plan"`
	}
	if err := json.Unmarshal([]byte(line), &ev); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(string(ev.Plan)))
	dec.DisallowUnknownFields()
	var p plan.Plan
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("plan example does not decode as a plan: %v", err)
	}
	steps := 0
	for _, c := range p.Clusters {
		for _, h := range c.Hosts {
			for _, s := range h.Steps {
				steps++
				if !slices.Contains(plan.StepKinds(), s.Kind) || s.Host != h.Address {
					t.Errorf("plan example: step %+v of host %s", s, h.Address)
				}
			}
		}
	}
	if steps == 0 {
		t.Error("plan example shows no steps")
	}
}
