package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/k3sctl/k3sctl/internal/inventory"
)

// InitOptions are what init was asked to do, checked.
type InitOptions struct {
	IO *IO
	// Path is the file to write; "-" is standard output.
	Path  string
	Force bool
}

// NewCmdInit is the init command; runF replaces initRun in tests.
func NewCmdInit(f *Factory, runF func(*InitOptions) error) *cobra.Command {
	opts := &InitOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "init [<file>]",
		Short: "Write a starter inventory file",
		Long: `Write a commented starter inventory describing one small cluster, to edit
into your own. The file defaults to inventory.yaml; "-" writes to standard
output. An existing file is left alone unless --force is given.`,
		Example: `  # Start an inventory in the current directory
  $ k3sctl init

  # Start one under another name
  $ k3sctl init clusters/edge.yaml

  # Print it instead of writing a file
  $ k3sctl init -

  # Replace an existing file with a fresh starter
  $ k3sctl init inventory.yaml --force`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Path = "inventory.yaml"
			if len(args) == 1 {
				opts.Path = args[0]
			}
			if opts.Path == "" {
				return flagErrorf("the file name is empty")
			}
			if runF != nil {
				return runF(opts)
			}
			return initRun(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Force, "force", false, "replace the file if it exists")
	return cmd
}

func initRun(opts *InitOptions) error {
	if opts.Path == "-" {
		_, err := opts.IO.Out.Write(inventory.Starter())
		return err
	}
	err := inventory.WriteStarter(opts.Path, opts.Force)
	if errors.Is(err, inventory.ErrExists) {
		return fmt.Errorf("%w; pass --force to replace it, or name another file", err)
	}
	if err != nil {
		return fmt.Errorf("write starter inventory: %w", err)
	}
	fmt.Fprintf(opts.IO.Err, "Wrote %s: replace the example addresses with your hosts, then plan with it.\n", opts.Path)
	return nil
}
