package ssh

import (
	"errors"
	"fmt"
	"strings"
)

// Error is a failure on one host: "10.0.0.5: connect: <cause>", and a hint
// line when there is an obvious fix.
type Error struct {
	Host string
	Op   string // "connect", "sudo", "upload /usr/local/bin/k3s", ...
	Err  error
	Hint string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Host)
	b.WriteString(": ")
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	if h := HintOf(e); h != "" {
		b.WriteString("\nhint: ")
		b.WriteString(h)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// HintOf returns the first hint found in err's chain, or "".
func HintOf(err error) string {
	for err != nil {
		switch e := err.(type) {
		case *Error:
			if e.Hint != "" {
				return e.Hint
			}
		case interface{ Hint() string }:
			if h := e.Hint(); h != "" {
				return h
			}
		}
		err = errors.Unwrap(err)
	}
	return ""
}

// ExitError is a remote command that ran and exited non-zero.
type ExitError struct {
	Host     string
	Cmd      string
	ExitCode int
	Stderr   string
}

func (e *ExitError) Error() string {
	msg := fmt.Sprintf("%s: %s: exit status %d", e.Host, shortCmd(e.Cmd), e.ExitCode)
	if l := lastLine(e.Stderr); l != "" {
		msg += ": " + l
	}
	return msg
}

// shortCmd keeps messages to one readable line when the command is a script.
func shortCmd(cmd string) string {
	const max = 80
	first, _, multi := strings.Cut(strings.TrimSpace(cmd), "\n")
	if len(first) > max {
		return first[:max] + "…"
	}
	if multi {
		return first + " …"
	}
	return first
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\r\n \t"), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
