package kubeconfig

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// MergeOptions says how a cluster's k3s.yaml enters a kubeconfig.
type MergeOptions struct {
	// Name replaces "default" as the cluster, user and context name.
	Name string
	// Server replaces https://127.0.0.1:6443 with the address the user
	// reaches the cluster by; empty keeps the file's.
	Server string
	// SwitchContext makes Name the current context. A kubeconfig without a
	// current context gets Name either way.
	SwitchContext bool
}

// sections are the named lists of a kubeconfig, in kubectl's order, with
// the key each entry keeps its body under.
var sections = []struct{ list, body string }{
	{"clusters", "cluster"},
	{"contexts", "context"},
	{"users", "user"},
}

// change is one edit of a kubeconfig: the entries called name are dropped
// from every section, or, when add holds an entry for the section,
// replaced by it (in the place of the first one, else at the end).
type change struct {
	name string
	add  map[string]*yaml.Node
	// current is the new current-context, when setCurrent.
	current    string
	setCurrent bool
	// switchTo sets current-context to name; otherwise it is set only when
	// the file has none.
	switchTo bool
}

// Merge puts the cluster, user and context of a K3s kubeconfig (incoming)
// into existing, named o.Name. Entries already called o.Name are replaced,
// so no stale credentials stay behind; everything else in existing is kept
// as it was written, comments included. An empty existing gives a new
// kubeconfig. A malformed one is an error, so nothing is written over it.
func Merge(existing, incoming []byte, o MergeOptions) ([]byte, error) {
	if err := checkName(o.Name); err != nil {
		return nil, err
	}
	add, err := incomingEntries(incoming, o)
	if err != nil {
		return nil, err
	}
	return apply(existing, change{name: o.Name, add: add, switchTo: o.SwitchContext})
}

// Remove drops the cluster, user and context called name, and clears the
// current context if it was that one. Other entries stay as written.
func Remove(existing []byte, name string) ([]byte, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	return apply(existing, change{name: name})
}

func checkName(name string) error {
	if strings.TrimSpace(name) == "" || strings.ContainsAny(name, "\n\r") {
		return fmt.Errorf("kubeconfig entry name %q: want a non-empty single-line name", name)
	}
	return nil
}

// incomingEntries takes the context of a k3s.yaml (its current one, or its
// only one) with the cluster and user it uses, renamed and re-pointed.
func incomingEntries(incoming []byte, o MergeOptions) (map[string]*yaml.Node, error) {
	if o.Server != "" {
		u, err := url.Parse(o.Server)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return nil, fmt.Errorf("server address %q: want https://<host>:<port>", o.Server)
		}
	}
	root, err := parseDoc(incoming)
	if err != nil {
		return nil, fmt.Errorf("cluster kubeconfig: %w", err)
	}
	if root == nil {
		return nil, errors.New("cluster kubeconfig is empty")
	}
	if err := validate(root); err != nil {
		return nil, fmt.Errorf("cluster kubeconfig: %w", err)
	}
	contexts := listItems(root, "contexts")
	var ctx *yaml.Node
	if cur := scalarValue(mapGet(root, "current-context")); cur != "" {
		ctx = findNamed(contexts, cur)
	}
	if ctx == nil && len(contexts) == 1 {
		ctx = contexts[0]
	}
	if ctx == nil {
		return nil, errors.New("cluster kubeconfig: cannot tell which context to take: it has no current context and not exactly one context")
	}
	body := mapGet(ctx, "context")
	clusterName, userName := scalarValue(mapGet(body, "cluster")), scalarValue(mapGet(body, "user"))
	cluster := findNamed(listItems(root, "clusters"), clusterName)
	user := findNamed(listItems(root, "users"), userName)
	if cluster == nil || user == nil {
		return nil, fmt.Errorf("cluster kubeconfig: context %q refers to cluster %q and user %q, which it does not hold",
			scalarValue(mapGet(ctx, "name")), clusterName, userName)
	}
	out := map[string]*yaml.Node{
		"clusters": plainCopy(cluster),
		"contexts": plainCopy(ctx),
		"users":    plainCopy(user),
	}
	for _, n := range out {
		mapSet(n, "name", strNode(o.Name))
	}
	ctxBody := mapGet(out["contexts"], "context")
	mapSet(ctxBody, "cluster", strNode(o.Name))
	mapSet(ctxBody, "user", strNode(o.Name))
	clusterBody := mapGet(out["clusters"], "cluster")
	if clusterBody == nil || clusterBody.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("cluster kubeconfig: cluster %q has no settings", clusterName)
	}
	if o.Server != "" {
		mapSet(clusterBody, "server", strNode(o.Server))
	}
	if scalarValue(mapGet(clusterBody, "server")) == "" {
		return nil, fmt.Errorf("cluster kubeconfig: cluster %q has no server address", clusterName)
	}
	return out, nil
}

// apply makes the change, editing existing as text where it can so that
// whatever the change does not touch keeps its exact bytes. The result is
// checked against the same change made on the parsed document; if the text
// edit got anything wrong, the re-encoded document is used instead: same
// content, kubectl-compatible, only formatted differently.
func apply(existing []byte, ch change) ([]byte, error) {
	root, err := parseDoc(existing)
	if err != nil {
		return nil, fmt.Errorf("existing kubeconfig: %w", err)
	}
	if root == nil {
		if ch.add == nil {
			return existing, nil
		}
		// A file of nothing but comments keeps them, above the new content.
		var out []byte
		if t := bytes.TrimRight(existing, " \t\r\n"); len(t) > 0 {
			out = append(append(out, t...), '\n')
		}
		return append(out, fresh(ch)...), nil
	}
	if err := validate(root); err != nil {
		return nil, fmt.Errorf("existing kubeconfig: %w", err)
	}
	cur := scalarValue(mapGet(root, "current-context"))
	switch {
	case ch.add != nil && (ch.switchTo || cur == ""):
		ch.current, ch.setCurrent = ch.name, cur != ch.name || mapGet(root, "current-context") == nil
	case ch.add == nil && cur == ch.name:
		ch.current, ch.setCurrent = "", true
	}

	var doc yaml.Node
	if err := yaml.Unmarshal(existing, &doc); err != nil {
		return nil, fmt.Errorf("existing kubeconfig: %w", err)
	}
	editTree(doc.Content[0], ch)
	if doc.Content[0].Style&yaml.FlowStyle != 0 {
		// A JSON kubeconfig: the text edit does not apply, and one line of
		// mixed JSON and YAML would serve no one. Write it as block YAML,
		// which kubectl reads the same.
		blockStyle(doc.Content[0])
	}
	want, err := encodeDoc(&doc)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	if text, ok := spliceText(existing, root, ch); ok && sameContent(text, want) {
		return text, nil
	}
	return want, nil
}

// parseDoc returns the top mapping of a single-document YAML file, or nil
// for a file with no content.
func parseDoc(b []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, err
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return nil, errors.New("holds more than one YAML document")
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return nil, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: want a mapping (apiVersion, clusters, contexts, users, …)", root.Line)
	}
	return root, nil
}

// validate refuses what kubectl would refuse, so a file k3sctl cannot
// understand is never rewritten.
func validate(root *yaml.Node) error {
	if k := mapGet(root, "kind"); k != nil && scalarValue(k) != "Config" && !isNull(k) {
		return fmt.Errorf("line %d: kind is %q, not Config", k.Line, scalarValue(k))
	}
	if v := mapGet(root, "apiVersion"); v != nil && scalarValue(v) != "v1" && !isNull(v) {
		return fmt.Errorf("line %d: apiVersion is %q, not v1", v.Line, scalarValue(v))
	}
	if c := mapGet(root, "current-context"); c != nil && c.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: current-context is not a name", c.Line)
	}
	for _, s := range sections {
		v := mapGet(root, s.list)
		if v == nil || isNull(v) {
			continue
		}
		if v.Kind != yaml.SequenceNode {
			return fmt.Errorf("line %d: %s is not a list", v.Line, s.list)
		}
		for _, it := range v.Content {
			if it.Kind != yaml.MappingNode {
				return fmt.Errorf("line %d: an entry of %s is not a mapping", it.Line, s.list)
			}
			if n := mapGet(it, "name"); n != nil && n.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: the name of an entry of %s is not a string", n.Line, s.list)
			}
		}
	}
	return nil
}

// newItems is a section's entries after the change.
func newItems(items []*yaml.Node, ch change, list string) []*yaml.Node {
	add := ch.add[list]
	var out []*yaml.Node
	placed := false
	for _, it := range items {
		if scalarValue(mapGet(it, "name")) != ch.name {
			out = append(out, it)
			continue
		}
		if add != nil && !placed {
			out = append(out, add)
			placed = true
		}
	}
	if add != nil && !placed {
		out = append(out, add)
	}
	return out
}

// editTree makes the change on the parsed document.
func editTree(root *yaml.Node, ch change) {
	for _, s := range sections {
		v := mapGet(root, s.list)
		if v == nil {
			if ch.add != nil {
				root.Content = append(root.Content, strNode(s.list), seqNode(nil))
				v = mapGet(root, s.list)
			} else {
				continue
			}
		}
		if isNull(v) {
			*v = *seqNode(nil)
		}
		v.Content = newItems(v.Content, ch, s.list)
	}
	if ch.setCurrent {
		if c := mapGet(root, "current-context"); c != nil {
			*c = *strNode(ch.current)
		} else {
			root.Content = append(root.Content, strNode("current-context"), strNode(ch.current))
		}
	}
}

// fresh is a new kubeconfig holding only the incoming entries, laid out as
// kubectl writes one.
func fresh(ch change) []byte {
	root := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	add := func(k string, v *yaml.Node) { root.Content = append(root.Content, strNode(k), v) }
	add("apiVersion", strNode("v1"))
	add("clusters", seqNode([]*yaml.Node{ch.add["clusters"]}))
	add("contexts", seqNode([]*yaml.Node{ch.add["contexts"]}))
	add("current-context", strNode(ch.name))
	add("kind", strNode("Config"))
	add("preferences", &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Style: yaml.FlowStyle})
	add("users", seqNode([]*yaml.Node{ch.add["users"]}))
	var lines []string
	for i := 0; i < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if v.Kind == yaml.SequenceNode {
			lines = append(lines, k.Value+":")
			for _, it := range v.Content {
				lines = append(lines, renderItem(it, 0)...)
			}
			continue
		}
		lines = append(lines, renderValueLine("", k.Value, v))
	}
	return []byte(strings.Join(lines, "\n") + "\n")
}

func blockStyle(n *yaml.Node) {
	n.Style &^= yaml.FlowStyle
	if n.Kind == yaml.ScalarNode && n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 && n.ShortTag() == "!!str" {
		// JSON quotes every string; YAML needs quotes only where the
		// encoder adds them.
		n.Style &^= yaml.DoubleQuotedStyle | yaml.SingleQuotedStyle
	}
	for _, c := range n.Content {
		blockStyle(c)
	}
}

func encodeDoc(doc *yaml.Node) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	if err := yaml.Unmarshal(b.Bytes(), new(any)); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func sameContent(a, b []byte) bool {
	var x, y any
	if yaml.Unmarshal(a, &x) != nil || yaml.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// renderItem renders a list entry with its dash at column dashCol, nested
// mappings indented by two, as kubectl writes them.
func renderItem(n *yaml.Node, dashCol int) []string {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		// Items are plain copies without aliases; encoding cannot fail.
		panic(fmt.Sprintf("render kubeconfig entry: %v", err))
	}
	_ = enc.Close()
	pad := strings.Repeat(" ", dashCol)
	ls := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	for i, l := range ls {
		switch {
		case i == 0:
			ls[i] = pad + "- " + l
		case l != "":
			ls[i] = pad + "  " + l
		}
	}
	return ls
}

// renderValueLine renders "key: value" for a scalar or empty value.
func renderValueLine(indent, key string, v *yaml.Node) string {
	m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{strNode(key), v}}
	out, err := yaml.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("render kubeconfig %s: %v", key, err))
	}
	return indent + strings.TrimSuffix(string(out), "\n")
}

// Node helpers.

func mapGet(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func mapSet(m *yaml.Node, key string, v *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content[i+1] = v
			return
		}
	}
	m.Content = append(m.Content, strNode(key), v)
}

func listItems(root *yaml.Node, list string) []*yaml.Node {
	v := mapGet(root, list)
	if v == nil || v.Kind != yaml.SequenceNode {
		return nil
	}
	return v.Content
}

func findNamed(items []*yaml.Node, name string) *yaml.Node {
	for _, it := range items {
		if scalarValue(mapGet(it, "name")) == name {
			return it
		}
	}
	return nil
}

func scalarValue(n *yaml.Node) string {
	if n == nil || n.Kind != yaml.ScalarNode || isNull(n) {
		return ""
	}
	return n.Value
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

func strNode(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

func seqNode(items []*yaml.Node) *yaml.Node {
	return &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: items}
}

// plainCopy deep-copies a node without comments, anchors or flow style, so
// that entries taken from another file render in the block style around
// them.
func plainCopy(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	c := &yaml.Node{Kind: n.Kind, Tag: n.ShortTag(), Value: n.Value}
	if n.Kind == yaml.ScalarNode {
		c.Style = n.Style & (yaml.LiteralStyle | yaml.FoldedStyle)
	}
	for _, k := range n.Content {
		c.Content = append(c.Content, plainCopy(k))
	}
	return c
}
