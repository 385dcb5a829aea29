package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
)

const tokenPrefix = "K10"

// joinToken is a parsed k3s token. A short token has no CA hash and no user.
type joinToken struct {
	caHash   string
	username string
	password string
}

// parseToken reads "K10<hash>::<user>:<password>" or a bare password, with
// k3s's error texts.
func parseToken(token string) (joinToken, error) {
	var t joinToken
	if token == "" {
		return t, errors.New("token must not be empty")
	}
	if !strings.HasPrefix(token, tokenPrefix) {
		token = tokenPrefix + "::" + ":" + token
	}
	token = token[len(tokenPrefix):]
	rest := token
	if hash, after, ok := strings.Cut(token, "::"); ok {
		if hash != "" && len(hash) != sha256.Size*2 {
			return t, errors.New("invalid token CA hash length")
		}
		t.caHash = hash
		rest = after
	}
	user, pass, ok := strings.Cut(rest, ":")
	if !ok || pass == "" {
		return t, errors.New("invalid token format")
	}
	t.username, t.password = user, pass
	return t, nil
}

func hashCA(caBytes []byte) string {
	d := sha256.Sum256(caBytes)
	return hex.EncodeToString(d[:])
}

func formatToken(caBytes []byte, user, password string) string {
	return tokenPrefix + hashCA(caBytes) + "::" + user + ":" + password
}

// validateCAHash is the joining side's check of the cluster CA it was served
// against the hash in its token.
func (t joinToken) validateCAHash(caBytes []byte) error {
	if t.caHash == "" {
		return nil
	}
	if got := hashCA(caBytes); got != t.caHash {
		return errors.New("token CA hash does not match the Cluster CA certificate hash: " + t.caHash + " != " + got)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
