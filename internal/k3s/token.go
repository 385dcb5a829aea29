package k3s

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/k3sctl/k3sctl/internal/secret"
)

// tokenPrefix starts every full token; "10" is the token format version.
const tokenPrefix = "K10"

// Token is a K3s join token.
//
// The full form is K10<ca-hash>::<user>:<password>. The CA hash lets a
// joining node check that it talks to the right cluster before it sends
// the password. A short token is the password alone and skips that check.
type Token struct {
	// CAHash is the sha256 of the cluster CA file, empty for a short token.
	// It is public: anyone can fetch the CA from /cacerts.
	CAHash string
	// User is "server" or "node" in full tokens. Agents always log in as
	// node, so only the password decides whether a token joins.
	User string
	// Password is what authenticates.
	Password secret.Value
	// Full is the token exactly as K3s takes it.
	Full secret.Value
}

// ParseToken reads a full or short token.
func ParseToken(s string) (Token, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Token{}, fmt.Errorf("empty token")
	}
	if strings.ContainsAny(s, " \t\r\n") {
		return Token{}, fmt.Errorf("token contains whitespace; copy it again from %s", TokenPath)
	}
	rest, full := strings.CutPrefix(s, tokenPrefix)
	if !full || !strings.Contains(rest, "::") {
		if strings.Contains(s, "::") {
			return Token{}, fmt.Errorf("token looks like a full token but does not start with %s", tokenPrefix)
		}
		if full && len(s) >= 3+64 && isSHA256(strings.ToLower(s[3:3+64])) {
			return Token{}, fmt.Errorf("token looks like a full token but lacks the \"::\" after the CA hash")
		}
		return Token{Password: secret.New(s), Full: secret.New(s)}, nil
	}
	hash, creds, _ := strings.Cut(rest, "::")
	if !isSHA256(hash) {
		return Token{}, fmt.Errorf("token CA hash must be 64 lowercase hex characters, got %d characters", len(hash))
	}
	t := Token{CAHash: hash, Full: secret.New(s)}
	// Credentials without a colon (bootstrap tokens from `k3s token create`)
	// are a password with no user in front.
	if user, pw, ok := strings.Cut(creds, ":"); ok {
		t.User, t.Password = user, secret.New(pw)
	} else {
		t.Password = secret.New(creds)
	}
	if t.Password.IsZero() {
		return Token{}, fmt.Errorf("token has no password after the CA hash")
	}
	return t, nil
}

// IsShort reports whether the token lacks the CA hash.
func (t Token) IsShort() bool { return t.CAHash == "" }

// FullToken builds the server token K3s writes to TokenPath.
func FullToken(caHash string, password secret.Value) secret.Value {
	return secret.New(tokenPrefix + caHash + "::server:" + password.Reveal())
}

// CAHash is the hash a full token carries: sha256 of the CA file's bytes, as
// served by /cacerts, not of the decoded certificate.
func CAHash(caPEM []byte) string {
	sum := sha256.Sum256(caPEM)
	return hex.EncodeToString(sum[:])
}

// GenerateToken makes a short token for a new cluster: 32 hex characters,
// the same shape K3s uses for the passwords it generates.
func GenerateToken() secret.Value {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail; it aborts the program instead.
	return secret.New(hex.EncodeToString(b))
}
