package plan

import (
	"bytes"
	"strings"
	"testing"

	"github.com/k3sctl/k3sctl/internal/k3s"
)

const siteKey = "SHA256:loginkey"

// lanFacts is a fresh host on 10.0.0.0/24 reached through a forwarded
// port: its sshd saw the connection on its LAN address.
func lanFacts(ip string) *HostFacts {
	f := fresh()
	f.Interfaces = []Interface{{Name: "eth0", Addresses: []string{ip + "/24"}}}
	f.DefaultInterface = "eth0"
	f.SSH = SSHFacts{User: "pi", Key: siteKey, HostKey: true, ServerAddress: ip, ServerPort: 22, Client: true, Sudo: true}
	return f
}

// siteInput is one server and two agents, addressed through a proxy on
// the workstation's loopback (the inventory's addresses), on one LAN.
func siteInput(mode UploadMode) Input {
	const v = "v1.31.4+k3s1"
	s := Spec{Clusters: []Cluster{{Name: "shop", Version: v, Upload: mode,
		Servers: []Host{{Address: "srv", Role: k3s.Server}},
		Agents:  []Host{{Address: "a1", Role: k3s.Agent}, {Address: "a2", Role: k3s.Agent}},
	}}}
	return Input{Spec: s, Binaries: bins(v), Facts: map[string]*HostFacts{
		"srv": lanFacts("10.0.0.11"), "a1": lanFacts("10.0.0.12"), "a2": lanFacts("10.0.0.13"),
	}}
}

func hostPlanOf(t *testing.T, p *Plan, addr string) HostPlan {
	t.Helper()
	for _, h := range p.Clusters[0].Hosts {
		if h.Address == addr {
			return h
		}
	}
	t.Fatalf("no host %s", addr)
	return HostPlan{}
}

func uploadReason(h HostPlan) string {
	for _, s := range h.Steps {
		if s.Kind == StepUploadBinary {
			return s.Reason
		}
	}
	return ""
}

func TestSiteCopyFromTheFirstServer(t *testing.T) {
	p, err := Build(siteInput(""))
	if err != nil {
		t.Fatal(err)
	}
	if srv := hostPlanOf(t, p, "srv"); srv.UploadFrom != nil || strings.Contains(uploadReason(srv), "copy") {
		t.Errorf("the seed copies from %v: %q", srv.UploadFrom, uploadReason(srv))
	}
	for _, a := range []string{"a1", "a2"} {
		h := hostPlanOf(t, p, a)
		if h.UploadFrom == nil || *h.UploadFrom != (SiteSource{Host: "srv", Address: "10.0.0.11", Port: 22}) {
			t.Fatalf("%s: upload from %+v", a, h.UploadFrom)
		}
		if want := "copy from srv (10.0.0.11) over the LAN (upload: auto)"; !strings.Contains(uploadReason(h), want) {
			t.Errorf("%s: reason %q lacks %q", a, uploadReason(h), want)
		}
	}
	var b bytes.Buffer
	Print(&b, p)
	if !strings.Contains(b.String(), "copy from srv (10.0.0.11) over the LAN") {
		t.Errorf("printed plan:\n%s", b.String())
	}
}

func TestSiteCopyUsesASharedSubnetWhenTheConnectionAddressIsNotOnLink(t *testing.T) {
	in := siteInput(UploadSite)
	// The server was reached on another network (a management VLAN); it
	// also has an address on the agents' LAN.
	srv := in.Facts["srv"]
	srv.SSH.ServerAddress, srv.SSH.ServerPort = "192.168.50.11", 2222
	srv.Interfaces = []Interface{{Name: "mgmt", Addresses: []string{"192.168.50.11/24"}}, {Name: "eth0", Addresses: []string{"10.0.0.11/24"}}}
	p, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	h := hostPlanOf(t, p, "a1")
	if h.UploadFrom == nil || h.UploadFrom.Address != "10.0.0.11" || h.UploadFrom.Port != 2222 {
		t.Fatalf("upload from %+v", h.UploadFrom)
	}
}

func TestSiteCopyNotEligible(t *testing.T) {
	for name, tc := range map[string]struct {
		change func(in *Input)
		why    string
	}{
		"no shared subnet": {func(in *Input) {
			in.Facts["a1"].Interfaces = []Interface{{Name: "eth0", Addresses: []string{"10.9.0.12/24"}}}
		}, "shares no subnet with srv"},
		"no ssh client": {func(in *Input) { in.Facts["a1"].SSH.Client = false }, "no ssh client on the host"},
		"seed reached without a key": {func(in *Input) {
			for _, f := range in.Facts {
				f.SSH.Key = ""
			}
		}, "srv was not reached with a key"},
		"other user": {func(in *Input) { in.Facts["a1"].SSH.User = "admin" }, "logs in as admin, not as pi like srv"},
		"other key":  {func(in *Input) { in.Facts["a1"].SSH.Key = "SHA256:other" }, "logs in with another key than srv"},
		"host key not checked": {func(in *Input) {
			in.Facts["srv"].SSH.HostKey = false
		}, "the host key of srv was not checked"},
	} {
		t.Run(name, func(t *testing.T) {
			in := siteInput(UploadSite)
			tc.change(&in)
			p, err := Build(in)
			if err != nil {
				t.Fatal(err)
			}
			h := hostPlanOf(t, p, "a1")
			if h.UploadFrom != nil {
				t.Fatalf("copies from %+v", h.UploadFrom)
			}
			if r := uploadReason(h); !strings.Contains(r, "from the workstation: "+tc.why) || !strings.HasSuffix(r, "(upload: site)") {
				t.Errorf("reason %q, want it to say %q", r, tc.why)
			}
			// upload: auto says nothing about it.
			in.Spec.Clusters[0].Upload = UploadAuto
			p, _ = Build(in)
			if r := uploadReason(hostPlanOf(t, p, "a1")); strings.Contains(r, "workstation") || strings.Contains(r, "copy") {
				t.Errorf("auto: reason %q", r)
			}
		})
	}
}

func TestSiteCopyDirect(t *testing.T) {
	p, err := Build(siteInput(UploadDirect))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range p.Clusters[0].Hosts {
		if h.UploadFrom != nil || !h.Upload {
			t.Errorf("%s: upload %v from %+v", h.Address, h.Upload, h.UploadFrom)
		}
	}
}

// A seed that already has the binary is used at once; hosts that have it
// copy nothing; an upgrading peer copies only from a seed that goes first.
func TestSiteCopySeedThatHasTheBinary(t *testing.T) {
	in := siteInput("")
	in.Facts["srv"].K3sSHA256 = binSHA
	in.Facts["a2"].K3sSHA256 = binSHA
	p, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	if h := hostPlanOf(t, p, "a1"); h.UploadFrom == nil || h.UploadFrom.Host != "srv" {
		t.Errorf("a1 copies from %+v", h.UploadFrom)
	}
	if h := hostPlanOf(t, p, "a2"); h.UploadFrom != nil || h.Upload {
		t.Errorf("a2 uploads %v from %+v", h.Upload, h.UploadFrom)
	}
}

func TestSiteCopyPerArchitecture(t *testing.T) {
	in := siteInput("")
	in.Facts["a1"].Arch = k3s.AMD64
	in.Facts["a2"].Arch = k3s.AMD64
	in.Binaries[BinaryKey{Version: in.Spec.Clusters[0].Version, Arch: k3s.AMD64}] = Binary{Version: in.Spec.Clusters[0].Version, SHA256: oldSHA}
	p, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	// a1 is the first amd64 host: it is the seed of a2, both installs.
	if h := hostPlanOf(t, p, "a1"); h.UploadFrom != nil {
		t.Errorf("a1 copies from %+v", h.UploadFrom)
	}
	if h := hostPlanOf(t, p, "a2"); h.UploadFrom == nil || h.UploadFrom.Host != "a1" || h.UploadFrom.Address != "10.0.0.12" {
		t.Errorf("a2 copies from %+v", h.UploadFrom)
	}
}

func TestSiteCopyImagesNeedTheSeedsSudo(t *testing.T) {
	in := siteInput(UploadSite)
	in.Spec.Clusters[0].Airgap = true
	v := in.Spec.Clusters[0].Version
	in.Images = map[BinaryKey]Images{{Version: v, Arch: k3s.ARM64}: {Name: "k3s-airgap-images-arm64.tar.zst", SHA256: binSHA}}
	p, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	if h := hostPlanOf(t, p, "a1"); h.ImagesFrom == nil || h.ImagesFrom.Host != "srv" || h.UploadFrom == nil {
		t.Fatalf("a1: images from %+v, binary from %+v", h.ImagesFrom, h.UploadFrom)
	}
	// Only root reads the archive on the seed: without sudo, no copy.
	in.Facts["srv"].SSH.Sudo = false
	p, _ = Build(in)
	h := hostPlanOf(t, p, "a1")
	if h.ImagesFrom != nil || h.UploadFrom == nil {
		t.Fatalf("a1: images from %+v, binary from %+v", h.ImagesFrom, h.UploadFrom)
	}
	for _, s := range h.Steps {
		if s.Kind == StepUploadImages && !strings.Contains(s.Reason, "only root reads the file on srv, and its sudo asks for a password") {
			t.Errorf("images reason %q", s.Reason)
		}
	}
}
