package apply

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	cryptossh "golang.org/x/crypto/ssh"

	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/plan"
	"github.com/k3sctl/k3sctl/internal/ssh"
)

// siteConn is a fake host that can also copy from another fake host.
type siteConn struct {
	*fakeConn
	login   ssh.Login
	peers   map[string]*siteConn // by LAN address
	copyErr error
	mu      *sync.Mutex
	copies  *[]string
}

func (c *siteConn) Login() ssh.Login { return c.login }

func (c *siteConn) CopyFromPeer(ctx context.Context, src ssh.PeerSource, dst string, o ssh.UploadOptions) (ssh.UploadResult, error) {
	if c.copyErr != nil {
		return ssh.UploadResult{}, c.copyErr
	}
	seed := c.peers[src.Address]
	seed.fakeConn.mu.Lock()
	have := seed.uploads[src.Path]
	seed.fakeConn.mu.Unlock()
	if have == "" {
		return ssh.UploadResult{}, fmt.Errorf("%s has no %s yet", src.Name, src.Path)
	}
	if len(src.Signers) != 1 || src.HostKey == nil || src.User != "pi" || src.SHA256 == "" {
		return ssh.UploadResult{}, fmt.Errorf("bad source %+v", src)
	}
	c.fakeConn.mu.Lock()
	if c.uploads == nil {
		c.uploads = map[string]string{}
	}
	c.uploads[dst] = have
	c.fakeConn.mu.Unlock()
	c.mu.Lock()
	*c.copies = append(*c.copies, c.addr+"<-"+src.Name)
	c.mu.Unlock()
	return ssh.UploadResult{SHA256: src.SHA256, Bytes: src.Size}, nil
}

func siteFleet(t *testing.T, failCopy map[string]error) (*testFleet, map[string]*siteConn, *[]string) {
	t.Helper()
	f := newTestFleet(nil)
	f.spec.Clusters = f.spec.Clusters[:1] // ha: s1 s2 s3, a1 a2
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := cryptossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	copies := &[]string{}
	mu := &sync.Mutex{}
	conns := map[string]*siteConn{}
	byIP := map[string]*siteConn{}
	for i, h := range f.hosts() {
		sc := &siteConn{fakeConn: f.conns[h.Address], login: ssh.Login{User: "pi", Port: 22, HostKey: signer.PublicKey(), Signers: []cryptossh.Signer{signer}},
			peers: byIP, copyErr: failCopy[h.Address], mu: mu, copies: copies}
		conns[h.Address] = sc
		byIP[fmt.Sprintf("10.0.0.%d", i+1)] = sc
	}
	return f, conns, copies
}

func sitePlan(t *testing.T, f *testFleet) *plan.Plan {
	t.Helper()
	facts := map[string]*plan.HostFacts{}
	for i, h := range f.hosts() {
		hf := f.conns[h.Address].facts(h.Role)
		ip := fmt.Sprintf("10.0.0.%d", i+1)
		hf.Interfaces = []plan.Interface{{Name: "eth0", Addresses: []string{ip + "/24"}}}
		hf.SSH = plan.SSHFacts{User: "pi", Key: "SHA256:k", HostKey: true, ServerAddress: ip, ServerPort: 22, Client: true}
		facts[h.Address] = hf
	}
	p, err := plan.Build(plan.Input{Spec: *f.spec, Facts: facts,
		Binaries: map[plan.BinaryKey]plan.Binary{{Version: "v1.31.4+k3s1", Arch: k3s.AMD64}: {Version: "v1.31.4+k3s1", SHA256: fakeBinarySHA}}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func runSite(t *testing.T, f *testFleet, conns map[string]*siteConn, p *plan.Plan) ([]Event, error) {
	t.Helper()
	cs := map[string]Conn{}
	names := map[string]string{}
	for a, c := range conns {
		cs[a] = c
		names[a] = a
	}
	rec := &Recorder{}
	_, err := Run(context.Background(), Options{
		Plan: p, Spec: f.spec, Conns: cs, Hostnames: names, Sink: rec, PollInterval: time.Millisecond,
		Binary: func(ctx context.Context, key plan.BinaryKey, progress func(done, total int64)) (string, error) {
			return "/bin/true", nil
		},
		API: func(ctx context.Context, cluster string) (NodeAPI, error) { return f.api, nil },
	})
	return rec.Events(), err
}

func TestPeersCopyFromTheSeedOnceItHasTheBinary(t *testing.T) {
	f, conns, copies := siteFleet(t, nil)
	p := sitePlan(t, f)
	for _, h := range p.Clusters[0].Hosts[1:] {
		if h.UploadFrom == nil || h.UploadFrom.Host != "s1" {
			t.Fatalf("%s: upload from %+v", h.Address, h.UploadFrom)
		}
	}
	events, err := runSite(t, f, conns, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(*copies) != 4 {
		t.Errorf("copies %v, want the four other hosts from s1", *copies)
	}
	for _, a := range []string{"s2", "s3", "a1", "a2"} {
		if conns[a].uploads[k3s.BinaryPath] != "/bin/true" {
			t.Errorf("%s has %q", a, conns[a].uploads[k3s.BinaryPath])
		}
	}
	copied := 0
	for _, e := range events {
		if e.Type == EventLog && e.Step == plan.StepUploadBinary && strings.HasPrefix(e.Message, "copied from s1") {
			copied++
		}
	}
	if copied != 4 {
		t.Errorf("%d copied events", copied)
	}
}

func TestPeerCopyFailureUploadsDirectly(t *testing.T) {
	refused := &ssh.PeerCopyError{Host: "a1", Source: "s1", Err: &ssh.ExitError{Host: "a1", ExitCode: 255,
		Stderr: "ssh: connect to host 10.0.0.1 port 22: Connection refused\n"}}
	f, conns, copies := siteFleet(t, map[string]error{"a1": refused})
	events, err := runSite(t, f, conns, sitePlan(t, f))
	if err != nil {
		t.Fatal(err)
	}
	if conns["a1"].uploads[k3s.BinaryPath] != "/bin/true" {
		t.Errorf("a1 has %q", conns["a1"].uploads[k3s.BinaryPath])
	}
	for _, c := range *copies {
		if strings.HasPrefix(c, "a1") {
			t.Errorf("a1 copied: %v", *copies)
		}
	}
	want := "copy from 10.0.0.1 failed: ssh: connect to host 10.0.0.1 port 22: Connection refused; uploading directly"
	found := false
	for _, e := range events {
		if e.Host == "a1" && e.Type == EventLog && e.Message == want {
			found = true
		}
	}
	if !found {
		t.Errorf("no log line %q", want)
	}
}

func TestPeersUploadDirectlyWhenTheSeedFailed(t *testing.T) {
	f, conns, copies := siteFleet(t, nil)
	p := sitePlan(t, f)
	rec := &Recorder{}
	cs := map[string]Conn{}
	names := map[string]string{}
	for a, c := range conns {
		cs[a] = c
		names[a] = a
	}
	cs["s1"] = &failingUpload{siteConn: conns["s1"]}
	_, err := Run(context.Background(), Options{
		Plan: p, Spec: f.spec, Conns: cs, Hostnames: names, Sink: rec, PollInterval: time.Millisecond,
		Binary: func(ctx context.Context, key plan.BinaryKey, progress func(done, total int64)) (string, error) {
			return "/bin/true", nil
		},
	})
	if err == nil {
		t.Fatal("the run succeeded with a failed first server")
	}
	if len(*copies) != 0 {
		t.Errorf("copied from a seed whose upload failed: %v", *copies)
	}
	// The agents send their binary early, while the servers come up.
	want := "copy from s1 not possible: its upload did not finish; uploading directly"
	for _, a := range []string{"a1", "a2"} {
		found := false
		for _, e := range rec.Events() {
			found = found || e.Host == a && e.Message == want
		}
		if !found || conns[a].uploads[k3s.BinaryPath] != "/bin/true" {
			t.Errorf("%s: logged %v, has %q", a, found, conns[a].uploads[k3s.BinaryPath])
		}
	}
}

type failingUpload struct{ *siteConn }

func (c *failingUpload) Upload(ctx context.Context, src, dst string, o ssh.UploadOptions) (ssh.UploadResult, error) {
	return ssh.UploadResult{}, fmt.Errorf("%s: upload: no space", c.addr)
}
