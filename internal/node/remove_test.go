package node

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestRemoveRecordedKeepsFilesChangedSince(t *testing.T) {
	dir := t.TempDir()
	same := filepath.Join(dir, "same app.yaml")
	edited := filepath.Join(dir, "edited.yaml")
	gone := filepath.Join(dir, "gone.yaml")
	for p, data := range map[string]string{same: "a: 1\n", edited: "a: 2, edited by hand\n"} {
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	removed, kept, err := RemoveRecorded(context.Background(), &localConn{}, []Recorded{
		{Path: same, SHA256: sha256Hex("a: 1\n")},
		{Path: edited, SHA256: sha256Hex("a: 2\n")},
		{Path: gone, SHA256: sha256Hex("a: 3\n")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, []string{same}) || !slices.Equal(kept, []string{edited}) {
		t.Errorf("removed %q kept %q", removed, kept)
	}
	if _, err := os.Stat(same); !os.IsNotExist(err) {
		t.Errorf("%s still there: %v", same, err)
	}
	if _, err := os.Stat(edited); err != nil {
		t.Errorf("%s removed: %v", edited, err)
	}
}
