package rollout

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"

	cryptossh "golang.org/x/crypto/ssh"

	"github.com/k3sctl/k3sctl/internal/node"
	"github.com/k3sctl/k3sctl/internal/plan"
	"github.com/k3sctl/k3sctl/internal/ssh"
)

type loginOnly struct{ l ssh.Login }

func (c loginOnly) Login() ssh.Login { return c.l }

func TestSSHFactsFromTheLoginAndTheHost(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := cryptossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	f := &node.Facts{User: "pi", Sudo: ssh.SudoNoPassword, SSHServerAddress: "10.0.0.5", SSHServerPort: 2222, SSHClient: true}
	got := sshFacts(f, loginOnly{ssh.Login{User: "pi", HostKey: signer.PublicKey(), Signers: []cryptossh.Signer{signer}}})
	want := plan.SSHFacts{User: "pi", Key: cryptossh.FingerprintSHA256(signer.PublicKey()), HostKey: true,
		ServerAddress: "10.0.0.5", ServerPort: 2222, Client: true, Sudo: true}
	if got != want {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	// A connection that cannot say how it logged in offers no key.
	f.Sudo = ssh.SudoWithPassword
	if got := sshFacts(f, struct{}{}); got.Key != "" || got.HostKey || got.Sudo {
		t.Errorf("without a login: %+v", got)
	}
}
