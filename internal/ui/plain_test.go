package ui

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/k3sctl/k3sctl/internal/apply"
	"github.com/k3sctl/k3sctl/internal/plan"
)

func render(t *testing.T, mode string, events []apply.Event) string {
	t.Helper()
	var out bytes.Buffer
	r := New(Options{Mode: mode, Out: &out, Now: fixedClock(0)})
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		r.Event(e)
	}
	if err := r.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	r.Close()
	return out.String()
}

func TestPlainOutput(t *testing.T) {
	got := render(t, ModePlain, sampleRun())
	for _, want := range []string{
		"15:04:01 home/10.0.0.10 → upload k3s\n",
		"15:04:06 home/10.0.0.10 upload k3s 25% (3.0 MB/s)\n",
		"15:04:21 home/10.0.0.10 upload k3s 100% (3.0 MB/s)\n",
		"15:04:21 home/10.0.0.10 ✓ upload k3s\n",
		"15:04:03 lab/10.0.1.10 ✓ unchanged in 2s\n",
		"15:05:46 home/10.0.0.11 ✗ wait for ready: node did not become Ready within 1m0s\n" +
			"         hint: check that the agent reaches https://10.0.0.10:6443\n" +
			"         last log lines:\n" +
			"           level=info msg=\"Starting k3s agent v1.31.4+k3s1\"\n",
		"CLUSTER  HOST       ROLE    ACTION   STATUS     ELAPSED  ERROR\n",
		"4 hosts: 2 done, 1 unchanged, 1 failed in 1m46s\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("plain output lacks %q", want)
		}
	}
	requireGolden(t, "sample", got)
}

func TestPlainProgressIsThrottled(t *testing.T) {
	var events []apply.Event
	host := apply.Event{Cluster: "c", Host: "h", Step: "upload k3s"}
	start := host
	start.Time, start.Type = at(0), apply.EventStepStart
	events = append(events, start)
	// An event every 100ms for 12 seconds, then the last bytes.
	for i := 1; i <= 120; i++ {
		e := host
		e.Time, e.Type, e.Bytes, e.Total = at(float64(i)/10), apply.EventProgress, int64(i)*mb, 200*mb
		events = append(events, e)
	}
	last := host
	last.Time, last.Type, last.Bytes, last.Total = at(12.5), apply.EventProgress, 200*mb, 200*mb
	events = append(events, last, last)

	got := render(t, ModePlain, events)
	lines := regexp.MustCompile(`(?m)^.* upload k3s \d+%.*$`).FindAllString(got, -1)
	want := []string{
		"15:04:05 c/h upload k3s 25% (10.0 MB/s)",
		"15:04:10 c/h upload k3s 50% (10.0 MB/s)",
		"15:04:12 c/h upload k3s 100% (",
	}
	if len(lines) != len(want) {
		t.Fatalf("want %d progress lines, got %d:\n%s", len(want), len(lines), got)
	}
	for i := range want {
		if !strings.HasPrefix(lines[i], want[i]) {
			t.Errorf("line %d = %q, want %q…", i, lines[i], want[i])
		}
	}
}

func TestPlainFailureWithoutStep(t *testing.T) {
	got := render(t, ModePlain, []apply.Event{
		{Time: at(1), Type: apply.EventHostFailed, Cluster: "home", Host: "10.0.0.12", Role: "agent",
			Error: "skipped: home/10.0.0.10 failed", Hint: "fix the server first"},
	})
	want := "15:04:01 home/10.0.0.12 ✗ skipped: home/10.0.0.10 failed\n" +
		"         hint: fix the server first\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestPlainUnknownEventStillShows(t *testing.T) {
	got := render(t, ModePlain, []apply.Event{{Time: at(1), Type: "drain", Cluster: "c", Host: "h", Step: "drain node", Message: "3 pods left"}})
	if got != "15:04:01 c/h drain drain node 3 pods left\n" {
		t.Errorf("got %q", got)
	}
}

// hostile carries escape codes where remote output can put them.
func hostile() []apply.Event {
	esc := "\x1b[31mred\x1b[0m \x1b]0;title\x07\x1b[2J"
	events := sampleRun()
	for i := range events {
		switch events[i].Type {
		case apply.EventLog:
			events[i].Message = esc
		case apply.EventStepFailed, apply.EventHostFailed:
			events[i].Error += esc
			events[i].Hint += esc
			events[i].LogTail = append(events[i].LogTail, esc)
		case apply.EventSummary:
			events[i].Results[1].Error += esc
		}
	}
	return events
}

func TestPlainHasNoEscapeCodes(t *testing.T) {
	got := render(t, ModePlain, hostile())
	if i := strings.IndexByte(got, 0x1b); i >= 0 {
		t.Errorf("plain output has ESC at %d: %q", i, got[max(0, i-20):min(len(got), i+20)])
	}
	if !strings.Contains(got, "| red") {
		t.Errorf("the text around the escape codes was lost:\n%s", got)
	}
}

// colourSGR finds SGR sequences that set a colour, as opposed to bold or
// faint, which NO_COLOR allows.
var sgr = regexp.MustCompile("\x1b\\[([0-9;:]*)m")

func colours(s string) []string {
	var found []string
	for _, m := range sgr.FindAllStringSubmatch(s, -1) {
		for p := range strings.SplitSeq(m[1], ";") {
			var n int
			if _, err := fmt.Sscan(p, &n); err != nil {
				continue
			}
			if n >= 30 && n <= 49 || n >= 90 && n <= 107 {
				found = append(found, m[0])
			}
		}
	}
	return found
}

func TestLiveViewNoColor(t *testing.T) {
	// A colour terminal as colorprofile sees it, without needing a real one.
	t.Setenv("CLICOLOR_FORCE", "1")
	t.Setenv("TERM", "xterm-256color")
	t.Setenv("NO_COLOR", "")

	run := func(o Options) string {
		r, out := startTUI(t, o)
		for _, e := range hostile() {
			r.Event(e)
		}
		if err := r.Wait(); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	base := Options{Width: 100, Height: 30, Now: fixedClock(106)}

	if c := colours(run(base)); len(c) == 0 {
		t.Fatal("expected colours on a colour terminal; the checks below would prove nothing")
	}
	noColor := base
	noColor.NoColor = true
	if c := colours(run(noColor)); len(c) > 0 {
		t.Errorf("NoColor output has colour codes %q", c)
	}
	t.Setenv("NO_COLOR", "1")
	if c := colours(run(base)); len(c) > 0 {
		t.Errorf("NO_COLOR output has colour codes %q", c)
	}
}

func TestLiveViewNotATerminalHasNoStyles(t *testing.T) {
	t.Setenv("CLICOLOR_FORCE", "")
	t.Setenv("TERM", "xterm-256color")
	r, out := startTUI(t, Options{Width: 100, Height: 30, Now: fixedClock(106)})
	for _, e := range hostile() {
		r.Event(e)
	}
	if err := r.Wait(); err != nil {
		t.Fatal(err)
	}
	if m := sgr.FindAllString(out.String(), -1); len(m) > 0 {
		for _, s := range m {
			if s != "\x1b[m" && s != "\x1b[0m" {
				t.Errorf("output to a non-terminal has style %q", s)
				break
			}
		}
	}
}

func TestPlainProgressTwoTransfersInOneStep(t *testing.T) {
	// The binary is first fetched into the local cache, then uploaded, and
	// both report progress under the same step.
	host := apply.Event{Cluster: "c", Host: "h", Step: "upload k3s"}
	start := host
	start.Time, start.Type = at(0), apply.EventStepStart
	events := []apply.Event{start}
	for i, b := range []int64{50, 100, 10, 40, 70, 100} {
		e := host
		e.Time, e.Type, e.Bytes, e.Total = at(float64(i*3)), apply.EventProgress, b*mb, 100*mb
		events = append(events, e)
	}
	got := render(t, ModePlain, events)
	if n := strings.Count(got, "upload k3s 100%"); n != 2 {
		t.Errorf("want 100%% once per transfer, got %d:\n%s", n, got)
	}
}

func TestPlainPlanLine(t *testing.T) {
	got := render(t, ModePlain, sampleRun()[:1])
	if got != "15:04:00 plan: 4 hosts in 2 clusters\n" {
		t.Errorf("got %q", got)
	}
	if got := render(t, ModePlain, []apply.Event{{Time: at(0), Type: apply.EventPlan, Plan: "not a plan"}}); got != "" {
		t.Errorf("a plan of another shape should print nothing, got %q", got)
	}
}

func TestPlainOddEventsDoNotBreak(t *testing.T) {
	got := render(t, ModePlain, []apply.Event{
		{Time: at(1), Type: apply.EventHostDone, Cluster: "c", Host: "a"},
		{Time: at(1), Type: apply.EventHostFailed, Cluster: "c", Host: "b", Error: " \n "},
		{Time: at(1), Type: apply.EventStepFailed, Cluster: "c", Host: "d", Step: "start k3s"},
	})
	want := "15:04:01 c/a ✓ unchanged\n" +
		"15:04:01 c/b ✗ failed\n" +
		"15:04:01 c/d ✗ start k3s: failed\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// "(no change)" is shown only for a step that could have changed the host
// and did not; a step that only waits or reads gets no verdict of its own.
func TestPlainNoChangeOnlyForStepsThatMayChange(t *testing.T) {
	var events []apply.Event
	for i, s := range []struct {
		kind    plan.StepKind
		changed bool
	}{
		{plan.StepUploadBinary, true},
		{plan.StepWriteConfig, false},
		{plan.StepStartServer, true},
		{plan.StepWaitReady, false},
		{plan.StepReadToken, false},
		{plan.StepKubeconfig, false},
	} {
		e := apply.Event{Time: at(float64(i)), Type: apply.EventStepDone, Cluster: "c", Host: "h", Step: s.kind, Changed: s.changed}
		events = append(events, e)
	}
	got := render(t, ModePlain, events)
	want := "15:04:00 c/h ✓ upload k3s\n" +
		"15:04:01 c/h ✓ write config (no change)\n" +
		"15:04:02 c/h ✓ start k3s\n" +
		"15:04:03 c/h ✓ wait for ready\n" +
		"15:04:04 c/h ✓ read token\n" +
		"15:04:05 c/h ✓ kubeconfig\n"
	if got != want {
		t.Errorf("plain output:\n%s\nwant:\n%s", got, want)
	}
}
