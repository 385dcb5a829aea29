package k3s

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseExtraArgs turns K3s command-line flags, as a user writes them after
// --k3s-extra-args, into config keys, so that they end up in config.yaml
// and not on the service's command line.
//
// The string is split the way sh splits words (single and double quotes,
// backslash escapes) but nothing is expanded: a $ or ` outside single
// quotes is refused rather than passed on literally by surprise.
// --flag=value and --flag value both work. Boolean flags never take the
// next word; any other flag followed by another flag or by nothing is
// boolean true. List flags always become lists, and any other flag given
// more than once becomes one.
func ParseExtraArgs(s string) (Config, error) {
	words, err := splitWords(s)
	if err != nil {
		return Config{}, fmt.Errorf("k3s extra args: %w", err)
	}
	var c Config
	repeated := map[string]bool{}
	for i := 0; i < len(words); i++ {
		w := words[i]
		if !looksLikeFlag(w) {
			return Config{}, fmt.Errorf("k3s extra args: %q is not a flag; values go after their flag, as --flag=value", w)
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(w, "-"), "=")
		if err := checkFlagName(w, name); err != nil {
			return Config{}, fmt.Errorf("k3s extra args: %w", err)
		}
		switch {
		case IsBoolKey(name):
			b := true
			if hasValue {
				if b, err = strconv.ParseBool(value); err != nil {
					return Config{}, fmt.Errorf("k3s extra args: --%s is true or false, not %q", name, value)
				}
			}
			c.SetBool(name, b)
			continue
		case hasValue:
		case i+1 < len(words) && !looksLikeFlag(words[i+1]):
			i++
			value = words[i]
		default:
			c.SetBool(name, true)
			continue
		}
		switch {
		case IsListKey(name):
			c.AddToList(name, value)
		case repeated[name] && !IsSecretKey(name):
			c.AddToList(name, value)
		default:
			c.SetString(name, value)
		}
		repeated[name] = true
	}
	return c, nil
}

// looksLikeFlag tells a flag from a value such as -1 or a lone dash.
func looksLikeFlag(w string) bool {
	t := strings.TrimLeft(w, "-")
	return len(w)-len(t) > 0 && t != "" && t[0] >= 'a' && t[0] <= 'z'
}

func checkFlagName(word, name string) error {
	if !strings.HasPrefix(word, "--") && len(name) == 1 {
		return fmt.Errorf("%s: use the long name of the flag", word)
	}
	for _, r := range name {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			return fmt.Errorf("%s: not a K3s flag name", word)
		}
	}
	return nil
}

// splitWords splits s into words as POSIX sh would, without expansions.
func splitWords(s string) ([]string, error) {
	var (
		words  []string
		cur    strings.Builder
		inWord bool
	)
	flush := func() {
		if inWord {
			words = append(words, cur.String())
			cur.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r':
			flush()
		case ch == '\'':
			inWord = true
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated single quote at %q", s[i:])
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
		case ch == '"':
			inWord = true
			j := i + 1
			for ; j < len(s) && s[j] != '"'; j++ {
				switch s[j] {
				case '\\':
					if j+1 < len(s) && strings.IndexByte("$`\"\\\n", s[j+1]) >= 0 {
						j++
						if s[j] != '\n' {
							cur.WriteByte(s[j])
						}
						continue
					}
				case '$', '`':
					return nil, fmt.Errorf("%c inside double quotes at %q: nothing is expanded here; use single quotes for a literal value", s[j], s[i:])
				}
				cur.WriteByte(s[j])
			}
			if j >= len(s) {
				return nil, fmt.Errorf("unterminated double quote at %q", s[i:])
			}
			i = j
		case ch == '\\':
			if i+1 >= len(s) {
				return nil, fmt.Errorf("trailing backslash")
			}
			i++
			if s[i] != '\n' {
				inWord = true
				cur.WriteByte(s[i])
			}
		case strings.IndexByte("$`;&|<>()", ch) >= 0:
			return nil, fmt.Errorf("unquoted %c at %q: these are flags for K3s, not a shell command; quote the value", ch, s[i:])
		default:
			inWord = true
			cur.WriteByte(ch)
		}
	}
	flush()
	return words, nil
}
