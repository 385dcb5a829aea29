package cli

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/k3sctl/k3sctl/internal/apply"
	"github.com/k3sctl/k3sctl/internal/plan"
)

// traceSink passes events on and keeps the timings --trace prints at the
// end: each phase of the run, and each step of each host.
type traceSink struct {
	next apply.Sink

	mu      sync.Mutex
	phases  []apply.Event
	hosts   []traceKey
	steps   map[traceKey]map[plan.StepKind]time.Duration
	results map[traceKey]time.Duration
}

type traceKey struct{ cluster, host, role string }

func newTraceSink(next apply.Sink) *traceSink {
	return &traceSink{next: next, steps: map[traceKey]map[plan.StepKind]time.Duration{}, results: map[traceKey]time.Duration{}}
}

func (t *traceSink) Event(e apply.Event) {
	t.record(e)
	t.next.Event(e)
}

func (t *traceSink) record(e apply.Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch e.Type {
	case apply.EventPhase:
		t.phases = append(t.phases, e)
	case apply.EventStepDone, apply.EventStepFailed:
		k := traceKey{e.Cluster, e.Host, e.Role}
		if t.steps[k] == nil {
			t.steps[k] = map[plan.StepKind]time.Duration{}
			t.hosts = append(t.hosts, k)
		}
		t.steps[k][e.Step] += e.Elapsed
	case apply.EventSummary:
		for _, r := range e.Results {
			t.results[traceKey{r.Cluster, r.Host, r.Role}] = r.Elapsed
		}
	}
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.2f", d.Seconds()) }

// print writes the phase table and the table of steps per host, in
// seconds.
func (t *traceSink) print(w io.Writer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintln(w, "\nTrace: phases (seconds)")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  PHASE\tSECONDS")
	for _, e := range t.phases {
		name := e.Phase
		if e.Cluster != "" {
			name = e.Cluster + ": " + name
		}
		fmt.Fprintf(tw, "  %s\t%s\n", name, seconds(e.Elapsed))
	}
	_ = tw.Flush()
	if len(t.hosts) == 0 {
		return
	}
	var kinds []plan.StepKind
	for _, k := range plan.StepKinds() {
		for _, h := range t.hosts {
			if _, ok := t.steps[h][k]; ok {
				kinds = append(kinds, k)
				break
			}
		}
	}
	for _, h := range t.hosts { // kinds this build does not list
		for k := range t.steps[h] {
			if !slices.Contains(kinds, k) {
				kinds = append(kinds, k)
			}
		}
	}
	fmt.Fprintln(w, "\nTrace: steps per host (seconds; total leaves out waiting for other hosts)")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := []string{"  CLUSTER", "HOST", "ROLE"}
	for _, k := range kinds {
		head = append(head, strings.ToUpper(string(k)))
	}
	fmt.Fprintln(tw, strings.Join(append(head, "TOTAL"), "\t"))
	for _, h := range t.hosts {
		row := []string{"  " + h.cluster, h.host, h.role}
		for _, k := range kinds {
			d, ok := t.steps[h][k]
			if !ok {
				row = append(row, "-")
				continue
			}
			row = append(row, seconds(d))
		}
		total := "-"
		if d, ok := t.results[h]; ok {
			total = seconds(d)
		}
		fmt.Fprintln(tw, strings.Join(append(row, total), "\t"))
	}
	_ = tw.Flush()
}
