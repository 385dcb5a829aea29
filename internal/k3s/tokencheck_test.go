package k3s

import (
	"errors"
	"strings"
	"testing"

	"github.com/k3sctl/k3sctl/internal/secret"
)

func TestCheckTokenFormat(t *testing.T) {
	hash := strings.Repeat("ab", 32)
	copyAgain := "copy the token again from /var/lib/rancher/k3s/server/token on a server of the cluster"
	for _, tc := range []struct {
		name, token, want string
	}{
		{"full", "K10" + hash + "::server:s3cretpw", ""},
		{"full agent", "K10" + hash + "::node:s3cretpw", ""},
		{"bootstrap", "K10" + hash + "::abcdef.0123456789abcdef", ""},
		{"short", "s3cretpw", ""},
		{"short with colon", "pw:with:colons", ""},
		{"empty", "", "--token: the token is empty\nhint: give the token of the cluster (/var/lib/rancher/k3s/server/token on a server), or leave the flag out to have one generated on the first server"},
		{"trailing newline", "s3cretpw\n", "--token: the token ends with a line break\nhint: remove the line break; when the token comes from a command or file, strip it (for example with $(cat file), not a literal read)"},
		{"two lines", "s3cret\npw", "--token: the token spans several lines\nhint: a token is one line: " + copyAgain},
		{"space", "s3cret pw", "--token: the token contains spaces or tabs\nhint: a token is one word: " + copyAgain},
		{"control", "s3cret\x07pw", "--token: the token contains control or non-ASCII characters\nhint: " + copyAgain},
		{"no K10", "K11" + hash + "::server:s3cretpw", "--token: the token has \"::\" like a full token but does not start with K10\nhint: " + copyAgain + "; a short token is a password without \"::\""},
		{"K10 without ::", "K10" + hash + "server:s3cretpw", "--token: the token starts with K10, as a full token does, but has no \"::\" after the CA hash\nhint: " + copyAgain + ", whole; a short token is a password that does not start with K10"},
		{"short hash", "K10" + hash[:60] + "::server:s3cretpw", "--token: the token's CA hash has 60 characters, not 64\nhint: " + copyAgain + ", whole"},
		{"upper-case hash", "K10" + strings.ToUpper(hash) + "::server:s3cretpw", "--token: the token's CA hash is not 64 lower-case hexadecimal digits\nhint: " + copyAgain},
		{"no credentials", "K10" + hash + "::", "--token: the token has nothing after the \"::\" that follows the CA hash\nhint: " + copyAgain + ", whole"},
		{"no user", "K10" + hash + "::" + ":s3cretpw", "--token: the token has no user name between \"::\" and \":\"\nhint: " + copyAgain},
		{"no password", "K10" + hash + "::server:", "--token: the token has an empty password after the user name\nhint: " + copyAgain + ", whole"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckTokenFormat("--token", secret.New(tc.token))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("valid token refused: %v", err)
				}
				return
			}
			var p *TokenProblem
			if !errors.As(err, &p) || err.Error() != tc.want {
				t.Fatalf("\n got %v\nwant %s", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), hash[:16]) {
				t.Errorf("message shows the token: %s", err)
			}
		})
	}
	// The flag is named as given.
	if err := CheckTokenFormat("--node-token", secret.New("")); err == nil || !strings.HasPrefix(err.Error(), "--node-token: ") {
		t.Errorf("err = %v", err)
	}
}
