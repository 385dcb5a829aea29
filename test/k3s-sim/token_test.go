package main

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

func TestParseToken(t *testing.T) {
	hash := strings.Repeat("ab", 32)
	cases := []struct {
		in                   string
		hash, user, password string
		err                  string
	}{
		{in: "secret", password: "secret"},
		{in: "pass:with:colons", password: "pass:with:colons"},
		{in: "K10" + hash + "::server:abc123", hash: hash, user: "server", password: "abc123"},
		{in: "K10" + hash + "::node:xyz", hash: hash, user: "node", password: "xyz"},
		{in: "K10::server:abc", user: "server", password: "abc"},
		{in: "", err: "token must not be empty"},
		{in: "K10abcd::server:abc", err: "invalid token CA hash length"},
		{in: "K10" + hash + "::server:", err: "invalid token format"},
		{in: "K10" + hash + "::nopassword", err: "invalid token format"},
	}
	for _, c := range cases {
		got, err := parseToken(c.in)
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("parseToken(%q) error = %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseToken(%q): %v", c.in, err)
			continue
		}
		if got.caHash != c.hash || got.username != c.user || got.password != c.password {
			t.Errorf("parseToken(%q) = %+v, want hash=%q user=%q password=%q", c.in, got, c.hash, c.user, c.password)
		}
	}
}

func TestTokenHashIsSHA256OfCAFileBytes(t *testing.T) {
	ca := newCA("k3s-server-ca").certPEM
	d := sha256.Sum256(ca)
	tok := formatToken(ca, "server", "0123456789abcdef0123456789abcdef")
	want := "K10" + hex.EncodeToString(d[:]) + "::server:0123456789abcdef0123456789abcdef"
	if tok != want {
		t.Fatalf("formatToken = %q, want %q", tok, want)
	}
	parsed, err := parseToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	if err := parsed.validateCAHash(ca); err != nil {
		t.Errorf("own CA rejected: %v", err)
	}
	other := newCA("k3s-server-ca").certPEM
	err = parsed.validateCAHash(other)
	wantErr := "token CA hash does not match the Cluster CA certificate hash: " + hex.EncodeToString(d[:]) + " != " + hashCA(other)
	if err == nil || err.Error() != wantErr {
		t.Errorf("other CA: %v, want %q", err, wantErr)
	}
	// A trailing newline is part of the file: the hash covers the bytes.
	if hashCA(append(append([]byte(nil), ca...), '\n')) == hashCA(ca) {
		t.Error("hash ignores file bytes")
	}
	short, _ := parseToken("justapassword")
	if err := short.validateCAHash(other); err != nil {
		t.Errorf("short token must not check the CA: %v", err)
	}
}
