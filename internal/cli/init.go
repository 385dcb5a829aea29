package cli

import (
	"errors"
	"fmt"

	"github.com/k3sctl/k3sctl/internal/inventory"
	"github.com/spf13/cobra"
)

func init() { extraCommands = append(extraCommands, newInitCmd) }

func newInitCmd(io IO) *cobra.Command {
	var force bool
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
			path := "inventory.yaml"
			if len(args) == 1 {
				path = args[0]
			}
			if path == "" {
				return flagErrorf("the file name is empty")
			}
			if path == "-" {
				_, err := io.Out.Write(inventory.Starter())
				return err
			}
			err := inventory.WriteStarter(path, force)
			if errors.Is(err, inventory.ErrExists) {
				return fmt.Errorf("%w; pass --force to replace it, or name another file", err)
			}
			if err != nil {
				return fmt.Errorf("write starter inventory: %w", err)
			}
			fmt.Fprintf(io.Err, "Wrote %s: replace the example addresses with your hosts, then plan with it.\n", path)
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "replace the file if it exists")
	return cmd
}
