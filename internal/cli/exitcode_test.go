package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
)

func TestExitCodesDistinct(t *testing.T) {
	seen := map[int]string{}
	names := map[string]bool{}
	for _, c := range ExitCodes() {
		if other, ok := seen[c.Code]; ok {
			t.Errorf("code %d is both %s and %s", c.Code, other, c.Name)
		}
		if names[c.Name] {
			t.Errorf("name %s twice", c.Name)
		}
		seen[c.Code], names[c.Name] = c.Name, true
	}
	for _, code := range []int{ExitOK, ExitError, ExitUsage, ExitHostsFailed, ExitChangesPending, ExitInterrupted} {
		if _, ok := seen[code]; !ok {
			t.Errorf("exit code %d is not in the table", code)
		}
	}
	if ExitChangesPending == ExitUsage {
		t.Error("changes pending looks like a usage error")
	}
}

// TestExitCodesInHelp: the root help shows the whole table; plan's shows
// changes-pending, apply's does not.
func TestExitCodesInHelp(t *testing.T) {
	help := func(args ...string) string {
		ios, _, out, errb := TestIO()
		if code := Execute(context.Background(), ios, append(args, "--help")); code != ExitOK {
			t.Fatalf("%q --help: exit %d: %s", args, code, errb.String())
		}
		return out.String()
	}
	root := help()
	for _, c := range ExitCodes() {
		row := fmt.Sprintf("%-4d%-17s%s", c.Code, c.Name, c.Meaning)
		if !strings.Contains(root, row) {
			t.Errorf("k3sctl --help lacks %q", row)
		}
	}
	if p := help("plan"); !strings.Contains(p, "changes-pending") || !strings.Contains(p, "hosts-failed") {
		t.Errorf("plan --help lacks exit codes:\n%s", p)
	}
	if a := help("apply"); strings.Contains(a, "changes-pending") || !strings.Contains(a, "interrupted") {
		t.Errorf("apply --help exit codes:\n%s", a)
	}
}

// TestExitCodesInREADME keeps the README's table the code's.
func TestExitCodesInREADME(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(readme, []byte(ExitCodesMarkdown())) {
		t.Errorf("README.md does not show the exit code table; put this under \"## Exit codes\":\n%s", ExitCodesMarkdown())
	}
}
