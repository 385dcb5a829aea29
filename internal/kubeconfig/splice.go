package kubeconfig

import (
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Text editing of a kubeconfig. Re-encoding a whole file with yaml.v3
// would re-indent every list and move comments; here only the lines of the
// entries that change are rewritten. It handles the block layout kubectl
// and most people write; for anything else it gives up (ok = false) and
// the caller re-encodes.

type lineEdit struct {
	from, to int // replace lines[from:to]; from == to inserts
	seq      int // order of insertions at one position
	text     []string
}

type textDoc struct {
	lines []string // without line ends
	crlf  bool
	edits []lineEdit
	seq   int
}

func (d *textDoc) replace(from, to int, text []string) {
	d.edits = append(d.edits, lineEdit{from: from, to: to, seq: d.seq, text: text})
	d.seq++
}

func (d *textDoc) result() ([]byte, bool) {
	sort.SliceStable(d.edits, func(i, j int) bool {
		if d.edits[i].from != d.edits[j].from {
			return d.edits[i].from < d.edits[j].from
		}
		return d.edits[i].seq < d.edits[j].seq
	})
	var out []string
	pos := 0
	for _, e := range d.edits {
		if e.from < pos {
			return nil, false // overlapping edits: a layout this code misread
		}
		out = append(out, d.lines[pos:e.from]...)
		out = append(out, e.text...)
		pos = e.to
	}
	out = append(out, d.lines[pos:]...)
	eol := "\n"
	if d.crlf {
		eol = "\r\n"
	}
	return []byte(strings.Join(out, eol) + eol), true
}

// indentOf counts leading spaces; -1 for a blank line.
func indentOf(l string) int {
	t := strings.TrimLeft(l, " ")
	if strings.TrimSpace(t) == "" {
		return -1
	}
	return len(l) - len(t)
}

func isComment(l string) bool { return strings.HasPrefix(strings.TrimSpace(l), "#") }

// trailing reports whether a line after a block belongs to what follows
// rather than to the block: blank, or a comment no deeper than col.
func trailing(l string, col int) bool {
	in := indentOf(l)
	return in < 0 || isComment(l) && in <= col
}

func spliceText(src []byte, root *yaml.Node, ch change) ([]byte, bool) {
	if root.Style&yaml.FlowStyle != 0 || len(root.Content) == 0 {
		return nil, false
	}
	text := strings.TrimSuffix(string(src), "\n")
	d := &textDoc{lines: strings.Split(text, "\n")}
	d.crlf = strings.HasSuffix(d.lines[0], "\r")
	for i, l := range d.lines {
		d.lines[i] = strings.TrimSuffix(l, "\r")
		if t := strings.TrimSpace(l); t == "..." || (t == "---" && i > 0) {
			return nil, false
		}
	}

	keyCol := root.Content[0].Column - 1
	type topKey struct {
		name       string
		key, val   *yaml.Node
		line, next int // line of the key; line of the next key (or EOF)
	}
	var keys []topKey
	for i := 0; i+1 < len(root.Content); i += 2 {
		k := root.Content[i]
		if k.Column-1 != keyCol || k.Kind != yaml.ScalarNode || (len(keys) > 0 && k.Line-1 <= keys[len(keys)-1].line) {
			return nil, false
		}
		keys = append(keys, topKey{name: k.Value, key: k, val: root.Content[i+1], line: k.Line - 1})
	}
	for i := range keys {
		keys[i].next = len(d.lines)
		if i+1 < len(keys) {
			keys[i].next = keys[i+1].line
		}
	}
	find := func(name string) *topKey {
		for i := range keys {
			if keys[i].name == name {
				return &keys[i]
			}
		}
		return nil
	}
	// end of a key's block: its last line that is not blank or a comment
	// leading into the next key.
	blockEnd := func(k *topKey, col int) int {
		end := k.next
		for end-1 > k.line && trailing(d.lines[end-1], col) {
			end--
		}
		return end
	}
	eof := len(d.lines)
	pad := strings.Repeat(" ", keyCol)

	// Where current-context goes when the file has none: after contexts.
	ccAt := -1
	for _, s := range sections {
		k := find(s.list)
		switch {
		case k == nil && ch.add == nil:
		case k == nil:
			lines := []string{pad + s.list + ":"}
			lines = append(lines, renderItem(ch.add[s.list], keyCol)...)
			d.replace(eof, eof, lines)
			if s.list == "contexts" {
				ccAt = eof
			}
		case k.val.Kind == yaml.SequenceNode && k.val.Style&yaml.FlowStyle == 0 && len(k.val.Content) > 0:
			end, ok := spliceList(d, k.line, k.next, k.val, ch, s.list)
			if !ok {
				return nil, false
			}
			if s.list == "contexts" {
				ccAt = end
			}
		default:
			// null, [] or a flow list: rewrite the key's block whole.
			items := newItems(k.val.Content, ch, s.list)
			if len(items) == len(k.val.Content) && ch.add == nil {
				continue
			}
			end := blockEnd(k, keyCol)
			lines := []string{pad + s.list + ":"}
			if len(items) == 0 {
				lines[0] += " []"
			}
			for _, it := range items {
				lines = append(lines, renderItem(plainCopy(it), keyCol)...)
			}
			d.replace(k.line, end, lines)
			if s.list == "contexts" {
				ccAt = end
			}
		}
	}

	if ch.setCurrent {
		line := renderValueLine(pad, "current-context", strNode(ch.current))
		if k := find("current-context"); k != nil {
			if k.val.Line != k.key.Line || k.val.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 || blockEnd(k, keyCol) != k.line+1 {
				return nil, false
			}
			if c := lineComment(k.key, k.val); c != "" {
				line += " " + c
			}
			d.replace(k.line, k.line+1, []string{line})
		} else {
			if ccAt < 0 {
				ccAt = eof
			}
			d.replace(ccAt, ccAt, []string{line})
		}
	}
	if len(d.edits) == 0 {
		return src, true
	}
	return d.result()
}

func lineComment(ns ...*yaml.Node) string {
	for _, n := range ns {
		if n.LineComment != "" {
			return n.LineComment
		}
	}
	return ""
}

// spliceList edits a block list of entries in place and returns the line
// after its last entry.
func spliceList(d *textDoc, keyLine, next int, seq *yaml.Node, ch change, list string) (int, bool) {
	type item struct {
		head, dash, end int // first line (head comments), dash line, line after its content
		name            string
	}
	items := make([]item, len(seq.Content))
	dashCol := -1
	for i, n := range seq.Content {
		dash := n.Line - 1
		prefix := []rune(d.lines[dash])
		if n.Column-1 > len(prefix) {
			return 0, false
		}
		if strings.TrimSpace(string(prefix[:n.Column-1])) != "-" {
			// "-" alone on the line above the entry.
			dash--
			for dash > keyLine && indentOf(d.lines[dash]) < 0 {
				dash--
			}
			if dash <= keyLine || strings.TrimSpace(d.lines[dash]) != "-" {
				return 0, false
			}
		}
		col := strings.Index(d.lines[dash], "-")
		if dashCol >= 0 && col != dashCol {
			return 0, false
		}
		dashCol = col
		head := dash
		for head-1 > keyLine && isComment(d.lines[head-1]) && indentOf(d.lines[head-1]) == dashCol {
			head--
		}
		if i > 0 && head <= items[i-1].dash {
			return 0, false
		}
		items[i] = item{head: head, dash: dash, name: scalarValue(mapGet(n, "name"))}
	}
	// Where the list ends: before blank lines and comments that lead into
	// the next key.
	listEnd := next
	last := items[len(items)-1].dash
	for listEnd-1 > last && trailing(d.lines[listEnd-1], dashCol) {
		listEnd--
	}
	for i := range items {
		limit := listEnd
		if i+1 < len(items) {
			limit = items[i+1].head
		}
		end := limit
		for end-1 > items[i].dash && trailing(d.lines[end-1], dashCol) {
			end--
		}
		items[i].end = end
	}

	add := ch.add[list]
	placed, kept := false, 0
	for i, it := range items {
		if it.name != ch.name {
			kept++
			continue
		}
		if add != nil && !placed {
			d.replace(it.dash, it.end, renderItem(add, dashCol))
			placed = true
			kept++
			continue
		}
		// Drop the entry with its head comments and the blank lines after it.
		to := listEnd
		if i+1 < len(items) {
			to = items[i+1].head
		}
		d.replace(it.head, to, nil)
	}
	if add != nil && !placed {
		d.replace(listEnd, listEnd, renderItem(add, dashCol))
		kept++
	}
	if kept == 0 {
		// Nothing left: say so, or the key would read as null.
		l := d.lines[keyLine]
		if strings.TrimSpace(strings.SplitN(l, "#", 2)[0]) != list+":" {
			return 0, false
		}
		d.replace(keyLine, keyLine+1, []string{strings.Repeat(" ", indentOf(l)) + list + ": []"})
	}
	return listEnd, true
}
