package cli

import (
	"encoding/json"
	"fmt"

	"github.com/k3sctl/k3sctl/internal/buildinfo"
	"github.com/spf13/cobra"
)

// NewCmdVersion is the version command.
func NewCmdVersion(f *Factory) *cobra.Command {
	io := f.IO
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the k3sctl version",
		Example: `  # Show version, commit and Go version
  $ k3sctl version

  # The same as JSON
  $ k3sctl version --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			info := buildinfo.Get()
			switch output {
			case "json":
				enc := json.NewEncoder(io.Out)
				return enc.Encode(info)
			case "", "text":
				fmt.Fprintf(io.Out, "k3sctl %s\ncommit: %s\ngo: %s\n", info.Version, info.Commit, info.GoVersion)
				return nil
			default:
				return flagErrorf("--output must be text or json, not %q", output)
			}
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}
