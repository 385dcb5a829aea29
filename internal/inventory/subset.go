package inventory

import (
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/k3sctl/k3sctl/internal/suggest"
)

// Selector picks clusters by their labels: comma-separated terms, each
// key=value (also key==value), key!=value, key (the label is set) or !key
// (it is not). A cluster matches when every term does. The zero Selector
// matches every cluster.
type Selector struct {
	Terms []SelectorTerm
	text  string
}

// SelectorOp is how a term compares a label.
type SelectorOp string

// Selector operators.
const (
	OpEquals    SelectorOp = "="
	OpNotEquals SelectorOp = "!="
	OpExists    SelectorOp = "exists"
	OpNotExists SelectorOp = "!exists"
)

// SelectorTerm is one comparison of a Selector.
type SelectorTerm struct {
	Key   string
	Op    SelectorOp
	Value string
}

func (t SelectorTerm) String() string {
	switch t.Op {
	case OpExists:
		return t.Key
	case OpNotExists:
		return "!" + t.Key
	}
	return t.Key + string(t.Op) + t.Value
}

// String is the selector as written.
func (s Selector) String() string { return s.text }

// Empty reports whether the selector has no terms.
func (s Selector) Empty() bool { return len(s.Terms) == 0 }

// ParseSelector reads key=value,key!=value,key,!key. Spaces around terms
// are ignored; an empty string is the empty Selector.
func ParseSelector(text string) (Selector, error) {
	s := Selector{text: strings.TrimSpace(text)}
	if s.text == "" {
		return s, nil
	}
	for _, raw := range strings.Split(s.text, ",") {
		term := strings.TrimSpace(raw)
		var t SelectorTerm
		switch {
		case term == "":
			return Selector{}, fmt.Errorf("selector %q has an empty term; write key=value,key!=value, key or !key joined by commas", text)
		case strings.Contains(term, "!="):
			k, v, _ := strings.Cut(term, "!=")
			t = SelectorTerm{Key: strings.TrimSpace(k), Op: OpNotEquals, Value: strings.TrimSpace(v)}
		case strings.Contains(term, "="):
			k, v, _ := strings.Cut(term, "=")
			t = SelectorTerm{Key: strings.TrimSpace(k), Op: OpEquals, Value: strings.TrimSpace(strings.TrimPrefix(v, "="))}
		case strings.HasPrefix(term, "!"):
			t = SelectorTerm{Key: strings.TrimSpace(term[1:]), Op: OpNotExists}
		default:
			t = SelectorTerm{Key: term, Op: OpExists}
		}
		if why := checkLabelKey(t.Key); why != "" {
			return Selector{}, fmt.Errorf("selector term %q: the label key %q %s", term, t.Key, why)
		}
		if t.Op == OpEquals || t.Op == OpNotEquals {
			if why := checkLabelValue(t.Value); why != "" {
				return Selector{}, fmt.Errorf("selector term %q: the value %q %s", term, t.Value, why)
			}
		}
		s.Terms = append(s.Terms, t)
	}
	return s, nil
}

// Matches reports whether labels satisfy every term.
func (s Selector) Matches(labels map[string]string) bool {
	for _, t := range s.Terms {
		v, ok := labels[t.Key]
		switch t.Op {
		case OpEquals:
			if !ok || v != t.Value {
				return false
			}
		case OpNotEquals:
			if ok && v == t.Value {
				return false
			}
		case OpExists:
			if !ok {
				return false
			}
		case OpNotExists:
			if ok {
				return false
			}
		}
	}
	return true
}

// CheckPattern reports a cluster name pattern that path.Match cannot read.
func CheckPattern(p string) error {
	if _, err := path.Match(p, ""); err != nil {
		return fmt.Errorf("cluster pattern %q is not a valid glob (*, ?, [a-z]): %w", p, err)
	}
	return nil
}

// MatchName reports whether a cluster name matches one of the patterns
// (shell-style globs, as path.Match reads them).
func MatchName(patterns []string, name string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// SubsetError is a cluster pattern or selector that matches no cluster.
type SubsetError struct {
	What    string   // e.g. `--cluster "shop-*"`
	Close   []string // names or labels it may have meant
	Known   []string // what there is, when nothing is close
	Message string
}

func (e *SubsetError) Error() string {
	msg := e.Message
	switch {
	case len(e.Close) > 0:
		msg += "; did you mean " + quoteList(e.Close) + "?"
	case len(e.Known) > 0:
		msg += "; there are " + strings.Join(e.Known, ", ")
	}
	return msg
}

func quoteList(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, " or ")
}

// Subset is a choice of clusters: names or globs, and a label selector.
// Both empty choose every cluster.
type Subset struct {
	Clusters []string
	Selector Selector
}

// Empty reports whether the subset chooses every cluster.
func (s Subset) Empty() bool { return len(s.Clusters) == 0 && s.Selector.Empty() }

// Match reports whether the cluster is chosen: it matches one of the
// patterns (when there are any) and the selector.
func (s Subset) Match(c *Cluster) bool {
	if len(s.Clusters) > 0 && !MatchName(s.Clusters, c.Name) {
		return false
	}
	return s.Selector.Matches(c.Labels)
}

// Names is the names of the clusters s chooses among clusters, in their
// order. A pattern that matches no cluster, or a subset that chooses none,
// is a *SubsetError naming what is close; what names the source in the
// message (e.g. "--cluster").
func (s Subset) Names(clusters []Cluster, what string) ([]string, error) {
	var all []string
	for _, c := range clusters {
		all = append(all, c.Name)
	}
	for _, p := range s.Clusters {
		if err := CheckPattern(p); err != nil {
			return nil, err
		}
		if !slices.ContainsFunc(all, func(n string) bool { return MatchName([]string{p}, n) }) {
			return nil, &SubsetError{What: what, Message: fmt.Sprintf("%s %q matches no cluster", what, p),
				Close: closeNames(p, all), Known: firstFew(all)}
		}
	}
	var out []string
	for i := range clusters {
		if s.Match(&clusters[i]) {
			out = append(out, clusters[i].Name)
		}
	}
	if len(out) > 0 {
		return out, nil
	}
	if s.Selector.Empty() {
		// Every pattern matched something on its own, so this cannot be.
		return nil, &SubsetError{What: what, Message: fmt.Sprintf("%s chooses no cluster", what)}
	}
	return nil, selectorError(s, clusters, what)
}

// selectorError explains why a selector chose nothing: a key or value no
// cluster has, with the closest ones there are.
func selectorError(s Subset, clusters []Cluster, what string) error {
	keys := map[string]bool{}
	values := map[string]map[string]bool{}
	for _, c := range clusters {
		for k, v := range c.Labels {
			keys[k] = true
			if values[k] == nil {
				values[k] = map[string]bool{}
			}
			values[k][v] = true
		}
	}
	sel := s.Selector.String()
	scope := ""
	if len(s.Clusters) > 0 {
		scope = " among the clusters " + strings.Join(s.Clusters, ", ")
	}
	for _, t := range s.Selector.Terms {
		if (t.Op == OpEquals || t.Op == OpExists) && !keys[t.Key] {
			var close []string
			for _, k := range closeNames(t.Key, sortedKeys(keys)) {
				nt := t
				nt.Key = k
				close = append(close, nt.String())
			}
			return &SubsetError{What: what, Message: fmt.Sprintf("%s %q matches no cluster: no cluster has the label %q", what, sel, t.Key),
				Close: close, Known: firstFew(labelList(values))}
		}
		if t.Op == OpEquals && !values[t.Key][t.Value] {
			var close []string
			for _, v := range closeNames(t.Value, sortedKeys(values[t.Key])) {
				close = append(close, t.Key+"="+v)
			}
			return &SubsetError{What: what, Message: fmt.Sprintf("%s %q matches no cluster: no cluster has %s=%s", what, sel, t.Key, t.Value),
				Close: close, Known: firstFew(labelsOf(t.Key, values))}
		}
	}
	return &SubsetError{What: what, Message: fmt.Sprintf("%s %q matches no cluster%s", what, sel, scope), Known: firstFew(labelList(values))}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func labelList(values map[string]map[string]bool) []string {
	var out []string
	for k, vs := range values {
		for v := range vs {
			out = append(out, k+"="+v)
		}
	}
	sort.Strings(out)
	return out
}

func labelsOf(key string, values map[string]map[string]bool) []string {
	var out []string
	for _, v := range sortedKeys(values[key]) {
		out = append(out, key+"="+v)
	}
	return out
}

// firstFew keeps a list in a message short.
func firstFew(l []string) []string {
	const n = 8
	if len(l) <= n {
		return l
	}
	return append(append([]string{}, l[:n]...), fmt.Sprintf("and %d more", len(l)-n))
}

// closeNames are the names a mistyped name or pattern may have meant: those
// within a small edit distance of it, and those sharing its literal
// prefix (the text before the first wildcard), at most five.
func closeNames(p string, names []string) []string {
	lit := p
	if i := strings.IndexAny(p, "*?["); i >= 0 {
		lit = p[:i]
	}
	type cand struct {
		name string
		dist int
	}
	var cs []cand
	limit := max(suggest.Budget(p), 2)
	for _, n := range names {
		d := suggest.Distance(strings.ToLower(p), strings.ToLower(n))
		// A glob is compared by its literal part too.
		if lit != p {
			d = min(d, suggest.Distance(strings.ToLower(lit), strings.ToLower(n[:min(len(n), len(lit))])))
		}
		switch {
		case d <= limit:
			cs = append(cs, cand{n, d})
		case len(lit) >= 2 && (strings.HasPrefix(strings.ToLower(n), strings.ToLower(lit)) || strings.HasPrefix(strings.ToLower(lit), strings.ToLower(n))):
			cs = append(cs, cand{n, limit + 1})
		}
	}
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].dist < cs[j].dist })
	var out []string
	for _, c := range cs {
		if len(out) == 5 {
			break
		}
		out = append(out, c.name)
	}
	return out
}

// Select returns a copy of inv with only the clusters s chooses; see
// Subset.Names for the errors. The empty subset returns inv itself.
func Select(inv *Inventory, s Subset, what string) (*Inventory, error) {
	if s.Empty() {
		return inv, nil
	}
	names, err := s.Names(inv.Clusters, what)
	if err != nil {
		return nil, err
	}
	out := *inv
	out.Clusters = nil
	for _, c := range inv.Clusters {
		if slices.Contains(names, c.Name) {
			out.Clusters = append(out.Clusters, c)
		}
	}
	return &out, nil
}
