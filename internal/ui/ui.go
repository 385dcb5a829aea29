package ui

import (
	"errors"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/charmbracelet/x/term"

	"github.com/k3sctl/k3sctl/internal/apply"
)

// Output modes accepted by Options.Mode and returned by Choose.
const (
	ModeTUI   = "tui"
	ModePlain = "plain"
	ModeJSON  = "json"
)

// ErrInterrupted is returned by Renderer.Wait when the person left the live
// view with ctrl+c instead of waiting for the summary.
var ErrInterrupted = errors.New("live view interrupted")

// Options configure a Renderer.
type Options struct {
	// Mode is ModeTUI, ModePlain or ModeJSON; anything else is treated as
	// ModePlain, which is safe on any output.
	Mode string
	// Out receives the rendering: stderr for people, stdout for JSON.
	Out io.Writer
	// NoColor drops colours even when the terminal has them. NO_COLOR in the
	// environment has the same effect.
	NoColor bool
	// Width and Height are the size to draw for when Out is not a terminal,
	// as in tests; a terminal's own size always wins.
	Width, Height int
	// Now replaces the clock, so tests get stable elapsed times.
	Now func() time.Time
	// Cancel is called when the person presses ctrl+c in the live view. The
	// view keeps running until the summary arrives, so the person sees where
	// every host was left. Without Cancel, ctrl+c leaves the view.
	Cancel func()
}

// Renderer shows the events of one apply.
//
// Start begins drawing; events sent before it are kept until then. After
// the apply returned (its last event is normally the summary), Close lets
// the renderer draw what is left and gives the terminal back, and Wait does
// the same and reports a failure of the renderer itself. Either order works,
// both may be called more than once, and Close is safe to defer.
type Renderer interface {
	apply.Sink
	Start() error
	Wait() error
	Close()
}

// New returns the renderer for o.Mode.
func New(o Options) Renderer {
	if o.Out == nil {
		o.Out = os.Stderr
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	switch o.Mode {
	case ModeJSON:
		return newJSONRenderer(o)
	case ModeTUI:
		return newTUIRenderer(o)
	default:
		return newPlainRenderer(o)
	}
}

// Choose picks the mode from the flags and where stderr goes: JSON when asked
// for, plain lines for --plain, CI, a dumb terminal or a stderr that is not a
// terminal, and the live view otherwise.
func Choose(stderr *os.File, outputFlag string, plainFlag bool) string {
	switch {
	case outputFlag == ModeJSON:
		return ModeJSON
	case plainFlag, inCI(), os.Getenv("TERM") == "dumb":
		return ModePlain
	case stderr == nil || !term.IsTerminal(stderr.Fd()):
		return ModePlain
	default:
		return ModeTUI
	}
}

// inCI follows the convention of CI services, which set CI to a non-empty
// value; CI=false is how people switch it off locally.
func inCI() bool {
	v, ok := os.LookupEnv("CI")
	if !ok || v == "" {
		return false
	}
	if b, err := strconv.ParseBool(v); err == nil {
		return b
	}
	return true
}

// noColorEnv reports NO_COLOR as https://no-color.org asks: any non-empty
// value disables colour.
func noColorEnv() bool {
	return os.Getenv("NO_COLOR") != ""
}
