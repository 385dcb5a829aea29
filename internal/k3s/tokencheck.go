package k3s

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/k3sctl/k3sctl/internal/secret"
)

// TokenProblem is a join token given by the user (--token, --node-token)
// that K3s would not take. It never holds or prints the token.
type TokenProblem struct {
	Flag string // "--token"
	What string // "its CA hash has 12 characters, not 64"
	Fix  string
}

func (p *TokenProblem) Error() string {
	msg := p.Flag + ": " + p.What
	if p.Fix != "" {
		msg += "\nhint: " + p.Fix
	}
	return msg
}

// Hint is the fix, shown on its own line.
func (p *TokenProblem) Hint() string { return p.Fix }

// CheckTokenFormat returns a *TokenProblem when v, given with flag, is not
// a K3s token: a full token K10<64 lower-case hex>::<user>:<password> (or
// K10<hash>::<password>, as `k3s token create` makes), or a short token,
// which is a password alone. Checked before any host is changed, so a
// mangled copy fails at once and not at the first join.
func CheckTokenFormat(flag string, v secret.Value) error {
	s := v.Reveal()
	problem := func(what, fix string) error { return &TokenProblem{Flag: flag, What: what, Fix: fix} }
	copyAgain := "copy the token again from " + TokenPath + " on a server of the cluster"
	switch {
	case s == "":
		return problem("the token is empty", "give the token of the cluster ("+TokenPath+" on a server), or leave the flag out to have one generated on the first server")
	case strings.TrimRight(s, "\r\n") != s && !strings.ContainsAny(strings.TrimRight(s, "\r\n"), "\r\n"):
		return problem("the token ends with a line break", "remove the line break; when the token comes from a command or file, strip it (for example with $(cat file), not a literal read)")
	case strings.ContainsAny(s, "\r\n"):
		return problem("the token spans several lines", "a token is one line: "+copyAgain)
	case strings.ContainsAny(s, " \t"):
		return problem("the token contains spaces or tabs", "a token is one word: "+copyAgain)
	case strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) || r > unicode.MaxASCII }) >= 0:
		return problem("the token contains control or non-ASCII characters", copyAgain)
	}
	rest, full := strings.CutPrefix(s, tokenPrefix)
	if !full {
		if strings.Contains(s, "::") {
			return problem("the token has \"::\" like a full token but does not start with "+tokenPrefix, copyAgain+"; a short token is a password without \"::\"")
		}
		return nil
	}
	hash, creds, ok := strings.Cut(rest, "::")
	switch {
	case !ok:
		return problem("the token starts with "+tokenPrefix+", as a full token does, but has no \"::\" after the CA hash", copyAgain+", whole; a short token is a password that does not start with "+tokenPrefix)
	case len(hash) != 64:
		return problem(fmt.Sprintf("the token's CA hash has %d characters, not 64", len(hash)), copyAgain+", whole")
	case !isSHA256(hash):
		return problem("the token's CA hash is not 64 lower-case hexadecimal digits", copyAgain)
	case creds == "":
		return problem("the token has nothing after the \"::\" that follows the CA hash", copyAgain+", whole")
	}
	if user, pw, ok := strings.Cut(creds, ":"); ok {
		switch {
		case user == "":
			return problem("the token has no user name between \"::\" and \":\"", copyAgain)
		case pw == "":
			return problem("the token has an empty password after the user name", copyAgain+", whole")
		}
	}
	return nil
}
