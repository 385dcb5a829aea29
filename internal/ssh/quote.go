package ssh

import "strings"

// Quote returns s quoted for a POSIX shell so that sh reads it back as
// exactly one word with exactly these bytes.
func Quote(s string) string {
	if s == "" {
		return "''"
	}
	if isShellSafe(s) {
		return s
	}
	// Inside single quotes nothing is special but the quote itself, which is
	// closed, escaped and reopened.
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Join quotes each argument and joins them into one command line.
func Join(args ...string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = Quote(a)
	}
	return strings.Join(q, " ")
}

// isShellSafe reports whether s can go unquoted. '=' and '~' are left out:
// a leading NAME=value is an assignment and a leading ~ expands.
func isShellSafe(s string) bool {
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("_-./:,@%+", r):
		default:
			return false
		}
	}
	return true
}
