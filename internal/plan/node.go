package plan

import (
	"slices"
	"sort"
	"strings"

	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/secret"
)

// Annotations k3sctl keeps on a Node: the node-label and node-taint
// entries it applied, as config.yaml lists them ("k=v", "k=v:Effect"),
// comma-separated. Only these keys are ever changed or removed by
// k3sctl; labels and taints set by others are left alone.
const (
	ManagedLabelsAnnotation = "k3sctl.io/managed-labels"
	ManagedTaintsAnnotation = "k3sctl.io/managed-taints"
)

// NodeFacts is what the cluster's API says of a host's node, read through
// a running server of its cluster.
type NodeFacts struct {
	// Registered: a Node of the host's node name exists.
	Registered bool
	Name       string
	Ready      bool
	// NotReadyReason is the Ready condition's reason and message when the
	// node is not Ready.
	NotReadyReason string
	Version        string
	Labels         map[string]string
	// Taints as node-taint writes them: key=value:Effect.
	Taints []string
	// ManagedLabels and ManagedTaints are the entries of k3sctl's
	// annotations (none when they are missing).
	ManagedLabels []string
	ManagedTaints []string
}

// NodeName is the name K3s gives h's node on a host whose hostname is
// hostname: node-name from the inventory or config.yaml, else the
// lower-cased hostname. suffixed says K3s appends -<8 hex> (with-node-id).
func NodeName(c *Cluster, h Host, hostname string) (name string, suffixed bool) {
	cfg := nodeConfigOf(c, h)
	name = strings.ToLower(hostname)
	if s, ok := cfg.Get("node-name"); ok && s != "" {
		name = s
	}
	return name, cfg.Bool("with-node-id")
}

// NodeNameIs matches a Node's name against the expected name; with
// suffixed, K3s has added -<8 hex>, an id k3sctl cannot know beforehand.
func NodeNameIs(got, want string, suffixed bool) bool {
	if !suffixed {
		return got == want
	}
	id, ok := strings.CutPrefix(got, want+"-")
	return ok && len(id) == 8 && strings.Trim(id, "0123456789abcdef") == ""
}

// NodeLabels are the node-label and node-taint entries of h's rendered
// config.yaml: what the node gets at registration and what k3sctl keeps
// on it through the API afterwards.
func NodeLabels(c *Cluster, h Host) (labels, taints []string) {
	cfg := nodeConfigOf(c, h)
	return cfg.List("node-label"), cfg.List("node-taint")
}

// nodeConfigOf is h's config.yaml as the model builds it, so that node
// names and labels follow exactly what K3s reads. A setting the model
// refuses leaves it empty: Build reports that error for the host.
func nodeConfigOf(c *Cluster, h Host) k3s.Config {
	// The join URL and token do not matter here, only that the model can
	// build an agent's config at all.
	cc := *c
	if cc.JoinServer == "" && len(cc.Servers) == 0 {
		cc.JoinServer = "127.0.0.1"
	}
	cfg, _, err := NodeConfig(&cc, h, h.Role == k3s.Server, secret.New("K10-placeholder"))
	if err != nil {
		return k3s.Config{}
	}
	return cfg
}

// LabelChange is what brings a node's labels and taints to the inventory.
type LabelChange struct {
	Set    map[string]string // labels to add or change
	Remove []string          // label keys k3sctl set earlier, no longer wanted
	// Taints, when TaintsChanged, is the node's whole new taint list.
	Taints        []string
	TaintsChanged bool
	// Annotations are the new values of k3sctl's annotations, when they
	// change.
	Annotations map[string]string
	// Summary says what changes, for people.
	Summary []string
}

// Empty reports whether nothing changes.
func (lc LabelChange) Empty() bool {
	return len(lc.Set) == 0 && len(lc.Remove) == 0 && !lc.TaintsChanged && len(lc.Annotations) == 0
}

// DiffLabels compares the wanted node-label and node-taint entries with a
// registered node. Labels and taints k3sctl did not set (not in its
// annotations) are never removed or changed unless the inventory names
// their key.
func DiffLabels(labels, taints []string, n *NodeFacts) LabelChange {
	lc := LabelChange{Set: map[string]string{}, Annotations: map[string]string{}}
	want := map[string]string{}
	for _, l := range labels {
		k, v, _ := strings.Cut(l, "=")
		want[k] = v
		if cur, ok := n.Labels[k]; !ok || cur != v {
			lc.Set[k] = v
			lc.Summary = append(lc.Summary, "label "+k+"="+v)
		}
	}
	for _, l := range n.ManagedLabels {
		k, _, _ := strings.Cut(l, "=")
		if _, ok := want[k]; !ok {
			if _, on := n.Labels[k]; on && !slices.Contains(lc.Remove, k) {
				lc.Remove = append(lc.Remove, k)
				lc.Summary = append(lc.Summary, "remove label "+k)
			}
		}
	}
	sort.Strings(lc.Remove)

	wantTaints := map[string]string{} // key:Effect → entry
	for _, t := range taints {
		wantTaints[taintID(t)] = t
	}
	managed := map[string]bool{}
	for _, t := range n.ManagedTaints {
		managed[taintID(t)] = true
	}
	var next []string
	have := map[string]bool{}
	for _, t := range n.Taints {
		id := taintID(t)
		switch w, ok := wantTaints[id]; {
		case ok:
			next = append(next, w)
			have[id] = true
			if w != t {
				lc.Summary = append(lc.Summary, "taint "+w)
			}
		case managed[id]:
			lc.Summary = append(lc.Summary, "remove taint "+t)
		default:
			next = append(next, t)
		}
	}
	for _, t := range taints {
		if id := taintID(t); !have[id] {
			next = append(next, t)
			have[id] = true
			lc.Summary = append(lc.Summary, "taint "+t)
		}
	}
	if !slices.Equal(next, n.Taints) {
		lc.Taints, lc.TaintsChanged = next, true
	}
	ml, mt := strings.Join(labels, ","), strings.Join(taints, ",")
	if ml != strings.Join(n.ManagedLabels, ",") || mt != strings.Join(n.ManagedTaints, ",") {
		lc.Annotations[ManagedLabelsAnnotation] = ml
		lc.Annotations[ManagedTaintsAnnotation] = mt
	}
	if len(lc.Annotations) > 0 && len(lc.Summary) == 0 {
		lc.Summary = append(lc.Summary, "record the labels and taints k3sctl manages")
	}
	return lc
}

// taintID is what makes a taint unique on a node: key and effect.
func taintID(t string) string {
	kv, effect, _ := strings.Cut(t, ":")
	k, _, _ := strings.Cut(kv, "=")
	return k + ":" + effect
}

// SplitManaged reads one of k3sctl's annotations.
func SplitManaged(v string) []string {
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// labelsOnlyConfig reports whether the config.yaml on the host differs
// from the one planned only in node-label and node-taint: rendered with
// the entries k3sctl recorded on the Node instead of the wanted ones, it
// has the host's hash.
//
// K3s reads node-label and node-taint only when a node registers, so
// restarting it for them changes nothing on a registered node. They stay in
// config.yaml, for the registration of a new or re-registered node, but a
// change to them alone is applied through the API and config.yaml is
// rewritten without a restart.
func labelsOnlyConfig(c *Cluster, h Host, first bool, token secret.Value, n *NodeFacts, remoteHash string) bool {
	if n == nil || !n.Registered || remoteHash == "" {
		return false
	}
	cc := *c
	cc.ServerConfig = withoutKeys(c.ServerConfig, "node-label", "node-taint")
	cc.AgentConfig = withoutKeys(c.AgentConfig, "node-label", "node-taint")
	hh := h
	hh.Labels, hh.Taints = nil, nil
	hh.Config = withoutKeys(h.Config, "node-label", "node-taint")
	if len(n.ManagedLabels) > 0 {
		hh.Config["node-label"] = n.ManagedLabels
	}
	if len(n.ManagedTaints) > 0 {
		hh.Config["node-taint"] = n.ManagedTaints
	}
	cfg, pending, err := NodeConfig(&cc, hh, first, token)
	return err == nil && !pending && (RemoteFile{Data: cfg.Render()}).SHA256() == remoteHash
}

func withoutKeys(m map[string]any, keys ...string) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		if !slices.Contains(keys, k) {
			out[k] = v
		}
	}
	return out
}

// repairReason says why a host whose service runs needs its join redone,
// or "" when its node is registered and Ready (or the cluster could not
// be read).
func repairReason(f *HostFacts, role k3s.Role) string {
	n := f.Node
	if n == nil || !f.Active[role] {
		return ""
	}
	service := k3s.ServiceName(role)
	switch {
	case !n.Registered:
		return service + " runs but node " + n.Name + " is not registered in the cluster (the join failed)"
	case !n.Ready:
		why := ""
		if n.NotReadyReason != "" {
			why = " (" + n.NotReadyReason + ")"
		}
		return "node " + n.Name + " is not Ready" + why
	}
	return ""
}

// planLabels says what the label step changes on h's node, or nil when it
// has nothing to do. A node that registers during this run (install,
// restart, repair) gets its labels from config.yaml and k3sctl's record
// afterwards.
func planLabels(c *Cluster, h Host, f *HostFacts, action Action) []string {
	labels, taints := NodeLabels(c, h)
	n := f.Node
	if n != nil && n.Registered {
		lc := DiffLabels(labels, taints, n)
		if lc.Empty() {
			return nil
		}
		return lc.Summary
	}
	if action == ActionNothing || action == ActionRefuse || action == ActionUnreachable || (len(labels) == 0 && len(taints) == 0) {
		return nil
	}
	return []string{"applies and records the labels and taints k3sctl manages once the node is Ready"}
}

// stoppedNode says, for a host whose service does not run, what the
// cluster knows of its node: a node that never registered points at a
// failed join.
func stoppedNode(f *HostFacts) string {
	switch n := f.Node; {
	case n == nil:
		return ""
	case !n.Registered:
		return " and node " + n.Name + " is not registered in the cluster (a failed join?)"
	}
	return ""
}
