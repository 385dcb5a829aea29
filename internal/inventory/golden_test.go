package inventory

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the .golden files from the current output")

// testEnv is the environment the golden files were written with.
func testEnv(name string) (string, bool) {
	v, ok := map[string]string{
		"K3S_TOKEN": "from-env",
		"EMPTY":     "",
	}[name]
	return v, ok
}

// TestInvalidGolden checks the printed problems of every file in
// testdata/inventory/invalid against its .golden file.
func TestInvalidGolden(t *testing.T) {
	dir, err := filepath.Abs("../../testdata/inventory/invalid")
	if err != nil {
		t.Fatal(err)
	}
	paths, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no test inventories in %s: %v", dir, err)
	}
	goldens, _ := filepath.Glob(filepath.Join(dir, "*.golden"))
	for _, g := range goldens {
		if _, err := os.Stat(strings.TrimSuffix(g, ".golden") + ".yaml"); err != nil {
			t.Errorf("%s has no inventory beside it; remove it", filepath.Base(g))
		}
	}
	// Relative names keep the golden files free of this machine's paths.
	t.Chdir(dir)
	for _, p := range paths {
		name := filepath.Base(p)
		t.Run(strings.TrimSuffix(name, ".yaml"), func(t *testing.T) {
			data, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Parse(name, data, testEnv)
			var verr *ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("Parse(%s) = %v, want a *ValidationError", name, err)
			}
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(name, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/inventory -run TestInvalidGolden -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("problems for %s differ from %s\n--- got\n%s--- want\n%s", name, golden, got, want)
			}
			for _, p := range verr.Problems {
				if p.File != name || p.Line < 1 || p.Col < 1 || p.Message == "" {
					t.Errorf("problem without a proper position or message: %+v", p)
				}
			}
		})
	}
}
