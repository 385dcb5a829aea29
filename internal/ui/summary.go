package ui

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/k3sctl/k3sctl/internal/apply"
)

// statusOrder is the order counts are given in: good news first, then what
// needs a look.
var statusOrder = []apply.HostStatus{
	apply.StatusDone,
	apply.StatusUnchanged,
	apply.StatusFailed,
	apply.StatusSkipped,
	apply.StatusCancelled,
	apply.StatusRefused,
}

// summaryHeader names the columns of the summary table in every mode.
var summaryHeader = []string{"CLUSTER", "HOST", "ROLE", "ACTION", "STATUS", "ELAPSED", "ERROR"}

func summaryRow(r apply.HostResult) []string {
	return []string{
		r.Cluster, r.Host, r.Role, r.Action, string(r.Status),
		formatElapsed(r.Elapsed), firstLine(r.Error),
	}
}

// summaryRows is the summary table, header first, and the index of its
// status column. A rollout in waves gets a WAVE column after CLUSTER.
func summaryRows(results []apply.HostResult) ([][]string, int) {
	waves := false
	for _, r := range results {
		waves = waves || r.Wave != ""
	}
	rows := [][]string{summaryHeader}
	for _, r := range results {
		rows = append(rows, summaryRow(r))
	}
	if !waves {
		return rows, 4
	}
	for i, row := range rows {
		wave := "WAVE"
		if i > 0 {
			wave = results[i-1].Wave
		}
		rows[i] = append([]string{row[0], wave}, row[1:]...)
	}
	return rows, 5
}

// firstLine keeps a table cell to one line; the rest of an error, such as
// its hint, was shown with the host.
func firstLine(s string) string {
	if lines := cleanLines(s); len(lines) > 0 {
		return lines[0]
	}
	return ""
}

// summaryTotals reads like "5 hosts: 2 done, 1 failed, 2 skipped".
func summaryTotals(results []apply.HostResult, took time.Duration) string {
	counts := map[apply.HostStatus]int{}
	for _, r := range results {
		counts[r.Status]++
	}
	var parts []string
	for _, s := range statusOrder {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
			delete(counts, s)
		}
	}
	// Statuses added to the contract later still get counted.
	for _, s := range slices.Sorted(maps.Keys(counts)) {
		parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
	}
	line := plural(len(results), "host")
	if len(parts) > 0 {
		line += ": " + strings.Join(parts, ", ")
	}
	if took > 0 {
		line += " in " + formatElapsed(took)
	}
	return line
}
