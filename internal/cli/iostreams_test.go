package cli

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/k3sctl/k3sctl/internal/apply"
	"github.com/k3sctl/k3sctl/internal/ui"
)

func TestRenderModeFromIO(t *testing.T) {
	ios, _, _, _ := TestIO()
	for _, tc := range []struct {
		tty    bool
		output string
		plain  bool
		want   string
	}{
		{false, "", false, ui.ModePlain},
		{false, "json", false, ui.ModeJSON},
		{true, "", false, ui.ModeTUI},
		{true, "text", false, ui.ModeTUI},
		{true, "", true, ui.ModePlain},
		{true, "json", true, ui.ModeJSON},
	} {
		ios.SetStderrTTY(tc.tty)
		if got := ios.RenderMode(tc.output, tc.plain); got != tc.want {
			t.Errorf("stderr tty %v, -o %q, --plain %v: %s, want %s", tc.tty, tc.output, tc.plain, got, tc.want)
		}
	}
}

func TestSystemIODecidesOnce(t *testing.T) {
	t.Setenv("NO_COLOR", "1")
	t.Setenv("CI", "true")
	s := SystemIO()
	if s.ColorEnabled() {
		t.Error("colour with NO_COLOR set")
	}
	if s.RenderMode("", false) != ui.ModePlain {
		t.Error("live view in CI")
	}
	// The environment is read when the IO is made, not when it is used.
	t.Setenv("NO_COLOR", "")
	if s.ColorEnabled() {
		t.Error("colour changed after the IO was made")
	}
}

// TestRendererStreams: JSON events are data on stdout, the plain view is
// people-talk on stderr.
func TestRendererStreams(t *testing.T) {
	ev := apply.Event{Time: time.Unix(0, 0), Type: apply.EventLog, Host: "10.0.0.5", Message: "hello"}
	for _, mode := range []string{ui.ModeJSON, ui.ModePlain} {
		ios, _, out, errb := TestIO()
		r := ios.Renderer(mode, nil)
		if err := r.Start(); err != nil {
			t.Fatal(err)
		}
		r.Event(ev)
		r.Close()
		_ = r.Wait()
		data, talk := out.String(), errb.String()
		if mode == ui.ModePlain {
			data, talk = talk, data
		}
		if !strings.Contains(data, "hello") || talk != "" {
			t.Errorf("%s: stdout %q, stderr %q", mode, out.String(), errb.String())
		}
	}
}

func TestWarnfGoesToStderr(t *testing.T) {
	ios, _, out, errb := TestIO()
	ios.Warnf("%s: host key added", "10.0.0.5")
	if out.Len() != 0 || errb.String() != "warning: 10.0.0.5: host key added\n" {
		t.Errorf("stdout %q, stderr %q", out.String(), errb.String())
	}
}

// TestNoWritesAroundIO: the commands write only through IO, so tests see
// everything and the terminal decisions hold. Only iostreams.go may name
// the process's streams.
func TestNoWritesAroundIO(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			pkg, ok := sel.X.(*ast.Ident)
			if !ok {
				return true
			}
			bad := false
			switch pkg.Name {
			case "os":
				bad = (sel.Sel.Name == "Stdout" || sel.Sel.Name == "Stderr" || sel.Sel.Name == "Stdin") && name != "iostreams.go"
			case "fmt":
				bad = sel.Sel.Name == "Print" || sel.Sel.Name == "Printf" || sel.Sel.Name == "Println"
			case "log":
				bad = true
			case "term":
				bad = name != "iostreams.go"
			}
			if bad {
				t.Errorf("%s: %s.%s bypasses IO", fset.Position(sel.Pos()), pkg.Name, sel.Sel.Name)
			}
			return true
		})
	}
	if _, err := os.Stat("iostreams.go"); err != nil {
		t.Fatal(err)
	}
}

// TestResetAsksOnlyATerminal: without --yes, reset asks when stdin is a
// terminal and refuses to guess when it is not.
func TestResetAsksOnlyATerminal(t *testing.T) {
	inv := filepath.Join(t.TempDir(), "fleet.yaml")
	if err := os.WriteFile(inv, []byte("apiVersion: k3sctl.io/v1alpha1\nkind: Inventory\ndefaults:\n  version: v1.31.4+k3s1\nclusters:\n  - name: home\n    servers: [10.0.0.10]\n    agents: [10.0.0.11]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ios, _, _, errb := TestIO()
	if code := Execute(context.Background(), ios, []string{"reset", "-f", inv}); code != ExitUsage || !strings.Contains(errb.String(), "--yes") {
		t.Errorf("no terminal: exit %d: %s", code, errb.String())
	}

	ios, in, out, errb := TestIO()
	ios.SetStdinTTY(true)
	in.WriteString("no\n")
	code := Execute(context.Background(), ios, []string{"reset", "-f", inv})
	if code != ExitError || !strings.Contains(errb.String(), "from 2 host(s) of home") || !strings.Contains(errb.String(), "Nothing changed.") || out.Len() != 0 {
		t.Errorf("answered no: exit %d\nstdout %q\nstderr %s", code, out.String(), errb.String())
	}
}
