package inventory

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/k3sctl/k3sctl/internal/secret"
	"gopkg.in/yaml.v3"
)

// decoder walks the YAML node tree, keeping every problem it meets instead
// of stopping at the first.
type decoder struct {
	file     string
	dir      string
	data     []byte
	lines    []string
	env      func(string) (string, bool)
	problems []Problem

	// budget bounds how many nodes may be visited, since aliases can make a
	// small file expand exponentially.
	budget     int
	overBudget bool
}

func newDecoder(name string, data []byte, env func(string) (string, bool)) *decoder {
	return &decoder{file: name, dir: filepath.Dir(name), data: data, env: env}
}

func (d *decoder) report(n *yaml.Node, msg, hint string) {
	line, col := 1, 1
	if n != nil && n.Line > 0 {
		line, col = n.Line, max(n.Column, 1)
	}
	d.reportAt(line, col, msg, hint)
}

func (d *decoder) reportAt(line, col int, msg, hint string) {
	// The parser places an empty value at the very end of the file one
	// line past it; point at the end of the last line instead.
	if d.lines == nil {
		d.lines = splitLines(d.data)
	}
	if line > len(d.lines) {
		line, col = len(d.lines), utf8.RuneCountInString(d.lines[len(d.lines)-1])+1
	}
	col = min(col, utf8.RuneCountInString(d.lines[line-1])+1)
	d.problems = append(d.problems, Problem{File: d.file, Line: line, Col: col, Message: msg, Hint: hint})
}

func (d *decoder) pos(n *yaml.Node) Position {
	if n == nil {
		return Position{File: d.file, Line: 1, Col: 1}
	}
	return Position{File: d.file, Line: n.Line, Col: n.Column}
}

var yamlErrLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parse returns the root node of the one YAML document in the file, or nil.
func (d *decoder) parse() *yaml.Node {
	if !utf8.Valid(d.data) {
		line, col := invalidUTF8At(d.data)
		d.reportAt(line, col, "the file is not UTF-8 text", "save it as UTF-8")
		return nil
	}
	if len(bytes.TrimSpace(d.data)) == 0 {
		d.reportAt(1, 1, "the inventory is empty", "run k3sctl init to write a starter inventory")
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(d.data))
	var doc yaml.Node
	if err := safeDecode(dec, &doc); err != nil {
		if errors.Is(err, io.EOF) {
			d.reportAt(1, 1, "the inventory has no content, only comments", "run k3sctl init to write a starter inventory")
		} else {
			d.syntaxError(err)
		}
		return nil
	}
	var next yaml.Node
	switch err := safeDecode(dec, &next); {
	case err == nil:
		d.report(&next, "a second YAML document: the inventory is one document", "remove this --- and what follows, or move the clusters into the first document's clusters:")
	case !errors.Is(err, io.EOF):
		d.syntaxError(err)
	}
	if len(doc.Content) == 0 || isNull(doc.Content[0]) {
		d.reportAt(1, 1, "the inventory has no content", "run k3sctl init to write a starter inventory")
		return nil
	}
	d.budget = 10*countNodes(&doc) + 10000
	return doc.Content[0]
}

// safeDecode turns a panic in the YAML parser into an error: a malformed
// file must never crash the command that reads it.
func safeDecode(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: cannot parse this file: %v", r)
		}
	}()
	return dec.Decode(n)
}

func (d *decoder) syntaxError(err error) {
	msg := err.Error()
	line := 1
	if m := yamlErrLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	lines := splitLines(d.data)
	line = min(max(line, 1), len(lines))
	col := 1
	hint := "fix the YAML syntax: each key is followed by a colon and a space, and nesting is by indentation"
	if strings.Contains(msg, "tab") {
		hint = "indent with spaces: YAML does not allow tabs for indentation"
		// The parser names the line where the block began; the tab is
		// usually a little further down.
		for i := line - 1; i < len(lines); i++ {
			indent := lines[i][:len(lines[i])-len(strings.TrimLeft(lines[i], " \t"))]
			if j := strings.IndexByte(indent, '\t'); j >= 0 {
				line, col = i+1, j+1
				break
			}
		}
	}
	d.reportAt(line, col, "YAML syntax error: "+msg, hint)
}

// splitLines splits data at every character YAML treats as a line break, so
// line numbers agree with the parser's.
func splitLines(data []byte) []string {
	s := string(data)
	var lines []string
	start := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch r {
		case '\r':
			lines = append(lines, s[start:i])
			if i+1 < len(s) && s[i+1] == '\n' {
				size = 2
			}
			start = i + size
		case '\n', '\u0085', '\u2028', '\u2029':
			lines = append(lines, s[start:i])
			start = i + size
		}
		i += size
	}
	return append(lines, s[start:])
}

func invalidUTF8At(data []byte) (line, col int) {
	i := 0
	for i < len(data) {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size <= 1 {
			break
		}
		i += size
	}
	lines := splitLines(data[:i])
	return len(lines), utf8.RuneCountInString(lines[len(lines)-1]) + 1
}

func countNodes(n *yaml.Node) int {
	c := 1
	for _, ch := range n.Content {
		c += countNodes(ch)
	}
	return c
}

// spend takes one node from the budget and reports when it runs out.
func (d *decoder) spend(n *yaml.Node) bool {
	if d.budget > 0 {
		d.budget--
		return true
	}
	if !d.overBudget {
		d.overBudget = true
		d.report(n, "aliases expand to too much data", "use fewer nested aliases")
	}
	return false
}

// deref follows aliases to the node they name.
func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names the YAML type of n for messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!int", "!!float":
			return "a number"
		case "!!bool":
			return "true/false"
		case "!!null":
			return "empty"
		}
		return "text"
	}
	return "not a value"
}

// fields is a decoded mapping: each accepted key's value and key node.
type fields struct {
	node *yaml.Node
	val  map[string]*yaml.Node
	key  map[string]*yaml.Node
	// meant holds keys that an unknown key was taken to be a typo of, so
	// "adress" is not also reported as a missing address.
	meant map[string]bool
}

// missing reports whether k is absent and no typo of it was reported.
func (f fields) missing(k string) bool { return f.val[k] == nil && !f.meant[k] }

func (f fields) has(k string) bool { return f.val[k] != nil }

type pair struct{ key, val *yaml.Node }

// pairs lists a mapping's entries with YAML merge keys (<<: *anchor) applied:
// written keys win over merged ones. It reports keys that are not text and
// written keys that repeat.
func (d *decoder) pairs(m *yaml.Node) []pair {
	var written, merged []pair
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := deref(m.Content[i]), m.Content[i+1]
		if k == nil || !d.spend(k) {
			return nil
		}
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merged = append(merged, d.mergeSources(v)...)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.report(k, fmt.Sprintf("a key must be a name, not %s", describe(k)), "write name: value")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.report(k, fmt.Sprintf("duplicate key %q (first at line %d)", k.Value, first.Line), "keep one of them")
			continue
		}
		seen[k.Value] = k
		written = append(written, pair{k, v})
	}
	for _, p := range merged {
		if _, ok := seen[p.key.Value]; !ok {
			seen[p.key.Value] = p.key
			written = append(written, p)
		}
	}
	return written
}

func (d *decoder) mergeSources(v *yaml.Node) []pair {
	v = deref(v)
	switch {
	case v == nil:
		return nil
	case v.Kind == yaml.MappingNode:
		return d.pairs(v)
	case v.Kind == yaml.SequenceNode:
		var out []pair
		for _, item := range v.Content {
			if item = deref(item); item != nil && item.Kind == yaml.MappingNode {
				out = append(out, d.pairs(item)...)
				continue
			}
			d.report(item, "<< merges mappings only", "write <<: *anchor or <<: [*a, *b]")
		}
		return out
	}
	d.report(v, "<< merges mappings only", "write <<: *anchor or <<: [*a, *b]")
	return nil
}

// fields decodes a mapping of kind obj, reporting unknown keys. what names
// the value for a type error; example shows a correct one.
func (d *decoder) fields(n *yaml.Node, obj object, what, example string) (fields, bool) {
	n = deref(n)
	f := fields{node: n, val: map[string]*yaml.Node{}, key: map[string]*yaml.Node{}, meant: map[string]bool{}}
	if n == nil {
		return f, false
	}
	if n.Kind != yaml.MappingNode {
		if isNull(n) {
			return f, true
		}
		d.report(n, fmt.Sprintf("%s must be a mapping, not %s", what, describe(n)), "write "+example)
		return f, false
	}
	allowed := objectKeys[obj]
	for _, p := range d.pairs(n) {
		k := p.key.Value
		if obj == objInventory && strings.HasPrefix(k, extensionPrefix) {
			continue
		}
		if !containsString(allowed, k) {
			d.report(p.key, fmt.Sprintf("unknown key %q %s", k, where[obj]), unknownKeyHint(obj, k))
			if s := closest(k, allowed); s != "" {
				f.meant[s] = true
			}
			continue
		}
		f.val[k] = p.val
		f.key[k] = p.key
	}
	return f, true
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// scalar returns n as a scalar, reporting anything else.
func (d *decoder) scalar(n *yaml.Node, what, want, example string) (*yaml.Node, bool) {
	n = deref(n)
	switch {
	case n == nil:
		return nil, false
	case n.Kind != yaml.ScalarNode:
		d.report(n, fmt.Sprintf("%s must be %s, not %s", what, want, describe(n)), "write "+example)
		return nil, false
	case isNull(n):
		d.report(n, fmt.Sprintf("%s has no value", what), "write "+example+", or remove the key")
		return nil, false
	case !knownScalarTag(n.ShortTag()):
		d.report(n, fmt.Sprintf("%s has the unsupported YAML tag %s", what, n.Tag), "remove the tag")
		return nil, false
	}
	return n, true
}

func knownScalarTag(t string) bool {
	switch t {
	case "!!str", "!!int", "!!float", "!!bool", "!!null", "!!timestamp":
		return true
	}
	return false
}

// str decodes a scalar as text with ${VAR} expanded. Numbers and booleans
// are taken as written: name: 1 is the name "1".
func (d *decoder) str(n *yaml.Node, what, example string) (string, bool) {
	return d.text(n, what, example, false)
}

func (d *decoder) text(n *yaml.Node, what, example string, isSecret bool) (string, bool) {
	s, ok := d.scalar(n, what, "text", example)
	if !ok {
		return "", false
	}
	if s.ShortTag() != "!!str" {
		return s.Value, true
	}
	return d.expand(s, s.Value, isSecret)
}

func (d *decoder) expand(n *yaml.Node, s string, isSecret bool) (string, bool) {
	out, errs := expandEnv(s, d.env, isSecret)
	for _, e := range errs {
		d.report(n, e.msg, e.hint)
	}
	return out, len(errs) == 0
}

// int decodes a whole number; text is accepted only when it came from ${VAR},
// since environment variables are always text.
func (d *decoder) int(n *yaml.Node, what, example string) (int, bool) {
	s, ok := d.scalar(n, what, "a number", example)
	if !ok {
		return 0, false
	}
	v := s.Value
	switch tag := s.ShortTag(); {
	case tag == "!!str" && strings.Contains(v, "${"):
		if v, ok = d.expand(s, v, false); !ok {
			return 0, false
		}
	case tag != "!!int":
		d.report(s, fmt.Sprintf("%s must be a whole number, not %s", what, describe(s)), "write "+example)
		return 0, false
	}
	i, err := strconv.ParseInt(strings.ReplaceAll(v, "_", ""), 0, 64)
	if err != nil || i != int64(int(i)) {
		d.report(s, fmt.Sprintf("%s must be a whole number, not %q", what, v), "write "+example)
		return 0, false
	}
	return int(i), true
}

// boolean decodes true or false; text is accepted only when it came from
// ${VAR}, since environment variables are always text.
func (d *decoder) boolean(n *yaml.Node, what, example string) (bool, bool) {
	s, ok := d.scalar(n, what, "true or false", example)
	if !ok {
		return false, false
	}
	v := s.Value
	switch tag := s.ShortTag(); {
	case tag == "!!str" && strings.Contains(v, "${"):
		if v, ok = d.expand(s, v, false); !ok {
			return false, false
		}
	case tag != "!!bool":
		d.report(s, fmt.Sprintf("%s must be true or false, not %s", what, describe(s)), "write "+example)
		return false, false
	}
	b, err := strconv.ParseBool(strings.ToLower(v))
	if err != nil {
		d.report(s, fmt.Sprintf("%s must be true or false, not %q", what, v), "write "+example)
		return false, false
	}
	return b, true
}

// list returns the items of a list; empty (null) is an empty list.
func (d *decoder) list(n *yaml.Node, what, example string) ([]*yaml.Node, bool) {
	n = deref(n)
	switch {
	case n == nil || isNull(n):
		return nil, true
	case n.Kind != yaml.SequenceNode:
		d.report(n, fmt.Sprintf("%s must be a list, not %s", what, describe(n)), "write "+example)
		return nil, false
	}
	items := make([]*yaml.Node, 0, len(n.Content))
	for _, it := range n.Content {
		if !d.spend(it) {
			return items, false
		}
		items = append(items, it)
	}
	return items, true
}

// value decodes any YAML value for a K3s setting. Text under a key naming a
// token, password or secret becomes a secret.Value.
func (d *decoder) value(n *yaml.Node, key string) (any, bool) {
	n = deref(n)
	if n == nil || !d.spend(n) {
		return nil, false
	}
	switch n.Kind {
	case yaml.ScalarNode:
		s, ok := d.scalar(n, key, "a value", key+": <value>")
		if !ok {
			return nil, false
		}
		switch s.ShortTag() {
		case "!!str", "!!timestamp":
			sec := isSecretKey(key)
			v, ok := d.text(s, key, key+": <value>", sec)
			if sec {
				return secret.New(v), ok
			}
			return v, ok
		case "!!bool":
			b, err := strconv.ParseBool(strings.ToLower(s.Value))
			if err != nil {
				return s.Value, true
			}
			return b, true
		}
		var v any
		if err := s.Decode(&v); err != nil {
			return s.Value, true
		}
		return v, true
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		ok := true
		for _, it := range n.Content {
			v, itemOK := d.value(it, key)
			ok = ok && itemOK
			out = append(out, v)
		}
		return out, ok
	case yaml.MappingNode:
		out := map[string]any{}
		ok := true
		for _, p := range d.pairs(n) {
			v, itemOK := d.value(p.val, p.key.Value)
			ok = ok && itemOK
			out[p.key.Value] = v
		}
		return out, ok
	}
	return nil, false
}

// isSecretKey reports whether a setting holds a secret: its name says token,
// password or secret (agent-token, etcd-s3-secret-key), or it is a database
// URL, which usually carries a password.
func isSecretKey(key string) bool {
	if strings.TrimSuffix(key, "+") == "datastore-endpoint" {
		return true
	}
	for w := range strings.FieldsFuncSeq(strings.ToLower(strings.TrimSuffix(key, "+")), func(r rune) bool {
		return r == '-' || r == '_' || r == '.'
	}) {
		switch w {
		case "token", "password", "passwd", "secret":
			return true
		}
	}
	return false
}
