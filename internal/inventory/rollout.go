package inventory

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Rollout is how apply works through the clusters: a canary first, then
// waves, stopping once more clusters failed than the budget allows.
type Rollout struct {
	// Canary chooses the clusters that go first, alone in their wave.
	Canary Subset
	// Waves are the sizes of the waves after the canary; the last size
	// repeats until every cluster has a wave. Empty: one wave.
	Waves []Amount
	// FailureBudget is how many clusters may fail before no new cluster
	// is started.
	FailureBudget Amount
	// Pause is the wait between waves; Confirm asks before each wave
	// after the first instead.
	Pause   time.Duration
	Confirm bool
	// MaxClustersInFlight limits the clusters worked on at once; 0 is no
	// limit.
	MaxClustersInFlight int
	Pos                 Position
}

// Amount is a number of clusters, or a percentage of them.
type Amount struct {
	N       int
	Percent bool
}

func (a Amount) String() string {
	if a.Percent {
		return strconv.Itoa(a.N) + "%"
	}
	return strconv.Itoa(a.N)
}

// Of is the amount of total clusters; a percentage rounds up when up is
// set (a wave), else down (a budget).
func (a Amount) Of(total int, up bool) int {
	if !a.Percent {
		return a.N
	}
	if up {
		return (a.N*total + 99) / 100
	}
	return a.N * total / 100
}

// ParseAmount reads "3" or "25%". min is the smallest count allowed; a
// percentage is from 1 to 100 (0 too when min is 0).
func ParseAmount(s string, min int) (Amount, error) {
	t := strings.TrimSpace(s)
	pct := strings.HasSuffix(t, "%")
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(t, "%")))
	switch {
	case err != nil:
		return Amount{}, fmt.Errorf("%q is not a number of clusters or a percentage such as 25%%", s)
	case pct && (n < min || n > 100):
		return Amount{}, fmt.Errorf("%q is not a percentage from %d%% to 100%%", s, min)
	case !pct && n < min:
		return Amount{}, fmt.Errorf("%q must be at least %d", s, min)
	}
	return Amount{N: n, Percent: pct}, nil
}

// ParsePause reads a pause between waves: a duration such as 30s or 5m,
// or "confirm".
func ParsePause(s string) (time.Duration, bool, error) {
	if strings.TrimSpace(s) == "confirm" {
		return 0, true, nil
	}
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil || d < 0 {
		return 0, false, fmt.Errorf("pause %q is not a duration such as 30s or 5m, or confirm", s)
	}
	return d, false, nil
}

func (d *decoder) rollout(n *yaml.Node, clusters []Cluster) *Rollout {
	example := "rollout: {canary: [shop-01], waves: [1, \"25%\", \"100%\"], failureBudget: 1}"
	f, ok := d.fields(n, objRollout, "rollout", example)
	if !ok {
		return nil
	}
	r := &Rollout{Pos: d.pos(f.node)}
	if v := f.val["canary"]; v != nil {
		r.Canary = d.canary(v, clusters)
	}
	amount := func(v *yaml.Node, what, example string, min int) (Amount, bool) {
		s, ok := d.str(v, what, example)
		if !ok {
			return Amount{}, false
		}
		a, err := ParseAmount(s, min)
		if err != nil {
			d.report(v, what+": "+err.Error(), "write "+example)
			return Amount{}, false
		}
		return a, true
	}
	if v := f.val["waves"]; v != nil {
		if f.has("waveSize") {
			d.report(f.key["waveSize"], "waves and waveSize are both set", "keep one: waveSize: N is waves: [N]")
		}
		items, _ := d.list(v, "waves", `waves: [1, "25%", "100%"]`)
		for _, it := range items {
			if a, ok := amount(it, "wave", `- "25%" or - 2`, 1); ok {
				r.Waves = append(r.Waves, a)
			}
		}
	} else if v := f.val["waveSize"]; v != nil {
		if a, ok := amount(v, "waveSize", `waveSize: 5 or waveSize: "10%"`, 1); ok {
			r.Waves = []Amount{a}
		}
	}
	if v := f.val["failureBudget"]; v != nil {
		if a, ok := amount(v, "failureBudget", `failureBudget: 1 or failureBudget: "5%"`, 0); ok {
			r.FailureBudget = a
		}
	}
	if v := f.val["pause"]; v != nil {
		if s, ok := d.str(v, "pause", "pause: 30s or pause: confirm"); ok {
			pause, confirm, err := ParsePause(s)
			if err != nil {
				d.report(v, err.Error(), "write pause: 30s, pause: 5m or pause: confirm")
			}
			r.Pause, r.Confirm = pause, confirm
		}
	}
	if v := f.val["maxClustersInFlight"]; v != nil {
		if i, ok := d.int(v, "maxClustersInFlight", "maxClustersInFlight: 10"); ok {
			if i < 1 {
				d.report(v, fmt.Sprintf("maxClustersInFlight %d is less than 1", i), "write maxClustersInFlight: 10, or remove it for no limit")
			} else {
				r.MaxClustersInFlight = i
			}
		}
	}
	return r
}

// canary reads a list of names or globs, or {clusters: [...], selector: ...}.
func (d *decoder) canary(n *yaml.Node, clusters []Cluster) Subset {
	var s Subset
	var patterns []*yaml.Node
	var selNode *yaml.Node
	if nn := deref(n); nn != nil && nn.Kind == yaml.SequenceNode {
		patterns, _ = d.list(nn, "canary", "canary: [shop-01, \"lab-*\"]")
	} else {
		f, ok := d.fields(n, objCanary, "canary", `canary: [shop-01] or canary: {selector: "tier=canary"}`)
		if !ok {
			return s
		}
		if v := f.val["clusters"]; v != nil {
			patterns, _ = d.list(v, "clusters", "clusters: [shop-01, \"lab-*\"]")
		}
		selNode = f.val["selector"]
	}
	for _, p := range patterns {
		text, ok := d.str(p, "canary cluster", "- shop-01")
		if !ok {
			continue
		}
		if err := CheckPattern(text); err != nil {
			d.report(p, err.Error(), "write a name, or a glob such as shop-*")
			continue
		}
		if _, err := (Subset{Clusters: []string{text}}).Names(clusters, "canary"); err != nil && len(clusters) > 0 {
			d.report(p, err.Error(), "write the name of a cluster of this file")
			continue
		}
		s.Clusters = append(s.Clusters, text)
	}
	if selNode != nil {
		if text, ok := d.str(selNode, "selector", `selector: "tier=canary"`); ok {
			sel, err := ParseSelector(text)
			if err != nil {
				d.report(selNode, err.Error(), `write selector: "tier=canary" or "tier=canary,region!=eu"`)
			} else {
				s.Selector = sel
			}
		}
	}
	return s
}
