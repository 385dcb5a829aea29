package backup

import (
	"fmt"
	"os"
	"strings"

	"filippo.io/age"
)

// ParseRecipients parses age public keys as given on a command line
// (age1…), one per string.
func ParseRecipients(keys []string) ([]age.Recipient, error) {
	var out []age.Recipient
	for _, k := range keys {
		k = strings.TrimSpace(k)
		rs, err := age.ParseRecipients(strings.NewReader(k))
		if err != nil || len(rs) != 1 {
			return nil, fmt.Errorf("age recipient %q: not an age public key: give one that starts with age1 (age-keygen -y prints it)", k)
		}
		out = append(out, rs[0])
	}
	return out, nil
}

// ReadIdentities reads age identity files (AGE-SECRET-KEY-… lines, as
// age-keygen writes them).
func ReadIdentities(paths ...string) ([]age.Identity, error) {
	var out []age.Identity
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("age identity file: %w", err)
		}
		ids, err := age.ParseIdentities(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("age identity file %s: %w: give a file written by age-keygen", p, err)
		}
		out = append(out, ids...)
	}
	return out, nil
}
