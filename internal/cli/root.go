// Package cli holds one file per k3sctl command: flags become a Spec, the
// work happens in the packages below. Exit codes are chosen here only.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// Exit codes.
const (
	ExitOK          = 0
	ExitError       = 1
	ExitUsage       = 2
	ExitHostsFailed = 3
	ExitInterrupted = 130
)

// IO is where a command reads and writes: data to Out, people-talk to Err.
type IO struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
}

// FlagError is a mistake in how the command was called; usage is printed.
type FlagError struct{ Err error }

func (e *FlagError) Error() string { return e.Err.Error() }
func (e *FlagError) Unwrap() error { return e.Err }

func flagErrorf(format string, a ...any) error { return &FlagError{fmt.Errorf(format, a...)} }

// SilentError carries an exit code for a failure the command already reported.
type SilentError struct{ Code int }

func (e *SilentError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// NewRoot builds the command tree.
func NewRoot(io IO) *cobra.Command {
	root := &cobra.Command{
		Use:   "k3sctl",
		Short: "Provision K3s clusters over SSH",
		Long: `k3sctl installs K3s on hosts you reach over SSH: one Raspberry Pi, a few
nodes joined one by one, or a fleet of small clusters from one inventory file.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(io.In)
	root.SetOut(io.Out)
	root.SetErr(io.Err)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return &FlagError{err} })
	root.AddCommand(newVersionCmd(io))
	for _, add := range extraCommands {
		root.AddCommand(add(io))
	}
	return root
}

// extraCommands lets each command file register itself.
var extraCommands []func(IO) *cobra.Command

// Main runs k3sctl with args and returns the process exit code.
func Main(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	std := IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}
	return Execute(ctx, std, args)
}

// Execute runs the command tree and maps errors to exit codes.
func Execute(ctx context.Context, std IO, args []string) int {
	root := NewRoot(std)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var silent *SilentError
	if errors.As(err, &silent) {
		return silent.Code
	}
	if ctx.Err() != nil {
		fmt.Fprintln(std.Err, "k3sctl: interrupted")
		return ExitInterrupted
	}
	fmt.Fprintf(std.Err, "Error: %v\n", err)
	var fe *FlagError
	if errors.As(err, &fe) || isCobraUsageError(err) {
		if c, _, ferr := root.Find(args); ferr == nil && c != nil {
			fmt.Fprintf(std.Err, "Run '%s --help' for usage.\n", c.CommandPath())
		}
		return ExitUsage
	}
	return ExitError
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
