package plan

import (
	"fmt"
	"strings"
)

// diffContext is how many unchanged lines are shown around a change.
const diffContext = 2

// maxDiffCells bounds the work of a diff (lines old × lines new): a file
// that large is summarised by size and hash only.
const maxDiffCells = 4_000_000

// Diff is a line diff of old and new for people: changed lines marked "-"
// and "+", a few unchanged lines around them marked " ", and "@@ line N"
// before each group. Empty when the contents are equal.
func Diff(old, new []byte) string {
	a, b := splitLines(old), splitLines(new)
	if len(a)*len(b) > maxDiffCells {
		return fmt.Sprintf("(too large to show: %d → %d lines)\n", len(a), len(b))
	}
	// lcs[i][j] is the longest common subsequence of a[i:] and b[j:].
	lcs := make([][]int32, len(a)+1)
	for i := range lcs {
		lcs[i] = make([]int32, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	type line struct {
		mark byte
		text string
		at   int // line number in new (old for removed lines)
	}
	var lines []line
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case i < len(a) && j < len(b) && a[i] == b[j]:
			lines = append(lines, line{' ', a[i], j + 1})
			i, j = i+1, j+1
		case i < len(a) && (j == len(b) || lcs[i+1][j] >= lcs[i][j+1]):
			// Removed lines first, as people read a change.
			lines = append(lines, line{'-', a[i], i + 1})
			i++
		default:
			lines = append(lines, line{'+', b[j], j + 1})
			j++
		}
	}
	show := make([]bool, len(lines))
	for k, l := range lines {
		if l.mark != ' ' {
			for d := max(0, k-diffContext); d <= min(len(lines)-1, k+diffContext); d++ {
				show[d] = true
			}
		}
	}
	var out strings.Builder
	for k, l := range lines {
		if !show[k] {
			continue
		}
		if k == 0 || !show[k-1] {
			fmt.Fprintf(&out, "@@ line %d\n", l.at)
		}
		out.WriteByte(l.mark)
		out.WriteString(l.text)
		out.WriteByte('\n')
	}
	return out.String()
}

func splitLines(b []byte) []string {
	s := strings.TrimSuffix(string(b), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}
