package ui

import (
	"fmt"
	"strings"
	"time"

	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/k3sctl/k3sctl/internal/apply"
)

const (
	elapsedW = 6
	// progressTextW fits "100%  999.9 MB / 999.9 MB  999.9 MB/s", so the bar
	// keeps its width while the numbers change.
	progressTextW = 38
	maxBarW       = 30
	minBarW       = 10
)

// spin is one spinner shared by every row; its frame comes from the clock,
// so a view drawn at a given time always looks the same.
var spin = spinner.MiniDot

func spinnerFrame(now time.Time) string {
	i := now.UnixNano() / int64(spin.FPS)
	return spin.Frames[int(i%int64(len(spin.Frames)))]
}

func (m *model) View() tea.View {
	if m.finished || m.left {
		// Everything worth keeping was printed above; an empty view clears
		// the live area on the way out.
		return tea.NewView("")
	}
	return tea.NewView(m.live())
}

// live draws the hosts that are running or waiting, grouped by cluster,
// within the terminal's height; the footer counts the rest.
func (m *model) live() string {
	now := m.now()
	footer := m.footer()
	// One row stays free: a view as tall as the terminal would push its own
	// top into the scrollback whenever a finished host is printed above it.
	budget := m.height - len(footer) - 1
	shown, hidden := m.visible(budget)

	var lines []string
	if len(m.order) == 0 {
		lines = append(lines, "  "+m.st.accent.Render(spinnerFrame(now))+" starting")
	}
	hostW, roleW, stepW := 0, len("server"), len("queued")
	for h := range shown {
		hostW = max(hostW, ansi.StringWidth(h.key.host))
		roleW = max(roleW, ansi.StringWidth(h.role))
		stepW = max(stepW, ansi.StringWidth(h.step))
	}
	hostW, stepW = min(hostW, 40), min(stepW, 24)

	// One pass over the hosts: the view is drawn after every event, and a
	// fleet can have thousands of hosts.
	type group struct {
		rows            []*hostRow
		total, finished int
	}
	groups := map[string]*group{}
	for _, h := range m.order {
		g := groups[h.key.cluster]
		if g == nil {
			g = &group{}
			groups[h.key.cluster] = g
		}
		g.total++
		if h.phase == phaseDone || h.phase == phaseFailed {
			g.finished++
		}
		if shown[h] {
			g.rows = append(g.rows, h)
		}
	}
	for _, c := range m.clusters {
		g := groups[c]
		if g == nil || len(g.rows) == 0 {
			continue
		}
		if c != "" {
			lines = append(lines, m.st.bold.Render(c)+"  "+
				m.st.faint.Render(fmt.Sprintf("%d of %d finished", g.finished, g.total)))
		}
		for _, h := range g.rows {
			lines = append(lines, m.row(h, now, hostW, roleW, stepW))
		}
	}
	footer[0] = m.countLine(now, hidden)
	lines = append(lines, footer...)
	for i, l := range lines {
		lines[i] = strings.TrimRight(ansi.Truncate(l, m.width, "…"), " ")
	}
	return strings.Join(lines, "\n")
}

// visible picks the rows that fit: running hosts first, then waiting ones,
// each cluster costing a header row the first time.
func (m *model) visible(budget int) (map[*hostRow]bool, int) {
	shown := map[*hostRow]bool{}
	var candidates []*hostRow
	for _, h := range m.order {
		if h.phase == phaseRunning || h.phase == phaseFailing {
			candidates = append(candidates, h)
		}
	}
	for _, h := range m.order {
		if h.phase == phaseQueued {
			candidates = append(candidates, h)
		}
	}
	headed := map[string]bool{}
	used := 0
	for _, h := range candidates {
		cost := 1
		if h.key.cluster != "" && !headed[h.key.cluster] {
			cost++
		}
		// A host that does not fit may leave room for one of a cluster
		// that already has its header.
		if used+cost > budget {
			continue
		}
		used += cost
		headed[h.key.cluster] = true
		shown[h] = true
	}
	return shown, len(candidates) - len(shown)
}

func (m *model) row(h *hostRow, now time.Time, hostW, roleW, stepW int) string {
	var icon, step, detail, elapsed string
	avail := 0
	switch h.phase {
	case phaseQueued:
		icon = m.st.faint.Render("·")
		step = m.st.faint.Render("queued")
	case phaseFailing:
		icon = m.st.fail.Render("✗")
		step = h.step
		elapsed = since(h.started, now)
	default:
		icon = m.st.accent.Render(spinnerFrame(now))
		step = h.step
		elapsed = since(h.started, now)
	}
	left := "  " + icon + " " + pad(h.key.host, hostW) + "  " + pad(m.st.faint.Render(h.role), roleW) + "  " + pad(ansi.Truncate(step, stepW, "…"), stepW)
	avail = m.width - ansi.StringWidth(left) - 2 - 1 - elapsedW
	switch {
	case avail <= 0:
	case h.phase == phaseQueued:
		detail = m.st.faint.Render(h.note)
	case h.phase == phaseFailing:
		detail = m.st.fail.Render(cleanLine(h.err))
	case h.phase == phaseRunning && h.uploading:
		detail = m.progress(h, avail)
	case h.phase == phaseRunning && h.note != "":
		detail = m.st.faint.Render(h.note)
	}
	if avail <= 0 {
		return left + " " + padLeft(elapsed, elapsedW)
	}
	return left + "  " + pad(ansi.Truncate(detail, avail, "…"), avail) + " " + padLeft(elapsed, elapsedW)
}

// progress draws an upload as a bar with the numbers beside it; narrow
// terminals get the numbers only.
func (m *model) progress(h *hostRow, avail int) string {
	var text string
	pct := percent(h.bytes, h.total)
	if h.total > 0 {
		// Fixed widths keep the numbers from jittering as they grow.
		text = fmt.Sprintf("%3.0f%%  %8s / %s", 100*pct, formatBytes(h.bytes), formatBytes(h.total))
	} else {
		text = formatBytes(h.bytes)
	}
	if r := h.meter.rate(); r > 0 {
		text += "  " + fmt.Sprintf("%10s", formatRate(r))
	}
	barW := min(maxBarW, avail-progressTextW-1)
	if h.total <= 0 || barW < minBarW {
		return text
	}
	filled := int(pct*float64(barW) + 0.5)
	bar := m.st.accent.Render(strings.Repeat("█", filled)) +
		m.st.faint.Render(strings.Repeat("░", barW-filled))
	return bar + " " + text
}

// footer returns the rows below the hosts; the first is filled in once the
// number of hidden rows is known.
func (m *model) footer() []string {
	lines := []string{""}
	if m.cancelling {
		lines = append(lines, "  "+m.st.warn.Render("cancelling: no new steps start and running ones are stopped; ctrl+c again leaves this view"))
	}
	return lines
}

func (m *model) countLine(now time.Time, hidden int) string {
	var running, queued, done, failed int
	for _, h := range m.order {
		switch h.phase {
		case phaseQueued:
			queued++
		case phaseRunning, phaseFailing:
			running++
		case phaseDone:
			done++
		case phaseFailed:
			failed++
		}
	}
	parts := []string{fmt.Sprintf("%d running", running)}
	if queued > 0 {
		parts = append(parts, fmt.Sprintf("%d queued", queued))
	}
	parts = append(parts, m.st.ok.Render(fmt.Sprintf("%d done", done)))
	if failed > 0 {
		parts = append(parts, m.st.fail.Render(fmt.Sprintf("%d failed", failed)))
	}
	if hidden > 0 {
		parts = append(parts, fmt.Sprintf("%d more not shown", hidden))
	}
	if !m.first.IsZero() {
		parts = append(parts, formatElapsed(now.Sub(m.first)))
	}
	line := "  " + strings.Join(parts, " · ")
	if !m.cancelling {
		line += "   " + m.st.faint.Render("ctrl+c cancels")
	}
	return line
}

func (m *model) label(h *hostRow) string {
	return pad(m.st.bold.Render(h.key.String()), m.labelW) + "  " + pad(m.st.faint.Render(h.role), len("server"))
}

func (m *model) printDone(h *hostRow, at time.Time) {
	verdict := "done" + took("in", h.started, at)
	if !h.changed {
		verdict = m.st.faint.Render("unchanged" + took("in", h.started, at))
	}
	m.print(m.st.ok.Render("✓") + " " + m.label(h) + "  " + verdict)
	h.printed = true
}

// printFailure leaves the error, the hint and the service log where the
// person will look for them after the view is gone.
func (m *model) printFailure(h *hostRow, at time.Time) {
	h.printed = true
	msg := cleanLines(h.err)
	if len(msg) == 0 {
		msg = []string{"failed"}
	}
	head := m.st.fail.Render("✗") + " " + m.label(h) + "  "
	const indent = "    "
	var lines []string
	if h.started.IsZero() {
		lines = append(lines, head+m.st.fail.Render(msg[0]))
		msg = msg[1:]
	} else {
		lines = append(lines, head+m.st.fail.Render("failed"+took("after", h.started, at)))
		if h.failedStep != "" {
			msg[0] = h.failedStep + ": " + msg[0]
		}
	}
	for _, l := range msg {
		lines = append(lines, indent+l)
	}
	for i, l := range cleanLines(h.hint) {
		if i == 0 {
			l = m.st.warn.Render("hint:") + " " + l
		} else {
			l = "      " + l
		}
		lines = append(lines, indent+l)
	}
	for _, raw := range h.logTail {
		for _, l := range cleanLines(raw) {
			lines = append(lines, indent+m.st.faint.Render("│ "+l))
		}
	}
	m.print(lines...)
}

func (m *model) printSummary(e apply.Event, at time.Time) {
	rows, statusCol := summaryRows(e.Results)
	widths := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], ansi.StringWidth(c))
		}
	}
	const gap = "  "
	// The error column gets what is left of the line; the full error was
	// printed with the host.
	errW := m.width - 1
	for _, w := range widths[:len(widths)-1] {
		errW -= w + len(gap)
	}
	lines := []string{""}
	for n, r := range rows {
		cells := make([]string, len(r))
		for i, c := range r {
			switch {
			case i == len(r)-1:
				c = ansi.Truncate(c, max(errW, 0), "…")
			case n > 0 && i == statusCol:
				c = pad(m.statusStyle(apply.HostStatus(c)).Render(c), widths[i])
			default:
				c = pad(c, widths[i])
			}
			cells[i] = c
		}
		line := strings.TrimRight(strings.Join(cells, gap), " ")
		if n == 0 {
			line = m.st.bold.Render(line)
		}
		lines = append(lines, line)
	}
	lines = append(lines, summaryTotals(e.Results, at.Sub(m.first)))
	m.print(lines...)
}

func (m *model) statusStyle(s apply.HostStatus) lipgloss.Style {
	switch s {
	case apply.StatusDone:
		return m.st.ok
	case apply.StatusUnchanged:
		return m.st.faint
	case apply.StatusFailed:
		return m.st.fail
	default:
		return m.st.warn
	}
}

// pad and padLeft measure cells, not bytes, so styled and wide text lines up.
func pad(s string, w int) string {
	return s + strings.Repeat(" ", max(0, w-ansi.StringWidth(s)))
}

func padLeft(s string, w int) string {
	return strings.Repeat(" ", max(0, w-ansi.StringWidth(s))) + s
}
