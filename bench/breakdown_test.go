package bench

import (
	"strings"
	"testing"
	"time"
)

func TestParseBreakdownAndTable(t *testing.T) {
	events := `gathering facts
{"schema":"k3sctl.events/v1","type":"phase","phase":"connect","elapsedNs":100000000}
{"schema":"k3sctl.events/v1","type":"phase","phase":"facts","elapsedNs":700000000}
{"schema":"k3sctl.events/v1","type":"plan","plan":{}}
{"schema":"k3sctl.events/v1","type":"step_done","cluster":"c","host":"a","step":"upload k3s","elapsedNs":2000000000}
{"schema":"k3sctl.events/v1","type":"step_done","cluster":"c","host":"b","step":"upload k3s","elapsedNs":3000000000}
{"schema":"k3sctl.events/v1","type":"step_failed","cluster":"c","host":"b","step":"wait for ready","elapsedNs":500000000}
{"schema":"k3sctl.events/v1","type":"phase","phase":"execute","elapsedNs":6000000000}
{"schema":"k3sctl.events/v1","type":"step_done","cluster":"c","host":"a","step":"kubeconfig"}
not json {
`
	b := ParseBreakdown(strings.NewReader(events))
	want := Breakdown{
		Phases: []Timed{{"connect", 100 * time.Millisecond}, {"facts", 700 * time.Millisecond}, {"execute", 6 * time.Second}},
		Steps:  []Timed{{"upload k3s", 3 * time.Second}, {"wait for ready", 500 * time.Millisecond}},
	}
	if len(b.Phases) != len(want.Phases) || len(b.Steps) != len(want.Steps) {
		t.Fatalf("breakdown %+v, want %+v", b, want)
	}
	for i := range want.Phases {
		if b.Phases[i] != want.Phases[i] {
			t.Errorf("phase %d: %+v, want %+v", i, b.Phases[i], want.Phases[i])
		}
	}
	for i := range want.Steps {
		if b.Steps[i] != want.Steps[i] {
			t.Errorf("step %d: %+v, want %+v", i, b.Steps[i], want.Steps[i])
		}
	}

	c := &Case{Name: "k3sctl", Samples: map[int][]Sample{2: {{Wall: 7 * time.Second, Breakdown: &b}}}}
	tb := &Table{Sizes: []int{2, 8}, Floor: c, Cases: []*Case{c}, NoChange: map[int][]Sample{}, SSHRound: map[int][]Sample{}}
	md := tb.Markdown()
	for _, line := range []string{
		"## Where k3sctl spends its time (seconds, fastest run)",
		"| phase: connect | 0.10 | — |",
		"| phase: execute | 6.00 | — |",
		"| step (slowest host): upload k3s | 3.00 | — |",
	} {
		if !strings.Contains(md, line) {
			t.Errorf("table lacks %q:\n%s", line, md)
		}
	}
	if strings.Index(md, "phase: execute") > strings.Index(md, "step (slowest host)") {
		t.Error("steps before phases")
	}
}
