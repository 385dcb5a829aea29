package ui

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"

	"github.com/k3sctl/k3sctl/internal/apply"
)

// tuiRenderer runs the live view as a Bubble Tea program. Events reach it
// through Program.Send, so the apply's goroutines never touch the model.
type tuiRenderer struct {
	opts Options
	// progOpts lets tests swap the terminal for buffers.
	progOpts []tea.ProgramOption

	prog    *tea.Program
	started bool
	done    chan struct{}
	closed  atomic.Bool
	err     error

	// fallback shows what still comes after the view ended early, so the
	// summary is never lost.
	fallbackOnce sync.Once
	fallback     *plainRenderer
	closeOnce    sync.Once
}

var _ Renderer = (*tuiRenderer)(nil)

func newTUIRenderer(o Options) *tuiRenderer {
	return &tuiRenderer{opts: o, done: make(chan struct{})}
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
	if r.started {
		return errors.New("ui: live view already started")
	}
	profile := colorProfile(r.opts)
	m := newModel(r.opts, profile)
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
		if fm, ok := final.(*model); ok && fm.left {
			r.err = ErrInterrupted
			return
		}
		if err != nil && !r.closed.Load() {
			r.err = fmt.Errorf("live view: %w", err)
		}
	}()
	return nil
}

func (r *tuiRenderer) Event(e apply.Event) {
	if r.closed.Load() {
		return
	}
	if !r.started {
		r.plain().Event(e)
		return
	}
	select {
	case <-r.done:
		r.plain().Event(e)
	default:
		r.prog.Send(eventMsg{e})
	}
}

func (r *tuiRenderer) plain() *plainRenderer {
	r.fallbackOnce.Do(func() { r.fallback = newPlainRenderer(r.opts) })
	return r.fallback
}

// Wait tells the view nothing more will come, so it ends even when the apply
// returned without a summary, and waits for it to finish drawing.
func (r *tuiRenderer) Wait() error {
	if !r.started {
		return nil
	}
	r.prog.Send(noMoreMsg{})
	<-r.done
	if r.err != nil {
		return r.err
	}
	if r.fallback != nil {
		return r.fallback.Wait()
	}
	return nil
}

// Close stops the view at once if it still runs and gives the terminal back.
func (r *tuiRenderer) Close() {
	r.closeOnce.Do(func() {
		r.closed.Store(true)
		if r.started {
			r.prog.Kill()
			<-r.done
		}
	})
}
