package k3s

import (
	"bytes"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/k3sctl/k3sctl/internal/secret"
)

// Config is a node's config.yaml: K3s flags without their dashes, in the
// order they are written. Rendering is deterministic, so the same settings
// give the same bytes and an unchanged node is left alone.
//
// Credentials (see IsSecretKey) are held as secret.Value. Render writes them;
// Redacted, String and every fmt verb do not.
type Config struct {
	entries []configEntry
}

type configEntry struct {
	key string
	// val is a scalar or a sequence of scalars (a mapping only if a user file
	// has one); nil for secrets.
	val *yaml.Node
	sec secret.Value
}

func (c *Config) find(key string) int {
	for i, e := range c.entries {
		if e.key == key {
			return i
		}
	}
	return -1
}

func (c *Config) put(e configEntry) {
	if i := c.find(e.key); i >= 0 {
		c.entries[i] = e
		return
	}
	c.entries = append(c.entries, e)
}

// SetString sets a single value. Credentials (IsSecretKey) are stored as
// secrets.
func (c *Config) SetString(key, v string) {
	if IsSecretKey(key) {
		c.SetSecret(key, secret.New(v))
		return
	}
	c.put(configEntry{key: key, val: strNode(v)})
}

// SetSecret sets a credential.
func (c *Config) SetSecret(key string, v secret.Value) {
	c.put(configEntry{key: key, sec: v})
}

// SetBool sets a boolean flag.
func (c *Config) SetBool(key string, v bool) {
	c.put(configEntry{key: key, val: boolNode(v)})
}

// SetList replaces the values of a list flag.
func (c *Config) SetList(key string, vs ...string) {
	c.put(configEntry{key: key, val: seqNode(vs)})
}

// AddToList adds values a list flag does not hold yet, after the ones it
// holds. A single value already set becomes the list's first item.
func (c *Config) AddToList(key string, vs ...string) {
	i := c.find(key)
	if i < 0 {
		c.entries = append(c.entries, configEntry{key: key, val: seqNode(nil)})
		i = len(c.entries) - 1
	}
	e := &c.entries[i]
	if e.val == nil {
		e.val = seqNode(nil)
	}
	if e.val.Kind != yaml.SequenceNode {
		e.val = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: []*yaml.Node{e.val}}
	}
	for _, v := range vs {
		if !slices.Contains(scalars(e.val), v) {
			e.val.Content = append(e.val.Content, strNode(v))
		}
	}
}

// Delete removes a key.
func (c *Config) Delete(key string) {
	if i := c.find(key); i >= 0 {
		c.entries = slices.Delete(c.entries, i, i+1)
	}
}

// Keys lists the keys in the order they are written.
func (c Config) Keys() []string {
	ks := make([]string, len(c.entries))
	for i, e := range c.entries {
		ks[i] = e.key
	}
	return ks
}

// Has reports whether key is set.
func (c Config) Has(key string) bool { return c.find(key) >= 0 }

// Get returns a single, non-secret value as written.
func (c Config) Get(key string) (string, bool) {
	i := c.find(key)
	if i < 0 || c.entries[i].val == nil || c.entries[i].val.Kind != yaml.ScalarNode {
		return "", false
	}
	return c.entries[i].val.Value, true
}

// List returns the values of a key; a single value is a list of one.
func (c Config) List(key string) []string {
	i := c.find(key)
	if i < 0 || c.entries[i].val == nil {
		return nil
	}
	return scalars(c.entries[i].val)
}

// Bool returns a boolean flag; unset or unreadable is false.
func (c Config) Bool(key string) bool {
	v, ok := c.Get(key)
	if !ok {
		return false
	}
	b, err := strconv.ParseBool(v)
	return err == nil && b
}

// Secret returns a credential.
func (c Config) Secret(key string) secret.Value {
	i := c.find(key)
	if i < 0 {
		return secret.Value{}
	}
	if e := c.entries[i]; e.val == nil {
		return e.sec
	} else if e.val.Kind == yaml.ScalarNode {
		return secret.New(e.val.Value)
	}
	return secret.Value{}
}

// Clone returns a deep copy.
func (c Config) Clone() Config {
	out := Config{entries: make([]configEntry, len(c.entries))}
	for i, e := range c.entries {
		out.entries[i] = configEntry{key: e.key, val: cloneNode(e.val), sec: e.sec}
	}
	return out
}

// Merge lays over on top of c: lists are joined, keeping c's items first
// and dropping repeats; any other value from over replaces c's, keeping
// c's position for the key.
func (c *Config) Merge(over Config) {
	for _, e := range over.entries {
		i := c.find(e.key)
		if i >= 0 && e.val != nil && c.entries[i].val != nil &&
			(IsListKey(e.key) || e.val.Kind == yaml.SequenceNode && c.entries[i].val.Kind == yaml.SequenceNode) {
			c.AddToList(e.key, scalars(e.val)...)
			continue
		}
		c.put(configEntry{key: e.key, val: cloneNode(e.val), sec: e.sec})
	}
}

// ConfigHeader starts every config.yaml k3sctl writes.
const ConfigHeader = "# Managed by k3sctl: changes here are replaced on the next k3sctl run.\n" +
	"# Put your own settings in the inventory, --k3s-config or config.yaml.d/.\n"

// Render is the content of config.yaml, secrets included. Write it with
// mode 0600 and show it to no one; use Redacted for that.
func (c Config) Render() []byte { return c.render(false) }

// Redacted is Render with every secret replaced, for plans, diffs and logs.
func (c Config) Redacted() []byte { return c.render(true) }

// String is the redacted rendering.
func (c Config) String() string { return string(c.Redacted()) }

// GoString is the redacted rendering, for %#v.
func (c Config) GoString() string { return c.String() }

// LogValue keeps secrets out of slog.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

func (c Config) render(redact bool) []byte {
	doc := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	for _, e := range c.entries {
		v := cloneNode(e.val)
		if e.val == nil {
			s := e.sec.Reveal()
			if redact {
				s = e.sec.String()
			}
			v = strNode(s)
		}
		doc.Content = append(doc.Content, strNode(e.key), v)
	}
	var b bytes.Buffer
	b.WriteString(ConfigHeader)
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		// Every node here is a plain scalar, sequence or mapping without
		// aliases; an encoding failure is a bug.
		panic(fmt.Sprintf("render config.yaml: %v", err))
	}
	_ = enc.Close()
	return b.Bytes()
}

// yaml11NonString reports whether a plain s would not be a string to a
// YAML 1.1 reader, as K3s's is: yes, on, off and the like are booleans
// there, and 1:30 is a number. The encoder here speaks YAML 1.2 and would
// write them plain.
func yaml11NonString(s string) bool {
	switch s {
	case "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO",
		"on", "On", "ON", "off", "Off", "OFF":
		return true
	}
	return base60.MatchString(s)
}

var base60 = regexp.MustCompile(`^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`)

func strNode(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}

func boolNode(b bool) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(b)}
}

func seqNode(vs []string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	for _, v := range vs {
		n.Content = append(n.Content, strNode(v))
	}
	return n
}

func scalars(n *yaml.Node) []string {
	switch n.Kind {
	case yaml.ScalarNode:
		return []string{n.Value}
	case yaml.SequenceNode:
		out := make([]string, 0, len(n.Content))
		for _, c := range n.Content {
			if c.Kind == yaml.ScalarNode {
				out = append(out, c.Value)
			}
		}
		return out
	}
	return nil
}

// cloneNode deep-copies a value, resolving aliases and dropping anchors,
// comments and flow style, so that values from a user's file render the
// same way as the ones k3sctl sets.
func cloneNode(n *yaml.Node) *yaml.Node {
	if n == nil {
		return nil
	}
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	c := &yaml.Node{Kind: n.Kind, Tag: n.ShortTag(), Value: n.Value}
	if n.Kind == yaml.ScalarNode {
		c.Style = n.Style &^ (yaml.FlowStyle | yaml.TaggedStyle)
		// Folded and literal styles keep multi-line values readable; quoted
		// styles are left for the encoder to choose.
		if c.Style&(yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
			c.Style = 0
		}
		if c.Style == 0 && c.Tag == "!!str" && yaml11NonString(c.Value) {
			c.Style = yaml.DoubleQuotedStyle
		}
	}
	for _, k := range n.Content {
		c.Content = append(c.Content, cloneNode(k))
	}
	return c
}

// ParseConfig reads a config.yaml, from a user or from a node. Keys written
// key+ (append, as in config.yaml.d drop-ins) are joined into key.
func ParseConfig(data []byte) (Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return Config{}, fmt.Errorf("k3s config: %w", err)
	}
	var c Config
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return c, nil
	}
	root := doc.Content[0]
	for root.Kind == yaml.AliasNode && root.Alias != nil {
		root = root.Alias
	}
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return c, nil
	}
	if root.Kind != yaml.MappingNode {
		return Config{}, fmt.Errorf("k3s config: line %d: want a mapping of flag names to values", root.Line)
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		kn, vn := root.Content[i], root.Content[i+1]
		for vn.Kind == yaml.AliasNode && vn.Alias != nil {
			vn = vn.Alias
		}
		if kn.Kind != yaml.ScalarNode || kn.Value == "" {
			return Config{}, fmt.Errorf("k3s config: line %d: keys are flag names", kn.Line)
		}
		key, appendTo := strings.CutSuffix(kn.Value, "+")
		if strings.HasPrefix(key, "-") {
			return Config{}, fmt.Errorf("k3s config: line %d: write %q without its dashes", kn.Line, key)
		}
		if first, dup := seen[kn.Value]; dup {
			return Config{}, fmt.Errorf("k3s config: line %d: %q is already set on line %d", kn.Line, kn.Value, first)
		}
		seen[kn.Value] = kn.Line
		switch {
		case vn.Kind == yaml.ScalarNode && vn.ShortTag() == "!!null":
			// An empty key sets nothing, as with K3s.
			continue
		case IsSecretKey(key):
			if vn.Kind != yaml.ScalarNode {
				return Config{}, fmt.Errorf("k3s config: line %d: %s must be a single value", vn.Line, key)
			}
			c.SetSecret(key, secret.New(vn.Value))
		case IsBoolKey(key):
			if vn.Kind != yaml.ScalarNode {
				return Config{}, fmt.Errorf("k3s config: line %d: %s is true or false", vn.Line, key)
			}
			b, err := strconv.ParseBool(vn.Value)
			if err != nil {
				return Config{}, fmt.Errorf("k3s config: line %d: %s is true or false, not %q", vn.Line, key, vn.Value)
			}
			c.SetBool(key, b)
		case IsListKey(key) || appendTo:
			if vn.Kind == yaml.MappingNode {
				return Config{}, fmt.Errorf("k3s config: line %d: %s takes a list of values", vn.Line, key)
			}
			var items []string
			for _, it := range seqItems(vn) {
				if it.Kind != yaml.ScalarNode {
					return Config{}, fmt.Errorf("k3s config: line %d: %s takes a list of plain values", it.Line, key)
				}
				items = append(items, it.Value)
			}
			if !c.Has(key) {
				c.SetList(key, items...)
			} else {
				c.AddToList(key, items...)
			}
		default:
			if i := c.find(key); i >= 0 && c.entries[i].val != nil && c.entries[i].val.Kind == yaml.SequenceNode && vn.Kind == yaml.SequenceNode {
				// key after key+ for a list K3s does not declare.
				c.AddToList(key, scalars(vn)...)
				continue
			}
			c.put(configEntry{key: key, val: cloneNode(vn)})
		}
	}
	return c, nil
}

// ParseUserConfig is ParseConfig for a user's file of K3s settings
// (--k3s-config): each setting is also checked against the node model for
// scope s (CheckSetting), and an error names its line.
func ParseUserConfig(data []byte, s Scope) (Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil || len(doc.Content) == 0 {
		return ParseConfig(data)
	}
	root := doc.Content[0]
	for root.Kind == yaml.AliasNode && root.Alias != nil {
		root = root.Alias
	}
	for i := 0; root.Kind == yaml.MappingNode && i+1 < len(root.Content); i += 2 {
		kn, vn := root.Content[i], root.Content[i+1]
		var v any
		if err := vn.Decode(&v); err != nil {
			return Config{}, fmt.Errorf("k3s config: line %d: %s: %w", vn.Line, kn.Value, err)
		}
		if v == nil {
			continue
		}
		if err := CheckSetting(kn.Value, v, s); err != nil {
			return Config{}, fmt.Errorf("k3s config: line %d: %w", kn.Line, err)
		}
	}
	return ParseConfig(data)
}

func seqItems(n *yaml.Node) []*yaml.Node {
	if n.Kind == yaml.SequenceNode {
		out := make([]*yaml.Node, len(n.Content))
		for i, it := range n.Content {
			for it.Kind == yaml.AliasNode && it.Alias != nil {
				it = it.Alias
			}
			out[i] = it
		}
		return out
	}
	return []*yaml.Node{n}
}
