package ssh

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/term"

	"github.com/k3sctl/k3sctl/internal/secret"
)

// Prompter asks the person at the terminal for a secret.
type Prompter interface {
	Secret(prompt string) (secret.Value, error)
}

// forgetter is implemented by prompters that cache answers, so that a
// rejected passphrase or password is asked again instead of reused.
type forgetter interface {
	Forget(prompt string)
}

// ErrNoTerminal is returned when a secret is needed and nobody can be asked.
var ErrNoTerminal = errors.New("no terminal to ask on")

// TerminalPrompter asks on a terminal without echo, once per prompt per run:
// one passphrase per key, one sudo password per user and host, even when
// many connections need it at the same moment.
type TerminalPrompter struct {
	in  *os.File
	out io.Writer

	mu    sync.Mutex // one question on the terminal at a time
	cache map[string]secret.Value
}

var _ Prompter = (*TerminalPrompter)(nil)

// NewTerminalPrompter asks on in, which must be a terminal, and writes
// prompts to out.
func NewTerminalPrompter(in *os.File, out io.Writer) *TerminalPrompter {
	return &TerminalPrompter{in: in, out: out, cache: map[string]secret.Value{}}
}

// OpenTerminalPrompter asks on the controlling terminal (/dev/tty), like ssh,
// so it works when stdin is a pipe. It fails when there is no terminal.
func OpenTerminalPrompter() (*TerminalPrompter, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoTerminal, err)
	}
	if !term.IsTerminal(int(tty.Fd())) {
		tty.Close()
		return nil, ErrNoTerminal
	}
	return NewTerminalPrompter(tty, tty), nil
}

// Secret asks once; later calls with the same prompt get the same answer.
func (p *TerminalPrompter) Secret(prompt string) (secret.Value, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if v, ok := p.cache[prompt]; ok {
		return v, nil
	}
	if !term.IsTerminal(int(p.in.Fd())) {
		return secret.Value{}, ErrNoTerminal
	}
	fmt.Fprint(p.out, prompt)
	b, err := term.ReadPassword(int(p.in.Fd()))
	fmt.Fprintln(p.out)
	if err != nil {
		return secret.Value{}, err
	}
	v := secret.New(string(b))
	p.cache[prompt] = v
	return v, nil
}

// Forget drops a cached answer that turned out to be wrong.
func (p *TerminalPrompter) Forget(prompt string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.cache, prompt)
}

func forget(p Prompter, prompt string) {
	if f, ok := p.(forgetter); ok {
		f.Forget(prompt)
	}
}
