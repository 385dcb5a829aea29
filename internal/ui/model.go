package ui

import (
	"fmt"
	"slices"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"

	"github.com/k3sctl/k3sctl/internal/apply"
	"github.com/k3sctl/k3sctl/internal/plan"
)

// Messages the live view reacts to besides Bubble Tea's own.
type (
	eventMsg     struct{ apply.Event }
	tickMsg      time.Time
	printedMsg   struct{} // the text handed to Println reached the terminal
	noMoreMsg    struct{} // the apply returned: nothing more will come
	interruptMsg struct{} // ctrl+c from a signal rather than a key
)

// tickEvery redraws spinners and elapsed times; ten times a second looks
// alive without keeping a remote terminal busy.
const tickEvery = 100 * time.Millisecond

type phase int

const (
	phaseQueued  phase = iota
	phaseRunning       // a step started and the host has not finished
	phaseFailing       // a step failed; the host-level verdict is still to come
	phaseDone
	phaseFailed
)

// hostRow is what the live view knows of one host.
type hostRow struct {
	key     hostKey
	role    string
	phase   phase
	step    string // the running step with its place in the plan, e.g. "write config 2/4"
	planned []plan.StepKind
	started time.Time // first step start
	changed bool

	uploading    bool
	bytes, total int64
	meter        rateMeter

	// note is the last line the host said while a step runs, or what it
	// waits for while queued.
	note string

	failedStep, err, hint string
	logTail               []string
	printed               bool
}

// model is the live view: rows of running and waiting hosts, with finished
// hosts printed above it so they stay in the scrollback.
type model struct {
	now     func() time.Time
	cancel  func()
	profile colorprofile.Profile
	st      styles

	width, height int

	hosts    map[hostKey]*hostRow
	order    []*hostRow
	clusters []string
	labelW   int
	first    time.Time

	// outbox holds text for above the view until the previous print was
	// written: Bubble Tea runs commands concurrently, and finished hosts
	// must keep their order in the scrollback.
	outbox   []string
	flushing bool
	// printed is everything put above the view, which tests read back.
	printed []string

	cancelling bool
	left       bool // the person left with ctrl+c; Wait reports it
	finished   bool // the summary came, or the apply returned
}

var _ tea.Model = (*model)(nil)

func newModel(o Options, profile colorprofile.Profile) *model {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	w, h := o.Width, o.Height
	if w <= 0 {
		w = 80
	}
	if h <= 0 {
		h = 24
	}
	return &model{
		now:     now,
		cancel:  o.Cancel,
		profile: profile,
		st:      newStyles(),
		width:   w,
		height:  h,
		hosts:   map[hostKey]*hostRow{},
	}
}

// filter keeps ctrl+c from ending the program behind the apply's back: a
// SIGINT or SIGTERM that Bubble Tea catches becomes the same cancel request
// as the key, and the view stays up for the summary.
func filter(tm tea.Model, msg tea.Msg) tea.Msg {
	m, ok := tm.(*model)
	if !ok || m.left || m.finished {
		return msg
	}
	switch msg.(type) {
	case tea.InterruptMsg, tea.QuitMsg:
		return interruptMsg{}
	}
	return msg
}

// Init starts the clock and prints what events before the start left.
func (m *model) Init() tea.Cmd { return tea.Batch(tick(), m.flush()) }

func tick() tea.Cmd {
	return tea.Tick(tickEvery, func(t time.Time) tea.Msg { return tickMsg(t) })
}

func (m *model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
	case tickMsg:
		if !m.finished && !m.left {
			return m, tick()
		}
	case tea.KeyPressMsg:
		if msg.String() == "ctrl+c" {
			return m, m.interrupt()
		}
	case interruptMsg:
		return m, m.interrupt()
	case eventMsg:
		m.apply(msg.Event)
		return m, m.flush()
	case noMoreMsg:
		m.finish()
		return m, m.flush()
	case printedMsg:
		m.flushing = false
		return m, m.flush()
	}
	return m, nil
}

// interrupt asks the apply to stop and keeps showing it stopping; a second
// ctrl+c, or one with nobody to ask, leaves the view.
func (m *model) interrupt() tea.Cmd {
	if m.cancel != nil && !m.cancelling {
		m.cancelling = true
		cancel := m.cancel
		return func() tea.Msg {
			cancel()
			return nil
		}
	}
	m.left = true
	return tea.Sequence(m.takeOutbox(), tea.Quit)
}

// flush prints what waits in the outbox, one print at a time, and quits once
// the summary is out.
func (m *model) flush() tea.Cmd {
	if m.flushing {
		return nil
	}
	if print := m.takeOutbox(); print != nil {
		m.flushing = true
		return tea.Sequence(print, func() tea.Msg { return printedMsg{} })
	}
	if m.finished {
		return tea.Quit
	}
	return nil
}

// takeOutbox prints one terminal row per Println. Bubble Tea makes room for
// printed text by scrolling the screen by that many rows, and when that is
// more than the rows above the live view, the top of the view is pushed into
// the scrollback and stays there. The view leaves at least one row free, so
// one row at a time is always safe.
func (m *model) takeOutbox() tea.Cmd {
	if len(m.outbox) == 0 {
		return nil
	}
	var cmds []tea.Cmd
	for _, line := range m.outbox {
		// Bubble Tea clears to the end of the row after each print, which
		// on a row filled to the last column erases that column.
		for _, row := range wrapRows(downsample(line, m.profile), m.width-1) {
			cmds = append(cmds, tea.Println(row))
		}
	}
	m.outbox = nil
	return tea.Sequence(cmds...)
}

// wrapRows breaks a printed line into rows that fit the width, indenting the
// rows after the first under the line's own indent.
func wrapRows(line string, width int) []string {
	if width <= 0 || ansi.StringWidth(line) <= width {
		return []string{blankRow(line)}
	}
	rows := strings.Split(ansi.Wrap(line, width, ""), "\n")
	plain := ansi.Strip(line)
	indent := len(plain) - len(strings.TrimLeft(plain, " ")) + 2
	if indent > width/2 {
		indent = 0
	}
	rest := strings.Split(ansi.Wrap(strings.Join(rows[1:], " "), width-indent, ""), "\n")
	for i, r := range rest {
		rest[i] = strings.Repeat(" ", indent) + r
	}
	return append(rows[:1], rest...)
}

func blankRow(row string) string {
	if row == "" {
		// An empty print is dropped; a blank row has to be asked for.
		return " "
	}
	return row
}

func (m *model) print(lines ...string) {
	m.outbox = append(m.outbox, lines...)
	m.printed = append(m.printed, lines...)
}

func (m *model) host(e apply.Event) *hostRow {
	k := keyOf(e)
	h := m.hosts[k]
	if h == nil {
		h = &hostRow{key: k}
		m.hosts[k] = h
		m.order = append(m.order, h)
		if !containsString(m.clusters, k.cluster) {
			m.clusters = append(m.clusters, k.cluster)
		}
		m.labelW = max(m.labelW, ansi.StringWidth(k.String()))
	}
	if e.Role != "" {
		h.role = cleanLine(e.Role)
	}
	return h
}

// stepLabel is a step's name with its place among the host's planned
// steps, when the plan lists it.
func (h *hostRow) stepLabel(kind plan.StepKind) string {
	name := cleanLine(string(kind))
	if i := slices.Index(h.planned, kind); i >= 0 {
		return fmt.Sprintf("%s %d/%d", name, i+1, len(h.planned))
	}
	return name
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func (m *model) apply(e apply.Event) {
	at := eventTime(e, m.now)
	if m.first.IsZero() {
		m.first = at
	}
	switch e.Type {
	case apply.EventSummary:
		m.finish()
		m.printSummary(e, at)
		return
	case apply.EventPlan:
		for _, p := range planHosts(e.Plan) {
			m.host(apply.Event{Cluster: p.cluster, Host: p.host, Role: p.role}).planned = p.steps
		}
		return
	case apply.EventWaveStart:
		m.print(m.st.bold.Render("▶ " + cleanLine(e.Message)))
		return
	case apply.EventWaveDone:
		m.print(m.st.faint.Render("■ " + cleanLine(e.Message)))
		return
	case apply.EventLog:
		// A rollout's own notes (a pause between waves, an SSH warning)
		// name no cluster; its notes on preparing a cluster stay out.
		if e.Host == "" && e.Cluster == "" {
			m.print(m.st.faint.Render(cleanLine(e.Message)))
			return
		}
	case apply.EventRolloutStopped:
		m.print(m.st.fail.Render("✗ rollout stopped: " + cleanLine(e.Error)))
		if msg := cleanLine(e.Message); msg != "" {
			m.print("  " + msg)
		}
		return
	}
	if e.Host == "" {
		return
	}
	h := m.host(e)
	switch e.Type {
	case apply.EventHostQueued:
		if h.phase == phaseQueued {
			h.note = cleanLine(e.Message)
		}
	case apply.EventStepStart:
		if h.started.IsZero() {
			h.started = at
		}
		h.phase = phaseRunning
		h.step = h.stepLabel(e.Step)
		h.uploading, h.bytes, h.total, h.note = false, 0, 0, ""
		h.meter.reset()
		h.failedStep, h.err, h.hint, h.logTail = "", "", "", nil
	case apply.EventProgress:
		if h.started.IsZero() {
			h.started = at
		}
		if h.phase == phaseQueued {
			h.phase = phaseRunning
		}
		if e.Step != "" {
			h.step = h.stepLabel(e.Step)
		}
		h.uploading, h.bytes, h.total = true, e.Bytes, e.Total
		h.meter.add(at, e.Bytes)
	case apply.EventLog:
		if lines := cleanLines(e.Message); len(lines) > 0 {
			h.note = lines[len(lines)-1]
		}
	case apply.EventStepDone:
		h.changed = h.changed || e.Changed
		h.uploading, h.note = false, ""
	case apply.EventStepFailed:
		h.phase = phaseFailing
		h.failedStep = cleanLine(string(e.Step))
		h.err, h.hint, h.logTail = e.Error, e.Hint, e.LogTail
	case apply.EventHostDone:
		h.phase = phaseDone
		h.changed = h.changed || e.Changed
		m.printDone(h, at)
	case apply.EventHostFailed:
		h.phase = phaseFailed
		if h.err == "" {
			h.err, h.hint, h.logTail = e.Error, e.Hint, e.LogTail
		}
		m.printFailure(h, at)
	}
}

// finish prints what the failed hosts said before the view goes: a host
// whose verdict never came still has its error shown.
func (m *model) finish() {
	if m.finished {
		return
	}
	m.finished = true
	for _, h := range m.order {
		if h.phase == phaseFailing && !h.printed {
			m.printFailure(h, m.now())
		}
	}
}
