package k3s

import (
	"errors"
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
// next word. List flags always become lists.
//
// Every flag is checked against the node model: a flag K3s does not have,
// a key k3sctl owns (see OwnedKeys) or a value of the wrong kind is an
// error (a *SettingError naming the flag) rather than dropped or passed on.
func ParseExtraArgs(s string) (Config, error) {
	words, err := splitWords(s)
	if err != nil {
		return Config{}, fmt.Errorf("k3s extra args: %w", err)
	}
	var c Config
	for i := 0; i < len(words); i++ {
		w := words[i]
		if !looksLikeFlag(w) {
			return Config{}, fmt.Errorf("k3s extra args: %q is not a flag; values go after their flag, as --flag=value", w)
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(w, "-"), "=")
		if err := checkFlagName(w, name); err != nil {
			return Config{}, fmt.Errorf("k3s extra args: %w", err)
		}
		if err := CheckKey(name, Scope{}); err != nil {
			return Config{}, asFlag(err)
		}
		f, _ := LookupFlag(name)
		if f.Kind == BoolFlag {
			b := true
			if hasValue {
				if b, err = strconv.ParseBool(value); err != nil {
					return Config{}, &SettingError{Key: name, Flag: true, Message: fmt.Sprintf("is true or false, not %q", value), Hint: "write --" + name + " or --" + name + "=false"}
				}
			}
			c.SetBool(name, b)
			continue
		}
		switch {
		case hasValue:
		case i+1 < len(words) && !looksLikeFlag(words[i+1]):
			i++
			value = words[i]
		default:
			return Config{}, &SettingError{Key: name, Flag: true, Message: "needs a value", Hint: "write --" + name + "=<value>"}
		}
		if f.Kind == IntFlag {
			if _, err := strconv.Atoi(value); err != nil {
				return Config{}, &SettingError{Key: name, Flag: true, Message: fmt.Sprintf("is a whole number, not %q", value), Hint: "write --" + name + "=10"}
			}
		}
		switch {
		case f.Kind == ListFlag:
			c.AddToList(name, value)
		case c.Has(name) && f.Joined:
			c.AddToList(name, value)
		case c.Has(name):
			return Config{}, &SettingError{Key: name, Flag: true, Message: "is given twice and takes a single value", Hint: "give it once"}
		default:
			c.SetString(name, value)
		}
	}
	return c, nil
}

// asFlag marks a SettingError as one about a command-line flag, so that
// it names --key.
func asFlag(err error) error {
	var se *SettingError
	if errors.As(err, &se) {
		cp := *se
		cp.Flag = true
		return &cp
	}
	return err
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
			if sug := SuggestFlag(name, ""); sug != "" {
				return fmt.Errorf("%s: not a K3s flag name; did you mean --%s?", word, sug)
			}
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
