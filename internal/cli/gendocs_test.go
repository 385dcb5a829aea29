package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"testing"
)

// TestReferenceUpToDate keeps docs/cli and docs/man in step with the command
// tree: a changed flag or help text fails here until `make docs` is run.
func TestReferenceUpToDate(t *testing.T) {
	tmp := t.TempDir()
	gotMD, gotMan := filepath.Join(tmp, "cli"), filepath.Join(tmp, "man")
	ios, _, _, _ := TestIO()
	root := NewRoot(&Factory{IO: ios})
	if err := WriteReference(root, gotMD, gotMan); err != nil {
		t.Fatal(err)
	}
	// Man pages carry the month they were written in; that alone is no change.
	thLine := regexp.MustCompile(`(?m)^\.TH .*$`)
	compareDirs(t, "../../docs/cli", gotMD, nil)
	compareDirs(t, "../../docs/man", gotMan, func(b []byte) []byte { return thLine.ReplaceAll(b, []byte(".TH")) })
}

func compareDirs(t *testing.T, committed, fresh string, normalize func([]byte) []byte) {
	t.Helper()
	if normalize == nil {
		normalize = func(b []byte) []byte { return b }
	}
	want := readDir(t, fresh)
	have := readDir(t, committed)
	var problems []string
	for _, name := range sortedKeys(want) {
		old, ok := have[name]
		switch {
		case !ok:
			problems = append(problems, name+" is missing")
		case !bytes.Equal(normalize(old), normalize(want[name])):
			problems = append(problems, name+" differs")
		}
	}
	for _, name := range sortedKeys(have) {
		if _, ok := want[name]; !ok {
			problems = append(problems, name+" belongs to no command")
		}
	}
	for _, p := range problems {
		t.Errorf("%s: %s", committed, p)
	}
	if len(problems) > 0 {
		t.Logf("the reference is out of date with internal/cli; run: make docs")
	}
}

func readDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = b
	}
	return files
}

func sortedKeys(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
