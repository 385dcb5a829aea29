package ui

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"

	"github.com/k3sctl/k3sctl/internal/apply"
)

// closeTimeout bounds how long Close waits for the view to draw its last
// lines; past it the terminal is given back all the same.
const closeTimeout = 5 * time.Second

// tuiRenderer runs the live view as a Bubble Tea program. Events reach it
// through Program.Send, so the apply's goroutines never touch the model.
type tuiRenderer struct {
	opts Options
	// progOpts lets tests swap the terminal for buffers.
	progOpts []tea.ProgramOption

	mu      sync.Mutex
	started bool
	pending []apply.Event // sent before Start
	// lastProgress thins out progress: a transfer reports many times a
	// second per host, and each event redraws the view.
	lastProgress map[hostKey]apply.Event

	prog   *tea.Program
	done   chan struct{}
	closed atomic.Bool
	err    error

	// fallback shows what still comes after the view ended early, so the
	// summary is never lost.
	fallback  *plainRenderer
	closeOnce sync.Once
}

var _ Renderer = (*tuiRenderer)(nil)

func newTUIRenderer(o Options) *tuiRenderer {
	return &tuiRenderer{
		opts:         o,
		done:         make(chan struct{}),
		fallback:     newPlainRenderer(o),
		lastProgress: map[hostKey]apply.Event{},
	}
}

// colorProfile is what the output can show, less colour when asked.
func colorProfile(o Options) colorprofile.Profile {
	p := colorprofile.Detect(o.Out, os.Environ())
	if (o.NoColor || noColorEnv()) && p > colorprofile.ASCII {
		p = colorprofile.ASCII
	}
	return p
}

func (r *tuiRenderer) Start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started || r.closed.Load() {
		return errors.New("ui: live view already started or closed")
	}
	profile := colorProfile(r.opts)
	m := newModel(r.opts, profile)
	for _, e := range r.pending {
		m.apply(e)
	}
	r.pending = nil
	opts := []tea.ProgramOption{
		tea.WithOutput(r.opts.Out),
		tea.WithColorProfile(profile),
		tea.WithFilter(filter),
	}
	if r.opts.Width > 0 && r.opts.Height > 0 {
		opts = append(opts, tea.WithWindowSize(r.opts.Width, r.opts.Height))
	}
	r.prog = tea.NewProgram(m, append(opts, r.progOpts...)...)
	r.started = true
	go func() {
		defer close(r.done)
		final, err := r.prog.Run()
		fm, _ := final.(*model)
		if fm != nil {
			r.fallback.startAt(fm.first)
		}
		switch {
		case fm != nil && fm.left:
			r.err = ErrInterrupted
		case err != nil && !errors.Is(err, tea.ErrProgramKilled):
			r.err = fmt.Errorf("live view: %w", err)
		}
	}()
	return nil
}

func (r *tuiRenderer) Event(e apply.Event) {
	if r.closed.Load() {
		return
	}
	r.mu.Lock()
	if !r.started {
		r.pending = append(r.pending, e)
		r.mu.Unlock()
		return
	}
	skip := r.thin(e)
	r.mu.Unlock()
	if skip {
		return
	}
	select {
	case <-r.done:
		r.fallback.Event(e)
	default:
		r.prog.Send(eventMsg{e})
	}
}

// progressEveryTUI is about as often as a person can read a number change.
const progressEveryTUI = 100 * time.Millisecond

// thin reports a progress event that adds nothing the next one will not
// say: bytes are cumulative, so only the latest matters, except the end of
// a transfer and the start of the next.
func (r *tuiRenderer) thin(e apply.Event) bool {
	k := keyOf(e)
	if e.Type != apply.EventProgress {
		if e.Type == apply.EventStepStart || e.Type == apply.EventHostDone || e.Type == apply.EventHostFailed {
			delete(r.lastProgress, k)
		}
		return false
	}
	last, seen := r.lastProgress[k]
	switch {
	case !seen, e.Total > 0 && e.Bytes >= e.Total, e.Bytes < last.Bytes,
		eventTime(e, r.opts.Now).Sub(eventTime(last, r.opts.Now)) >= progressEveryTUI:
		r.lastProgress[k] = e
		return false
	}
	return true
}

// Close tells the view nothing more will come, so it prints what is left
// (the summary normally) and ends even when the apply returned without one,
// then gives the terminal back.
func (r *tuiRenderer) Close() {
	r.closeOnce.Do(func() {
		r.closed.Store(true)
		r.mu.Lock()
		started := r.started
		r.mu.Unlock()
		if !started {
			close(r.done)
			return
		}
		r.prog.Send(noMoreMsg{})
		select {
		case <-r.done:
		case <-time.After(closeTimeout):
			r.prog.Kill()
			<-r.done
		}
	})
}

// Wait closes the view if that is not done yet and reports a failure of the
// view itself, or ErrInterrupted when the person left it.
func (r *tuiRenderer) Wait() error {
	r.Close()
	if r.err != nil {
		return r.err
	}
	return r.fallback.Wait()
}
