package plan

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"testing"

	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/secret"
)

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func file(kind FileKind, name, content string) File {
	f := File{Kind: kind, Source: "/local/" + name, Name: name, SHA256: sum(content), Size: int64(len(content)), Text: []byte(content)}
	if kind == FileRegistries {
		f.Secret = true
	}
	return f
}

// deliveredTo marks files as delivered by k3sctl on f, as apply leaves them.
func deliveredTo(f *HostFacts, files ...File) {
	f.FileStats = map[string]FileStat{}
	f.Delivered = []DeliveredFile{}
	for _, x := range files {
		f.FileHashes[x.Dest()] = x.SHA256
		f.FileStats[x.Dest()] = FileStat{Size: x.Size, Mode: DeliveredFileMode}
		f.Delivered = append(f.Delivered, DeliveredFile{Path: x.Dest(), SHA256: x.SHA256})
	}
}

const v = "v1.31.4+k3s1"

// settled is haSpec with files, every host converged, the files delivered.
func settled(files ...File) Input {
	s := haSpec(v)
	c := &s.Clusters[0]
	c.Files = files
	tok := secret.New(fullTk)
	facts := map[string]*HostFacts{}
	for i, h := range append(append([]Host{}, c.Servers...), c.Agents...) {
		f := converged(c, h, i == 0, tok, v)
		var mine []File
		for _, x := range files {
			if x.For(h.Role) {
				mine = append(mine, x)
			}
		}
		deliveredTo(f, mine...)
		facts[h.Address] = f
	}
	return Input{Spec: s, Facts: facts, Tokens: map[string]secret.Value{"edge": tok}, Binaries: bins(v), SkipKubeconfig: true}
}

func kinds(steps []Step) []StepKind {
	var out []StepKind
	for _, s := range steps {
		out = append(out, s.Kind)
	}
	return out
}

func TestSettledFilesPlanNothing(t *testing.T) {
	in := settled(file(FileManifest, "app.yaml", "a: 1\n"), file(FileRegistries, "registries.yaml", "mirrors: {}\n"))
	p, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	if p.Changes() {
		var b bytes.Buffer
		Print(&b, p)
		t.Errorf("a settled cluster plans changes:\n%s", b.String())
	}
}

func TestChangedManifestIsOneFileStepOnServersOnly(t *testing.T) {
	in := settled(file(FileManifest, "app.yaml", "replicas: 1\nimage: app:1\n"))
	in.Spec.Clusters[0].Files = []File{file(FileManifest, "app.yaml", "replicas: 2\nimage: app:1\n")}
	p, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range p.Clusters[0].Hosts {
		if h.Role == k3s.Agent {
			if h.Action != ActionNothing || len(h.Steps) != 0 {
				t.Errorf("agent %s: %s %v, want nothing", h.Address, h.Action, kinds(h.Steps))
			}
			continue
		}
		// K3s applies a changed manifest while it runs: no restart.
		if h.Action != ActionReconfigure || !slices.Equal(kinds(h.Steps), []StepKind{StepDeliverFiles}) || !h.Steps[0].Changes {
			t.Errorf("server %s: %s %+v, want one deliver files step", h.Address, h.Action, h.Steps)
		}
		if len(h.Files) != 1 || h.Files[0].Op != FileUpdate || h.Files[0].Restart {
			t.Errorf("server %s files %+v", h.Address, h.Files)
		}
		if h.Files[0].Diff != "" {
			t.Errorf("server %s: a diff without the old content: %q", h.Address, h.Files[0].Diff)
		}
	}
	var b bytes.Buffer
	Print(&b, p)
	out := b.String()
	want := "~ " + k3s.ManifestsDir + "/app.yaml: 25 → 25 bytes, sha256 " + sum("replicas: 1\nimage: app:1\n")[:12] + " → " + sum("replicas: 2\nimage: app:1\n")[:12]
	if strings.Count(out, want) != 3 || strings.Count(out, "+ deliver files") != 3 {
		t.Errorf("plan does not show the change on the 3 servers as %q:\n%s", want, out)
	}
}

func TestDiffShownOnlyForFilesNotSecret(t *testing.T) {
	in := settled(file(FileManifest, "app.yaml", "replicas: 1\n"), file(FileRegistries, "registries.yaml", "password: old\n"))
	c := &in.Spec.Clusters[0]
	c.Files = []File{file(FileManifest, "app.yaml", "replicas: 2\n"), file(FileRegistries, "registries.yaml", "password: new\n")}
	for _, f := range in.Facts {
		f.OldText = map[string][]byte{k3s.ManifestsDir + "/app.yaml": []byte("replicas: 1\n"), k3s.RegistriesPath: []byte("password: old\n")}
	}
	p, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	Print(&b, p)
	out := b.String()
	if !strings.Contains(out, "-replicas: 1") || !strings.Contains(out, "+replicas: 2") {
		t.Errorf("no content diff of the manifest:\n%s", out)
	}
	if strings.Contains(out, "password") || !strings.Contains(out, "(secret: content not shown)") {
		t.Errorf("the secret registries.yaml is shown:\n%s", out)
	}
	// registries.yaml is read at start: every host restarts.
	for _, h := range p.Clusters[0].Hosts {
		if !slices.Contains(kinds(h.Steps), StartStep(h.Role)) {
			t.Errorf("%s: %v, want a restart for registries.yaml", h.Address, kinds(h.Steps))
		}
	}
}

func TestRemovedEntryIsRemovedAndPlanSaysResourcesStay(t *testing.T) {
	old := file(FileManifest, "old.yaml", "kind: Namespace\n")
	in := settled(file(FileManifest, "app.yaml", "a: 1\n"), old)
	in.Spec.Clusters[0].Files = []File{file(FileManifest, "app.yaml", "a: 1\n")}
	p, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	servers := 0
	for _, h := range p.Clusters[0].Hosts {
		if h.Role == k3s.Agent {
			if h.Action != ActionNothing {
				t.Errorf("agent %s: %s", h.Address, h.Action)
			}
			continue
		}
		servers++
		if len(h.Files) != 1 || h.Files[0].Op != FileRemove || h.Files[0].Path != old.Dest() || h.Files[0].OldSHA256 != old.SHA256 {
			t.Errorf("server %s files %+v", h.Address, h.Files)
		}
		if !slices.Equal(kinds(h.Steps), []StepKind{StepDeliverFiles}) {
			t.Errorf("server %s steps %v", h.Address, kinds(h.Steps))
		}
	}
	var b bytes.Buffer
	Print(&b, p)
	if n := strings.Count(b.String(), "- "+old.Dest()+": remove (delivered by k3sctl, no longer in the inventory); "+RemovedManifestNote); n != servers {
		t.Errorf("%d removals explained, want %d:\n%s", n, servers, b.String())
	}

	// Gone from the host already: nothing to remove, only the record.
	for _, f := range in.Facts {
		f.FileHashes[old.Dest()] = ""
	}
	p, _ = Build(in)
	for _, h := range p.Clusters[0].Hosts {
		if h.Role == k3s.Server && (len(h.Files) != 0 || !h.FilesRecord) {
			t.Errorf("server %s: files %+v record %v", h.Address, h.Files, h.FilesRecord)
		}
	}
}

func TestWrongModeIsAChange(t *testing.T) {
	app := file(FileManifest, "app.yaml", "a: 1\n")
	in := settled(app)
	f := in.Facts["10.0.0.10"]
	f.FileStats[app.Dest()] = FileStat{Size: app.Size, Mode: 0o644}
	p, _ := Build(in)
	h := p.Clusters[0].Hosts[0]
	if len(h.Files) != 1 || h.Files[0].OldMode != 0o644 || !strings.Contains(h.Files[0].Summary(), "mode 0644 → 0600") {
		t.Errorf("files %+v", h.Files)
	}
}

func TestDeliveredRecordRoundTrip(t *testing.T) {
	in := []DeliveredFile{{Path: "/b", SHA256: sum("b")}, {Path: "/a", SHA256: sum("a")}}
	data := RenderDeliveredRecord(in)
	if !strings.HasPrefix(string(data), `{"version":1,"files":[{"path":"/a"`) {
		t.Errorf("record %s", data)
	}
	out, err := ParseDeliveredRecord(data)
	if err != nil || len(out) != 2 || out[0].Path != "/a" || out[1].SHA256 != sum("b") {
		t.Errorf("parsed %+v %v", out, err)
	}
	if _, err := ParseDeliveredRecord([]byte(`{"version":2,"files":[]}`)); err == nil {
		t.Errorf("a record of an unknown version is accepted")
	}
	out, _ = ParseDeliveredRecord([]byte(`{"version":1,"files":[{"path":"relative"},{"path":"/x/../etc/passwd"}]}`))
	if len(out) != 0 {
		t.Errorf("paths k3sctl never writes are kept: %+v", out)
	}
}

func TestDiff(t *testing.T) {
	got := Diff([]byte("a\nb\nc\nd\ne\nf\ng\n"), []byte("a\nb\nc\nD\ne\nf\ng\nh\n"))
	want := "@@ line 2\n b\n c\n-d\n+D\n e\n f\n g\n+h\n"
	if got != want {
		t.Errorf("diff\n%s\nwant\n%s", got, want)
	}
	if Diff([]byte("same\n"), []byte("same\n")) != "" {
		t.Errorf("equal contents have a diff")
	}
}

func TestOnlyManifestsApplyWithoutRestart(t *testing.T) {
	for k, want := range map[FileKind]bool{FileManifest: false, FileImages: true, FileRegistries: true} {
		if k.NeedsRestart() != want {
			t.Errorf("%s: NeedsRestart %v, want %v", k, k.NeedsRestart(), want)
		}
	}
}
