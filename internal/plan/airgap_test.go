package plan

import (
	"slices"
	"strings"
	"testing"

	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/secret"
)

const imgSHA = "2222222222222222222222222222222222222222222222222222222222222222"

func TestAirgapPlansTheImagesOfEachArchitecture(t *testing.T) {
	const v = "v1.31.4+k3s1"
	spec := Spec{Clusters: []Cluster{{Name: "site", Version: v, Airgap: true,
		Servers: []Host{{Address: "s", Role: k3s.Server}},
		Agents:  []Host{{Address: "a", Role: k3s.Agent}}}}}
	server, agent := fresh(), fresh()
	server.Arch = k3s.AMD64
	images := map[BinaryKey]Images{
		{Version: v, Arch: k3s.AMD64}: {Name: "k3s-airgap-images-amd64.tar.zst", SHA256: imgSHA},
		{Version: v, Arch: k3s.ARM64}: {Name: "k3s-airgap-images-arm64.tar.zst", SHA256: imgSHA},
	}
	binaries := map[BinaryKey]Binary{
		{Version: v, Arch: k3s.AMD64}: {Version: v, SHA256: binSHA},
		{Version: v, Arch: k3s.ARM64}: {Version: v, SHA256: binSHA},
	}
	p, err := Build(Input{Spec: spec, Facts: map[string]*HostFacts{"s": server, "a": agent}, Binaries: binaries, Images: images})
	if err != nil {
		t.Fatal(err)
	}
	hs := p.Clusters[0].Hosts
	for _, h := range hs {
		want := k3s.ImagesDir + "/k3s-airgap-images-" + string(h.Arch) + ".tar.zst"
		if h.Images != want {
			t.Errorf("%s (%s): images %q, want %q", h.Address, h.Arch, h.Images, want)
		}
		ks := kinds(h.Steps)
		i, j := slices.Index(ks, StepUploadImages), slices.Index(ks, StartStep(h.Role))
		if i < 0 || j < i || slices.Index(ks, StepUploadBinary) > i {
			t.Errorf("%s: steps %v: want upload images after the binary, before the start", h.Address, ks)
		}
	}

	// The archive already there: no images step; an agent whose archive
	// differs is reconfigured with a restart.
	server.FileHashes[images[BinaryKey{Version: v, Arch: k3s.AMD64}].Dest()] = imgSHA
	c := &spec.Clusters[0]
	conv := converged(c, c.Agents[0], false, secret.New(fullTk), v)
	conv.FileHashes[images[BinaryKey{Version: v, Arch: k3s.ARM64}].Dest()] = oldSHA
	p, err = Build(Input{Spec: spec, Facts: map[string]*HostFacts{"s": server, "a": conv}, Binaries: binaries, Images: images,
		Tokens: map[string]secret.Value{"site": secret.New(fullTk)}})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range p.Clusters[0].Hosts {
		has := slices.Contains(kinds(h.Steps), StepUploadImages)
		switch h.Address {
		case "s":
			if has || h.Images != "" {
				t.Errorf("server with the archive: %v", kinds(h.Steps))
			}
		case "a":
			if h.Action != ActionReconfigure || !has || !strings.Contains(strings.Join(h.Reasons, ";"), "images archive k3s-airgap-images-arm64.tar.zst") {
				t.Errorf("agent with another archive: %s %v %v", h.Action, h.Reasons, kinds(h.Steps))
			}
			last := h.Steps[slices.Index(kinds(h.Steps), StepStartAgent)]
			if !strings.Contains(last.Reason, "new images") {
				t.Errorf("start reason %q", last.Reason)
			}
		}
	}

	// No archive for an architecture: the host is refused, saying which.
	delete(images, BinaryKey{Version: v, Arch: k3s.ARM64})
	p, err = Build(Input{Spec: spec, Facts: map[string]*HostFacts{"s": server, "a": fresh()}, Binaries: binaries, Images: images})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range p.Clusters[0].Hosts {
		if h.Address == "a" && (h.Action != ActionRefuse || !strings.Contains(h.Reasons[0], "no images archive for K3s "+v+" on arm64")) {
			t.Errorf("agent without an archive: %s %v", h.Action, h.Reasons)
		}
	}
}

func TestRestartCause(t *testing.T) {
	for _, tc := range []struct {
		upload, writes, images bool
		want                   string
	}{
		{false, false, false, "files"},
		{true, false, false, "binary"},
		{false, true, false, "files"},
		{true, true, false, "binary and files"},
		{false, false, true, "images"},
		{true, true, true, "binary, images and files"},
	} {
		if got := restartCause(tc.upload, tc.writes, tc.images); got != tc.want {
			t.Errorf("%v %v %v: %q, want %q", tc.upload, tc.writes, tc.images, got, tc.want)
		}
	}
}
