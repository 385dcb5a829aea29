package inventory

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Position is where something was written in an inventory file. Line and Col
// start at 1.
type Position struct {
	File string
	Line int
	Col  int
}

func (p Position) String() string { return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col) }

// Problem is one mistake in an inventory file. Hint says what to write
// instead when there is an obvious fix.
type Problem struct {
	File    string
	Line    int
	Col     int
	Message string
	Hint    string
}

// String prints the problem the way compilers do, so editors can jump to it.
func (p Problem) String() string {
	s := fmt.Sprintf("%s:%d:%d: %s", p.File, p.Line, p.Col, p.Message)
	if p.Hint != "" {
		s += " (" + p.Hint + ")"
	}
	return s
}

// ValidationError carries every problem found in an inventory, so a user
// fixes them all in one pass instead of one per run.
type ValidationError struct {
	Problems []Problem
}

// Error prints one problem per line, in file order.
func (e *ValidationError) Error() string {
	ps := slices.Clone(e.Problems)
	sortProblems(ps)
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

func sortProblems(ps []Problem) {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		return cmp.Or(
			cmp.Compare(a.File, b.File),
			cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Col, b.Col),
			cmp.Compare(a.Message, b.Message),
		)
	})
}
