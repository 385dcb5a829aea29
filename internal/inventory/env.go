package inventory

import (
	"fmt"
	"strings"
)

// envError is one ${...} reference that could not be expanded.
type envError struct {
	msg, hint string
}

// expandEnv replaces ${VAR} and ${VAR:-default} in s. "$${" stands for a
// literal "${"; any other "$" is kept as written, so passwords and hashes
// with dollar signs need no escaping. It reports every bad reference; when s
// is a secret the messages quote nothing of it but variable names.
func expandEnv(s string, lookup func(string) (string, bool), secret bool) (string, []envError) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	var errs []envError
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			break
		}
		if i > 0 && s[i-1] == '$' {
			b.WriteString(s[:i-1])
			b.WriteString("${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			msg := fmt.Sprintf("unterminated ${ in %q", s[i:])
			if secret {
				msg = "unterminated ${"
			}
			errs = append(errs, envError{
				msg:  msg,
				hint: "close it with }, or write $${ for a literal ${",
			})
			break
		}
		ref := s[i+2 : i+end]
		s = s[i+end+1:]
		name, def, hasDef := strings.Cut(ref, ":-")
		if !validEnvName(name) {
			msg := fmt.Sprintf("bad variable reference ${%s}", ref)
			if secret {
				msg = "bad variable reference"
			}
			errs = append(errs, envError{
				msg:  msg,
				hint: "write ${NAME} or ${NAME:-default}, where NAME is letters, digits and _",
			})
			continue
		}
		v, ok := lookup(name)
		switch {
		case hasDef && (!ok || v == ""):
			v = def
		case !ok:
			errs = append(errs, envError{
				msg:  fmt.Sprintf("environment variable %s is not set", name),
				hint: fmt.Sprintf("export %s, or give a default: ${%s:-value}", name, name),
			})
		}
		b.WriteString(v)
	}
	return b.String(), errs
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
