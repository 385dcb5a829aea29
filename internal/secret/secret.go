package secret

import "log/slog"

// Redacted is what a secret prints as.
const Redacted = "[redacted]"

// Value is a secret string. Only Reveal gives the real value; use it at the
// one place the secret leaves the process (a 0600 file, an SSH stdin).
type Value struct{ v string }

// New wraps s.
func New(s string) Value { return Value{v: s} }

// Reveal returns the secret itself.
func (s Value) Reveal() string { return s.v }

// IsZero reports whether no secret is set.
func (s Value) IsZero() bool { return s.v == "" }

// String redacts.
func (s Value) String() string {
	if s.v == "" {
		return ""
	}
	return Redacted
}

// GoString redacts for %#v.
func (s Value) GoString() string { return s.String() }

// MarshalText redacts in JSON, YAML and text encoders.
func (s Value) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// LogValue redacts in slog.
func (s Value) LogValue() slog.Value { return slog.StringValue(s.String()) }
