package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// A JSONPath subset as kubectl's -o jsonpath takes it: fields, [n], [*],
// [a:b], [?(@.k=="v")], {range ...}{end} and quoted literals.

type jpNode struct {
	text  string
	expr  string
	lit   bool
	rng   bool
	body  []jpNode
	isTxt bool
}

func parseJSONPath(tmpl string) ([]jpNode, error) {
	var stack [][]jpNode
	var cur []jpNode
	var rngExpr []string
	for len(tmpl) > 0 {
		i := strings.IndexByte(tmpl, '{')
		if i < 0 {
			cur = append(cur, jpNode{text: tmpl, isTxt: true})
			break
		}
		if i > 0 {
			cur = append(cur, jpNode{text: tmpl[:i], isTxt: true})
		}
		j, inQuote := i+1, byte(0)
		for ; j < len(tmpl); j++ {
			c := tmpl[j]
			if inQuote != 0 {
				if c == '\\' {
					j++
				} else if c == inQuote {
					inQuote = 0
				}
				continue
			}
			if c == '"' || c == '\'' {
				inQuote = c
			} else if c == '}' {
				break
			}
		}
		if j >= len(tmpl) {
			return nil, fmt.Errorf("unclosed action")
		}
		action := strings.TrimSpace(tmpl[i+1 : j])
		tmpl = tmpl[j+1:]
		switch {
		case strings.HasPrefix(action, "range "):
			stack = append(stack, cur)
			rngExpr = append(rngExpr, strings.TrimSpace(action[6:]))
			cur = nil
		case action == "end":
			if len(stack) == 0 {
				return nil, fmt.Errorf("not in range, nothing to end")
			}
			n := jpNode{rng: true, expr: rngExpr[len(rngExpr)-1], body: cur}
			cur = append(stack[len(stack)-1], n)
			stack, rngExpr = stack[:len(stack)-1], rngExpr[:len(rngExpr)-1]
		case strings.HasPrefix(action, `"`) || strings.HasPrefix(action, "'"):
			s := action
			if s[0] == '\'' {
				s = `"` + strings.ReplaceAll(s[1:len(s)-1], `"`, `\"`) + `"`
			}
			u, err := strconv.Unquote(s)
			if err != nil {
				return nil, fmt.Errorf("invalid literal %s", action)
			}
			cur = append(cur, jpNode{text: u, lit: true})
		default:
			cur = append(cur, jpNode{expr: action})
		}
	}
	if len(stack) > 0 {
		return nil, fmt.Errorf("unclosed range")
	}
	return cur, nil
}

func evalJSONPath(tmpl string, data any) (string, error) {
	nodes, err := parseJSONPath(tmpl)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := execJSONPath(&b, nodes, data, data); err != nil {
		return "", err
	}
	return b.String(), nil
}

func execJSONPath(b *strings.Builder, nodes []jpNode, root, cur any) error {
	for _, n := range nodes {
		switch {
		case n.isTxt || n.lit:
			b.WriteString(n.text)
		case n.rng:
			vals, err := jpEval(n.expr, root, cur)
			if err != nil {
				return err
			}
			for _, v := range vals {
				if err := execJSONPath(b, n.body, root, v); err != nil {
					return err
				}
			}
		default:
			vals, err := jpEval(n.expr, root, cur)
			if err != nil {
				return err
			}
			for i, v := range vals {
				if i > 0 {
					b.WriteByte(' ')
				}
				b.WriteString(jpString(v))
			}
		}
	}
	return nil
}

func jpString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		if x == float64(int64(x)) {
			return strconv.FormatInt(int64(x), 10)
		}
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	bs, _ := json.Marshal(v)
	return string(bs)
}

func jpEval(expr string, root, cur any) ([]any, error) {
	vals := []any{cur}
	switch {
	case strings.HasPrefix(expr, "$"):
		vals, expr = []any{root}, expr[1:]
	case strings.HasPrefix(expr, "@"):
		expr = expr[1:]
	}
	for len(expr) > 0 {
		switch expr[0] {
		case '.':
			expr = expr[1:]
			end := strings.IndexAny(expr, ".[")
			if end < 0 {
				end = len(expr)
			}
			name := expr[:end]
			expr = expr[end:]
			if name == "" {
				continue
			}
			vals = jpField(vals, name)
		case '[':
			end := matchingBracket(expr)
			if end < 0 {
				return nil, fmt.Errorf("unterminated array")
			}
			inner := strings.TrimSpace(expr[1:end])
			expr = expr[end+1:]
			var err error
			if vals, err = jpIndex(vals, inner, root); err != nil {
				return nil, err
			}
		default:
			end := strings.IndexAny(expr, ".[")
			if end < 0 {
				end = len(expr)
			}
			vals = jpField(vals, expr[:end])
			expr = expr[end:]
		}
	}
	return vals, nil
}

func matchingBracket(s string) int {
	depth, quote := 0, byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if quote != 0 {
			if c == quote {
				quote = 0
			}
			continue
		}
		switch c {
		case '"', '\'':
			quote = c
		case '[':
			depth++
		case ']':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

func jpField(vals []any, name string) []any {
	var out []any
	for _, v := range vals {
		m, ok := v.(map[string]any)
		if !ok {
			continue
		}
		if name == "*" {
			keys := make([]string, 0, len(m))
			for k := range m {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				out = append(out, m[k])
			}
			continue
		}
		if x, ok := m[name]; ok {
			out = append(out, x)
		}
	}
	return out
}

func jpIndex(vals []any, inner string, root any) ([]any, error) {
	var out []any
	for _, v := range vals {
		switch {
		case inner == "*":
			switch x := v.(type) {
			case []any:
				out = append(out, x...)
			case map[string]any:
				out = append(out, jpField([]any{x}, "*")...)
			}
		case strings.HasPrefix(inner, "?(") && strings.HasSuffix(inner, ")"):
			arr, _ := v.([]any)
			for _, el := range arr {
				ok, err := jpFilter(inner[2:len(inner)-1], root, el)
				if err != nil {
					return nil, err
				}
				if ok {
					out = append(out, el)
				}
			}
		case strings.HasPrefix(inner, "'") || strings.HasPrefix(inner, `"`):
			out = append(out, jpField([]any{v}, strings.Trim(inner, `'"`))...)
		default:
			arr, ok := v.([]any)
			if !ok {
				continue
			}
			if a, bnd, isSlice := strings.Cut(inner, ":"); isSlice {
				start, end := 0, len(arr)
				if a != "" {
					start, _ = strconv.Atoi(a)
				}
				if bnd != "" {
					end, _ = strconv.Atoi(bnd)
				}
				if start < 0 {
					start += len(arr)
				}
				if end < 0 {
					end += len(arr)
				}
				start, end = max(0, min(start, len(arr))), max(0, min(end, len(arr)))
				if start < end {
					out = append(out, arr[start:end]...)
				}
				continue
			}
			i, err := strconv.Atoi(inner)
			if err != nil {
				return nil, fmt.Errorf("invalid array index %s", inner)
			}
			if i < 0 {
				i += len(arr)
			}
			if i < 0 || i >= len(arr) {
				return nil, fmt.Errorf("array index out of bounds: index %s, length %d", inner, len(arr))
			}
			out = append(out, arr[i])
		}
	}
	return out, nil
}

func jpFilter(cond string, root, el any) (bool, error) {
	for _, op := range []string{"==", "!="} {
		l, r, ok := strings.Cut(cond, op)
		if !ok {
			continue
		}
		lv, err := jpEval(strings.TrimSpace(l), root, el)
		if err != nil {
			return false, err
		}
		want := strings.TrimSpace(r)
		if uq, err := strconv.Unquote(want); err == nil {
			want = uq
		} else {
			want = strings.Trim(want, "'")
		}
		eq := len(lv) > 0 && jpString(lv[0]) == want
		if op == "==" {
			return eq, nil
		}
		return !eq, nil
	}
	lv, err := jpEval(strings.TrimSpace(cond), root, el)
	return len(lv) > 0, err
}
