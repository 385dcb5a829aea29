package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// generatedNote heads every Markdown page, so nobody edits a page that the
// next `make docs` would overwrite.
const generatedNote = "<!-- Generated from the command tree by `make docs` (k3sctl gen-docs). Edit internal/cli, not this file. -->\n\n"

func newGenDocsCmd(f *Factory) *cobra.Command {
	io := f.IO
	var mdDir, manDir string
	cmd := &cobra.Command{
		Use:   "gen-docs --dir <dir> [--man <dir>]",
		Short: "Write the command reference as Markdown and man pages",
		Long: `Write one Markdown page per command into --dir and, with --man, one man
page per command into that directory. Pages of commands that no longer exist
are removed. Man pages are dated by $SOURCE_DATE_EPOCH when it is set, so a
release can reproduce them.`,
		Example: `  # The reference in this repository (what make docs runs)
  $ k3sctl gen-docs --dir docs/cli --man docs/man`,
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if mdDir == "" && manDir == "" {
				return flagErrorf("where to? give --dir <dir> and/or --man <dir>")
			}
			if err := WriteReference(cmd.Root(), mdDir, manDir); err != nil {
				return err
			}
			for _, d := range []string{mdDir, manDir} {
				if d != "" {
					fmt.Fprintf(io.Err, "Wrote %s\n", d)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&mdDir, "dir", "", "directory for the Markdown pages")
	cmd.Flags().StringVar(&manDir, "man", "", "directory for the man pages (section 1)")
	return cmd
}

// WriteReference writes the reference of root's command tree: Markdown
// pages into mdDir and man pages into manDir; an empty directory is skipped.
// Earlier pages there are replaced, so a removed command loses its page.
func WriteReference(root *cobra.Command, mdDir, manDir string) error {
	// What `k3sctl completion` offers belongs in the reference; cobra adds
	// the command only when the tree runs, so add it here too, and the
	// reference is the same whether written by gen-docs or by a test.
	root.InitDefaultCompletionCmd()
	// The date line cobra would add changes every day for nothing.
	root.DisableAutoGenTag = true

	if mdDir != "" {
		if err := clearPages(mdDir, ".md"); err != nil {
			return err
		}
		prepend := func(string) string { return generatedNote }
		link := func(name string) string { return name }
		if err := doc.GenMarkdownTreeCustom(root, mdDir, prepend, link); err != nil {
			return fmt.Errorf("write Markdown reference: %w", err)
		}
	}
	if manDir != "" {
		if err := clearPages(manDir, ".1"); err != nil {
			return err
		}
		date, err := manDate()
		if err != nil {
			return err
		}
		header := &doc.GenManHeader{Title: "K3SCTL", Section: "1", Source: "k3sctl", Manual: "k3sctl manual", Date: &date}
		if err := doc.GenManTree(root, header, manDir); err != nil {
			return fmt.Errorf("write man pages: %w", err)
		}
	}
	return nil
}

// clearPages makes dir exist and removes the pages an earlier run wrote.
func clearPages(dir, ext string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	old, err := filepath.Glob(filepath.Join(dir, "k3sctl*"+ext))
	if err != nil {
		return err
	}
	for _, p := range old {
		if err := os.Remove(p); err != nil {
			return err
		}
	}
	return nil
}

// manDate is $SOURCE_DATE_EPOCH (reproducible builds' convention) or now.
func manDate() (time.Time, error) {
	s := strings.TrimSpace(os.Getenv("SOURCE_DATE_EPOCH"))
	if s == "" {
		return time.Now().UTC(), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a Unix time", s)
	}
	return time.Unix(n, 0).UTC(), nil
}
