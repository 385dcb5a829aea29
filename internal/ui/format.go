package ui

import (
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/charmbracelet/x/ansi"

	"github.com/k3sctl/k3sctl/internal/apply"
)

// hostKey names a host across clusters: the same address may appear in two
// clusters of one inventory.
type hostKey struct{ cluster, host string }

func keyOf(e apply.Event) hostKey { return hostKey{e.Cluster, e.Host} }

func (k hostKey) String() string {
	if k.cluster == "" {
		return k.host
	}
	return k.cluster + "/" + k.host
}

// formatBytes uses decimal units, as download sizes and link speeds do.
func formatBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTP"[exp])
}

func formatRate(bytesPerSecond float64) string {
	return formatBytes(int64(bytesPerSecond)) + "/s"
}

// formatElapsed keeps elapsed times short and stable: whole seconds are
// enough to watch a rollout, and sub-second jitter would only add noise.
func formatElapsed(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	default:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
}

// took reads " in 31s" for word "in", or nothing for a host whose start was
// not seen.
func took(word string, start, end time.Time) string {
	if start.IsZero() {
		return ""
	}
	return " " + word + " " + formatElapsed(end.Sub(start))
}

// since is the elapsed column: blank until the host has started.
func since(start, now time.Time) string {
	if start.IsZero() {
		return ""
	}
	return formatElapsed(now.Sub(start))
}

func percent(bytes, total int64) float64 {
	if total <= 0 {
		return 0
	}
	return min(max(float64(bytes)/float64(total), 0), 1)
}

// cleanLines makes text that came from a remote host safe to draw: remote
// output may carry colour codes, cursor moves or carriage returns that would
// corrupt the view or the log around it.
func cleanLines(s string) []string {
	s = ansi.Strip(s)
	s = strings.ReplaceAll(s, "\r\n", "\n")
	var out []string
	for line := range strings.SplitSeq(s, "\n") {
		out = append(out, strings.TrimRightFunc(dropControl(line), unicode.IsSpace))
	}
	for len(out) > 0 && out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return out
}

// cleanLine is cleanLines for a place that has room for one line only.
func cleanLine(s string) string {
	return strings.Join(cleanLines(s), " ")
}

func dropControl(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t':
			return ' '
		case unicode.IsControl(r):
			return -1
		}
		return r
	}, s)
}

// eventTime prefers the time the executor stamped, so rates and elapsed
// times reflect when things happened rather than when they were drawn.
func eventTime(e apply.Event, now func() time.Time) time.Time {
	if e.Time.IsZero() {
		return now()
	}
	return e.Time
}

// rateMeter measures throughput over a sliding window: the rate of the last
// few seconds is what tells a slow link apart, and it settles quickly.
type rateMeter struct {
	samples []rateSample
}

type rateSample struct {
	at    time.Time
	bytes int64
}

const (
	rateWindow     = 3 * time.Second
	rateResolution = 100 * time.Millisecond
)

func (r *rateMeter) reset() { r.samples = r.samples[:0] }

func (r *rateMeter) add(at time.Time, bytes int64) {
	n := len(r.samples)
	if n > 0 && bytes < r.samples[n-1].bytes {
		r.reset()
		n = 0
	}
	if n >= 2 && at.Sub(r.samples[n-2].at) < rateResolution {
		// Progress can come far faster than anyone reads it; the newest
		// sample moves forward instead of piling up.
		r.samples[n-1] = rateSample{at, bytes}
	} else {
		r.samples = append(r.samples, rateSample{at, bytes})
	}
	for len(r.samples) > 2 && at.Sub(r.samples[1].at) >= rateWindow {
		r.samples = r.samples[1:]
	}
}

// rate is zero until two samples are apart in time.
func (r *rateMeter) rate() float64 {
	if len(r.samples) < 2 {
		return 0
	}
	first, last := r.samples[0], r.samples[len(r.samples)-1]
	dt := last.at.Sub(first.at).Seconds()
	if dt <= 0 {
		return 0
	}
	return float64(last.bytes-first.bytes) / dt
}
