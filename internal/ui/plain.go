package ui

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/k3sctl/k3sctl/internal/apply"
)

// progressEvery spaces out upload lines in plain mode: a log of a hundred
// hosts stays readable, and a stalled upload still shows within seconds.
const progressEvery = 5 * time.Second

// continuation lines up under the text after the timestamp.
const continuation = "         "

// plainRenderer writes one timestamped line per thing that happened, with no
// escape codes, for CI logs, pipes and terminals that want no live view.
type plainRenderer struct {
	mu    sync.Mutex
	out   io.Writer
	now   func() time.Time
	first time.Time
	hosts map[hostKey]*plainHost
	err   error
}

type plainHost struct {
	started      time.Time
	lastProgress time.Time
	lastBytes    int64
	meter        rateMeter
	doneShown    bool
	changed      bool
	stepFailed   bool
}

var _ Renderer = (*plainRenderer)(nil)

func newPlainRenderer(o Options) *plainRenderer {
	return &plainRenderer{out: o.Out, now: o.Now, hosts: map[hostKey]*plainHost{}}
}

func (r *plainRenderer) Start() error { return nil }

// startAt counts the run's elapsed time from an earlier start, for when the
// live view hands over halfway.
func (r *plainRenderer) startAt(t time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.first.IsZero() {
		r.first = t
	}
}

// Wait reports the first line that could not be written.
func (r *plainRenderer) Wait() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

func (r *plainRenderer) Close() {}

func (r *plainRenderer) host(k hostKey) *plainHost {
	h := r.hosts[k]
	if h == nil {
		h = &plainHost{}
		r.hosts[k] = h
	}
	return h
}

func (r *plainRenderer) Event(e apply.Event) {
	if e.Type == apply.EventPhase {
		return // timings are for --trace and JSON readers
	}
	r.mu.Lock()
	defer r.mu.Unlock()

	at := eventTime(e, r.now)
	if r.first.IsZero() {
		r.first = at
	}
	var b bytes.Buffer
	prefix := at.Format("15:04:05") + " "
	if e.Host != "" {
		prefix += keyOf(e).String() + " "
	}
	line := func(format string, args ...any) {
		b.WriteString(prefix)
		fmt.Fprintf(&b, format, args...)
		b.WriteByte('\n')
	}
	more := func(lines []string) {
		for _, l := range lines {
			b.WriteString(continuation + l + "\n")
		}
	}
	h := r.host(keyOf(e))
	step := cleanLine(string(e.Step))

	switch e.Type {
	case apply.EventPlan:
		// The plan has its own printer (k3sctl plan); here a count is
		// enough to know what the log will be about.
		if hosts := planHosts(e.Plan); len(hosts) > 0 {
			clusters := map[string]bool{}
			for _, h := range hosts {
				clusters[h.cluster] = true
			}
			line("plan: %s in %s", plural(len(hosts), "host"), plural(len(clusters), "cluster"))
		}
	case apply.EventHostQueued:
		what := "queued"
		if e.Role != "" {
			what += " (" + cleanLine(e.Role) + ")"
		}
		if msg := cleanLine(e.Message); msg != "" {
			what += ": " + msg
		}
		line("%s", what)
	case apply.EventStepStart:
		if h.started.IsZero() {
			h.started = at
		}
		h.lastProgress = at
		h.lastBytes = 0
		h.doneShown = false
		h.meter.reset()
		line("→ %s", step)
	case apply.EventProgress:
		if e.Bytes < h.lastBytes {
			// A new transfer within the step, such as the upload after
			// the download into the cache.
			h.doneShown = false
			h.lastProgress = at
		}
		h.lastBytes = e.Bytes
		h.meter.add(at, e.Bytes)
		complete := e.Total > 0 && e.Bytes >= e.Total
		if complete && h.doneShown || !complete && at.Sub(h.lastProgress) < progressEvery {
			return
		}
		h.lastProgress = at
		h.doneShown = complete
		amount := formatBytes(e.Bytes)
		if e.Total > 0 {
			amount = fmt.Sprintf("%.0f%%", 100*percent(e.Bytes, e.Total))
		}
		if rate := h.meter.rate(); rate > 0 {
			line("%s %s (%s)", step, amount, formatRate(rate))
		} else {
			line("%s %s", step, amount)
		}
	case apply.EventLog:
		for _, l := range cleanLines(e.Message) {
			line("| %s", l)
		}
	case apply.EventStepDone:
		h.changed = h.changed || e.Changed
		// Waiting and reading change nothing by their nature: "no change"
		// is news only for a step that could have changed the host.
		if e.Changed || !e.Step.MayChange() {
			line("✓ %s", step)
		} else {
			line("✓ %s (no change)", step)
		}
	case apply.EventStepFailed:
		h.stepFailed = true
		msg := cleanLines(e.Error)
		if len(msg) == 0 {
			msg = []string{"failed"}
		}
		line("✗ %s: %s", step, msg[0])
		more(msg[1:])
		r.hintAndLog(&b, e)
	case apply.EventHostDone:
		verdict := "unchanged"
		if h.changed || e.Changed {
			verdict = "done"
		}
		line("✓ %s%s", verdict, took("in", h.started, at))
	case apply.EventHostFailed:
		msg := cleanLines(e.Error)
		switch {
		case h.stepFailed:
			line("✗ failed%s", took("after", h.started, at))
		case len(msg) > 0:
			line("✗ %s", msg[0])
			more(msg[1:])
			r.hintAndLog(&b, e)
		default:
			line("✗ failed")
			r.hintAndLog(&b, e)
		}
	case apply.EventWaveStart:
		line("▶ %s", cleanLine(e.Message))
	case apply.EventWaveDone:
		line("■ %s", cleanLine(e.Message))
	case apply.EventRolloutStopped:
		line("✗ rollout stopped: %s", cleanLine(e.Error))
		if msg := cleanLine(e.Message); msg != "" {
			b.WriteString(continuation + msg + "\n")
		}
	case apply.EventSummary:
		b.WriteByte('\n')
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		rows, _ := summaryRows(e.Results)
		for _, row := range rows {
			fmt.Fprintln(tw, strings.Join(row, "\t"))
		}
		_ = tw.Flush()
		trimTrailingSpace(&b)
		fmt.Fprintln(&b, summaryTotals(e.Results, at.Sub(r.first)))
	default:
		// Event types added after this renderer still show up.
		text := strings.TrimSpace(string(e.Type) + " " + step + " " + cleanLine(e.Message))
		line("%s", text)
	}
	r.write(b.Bytes())
}

func (r *plainRenderer) hintAndLog(b *bytes.Buffer, e apply.Event) {
	for i, l := range cleanLines(e.Hint) {
		if i == 0 {
			b.WriteString(continuation + "hint: " + l + "\n")
		} else {
			b.WriteString(continuation + "      " + l + "\n")
		}
	}
	var tail []string
	for _, l := range e.LogTail {
		tail = append(tail, cleanLines(l)...)
	}
	if len(tail) > 0 {
		b.WriteString(continuation + "last log lines:\n")
		for _, l := range tail {
			b.WriteString(continuation + "  " + l + "\n")
		}
	}
}

func (r *plainRenderer) write(p []byte) {
	if len(p) == 0 {
		return
	}
	if _, err := r.out.Write(p); err != nil && r.err == nil {
		r.err = fmt.Errorf("write progress: %w", err)
	}
}

// trimTrailingSpace drops the padding tabwriter leaves after an empty last
// column, which log viewers show as noise.
func trimTrailingSpace(b *bytes.Buffer) {
	lines := strings.Split(b.String(), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	b.Reset()
	b.WriteString(strings.Join(lines, "\n"))
}

func plural(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
