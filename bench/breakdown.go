package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Breakdown is where one k3sctl run spent its time, from its JSON events
// (`-o json`): each phase, and for each step the slowest host's time.
type Breakdown struct {
	Phases []Timed
	Steps  []Timed
}

// Timed is a named duration.
type Timed struct {
	Name string
	D    time.Duration
}

// ParseBreakdown reads k3sctl's JSON event lines; other lines are skipped.
// A k3sctl without phase events and step times gives an empty breakdown.
func ParseBreakdown(r io.Reader) Breakdown {
	var b Breakdown
	perHost := map[string]map[string]time.Duration{} // step → host → time
	var steps []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var e struct {
			Type      string `json:"type"`
			Cluster   string `json:"cluster"`
			Host      string `json:"host"`
			Step      string `json:"step"`
			Phase     string `json:"phase"`
			ElapsedNs *int64 `json:"elapsedNs"`
		}
		// A k3sctl that does not time its steps has no elapsedNs.
		if json.Unmarshal([]byte(line), &e) != nil || e.ElapsedNs == nil {
			continue
		}
		d := time.Duration(*e.ElapsedNs)
		switch e.Type {
		case "phase":
			b.Phases = append(b.Phases, Timed{e.Phase, d})
		case "step_done", "step_failed":
			if perHost[e.Step] == nil {
				perHost[e.Step] = map[string]time.Duration{}
				steps = append(steps, e.Step)
			}
			perHost[e.Step][e.Cluster+"/"+e.Host] += d
		}
	}
	for _, s := range steps {
		var slowest time.Duration
		for _, d := range perHost[s] {
			slowest = max(slowest, d)
		}
		b.Steps = append(b.Steps, Timed{s, slowest})
	}
	return b
}

// breakdownMarkdown is a table of each case's breakdown by size: phases,
// then steps (the slowest host), in seconds.
func (t *Table) breakdownMarkdown(b *strings.Builder) {
	for _, c := range t.Cases {
		var rows []string
		seen := map[string]bool{}
		byName := map[int]map[string]time.Duration{}
		for _, n := range t.Sizes {
			s, ok := Fastest(c.Samples[n])
			if !ok || s.Breakdown == nil {
				continue
			}
			byName[n] = map[string]time.Duration{}
			add := func(prefix string, list []Timed) {
				for _, x := range list {
					k := prefix + x.Name
					if !seen[k] {
						seen[k] = true
						rows = append(rows, k)
					}
					byName[n][k] += x.D
				}
			}
			add("phase: ", s.Breakdown.Phases)
			add("step (slowest host): ", s.Breakdown.Steps)
		}
		if len(rows) == 0 {
			continue
		}
		// Phases first, in the order they ran; steps after.
		slices.SortStableFunc(rows, func(a, b string) int {
			return boolInt(strings.HasPrefix(a, "step")) - boolInt(strings.HasPrefix(b, "step"))
		})
		fmt.Fprintf(b, "\n## Where %s spends its time (seconds, fastest run)\n\n", c.Name)
		t.header(b, "phase or step")
		for _, r := range rows {
			b.WriteString("| " + r + " |")
			for _, n := range t.Sizes {
				d, ok := byName[n][r]
				if !ok {
					b.WriteString(" — |")
					continue
				}
				fmt.Fprintf(b, " %s |", secs(d))
			}
			b.WriteString("\n")
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
