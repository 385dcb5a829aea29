package ssh

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh/agent"
)

func startTestAgent(t *testing.T) agent.Agent {
	t.Helper()
	kr := agent.NewKeyring()
	dir, err := os.MkdirTemp("", "ag")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "s")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); agent.ServeAgent(kr, c) }()
		}
	}()
	t.Setenv("SSH_AUTH_SOCK", sock)
	return kr
}

func TestAgentKeyIsOfferedFirst(t *testing.T) {
	ts := newTestSetup(t)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	kr := startTestAgent(t)
	if err := kr.Add(agent.AddedKey{PrivateKey: priv, Comment: "agent-only"}); err != nil {
		t.Fatal(err)
	}
	// The server accepts the file key only; the agent key is tried first
	// and refused, then the file key works.
	e := &endpoint{identityFiles: ts.opts.KeyFiles, explicitKeys: 1}
	k, err := loadKeyring(e, nil, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer k.close()
	if len(k.signers) != 2 || !strings.HasPrefix(k.signers[0].(offeredSigner).desc, "agent key agent-only") {
		t.Fatalf("order: %d signers, first %+v", len(k.signers), k.signers[0])
	}
	c := dialTest(t, ts.opts)
	if _, err := c.Run(context.Background(), "true", RunOptions{}); err != nil {
		t.Fatal(err)
	}

	// With only the agent key allowed and no files, the agent alone logs in.
	ts2 := newTestSetup(t)
	kr2 := startTestAgent(t)
	_, priv2, _ := ed25519.GenerateKey(rand.Reader)
	kr2.Add(agent.AddedKey{PrivateKey: priv2})
	keys, _ := kr2.List()
	pub := keys[0]
	ts2.srv.allow(pub)
	ts2.opts.KeyFiles = nil
	dialTest(t, ts2.opts)
}

func TestIdentitiesOnlyKeepsAgentKeysOut(t *testing.T) {
	ts := newTestSetup(t)
	kr := startTestAgent(t)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	kr.Add(agent.AddedKey{PrivateKey: priv})
	e := &endpoint{identityFiles: ts.opts.KeyFiles, explicitKeys: 1, identitiesOnly: true}
	k, err := loadKeyring(e, nil, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer k.close()
	if len(k.signers) != 1 {
		t.Errorf("%d signers with IdentitiesOnly, want the file key only", len(k.signers))
	}
}

type staticPrompter struct {
	answers []string
	asked   int
}

func (p *staticPrompter) Secret(string) (secretValue, error) {
	p.asked++
	if len(p.answers) == 0 {
		return secretValue{}, errors.New("out of answers")
	}
	a := p.answers[0]
	p.answers = p.answers[1:]
	return newSecret(a), nil
}

func TestPassphraseKeyIsUnlockedOnlyWhenTheHostWantsIt(t *testing.T) {
	ts := newTestSetup(t)
	locked, pub := writeKey(t, ts.home, "id_locked", "correct horse")
	other, _ := writeKey(t, ts.home, "id_other", "another one")

	// Offered but refused: never asked for.
	p := &staticPrompter{}
	o := ts.opts
	o.KeyFiles = []string{other, ts.key}
	o.Prompter = p
	dialTest(t, o)
	if p.asked != 0 {
		t.Errorf("asked %d times for a key the host refused", p.asked)
	}

	// Wanted: asked, a wrong answer is asked again.
	ts.srv.allow(pub)
	p = &staticPrompter{answers: []string{"wrong", "correct horse"}}
	o.KeyFiles = []string{locked}
	o.Prompter = p
	dialTest(t, o)
	if p.asked != 2 {
		t.Errorf("asked %d times, want 2", p.asked)
	}

	// No terminal: a clear error, at once.
	o.Prompter = nil
	o.ConnectRetry = time.Minute
	start := time.Now()
	_, err := Dial(context.Background(), o)
	var kp *KeyPassphraseError
	if !errors.As(err, &kp) || !strings.Contains(err.Error(), "no terminal") || !strings.Contains(HintOf(err), "ssh-add") {
		t.Fatalf("err = %v", err)
	}
	if time.Since(start) > 3*time.Second {
		t.Errorf("took %s", time.Since(start))
	}
}

func TestWrongKeyFailsAtOnceNamingTheKeys(t *testing.T) {
	ts := newTestSetup(t)
	stranger, _ := writeKey(t, t.TempDir(), "stranger", "")
	o := ts.opts
	o.KeyFiles = []string{stranger}
	o.ConnectRetry = time.Minute
	start := time.Now()
	_, err := Dial(context.Background(), o)
	var ae *AuthError
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v", err)
	}
	if time.Since(start) > 3*time.Second || ts.srv.conns != 1 {
		t.Errorf("%d connections in %s: auth failures must not be retried", ts.srv.conns, time.Since(start))
	}
	msg := err.Error()
	for _, want := range []string{"127.0.0.1: connect: permission denied for user tester", stranger, "ssh-copy-id -p "} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
}

func TestMissingExplicitKeyIsAnError(t *testing.T) {
	ts := newTestSetup(t)
	o := ts.opts
	o.KeyFiles = []string{filepath.Join(ts.home, "nope")}
	if _, err := Dial(context.Background(), o); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("err = %v", err)
	}
}

func TestDefaultKeysAreUsed(t *testing.T) {
	ts := newTestSetup(t)
	if err := os.MkdirAll(filepath.Join(ts.home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	_, pub := writeKey(t, filepath.Join(ts.home, ".ssh"), "id_ed25519", "")
	ts.srv.allow(pub)
	o := ts.opts
	o.KeyFiles = nil
	dialTest(t, o)
}
