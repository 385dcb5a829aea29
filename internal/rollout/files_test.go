package rollout

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/k3sctl/k3sctl/internal/plan"
)

func TestHashLocalFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	text := []byte("kind: Namespace\n")
	big := bytes.Repeat([]byte("x"), maxDiffBytes+10)
	app := write("app.yaml", text)
	images := write("images.tar", append([]byte{0, 1, 2}, big...))
	large := write("large.yaml", big)
	reg := write("registries.yaml", []byte("password: p\n"))
	caller := &plan.Spec{Clusters: []plan.Cluster{{Name: "c", Files: []plan.File{
		{Kind: plan.FileManifest, Source: app}, {Kind: plan.FileImages, Source: images},
		{Kind: plan.FileManifest, Source: large, Name: "large.yaml"}, {Kind: plan.FileRegistries, Source: reg, Secret: true},
	}}}}
	spec := copySpec(caller)
	if err := hashLocalFiles(spec, true); err != nil {
		t.Fatal(err)
	}
	files := spec.Clusters[0].Files
	s := sha256.Sum256(text)
	if files[0].SHA256 != hex.EncodeToString(s[:]) || files[0].Size != int64(len(text)) || string(files[0].Text) != string(text) {
		t.Errorf("app.yaml: %+v", files[0])
	}
	if files[1].Size != int64(len(big)+3) || files[1].Text != nil || files[2].Text != nil {
		t.Errorf("binary or large files kept for a diff: %d %v %v", files[1].Size, files[1].Text != nil, files[2].Text != nil)
	}
	if files[3].Text != nil || files[3].SHA256 == "" {
		t.Errorf("secret file: %+v", files[3])
	}
	if caller.Clusters[0].Files[0].SHA256 != "" {
		t.Errorf("the caller's spec was changed")
	}
}
