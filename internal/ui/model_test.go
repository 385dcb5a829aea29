package ui

import (
	"fmt"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"

	"github.com/k3sctl/k3sctl/internal/apply"
	"github.com/k3sctl/k3sctl/internal/plan"
)

func testModel(width, height int, seconds float64) *model {
	return newModel(Options{Width: width, Height: height, Now: fixedClock(seconds)}, colorprofile.NoTTY)
}

// feed hands events to the model and, as the program would, tells it when
// what it printed reached the terminal.
func feed(m *model, events ...apply.Event) {
	for _, e := range events {
		m.Update(eventMsg{e})
		if m.flushing && !m.finished {
			m.Update(printedMsg{})
		}
	}
}

// screen is the view as a person reads it: no styles, no trailing blanks.
func screen(m *model) string {
	return ansi.Strip(m.View().Content)
}

func printed(m *model) string {
	return ansi.Strip(strings.Join(m.printed, "\n"))
}

func TestViewHostRows(t *testing.T) {
	m := testModel(100, 30, snapshotAt)
	before, _ := split(sampleRun(), snapshotAt)
	feed(m, before...)

	got := screen(m)
	for _, want := range []string{
		"home  0 of 3 finished",
		"10.0.0.10  server  upload k3s",
		"40%   24.0 MB / 60.0 MB    3.0 MB/s",
		"10.0.0.11  agent   queued",
		"1 running · 2 queued · 1 done · 9s",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("view lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "10.0.1.10") {
		t.Errorf("a finished host stays in the live area:\n%s", got)
	}
	requireGolden(t, "view", got+"\n")
}

func TestViewProgressBar(t *testing.T) {
	m := testModel(120, 30, 5)
	feed(m,
		apply.Event{Time: at(1), Type: apply.EventStepStart, Cluster: "c", Host: "h", Role: "server", Step: "upload k3s"},
		apply.Event{Time: at(2), Type: apply.EventProgress, Cluster: "c", Host: "h", Step: "upload k3s", Bytes: 10 * mb, Total: 40 * mb},
		apply.Event{Time: at(4), Type: apply.EventProgress, Cluster: "c", Host: "h", Step: "upload k3s", Bytes: 20 * mb, Total: 40 * mb},
	)
	got := screen(m)
	full, empty := strings.Count(got, "█"), strings.Count(got, "░")
	if full == 0 || full != empty {
		t.Errorf("half an upload should fill half the bar, got %d full and %d empty:\n%s", full, empty, got)
	}
	if !strings.Contains(got, " 50%   20.0 MB / 40.0 MB    5.0 MB/s") {
		t.Errorf("progress numbers missing:\n%s", got)
	}
	if !strings.Contains(got, "4s") {
		t.Errorf("elapsed time missing:\n%s", got)
	}

	// Too narrow for a bar: the numbers stay.
	m.Update(tea.WindowSizeMsg{Width: 70, Height: 30})
	got = screen(m)
	if strings.Contains(got, "█") || !strings.Contains(got, "50%") {
		t.Errorf("narrow view should show numbers without a bar:\n%s", got)
	}
}

func TestFinishedHostsArePrintedInOrder(t *testing.T) {
	m := testModel(100, 30, 60)
	events := sampleRun()
	feed(m, events[:len(events)-1]...)

	got := printed(m)
	want := []string{
		"✓ lab/10.0.1.10   server  unchanged in 2s",
		"✓ home/10.0.0.10  server  done in 39s",
		"✓ home/10.0.0.12  agent   done in 18s",
		"✗ home/10.0.0.11  agent   failed after 1m06s",
	}
	last := -1
	for _, w := range want {
		i := strings.Index(got, w)
		if i < 0 {
			t.Fatalf("printed lines lack %q:\n%s", w, got)
		}
		if i < last {
			t.Errorf("%q printed out of order:\n%s", w, got)
		}
		last = i
	}
	if !strings.Contains(screen(m), "0 running · 3 done · 1 failed") {
		t.Errorf("counts after every host finished:\n%s", screen(m))
	}
}

func TestFailurePrintsErrorHintAndLogTail(t *testing.T) {
	m := testModel(100, 30, 60)
	feed(m, sampleRun()...)
	got := printed(m)
	for _, want := range []string{
		"    wait for ready: node did not become Ready within 1m0s",
		"    hint: check that the agent reaches https://10.0.0.10:6443",
		`    │ level=info msg="Starting k3s agent v1.31.4+k3s1"`,
		`    │ level=error msg="failed to get CA certs`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("printed lines lack %q:\n%s", want, got)
		}
	}
}

func TestFailingHostShowsErrorInRow(t *testing.T) {
	m := testModel(100, 30, 10)
	feed(m,
		apply.Event{Time: at(1), Type: apply.EventStepStart, Cluster: "c", Host: "h", Role: "agent", Step: "start k3s"},
		apply.Event{Time: at(2), Type: apply.EventStepFailed, Cluster: "c", Host: "h", Step: "start k3s", Error: "exit status 1\nmore", LogTail: []string{"boom"}},
	)
	got := screen(m)
	if !strings.Contains(got, "✗ h  agent   start k3s") || !strings.Contains(got, "exit status 1 more") {
		t.Errorf("failing row:\n%s", got)
	}
	// The verdict never came; the summary still leaves the error above.
	feed(m, apply.Event{Time: at(3), Type: apply.EventSummary})
	if p := printed(m); !strings.Contains(p, "start k3s: exit status 1") || !strings.Contains(p, "│ boom") {
		t.Errorf("failure not printed at the end:\n%s", p)
	}
}

func TestViewOverflowShowsActiveHostsAndCounts(t *testing.T) {
	m := testModel(100, 12, 30)
	var events []apply.Event
	for i := range 40 {
		e := apply.Event{Time: at(0), Type: apply.EventHostQueued, Cluster: fmt.Sprintf("edge-%02d", i/4), Host: fmt.Sprintf("10.1.%d.%d", i/4, i%4), Role: "agent"}
		events = append(events, e)
	}
	for i := 0; i < 10; i++ {
		e := events[i]
		e.Time, e.Type = at(1), apply.EventHostDone
		events = append(events, e)
	}
	e := events[12]
	e.Time, e.Type = at(2), apply.EventHostFailed
	events = append(events, e)
	for _, i := range []int{20, 30, 33} {
		e := events[i]
		e.Time, e.Type, e.Step = at(3), apply.EventStepStart, "upload k3s"
		events = append(events, e)
	}
	feed(m, events...)

	got := screen(m)
	lines := strings.Split(got, "\n")
	if len(lines) >= 12 {
		t.Errorf("view has %d lines for a terminal of 12:\n%s", len(lines), got)
	}
	for _, host := range []string{"10.1.5.0", "10.1.7.2", "10.1.8.1"} {
		if !strings.Contains(got, host) {
			t.Errorf("running host %s not shown:\n%s", host, got)
		}
	}
	if !strings.Contains(got, "3 running · 26 queued · 10 done · 1 failed · 23 more not shown") {
		t.Errorf("counts line:\n%s", got)
	}
}

func TestViewResize(t *testing.T) {
	m := testModel(100, 30, snapshotAt)
	before, _ := split(sampleRun(), snapshotAt)
	feed(m, before...)
	for _, size := range []tea.WindowSizeMsg{{Width: 40, Height: 30}, {Width: 160, Height: 30}, {Width: 100, Height: 4}} {
		m.Update(size)
		got := screen(m)
		lines := strings.Split(got, "\n")
		for _, l := range lines {
			if w := ansi.StringWidth(l); w > size.Width {
				t.Errorf("%dx%d: line of width %d: %q", size.Width, size.Height, w, l)
			}
		}
		if len(lines) >= size.Height {
			t.Errorf("%dx%d: %d lines", size.Width, size.Height, len(lines))
		}
	}
	m.Update(tea.WindowSizeMsg{Width: 160, Height: 30})
	if got := screen(m); !strings.Contains(got, strings.Repeat("█", 9)) {
		t.Errorf("a wide terminal should get a wide bar:\n%s", got)
	}
}

func TestCtrlCCancelsThenLeaves(t *testing.T) {
	cancels := 0
	m := newModel(Options{Width: 100, Height: 30, Now: fixedClock(5), Cancel: func() { cancels++ }}, colorprofile.NoTTY)
	before, _ := split(sampleRun(), 5)
	feed(m, before...)

	ctrlC := tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl}
	if ctrlC.String() != "ctrl+c" {
		t.Fatalf("key is %q", ctrlC.String())
	}
	_, cmd := m.Update(ctrlC)
	if cmd == nil {
		t.Fatal("ctrl+c returned no command")
	}
	if msg := cmd(); msg != nil {
		t.Errorf("cancelling produced %T", msg)
	}
	if cancels != 1 || m.left || !m.cancelling {
		t.Fatalf("after one ctrl+c: cancels=%d left=%v cancelling=%v", cancels, m.left, m.cancelling)
	}
	if got := screen(m); !strings.Contains(got, "cancelling") || strings.Contains(got, "ctrl+c cancels") {
		t.Errorf("view does not say it is cancelling:\n%s", got)
	}

	// The executor answers with a summary of where each host was left.
	_, cmd = m.Update(eventMsg{apply.Event{Time: at(6), Type: apply.EventSummary, Results: []apply.HostResult{
		{Cluster: "home", Host: "10.0.0.10", Role: "server", Action: "install", Status: apply.StatusCancelled, Elapsed: 5e9, Error: "context canceled"},
		{Cluster: "home", Host: "10.0.0.11", Role: "agent", Action: "install", Status: apply.StatusSkipped},
	}}})
	if !strings.Contains(printed(m), "home     10.0.0.10  server  install  cancelled  5s       context canceled") {
		t.Errorf("summary:\n%s", printed(m))
	}
	if m.View().Content != "" {
		t.Errorf("the live area should be cleared at the end")
	}
	if cmd == nil {
		t.Fatal("no print command after the summary")
	}
	_, cmd = m.Update(printedMsg{})
	if cmd == nil {
		t.Fatal("no quit after the summary was printed")
	}
	if _, ok := cmd().(tea.QuitMsg); !ok {
		t.Errorf("want quit after the summary")
	}
}

func TestSecondCtrlCLeaves(t *testing.T) {
	m := newModel(Options{Width: 100, Height: 30, Now: fixedClock(5), Cancel: func() {}}, colorprofile.NoTTY)
	m.Update(interruptMsg{})
	m.Update(interruptMsg{})
	if !m.left {
		t.Fatal("second ctrl+c should leave the view")
	}
	if filter(m, tea.InterruptMsg{}) != (tea.InterruptMsg{}) {
		t.Error("once left, interrupts pass through")
	}
}

func TestWithoutCancelCtrlCLeaves(t *testing.T) {
	m := testModel(100, 30, 5)
	m.Update(tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl})
	if !m.left {
		t.Fatal("with nothing to cancel, ctrl+c leaves the view")
	}
}

func TestFilterTurnsSignalsIntoCancel(t *testing.T) {
	m := testModel(100, 30, 5)
	for _, msg := range []tea.Msg{tea.InterruptMsg{}, tea.QuitMsg{}} {
		if got := filter(m, msg); got != (interruptMsg{}) {
			t.Errorf("%T became %T", msg, got)
		}
	}
	m.finished = true
	if got := filter(m, tea.QuitMsg{}); got != (tea.QuitMsg{}) {
		t.Errorf("after the summary the view quits, got %T", got)
	}
}

func TestRemoteTextCannotDrawOnTheTerminal(t *testing.T) {
	m := testModel(100, 30, 5)
	feed(m,
		apply.Event{Time: at(1), Type: apply.EventStepStart, Cluster: "c", Host: "h", Step: "install"},
		apply.Event{Time: at(2), Type: apply.EventLog, Cluster: "c", Host: "h", Message: "\x1b[2J\x1b[31mred\x1b[0m\rdone\x07"},
	)
	if got := screen(m); !strings.Contains(got, "reddone") {
		t.Errorf("log line not cleaned:\n%q", got)
	}
}

func TestPlanListsEveryHostAsQueued(t *testing.T) {
	m := testModel(100, 30, 0)
	feed(m, sampleRun()[0])
	got := screen(m)
	for _, want := range []string{"home  0 of 3 finished", "lab  0 of 1 finished", "10.0.1.10  server  queued", "0 running · 4 queued · 0 done"} {
		if !strings.Contains(got, want) {
			t.Errorf("view lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "clusters") {
		t.Errorf("the plan is drawn raw:\n%s", got)
	}
}

func TestOddEventsDoNotBreakTheView(t *testing.T) {
	m := testModel(100, 30, 10)
	feed(m,
		apply.Event{Time: at(1), Type: apply.EventStepFailed, Cluster: "c", Host: "a", Step: "start k3s"},
		apply.Event{Time: at(1), Type: apply.EventHostDone, Cluster: "c", Host: "b"},
		apply.Event{Time: at(1), Type: apply.EventHostFailed, Cluster: "c", Host: "d", Error: " \n "},
		apply.Event{Time: at(1), Type: "drain", Cluster: "c", Host: "e"},
		apply.Event{Time: at(1), Type: apply.EventLog, Message: "a note about no host"},
	)
	for _, want := range []string{"✓ c/b  ", "unchanged\n", "✗ c/d  ", "failed"} {
		if !strings.Contains(printed(m)+"\n", want) {
			t.Errorf("printed lacks %q:\n%s", want, printed(m))
		}
	}
	// No start seen, so no elapsed time rather than one since year one.
	if got := screen(m); !strings.Contains(got, "✗ a") || strings.Contains(got, "2562047h") {
		t.Errorf("view:\n%s", got)
	}
}

// The running step shows its place among the steps the plan lists for the
// host; a step the plan does not list shows its name alone.
func TestViewStepCountsFromPlan(t *testing.T) {
	p := &plan.Plan{Clusters: []plan.ClusterPlan{{Name: "c", Hosts: []plan.HostPlan{{
		Address: "h", Role: "agent", Action: plan.ActionInstall,
		Steps: []plan.Step{
			{Kind: plan.StepUploadBinary, Host: "h", Changes: true},
			{Kind: plan.StepWriteConfig, Host: "h", Changes: true},
			{Kind: plan.StepStartAgent, Host: "h", Changes: true},
			{Kind: plan.StepWaitReady, Host: "h"},
		},
	}}}}}
	m := testModel(100, 10, 3)
	feed(m,
		apply.Event{Time: at(0), Type: apply.EventPlan, Plan: p},
		apply.Event{Time: at(1), Type: apply.EventStepStart, Cluster: "c", Host: "h", Role: "agent", Step: plan.StepStartAgent},
	)
	if got := screen(m); !strings.Contains(got, "h  agent   start k3s-agent 3/4") {
		t.Errorf("view lacks the step's place in the plan:\n%s", got)
	}
	feed(m, apply.Event{Time: at(2), Type: apply.EventStepStart, Cluster: "c", Host: "h", Role: "agent", Step: "drain node"})
	if got := screen(m); !strings.Contains(got, "drain node  ") || strings.Contains(got, "drain node 0/") {
		t.Errorf("a step the plan does not list:\n%s", got)
	}
}
