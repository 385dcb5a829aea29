package cli

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"

	"golang.org/x/term"

	"github.com/k3sctl/k3sctl/internal/ui"
)

// IO is where every command reads and writes: data to Out, people-talk to
// Err. Whether each stream is a terminal, whether colour is wanted and
// whether a live view may be drawn are decided once, when the IO is made,
// so no command looks at os.Stdout or the environment for that itself.
//
// An IO written as a literal with only In, Out and Err is a non-terminal
// one: no colour, no live view, no prompts.
type IO struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer

	inTTY, outTTY, errTTY bool
	color                 bool
	// liveView: stderr may be redrawn in place (a terminal, not CI, not a
	// dumb terminal).
	liveView bool
}

// SystemIO is the process's standard streams, looked at once.
func SystemIO() *IO {
	s := &IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}
	s.inTTY = isTerminal(os.Stdin)
	s.outTTY = isTerminal(os.Stdout)
	s.errTTY = isTerminal(os.Stderr)
	dumb := os.Getenv("TERM") == "dumb"
	// NO_COLOR (https://no-color.org): any non-empty value turns colour off.
	s.color = s.errTTY && !dumb && os.Getenv("NO_COLOR") == ""
	s.liveView = s.errTTY && !dumb && !inCI()
	return s
}

// TestIO is an IO of buffers, none of them a terminal. The setters make a
// test's IO look like a terminal where the test needs it.
func TestIO() (s *IO, in, out, errOut *bytes.Buffer) {
	in, out, errOut = &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	return &IO{In: in, Out: out, Err: errOut}, in, out, errOut
}

func isTerminal(f *os.File) bool { return f != nil && term.IsTerminal(int(f.Fd())) }

// inCI follows the convention of CI services, which set CI to a non-empty
// value; CI=false is how people switch it off locally.
func inCI() bool {
	v := os.Getenv("CI")
	if v == "" {
		return false
	}
	if b, err := strconv.ParseBool(v); err == nil {
		return b
	}
	return true
}

// IsStdinTTY reports whether In is a terminal a person can answer on.
func (s *IO) IsStdinTTY() bool { return s.inTTY }

// IsStdoutTTY reports whether Out is a terminal.
func (s *IO) IsStdoutTTY() bool { return s.outTTY }

// IsStderrTTY reports whether Err is a terminal.
func (s *IO) IsStderrTTY() bool { return s.errTTY }

// ColorEnabled reports whether people-talk on Err may be coloured.
func (s *IO) ColorEnabled() bool { return s.color }

// SetStdinTTY makes In count as a terminal or not (for tests).
func (s *IO) SetStdinTTY(v bool) { s.inTTY = v }

// SetStdoutTTY makes Out count as a terminal or not (for tests).
func (s *IO) SetStdoutTTY(v bool) { s.outTTY = v }

// SetStderrTTY makes Err count as a terminal that may show the live view,
// or not (for tests).
func (s *IO) SetStderrTTY(v bool) { s.errTTY, s.liveView = v, v }

// SetColorEnabled turns colour on Err on or off (for tests).
func (s *IO) SetColorEnabled(v bool) { s.color = v }

// RenderMode picks how a run's events are shown: JSON lines on Out when
// asked for, else the live view on Err when Err may be redrawn, else plain
// lines on Err (also for --plain).
func (s *IO) RenderMode(output string, plain bool) string {
	switch {
	case output == "json":
		return ui.ModeJSON
	case plain || !s.liveView:
		return ui.ModePlain
	}
	return ui.ModeTUI
}

// Renderer returns the view for mode, writing to the stream that mode
// belongs on.
func (s *IO) Renderer(mode string, cancel func()) ui.Renderer {
	out := s.Err
	if mode == ui.ModeJSON {
		out = s.Out
	}
	return ui.New(ui.Options{Mode: mode, Out: out, NoColor: !s.color, Cancel: cancel})
}

// Warnf writes a warning line to Err.
func (s *IO) Warnf(format string, a ...any) {
	fmt.Fprintf(s.Err, "warning: "+format+"\n", a...)
}
