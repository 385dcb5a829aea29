package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/k3sctl/k3sctl/internal/preflight"
	"github.com/k3sctl/k3sctl/internal/ssh"
	"github.com/k3sctl/k3sctl/internal/ui"
)

// Factory hands every command what it depends on. What costs something
// (the terminal for SSH prompts) is made on first use, so --help and a
// flag mistake never open it.
type Factory struct {
	IO *IO
	// Prompter asks the person at the terminal for key passphrases and
	// sudo passwords; nil func or nil result: there is nobody to ask.
	Prompter func() ssh.Prompter

	jumpsOnce sync.Once
	jumps     *ssh.JumpPool
}

// jumpPool is the jump host connections every host of this run shares.
func (f *Factory) jumpPool() *ssh.JumpPool {
	f.jumpsOnce.Do(func() { f.jumps = ssh.NewJumpPool() })
	return f.jumps
}

// NewFactory is the Factory of a real run on io.
func NewFactory(io *IO) *Factory {
	var (
		once sync.Once
		p    ssh.Prompter
	)
	return &Factory{IO: io, Prompter: func() ssh.Prompter {
		once.Do(func() {
			if tp, err := ssh.OpenTerminalPrompter(); err == nil {
				p = tp
			}
		})
		return p
	}}
}

func (f *Factory) prompter() ssh.Prompter {
	if f.Prompter == nil {
		return nil
	}
	return f.Prompter()
}

// FlagError is a mistake in how the command was called; usage is printed.
type FlagError struct{ Err error }

func (e *FlagError) Error() string { return e.Err.Error() }
func (e *FlagError) Unwrap() error { return e.Err }

func flagErrorf(format string, a ...any) error { return &FlagError{fmt.Errorf(format, a...)} }

// parseError is a FlagError met while the flags were parsed, so the
// command's own flags (such as --output) cannot be trusted.
type parseError struct{ FlagError }

// SilentError carries an exit code for a failure the command already
// reported, on stderr and, with -o json, on stdout.
type SilentError struct{ Code int }

func (e *SilentError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// CodeError is a failure with an exit code other than ExitError.
// Execute reports it like any error, without the "Error: " prefix when
// Bare is set (the message is already in a form editors read, file:line:col).
type CodeError struct {
	Code int
	Err  error
	Bare bool
}

func (e *CodeError) Error() string { return e.Err.Error() }
func (e *CodeError) Unwrap() error { return e.Err }

// NewRoot builds the command tree. Every command is listed here.
func NewRoot(f *Factory) *cobra.Command {
	root := newRootCmd(f)
	root.AddCommand(
		NewCmdInit(f, nil),
		NewCmdFacts(f, nil),
		NewCmdInstall(f, nil),
		NewCmdJoin(f, nil),
		NewCmdPlan(f, nil),
		NewCmdApply(f, nil),
		NewCmdBackup(f, nil),
		NewCmdRestore(f, nil),
		NewCmdStatus(f, nil),
		NewCmdKubeconfig(f),
		NewCmdNodeToken(f),
		NewCmdUninstall(f),
		NewCmdNodeRemove(f),
		NewCmdReset(f),
		NewCmdVersion(f),
		newGenDocsCmd(f),
	)
	return root
}

// newRootCmd is the root without its commands.
func newRootCmd(f *Factory) *cobra.Command {
	root := &cobra.Command{
		Use:   "k3sctl",
		Short: "Provision K3s clusters over SSH",
		Long: `k3sctl installs K3s on hosts you reach over SSH: one Raspberry Pi, a few
nodes joined one by one, or a fleet of small clusters from one inventory file.

` + exitCodeHelp(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(f.IO.In)
	root.SetOut(f.IO.Out)
	root.SetErr(f.IO.Err)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return &parseError{FlagError{err}} })
	return root
}

// Main runs k3sctl with args and returns the process exit code.
func Main(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Execute(ctx, SystemIO(), args)
}

// Execute runs the command tree and maps errors to exit codes. A failure
// is told to people on stderr; when the command was asked for -o json, it
// also ends stdout with an "error" event, unless the command already
// reported it there.
func Execute(ctx context.Context, io *IO, args []string) int {
	return run(ctx, io, NewRoot(NewFactory(io)), args)
}

// run executes root with args; the one place errors become exit codes.
func run(ctx context.Context, io *IO, root *cobra.Command, args []string) int {
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	var silent *SilentError
	if errors.As(err, &silent) {
		return silent.Code
	}
	code, msg, hint := ExitError, "Error: "+err.Error(), ""
	var (
		fe  *FlagError
		ce  *CodeError
		rep *preflight.Report
	)
	switch {
	case ctx.Err() != nil:
		code, msg = ExitInterrupted, "k3sctl: interrupted"
	case errors.As(err, &rep):
		// One block: every problem with its fix, nothing was changed.
		code, msg = ExitPreflight, rep.Error()
	case errors.As(err, &fe) || isCobraUsageError(err):
		code = ExitUsage
		if cmd != nil {
			hint = fmt.Sprintf("Run '%s --help' for usage.", cmd.CommandPath())
		}
	case errors.As(err, &ce):
		code = ce.Code
		if ce.Bare {
			msg = err.Error()
		}
	}
	fmt.Fprintln(io.Err, msg)
	if hint != "" {
		fmt.Fprintln(io.Err, hint)
	}
	var pe *parseError
	if cmd != nil && !errors.As(err, &pe) && wantsJSON(cmd) {
		writeErrorEvent(io, err, hint)
	}
	return code
}

// wantsJSON reports whether cmd was asked for JSON output.
func wantsJSON(cmd *cobra.Command) bool {
	fl := cmd.Flags().Lookup("output")
	return fl != nil && fl.Value.String() == "json"
}

// errorEvent is the "error" line of docs/events.md: a run that ends
// without its summary says why in its last line.
type errorEvent struct {
	Schema string    `json:"schema"`
	Time   time.Time `json:"time"`
	Type   string    `json:"type"`
	Error  string    `json:"error"`
	Hint   string    `json:"hint,omitempty"`
	// Problems are the preflight problems, one per host and kind, when
	// the run stopped before any change.
	Problems []problemEvent `json:"problems,omitempty"`
}

// problemEvent is one preflight problem of an "error" event.
type problemEvent struct {
	Host  string `json:"host,omitempty"` // "" for this machine
	Kind  string `json:"kind"`
	Error string `json:"error"`
	Hint  string `json:"hint,omitempty"`
}

// EventError is the type of the event that ends a failed run's JSON output.
const EventError = "error"

func writeErrorEvent(io *IO, err error, hint string) {
	msg, h := splitHint(err)
	if hint == "" {
		hint = h
	}
	ev := errorEvent{Schema: ui.Schema, Time: time.Now(), Type: EventError, Error: msg, Hint: hint}
	var rep *preflight.Report
	if errors.As(err, &rep) && len(rep.Problems) > 0 {
		sorted := rep.Err().(*preflight.Report)
		ev.Error, _, _ = strings.Cut(sorted.Error(), ":\n")
		ev.Hint = ""
		for _, p := range sorted.Problems {
			ev.Problems = append(ev.Problems, problemEvent{Host: p.Host, Kind: string(p.Kind), Error: p.What, Hint: p.Fix})
		}
	}
	line, _ := json.Marshal(ev)
	_, _ = io.Out.Write(append(line, '\n'))
}

// splitHint separates the hint line an error carries ("…\n  hint: …") from
// its cause.
func splitHint(err error) (msg, hint string) {
	msg = err.Error()
	hint = ssh.HintOf(err)
	for _, sep := range []string{"\n  hint: ", "\nhint: "} {
		if before, after, ok := strings.Cut(msg, sep); ok {
			if hint == "" {
				hint = strings.TrimSpace(after)
			}
			return before, hint
		}
	}
	return msg, hint
}

func isCobraUsageError(err error) bool {
	// cobra reports unknown commands and bad arg counts as plain errors.
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand", "accepts ", "requires at least", "invalid argument"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}
