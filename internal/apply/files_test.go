package apply

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/plan"
)

// setFiles gives the "ha" cluster these local files, hashed as rollout
// does before planning.
func (f *testFleet) setFiles(t *testing.T, files ...plan.File) {
	t.Helper()
	for i := range files {
		data, err := os.ReadFile(files[i].Source)
		if err != nil {
			t.Fatal(err)
		}
		files[i].SHA256, files[i].Size = plan.RemoteFile{Data: data}.SHA256(), int64(len(data))
	}
	f.spec.Clusters[0].Files = files
}

func writeLocal(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestDeliveredFilesConverge(t *testing.T) {
	dir := t.TempDir()
	app, old, reg := filepath.Join(dir, "app.yaml"), filepath.Join(dir, "old.yaml"), filepath.Join(dir, "registries.yaml")
	writeLocal(t, app, "replicas: 1\n")
	writeLocal(t, old, "kind: Namespace\n")
	writeLocal(t, reg, "mirrors: {}\n")
	appFile := plan.File{Kind: plan.FileManifest, Source: app, Name: "app.yaml"}
	oldFile := plan.File{Kind: plan.FileManifest, Source: old, Name: "old.yaml"}
	regFile := plan.File{Kind: plan.FileRegistries, Source: reg, Secret: true}

	f := newTestFleet(nil)
	f.setFiles(t, appFile, oldFile, regFile)
	if _, _, err := f.run(t, f.plan(t)); err != nil {
		t.Fatalf("first run: %v", err)
	}
	for _, a := range []string{"s1", "s2", "s3"} {
		if f.conns[a].files[appFile.Dest()] == nil || f.conns[a].files[regFile.Dest()] == nil {
			t.Errorf("%s: files not delivered", a)
		}
	}
	if f.conns["a1"].files[appFile.Dest()] != nil || f.conns["a1"].files[regFile.Dest()] == nil {
		t.Errorf("a1: a manifest went to an agent, or registries.yaml did not")
	}
	if p := f.plan(t); p.Changes() {
		t.Fatalf("plan after delivering changes something:\n%s", printed(p))
	}

	// A changed manifest: delivered to the servers, nothing restarts.
	writeLocal(t, app, "replicas: 2\n")
	f.setFiles(t, appFile, oldFile, regFile)
	starts := len(f.log.lines)
	p := f.plan(t)
	res, events, err := f.run(t, p)
	if err != nil {
		t.Fatalf("run: %v %v", err, res)
	}
	checkRunMatchesPlan(t, p, events)
	if again := f.log.lines[starts:]; len(again) > 0 {
		t.Errorf("a changed manifest restarted services: %v", again)
	}
	for _, r := range res {
		if wantChanged := r.Cluster == "ha" && r.Role == string(k3s.Server); r.Changed != wantChanged {
			t.Errorf("%s: changed %v, want %v", r.Host, r.Changed, wantChanged)
		}
	}
	if got := string(f.conns["s2"].files[appFile.Dest()]); got != "replicas: 2\n" {
		t.Errorf("s2 has %q", got)
	}

	// The entry is gone from the inventory: the file goes from the hosts;
	// registries.yaml changed: every node of the cluster restarts.
	writeLocal(t, reg, "mirrors: {docker.io: {}}\n")
	f.setFiles(t, appFile, regFile)
	starts = len(f.log.lines)
	p = f.plan(t)
	if _, events, err = f.run(t, p); err != nil {
		t.Fatalf("run: %v", err)
	}
	checkRunMatchesPlan(t, p, events)
	for _, a := range []string{"s1", "s2", "s3"} {
		if _, ok := f.conns[a].files[oldFile.Dest()]; ok {
			t.Errorf("%s: %s not removed", a, oldFile.Dest())
		}
	}
	var restarted []string
	for _, l := range f.log.lines[starts:] {
		if strings.HasSuffix(l, " start") {
			restarted = append(restarted, l)
		}
	}
	slices.Sort(restarted)
	if want := []string{"a1 start", "a2 start", "s1 start", "s2 start", "s3 start"}; !slices.Equal(restarted, want) {
		t.Errorf("restarted %v, want %v", restarted, want)
	}
	if p := f.plan(t); p.Changes() {
		t.Errorf("plan after the removal changes something:\n%s", printed(p))
	}
}
