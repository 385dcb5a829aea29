package ssh

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

func TestLoginRecordsAcceptedKeyAndVerifiedHostKey(t *testing.T) {
	ts := newTestSetup(t)
	// A second key the server refuses is offered first.
	other, _ := writeKey(t, ts.home, "id_other", "")
	o := ts.opts
	o.KeyFiles = []string{other, ts.key}
	c, err := Dial(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	l := c.Login()
	if l.User != "tester" {
		t.Errorf("user %q", l.User)
	}
	if l.HostKey == nil || !bytes.Equal(l.HostKey.Marshal(), ts.srv.hostKey.PublicKey().Marshal()) {
		t.Errorf("host key %v, want the server's", l.HostKey)
	}
	if len(l.Signers) != 1 {
		t.Fatalf("signers %d, want the one accepted key", len(l.Signers))
	}
	s, err := ssh.ParsePrivateKey(mustRead(t, ts.key))
	if err != nil {
		t.Fatal(err)
	}
	want := s.PublicKey()
	if !bytes.Equal(l.Signers[0].PublicKey().Marshal(), want.Marshal()) {
		t.Errorf("recorded key %s, want the accepted %s", ssh.FingerprintSHA256(l.Signers[0].PublicKey()), ssh.FingerprintSHA256(want))
	}
	// The recorded signer still signs after the connection's keyring closed.
	if _, err := l.Signers[0].Sign(rand.Reader, []byte("x")); err != nil {
		t.Errorf("sign after connect: %v", err)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestForwardedAgentOffersOnlyTheGivenKeys(t *testing.T) {
	given := newSigner(t)
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	other, _ := ssh.NewSignerFromKey(otherPriv)
	a := &signersAgent{}
	a.set([]ssh.Signer{given})

	// Over the agent protocol, as the host's ssh sees it.
	c1, c2 := net.Pipe()
	go func() { _ = agent.ServeAgent(a, c2) }()
	defer c1.Close()
	client := agent.NewClient(c1)
	keys, err := client.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || !bytes.Equal(keys[0].Blob, given.PublicKey().Marshal()) {
		t.Fatalf("listed %d keys, want exactly the given one", len(keys))
	}
	sig, err := client.Sign(given.PublicKey(), []byte("data"))
	if err != nil {
		t.Fatal(err)
	}
	if err := given.PublicKey().Verify([]byte("data"), sig); err != nil {
		t.Errorf("signature does not verify: %v", err)
	}
	if _, err := client.Sign(other.PublicKey(), []byte("data")); err == nil {
		t.Error("signed with a key it does not offer")
	}
	if err := client.Add(agent.AddedKey{PrivateKey: otherPriv}); err == nil {
		t.Error("accepted a new key")
	}
	if err := client.RemoveAll(); err == nil {
		t.Error("accepted remove all")
	}
	if err := client.Lock([]byte("p")); err == nil {
		t.Error("accepted lock")
	}
	if keys, _ := client.List(); len(keys) != 1 {
		t.Errorf("keys changed to %d", len(keys))
	}
	// Outside a forwarding session it offers nothing.
	a.set(nil)
	if keys, _ := client.List(); len(keys) != 0 {
		t.Errorf("listed %d keys after the session", len(keys))
	}
}

func TestPeerCopyScriptQuotesAndHoldsNoSecret(t *testing.T) {
	dir := t.TempDir()
	key := newSigner(t)
	src := PeerSource{Name: "seed", Address: "10.0.0.11", Port: 2222, User: "pi user", HostKey: key.PublicKey(),
		Signers: []ssh.Signer{key}, Path: filepath.Join(dir, "it's a file"), SHA256: "abc"}
	tmp := filepath.Join(dir, ".k3sctl-x-k3s.tmp")
	script := peerCopyScript(src, tmp)
	for _, want := range []string{"StrictHostKeyChecking=yes", "BatchMode=yes", "-F /dev/null", "IdentitiesOnly=no", "-p 2222", "UserKnownHostsFile=\"$kh\""} {
		if !strings.Contains(script, want) {
			t.Errorf("script lacks %q:\n%s", want, script)
		}
	}
	for _, secret := range []string{"PRIVATE KEY", "StrictHostKeyChecking=no", "accept-new"} {
		if strings.Contains(script, secret) {
			t.Errorf("script contains %q", secret)
		}
	}
	// Run it with a stand-in ssh that records its arguments and runs the
	// remote command locally: the quoting must survive both shells.
	bin := t.TempDir()
	argsFile := filepath.Join(dir, "args")
	fake := "#!/bin/sh\nprintf '%s\\n' \"$@\" > " + Quote(argsFile) + "\nfor a; do last=$a; done\nexec sh -c \"$last\"\n"
	if err := os.WriteFile(filepath.Join(bin, "ssh"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(src.Path, []byte("binary bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tmp, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	line := KnownHostsLine(src.Address, src.Port, src.HostKey)
	cmd := exec.Command("sh", "-c", script)
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "TMPDIR="+dir)
	cmd.Stdin = strings.NewReader(line + "\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "staged "+tmp {
		t.Errorf("answer %q", got)
	}
	if b, _ := os.ReadFile(tmp); string(b) != "binary bytes" {
		t.Errorf("copied %q", b)
	}
	args := string(mustRead(t, argsFile))
	if !strings.Contains(args, "\npi user\n") || !strings.Contains(args, "\n10.0.0.11\n") {
		t.Errorf("ssh arguments:\n%s", args)
	}
	// The known_hosts file is gone and held the pinned key for [addr]:port.
	if !strings.HasPrefix(line, "[10.0.0.11]:2222 ssh-ed25519 ") {
		t.Errorf("known_hosts line %q", line)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "k3sctl-upload-known-hosts.*")); len(m) != 0 {
		t.Errorf("left behind %v", m)
	}
}

func TestKnownHostsLineDefaultPort(t *testing.T) {
	key := newSigner(t)
	if l := KnownHostsLine("10.0.0.5", 22, key.PublicKey()); !strings.HasPrefix(l, "10.0.0.5 ") {
		t.Errorf("line %q", l)
	}
}
