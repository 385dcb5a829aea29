package k3s

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

const hash64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestParseToken(t *testing.T) {
	for _, tc := range []struct {
		in             string
		hash, user, pw string
	}{
		{"K10" + hash64 + "::server:s3cret", hash64, "server", "s3cret"},
		{"K10" + hash64 + "::node:n0de", hash64, "node", "n0de"},
		{"K10" + hash64 + "::abcdef.0123456789abcdef", hash64, "", "abcdef.0123456789abcdef"},
		{"mysecret", "", "", "mysecret"},
		{"  mysecret\n", "", "", "mysecret"},
	} {
		tok, err := ParseToken(tc.in)
		if err != nil {
			t.Errorf("ParseToken(%q): %v", tc.in, err)
			continue
		}
		if tok.CAHash != tc.hash || tok.User != tc.user || tok.Password.Reveal() != tc.pw {
			t.Errorf("ParseToken(%q) = hash %q user %q password %q", tc.in, tok.CAHash, tok.User, tok.Password.Reveal())
		}
		if tok.Full.Reveal() != strings.TrimSpace(tc.in) {
			t.Errorf("Full = %q", tok.Full.Reveal())
		}
		if tok.IsShort() != (tc.hash == "") {
			t.Errorf("IsShort = %v for %q", tok.IsShort(), tc.in)
		}
		if s := fmt.Sprintf("%v %+v %#v", tok, tok, tok); strings.Contains(s, tc.pw) {
			t.Errorf("token printed its password: %s", s)
		}
	}
	for _, in := range []string{
		"",
		"K10" + hash64[:60] + "::server:x",
		"K10" + strings.ToUpper(hash64) + "::server:x",
		"K10" + hash64 + "::server:",
		"K10" + hash64 + "server:x",
		"K11" + hash64 + "::server:x",
		"two words",
	} {
		if _, err := ParseToken(in); err == nil {
			t.Errorf("ParseToken(%q) accepted", in)
		}
	}
}

func TestFullTokenRoundTrip(t *testing.T) {
	if got := CAHash([]byte("abc")); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Fatalf("CAHash(abc) = %q, want the sha256 test vector", got)
	}
	ca := []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	h := CAHash(ca)
	if CAHash(append(ca, '\n')) == h {
		t.Error("CAHash ignores the file's exact bytes; K3s hashes them as served")
	}
	full := FullToken(h, GenerateToken())
	tok, err := ParseToken(full.Reveal())
	if err != nil || tok.CAHash != h || tok.User != "server" {
		t.Errorf("FullToken does not parse back: %+v %v", tok, err)
	}
}

func TestGenerateToken(t *testing.T) {
	a, b := GenerateToken(), GenerateToken()
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(a.Reveal()) {
		t.Errorf("token %q is not 32 hex characters", a.Reveal())
	}
	if a.Reveal() == b.Reveal() {
		t.Error("two tokens are equal")
	}
	if fmt.Sprint(a) == a.Reveal() {
		t.Error("token prints")
	}
}
