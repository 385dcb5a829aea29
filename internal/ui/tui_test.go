package ui

import (
	"bytes"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/exp/teatest/v2"
	"github.com/charmbracelet/x/vt"

	"github.com/k3sctl/k3sctl/internal/apply"
)

// terminal replays what the program wrote into an emulated terminal, so a
// golden file holds what a person would see rather than escape codes whose
// exact sequence depends on frame timing.
type terminal struct {
	emu *vt.Emulator
}

func newTerminal(t *testing.T, w, h int) *terminal {
	emu := vt.NewEmulator(w, h)
	// The emulator answers the program's queries through a pipe that must
	// be drained for writes to go on.
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		_, _ = io.Copy(io.Discard, emu)
	}()
	t.Cleanup(func() {
		// Ending the pipe first lets the drain stop before Close touches
		// the emulator's state.
		if c, ok := emu.InputPipe().(io.Closer); ok {
			_ = c.Close()
			<-drained
		}
		_ = emu.Close()
	})
	return &terminal{emu: emu}
}

func (term *terminal) feed(t *testing.T, r io.Reader) {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	// Without a terminal for input Bubble Tea leaves the line discipline in
	// cooked mode, where the kernel turns each newline into CR LF; the
	// emulator needs that done for it.
	b = bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
	if _, err := term.emu.Write(b); err != nil {
		t.Fatal(err)
	}
}

// text is the scrollback followed by the screen, without trailing blanks.
func (term *terminal) text() string {
	var lines []string
	for _, l := range term.emu.Scrollback().Lines() {
		lines = append(lines, l.String())
	}
	lines = append(lines, strings.Split(term.emu.String(), "\n")...)
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return strings.Join(lines, "\n") + "\n"
}

func (term *terminal) waitFor(t *testing.T, r io.Reader, wants ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		term.feed(t, r)
		text := term.text()
		ok := true
		for _, w := range wants {
			ok = ok && strings.Contains(text, w)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("screen never showed %q:\n%s", wants, text)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testClock is moved by the test while the program reads it.
type testClock struct{ offset atomic.Int64 }

func (c *testClock) set(seconds float64) { c.offset.Store(int64(seconds * float64(time.Second))) }
func (c *testClock) now() time.Time      { return t0.Add(time.Duration(c.offset.Load())) }

func TestLiveViewRun(t *testing.T) {
	const w, h = 100, 30
	var clock testClock
	clock.set(snapshotAt)
	o := Options{Out: &bytes.Buffer{}, Now: clock.now, Width: w, Height: h, Cancel: func() {}}
	profile := colorProfile(o)
	tm := teatest.NewTestModel(t, newModel(o, profile),
		teatest.WithInitialTermSize(w, h),
		teatest.WithProgramOptions(tea.WithFilter(filter), tea.WithColorProfile(profile)),
	)
	term := newTerminal(t, w, h)
	// Events only come once the apply has planned, well after the first
	// frame; waiting for it keeps the test as ordered as a real run.
	term.waitFor(t, tm.Output(), "starting")

	before, after := split(sampleRun(), snapshotAt)
	for _, e := range before {
		tm.Send(eventMsg{e})
	}
	term.waitFor(t, tm.Output(), "✓ lab/10.0.1.10", "40%", "1 running · 2 queued · 1 done")
	requireGolden(t, "live", term.text())

	clock.set(106)
	for _, e := range after {
		tm.Send(eventMsg{e})
	}
	tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
	term.feed(t, tm.FinalOutput(t))
	got := term.text()
	requireGolden(t, "final", got)
	if strings.Contains(got, "ctrl+c cancels") {
		t.Errorf("the live area was left behind:\n%s", got)
	}
}

// syncBuffer is written by the program and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newTUI(t *testing.T, o Options) (*tuiRenderer, *syncBuffer) {
	t.Helper()
	out := &syncBuffer{}
	o.Mode, o.Out = ModeTUI, out
	r, ok := New(o).(*tuiRenderer)
	if !ok {
		t.Fatalf("New(%q) is not the live view", o.Mode)
	}
	r.progOpts = []tea.ProgramOption{tea.WithInput(nil)}
	t.Cleanup(r.Close)
	return r, out
}

func startTUI(t *testing.T, o Options) (*tuiRenderer, *syncBuffer) {
	t.Helper()
	r, out := newTUI(t, o)
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	return r, out
}

func TestTUIRendererLifecycle(t *testing.T) {
	r, out := newTUI(t, Options{Width: 100, Height: 30, Now: fixedClock(106)})
	events := sampleRun()
	// The plan may come before the view starts; it is kept, not lost.
	r.Event(events[0])
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	for _, e := range events[1:] {
		r.Event(e)
	}
	// Close first, as the CLI does, then Wait.
	r.Close()
	if err := r.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	r.Event(events[1]) // too late: dropped, and no panic
	term := newTerminal(t, 100, 30)
	term.feed(t, strings.NewReader(out.String()))
	got := term.text()
	for _, want := range []string{"✓ lab/10.0.1.10", "✗ home/10.0.0.11", "CLUSTER  HOST", "4 hosts: 2 done, 1 unchanged, 1 failed in 1m46s"} {
		if !strings.Contains(got, want) {
			t.Errorf("screen lacks %q:\n%s", want, got)
		}
	}
}

func TestTUIRendererWaitWithoutSummary(t *testing.T) {
	r, _ := startTUI(t, Options{Width: 100, Height: 30, Now: fixedClock(5)})
	before, _ := split(sampleRun(), 5)
	for _, e := range before {
		r.Event(e)
	}
	done := make(chan error)
	go func() { done <- r.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Wait: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait hung without a summary")
	}
}

func TestTUIRendererLeaveFallsBackToPlain(t *testing.T) {
	cancelled := make(chan struct{})
	r, out := startTUI(t, Options{Width: 100, Height: 30, Now: fixedClock(5), Cancel: func() { close(cancelled) }})
	before, _ := split(sampleRun(), 5)
	for _, e := range before {
		r.Event(e)
	}
	ctrlC := tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl}
	r.prog.Send(ctrlC)
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("ctrl+c did not cancel")
	}
	r.prog.Send(ctrlC)
	select {
	case <-r.done:
	case <-time.After(5 * time.Second):
		t.Fatal("second ctrl+c did not leave the view")
	}
	r.Event(apply.Event{Time: at(6), Type: apply.EventSummary, Results: []apply.HostResult{
		{Cluster: "home", Host: "10.0.0.10", Role: "server", Action: "install", Status: apply.StatusCancelled},
	}})
	if err := r.Wait(); err != ErrInterrupted {
		t.Errorf("Wait = %v, want ErrInterrupted", err)
	}
	if got := out.String(); !strings.Contains(got, "home     10.0.0.10  server  install  cancelled") {
		t.Errorf("summary after leaving the view is missing:\n%s", got)
	}
}

func TestTUIRendererThinsProgress(t *testing.T) {
	r := newTUIRenderer(Options{Now: fixedClock(0)})
	host := apply.Event{Cluster: "c", Host: "h", Type: apply.EventProgress, Total: 1000}
	passed := 0
	for i := 1; i <= 1000; i++ {
		e := host
		e.Time, e.Bytes = at(float64(i)/1000), int64(i)
		if !r.thin(e) {
			passed++
		}
	}
	// One per 100ms of a one-second transfer, plus the first and the last.
	if passed < 10 || passed > 12 {
		t.Errorf("%d of 1000 progress events passed", passed)
	}
	e := host
	e.Time, e.Bytes = at(1.0001), 5
	if r.thin(e) {
		t.Error("the start of the next transfer was dropped")
	}
}
