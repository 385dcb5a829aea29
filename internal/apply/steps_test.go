package apply

import (
	"slices"
	"strings"
	"testing"

	"github.com/k3sctl/k3sctl/internal/plan"
)

// stepsDone is every host's step_done events, by address, in order.
func stepsDone(events []Event) map[string][]Event {
	out := map[string][]Event{}
	for _, e := range events {
		if e.Type == EventStepDone {
			out[e.Host] = append(out[e.Host], e)
		}
	}
	return out
}

// checkRunMatchesPlan checks that every host ran exactly its planned steps,
// in order, and that each reported the change the plan expected.
func checkRunMatchesPlan(t *testing.T, p *plan.Plan, events []Event) {
	t.Helper()
	done := stepsDone(events)
	for _, c := range p.Clusters {
		for _, h := range c.Hosts {
			var want, got []string
			for _, s := range h.Steps {
				want = append(want, string(s.Kind)+" "+changeWord(s.Changes))
			}
			for _, e := range done[h.Address] {
				got = append(got, string(e.Step)+" "+changeWord(e.Changed))
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s (%s): steps done\n  %s\nplanned\n  %s", h.Address, h.Action, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
		}
	}
}

func changeWord(b bool) string {
	if b {
		return "changed"
	}
	return "unchanged"
}

func TestFreshInstallReportsEveryChange(t *testing.T) {
	f := newTestFleet(nil)
	p := f.plan(t)
	res, events, err := f.run(t, p)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	checkRunMatchesPlan(t, p, events)
	for _, c := range p.Clusters {
		for _, h := range c.Hosts {
			var kinds []plan.StepKind
			for _, s := range h.Steps {
				kinds = append(kinds, s.Kind)
			}
			for _, k := range []plan.StepKind{plan.StepUploadBinary, plan.StepWriteConfig, plan.StartStep(h.Role), plan.StepWaitReady} {
				if !slices.Contains(kinds, k) {
					t.Errorf("%s: fresh install plans no %q: %v", h.Address, k, kinds)
				}
			}
		}
	}
	for _, e := range events {
		if e.Type == EventStepDone && e.Step.MayChange() && !e.Changed {
			t.Errorf("%s: %q reported no change on a fresh host", e.Host, e.Step)
		}
	}
	for _, r := range res {
		if r.Status != StatusDone || !r.Changed {
			t.Errorf("%s: status %s changed %v, want done and changed", r.Host, r.Status, r.Changed)
		}
	}
}

func TestRerunChangesNothing(t *testing.T) {
	f := newTestFleet(nil)
	if _, _, err := f.run(t, f.plan(t)); err != nil {
		t.Fatalf("first run: %v", err)
	}
	starts := len(f.log.lines)
	p := f.plan(t)
	if p.Changes() {
		t.Errorf("plan after a run still changes something:\n%s", printed(p))
	}
	for _, c := range p.Clusters {
		for _, h := range c.Hosts {
			if plan.StepsChange(h.Steps) {
				t.Errorf("%s: a step of the re-run plan changes the host: %+v", h.Address, h.Steps)
			}
		}
	}
	res, events, err := f.run(t, p)
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	checkRunMatchesPlan(t, p, events)
	for _, e := range events {
		if (e.Type == EventStepDone || e.Type == EventHostDone) && e.Changed {
			t.Errorf("%s: %s %q reported a change on a re-run", e.Host, e.Type, e.Step)
		}
	}
	for _, r := range res {
		if r.Status != StatusUnchanged || r.Changed {
			t.Errorf("%s: status %s changed %v, want unchanged", r.Host, r.Status, r.Changed)
		}
	}
	if again := f.log.lines[starts:]; len(again) > 0 {
		t.Errorf("a re-run started services: %v", again)
	}
}

func TestReconfigureAndStartChangeOnlyThoseHosts(t *testing.T) {
	f := newTestFleet(nil)
	if _, _, err := f.run(t, f.plan(t)); err != nil {
		t.Fatalf("first run: %v", err)
	}
	// A label change alone goes through the API (labels_test.go); any
	// other config.yaml key restarts.
	f.spec.Clusters[0].Agents[0].Config = map[string]any{"node-ip": "10.0.0.21"} // a1
	f.conns["t2"].running = false
	p := f.plan(t)
	for _, c := range p.Clusters {
		for _, h := range c.Hosts {
			want := plan.ActionNothing
			switch h.Address {
			case "a1":
				want = plan.ActionReconfigure
			case "t2":
				want = plan.ActionStart
			}
			if h.Action != want {
				t.Errorf("%s: action %s, want %s", h.Address, h.Action, want)
			}
		}
	}
	res, events, err := f.run(t, p)
	if err != nil {
		t.Fatalf("run: %v\n%v", err, res)
	}
	checkRunMatchesPlan(t, p, events)
	done := stepsDone(events)
	var a1 []string
	for _, e := range done["a1"] {
		if e.Changed {
			a1 = append(a1, string(e.Step))
		}
	}
	// a1's node is Ready in a multi-node cluster: drained before the
	// restart, uncordoned after.
	if want := []string{"write config", "drain node", "start k3s-agent", "uncordon"}; !slices.Equal(a1, want) {
		t.Errorf("a1 changed %v, want %v", a1, want)
	}
	for _, r := range res {
		wantChanged := r.Host == "a1" || r.Host == "t2"
		if r.Changed != wantChanged {
			t.Errorf("%s: changed %v, want %v", r.Host, r.Changed, wantChanged)
		}
	}
}

func printed(p *plan.Plan) string {
	var b strings.Builder
	plan.Print(&b, p)
	return b.String()
}
