package ssh

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKeyFileReadableByOthersIsRefused(t *testing.T) {
	dir := t.TempDir()
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660} {
		p, _ := writeKey(t, dir, fmt.Sprintf("id_%o", mode), "")
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		err := CheckKeyFilePermissions(p)
		var ke *KeyPermissionError
		if !errors.As(err, &ke) {
			t.Fatalf("mode %04o: err = %v", mode, err)
		}
		want := fmt.Sprintf("key %s: UNPROTECTED PRIVATE KEY FILE: permissions %04o are too open; a private key must not be accessible by group or others, so it is ignored", p, mode)
		if err.Error() != want || HintOf(err) != "chmod 600 "+p {
			t.Errorf("mode %04o:\n got %v (hint %q)\nwant %s", mode, err, HintOf(err), want)
		}
	}
	for _, mode := range []os.FileMode{0o600, 0o400, 0o700} {
		p, _ := writeKey(t, dir, fmt.Sprintf("ok_%o", mode), "")
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := CheckKeyFilePermissions(p); err != nil {
			t.Errorf("mode %04o refused: %v", mode, err)
		}
	}
}

func TestDialRefusesAnOpenKeyFile(t *testing.T) {
	ts := newTestSetup(t)
	p, pub := writeKey(t, ts.home, "open_key", "")
	ts.srv.allow(pub)
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	o := ts.opts
	o.KeyFiles = []string{p}
	_, err := Dial(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), "key "+p+": UNPROTECTED PRIVATE KEY FILE: permissions 0644 are too open") ||
		HintOf(err) != "chmod 600 "+p {
		t.Fatalf("explicit open key: err = %v (hint %q)", err, HintOf(err))
	}

	// A default key with open permissions is skipped with a warning, as
	// OpenSSH does, and not offered.
	ssh := filepath.Join(ts.home, ".ssh")
	if err := os.MkdirAll(ssh, 0o700); err != nil {
		t.Fatal(err)
	}
	d, dpub := writeKey(t, ssh, "id_ed25519", "")
	ts.srv.allow(dpub)
	if err := os.Chmod(d, 0o644); err != nil {
		t.Fatal(err)
	}
	var warnings []string
	o = ts.opts
	o.KeyFiles = nil
	o.Warnf = func(f string, a ...any) { warnings = append(warnings, fmt.Sprintf(f, a...)) }
	if c, err := Dial(context.Background(), o); err == nil {
		c.Close()
		t.Fatal("dialled with a key that others can read")
	}
	if !strings.Contains(strings.Join(warnings, "\n"), "skipping key "+d+": key "+d+": UNPROTECTED PRIVATE KEY FILE") {
		t.Errorf("warnings: %q", warnings)
	}
	if err := os.Chmod(d, 0o600); err != nil {
		t.Fatal(err)
	}
	dialTest(t, o)
}
