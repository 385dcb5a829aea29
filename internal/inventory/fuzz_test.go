package inventory

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"
)

// FuzzParse feeds the loader arbitrary bytes: it must never panic, and every
// problem must point inside the file.
func FuzzParse(f *testing.F) {
	for _, pattern := range []string{"../../testdata/inventory/valid/*.yaml", "../../testdata/inventory/invalid/*.yaml"} {
		paths, _ := filepath.Glob(pattern)
		for _, p := range paths {
			if data, err := os.ReadFile(p); err == nil {
				f.Add(data)
			}
		}
	}
	f.Add(Starter())
	f.Add([]byte(header + "a: &a [*a]\n"))
	f.Add([]byte(header + "x-a: &a [1, 2]\nx-b: &b [*a, *a, *a]\nx-c: &c [*b, *b, *b]\nservers: [*c]\n"))
	f.Add([]byte("\ufeff" + header + "servers:\r\n  - 10.0.0.1\r\n"))
	env := func(k string) (string, bool) {
		if k == "SET" {
			return "v", true
		}
		return "", false
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		inv, err := Parse("fuzz.yaml", data, env)
		if err == nil {
			if inv == nil || len(inv.Clusters) == 0 {
				t.Fatal("no error and no clusters")
			}
			for _, c := range inv.Clusters {
				if c.Name == "" || len(c.Servers) == 0 || (c.Version == "") == (c.Channel == "") {
					t.Fatalf("loaded an incomplete cluster: %+v", c)
				}
			}
			return
		}
		var verr *ValidationError
		if !errors.As(err, &verr) || len(verr.Problems) == 0 {
			t.Fatalf("error is not a list of problems: %v", err)
		}
		lines := splitLines(data)
		for _, p := range verr.Problems {
			if p.File != "fuzz.yaml" || p.Message == "" {
				t.Fatalf("bad problem %+v", p)
			}
			if p.Line < 1 || p.Line > len(lines) {
				t.Fatalf("line out of range (1..%d): %s", len(lines), p)
			}
			if n := utf8.RuneCountInString(lines[p.Line-1]); p.Col < 1 || p.Col > n+1 {
				t.Fatalf("column out of range (1..%d): %s\nline: %q", n+1, p, lines[p.Line-1])
			}
		}
	})
}
