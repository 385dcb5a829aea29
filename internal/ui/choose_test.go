package ui

import (
	"os"
	"testing"
)

func TestChoose(t *testing.T) {
	pipeR, pipeW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pipeR.Close()
	defer pipeW.Close()
	// The master side of a pseudo-terminal passes for a terminal.
	tty, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Logf("no pseudo-terminal (%v): the live-view cases are skipped", err)
		tty = nil
	} else {
		defer tty.Close()
	}

	tests := []struct {
		name   string
		stderr *os.File
		output string
		plain  bool
		env    map[string]string
		want   string
	}{
		{name: "json wins", stderr: tty, output: "json", plain: true, want: ModeJSON},
		{name: "json on a pipe", stderr: pipeW, output: "json", want: ModeJSON},
		{name: "pipe", stderr: pipeW, want: ModePlain},
		{name: "no stderr", stderr: nil, want: ModePlain},
		{name: "plain flag", stderr: tty, plain: true, want: ModePlain},
		{name: "CI", stderr: tty, env: map[string]string{"CI": "true"}, want: ModePlain},
		{name: "CI=1", stderr: tty, env: map[string]string{"CI": "1"}, want: ModePlain},
		{name: "dumb terminal", stderr: tty, env: map[string]string{"TERM": "dumb"}, want: ModePlain},
		{name: "terminal", stderr: tty, want: ModeTUI},
		{name: "CI=false", stderr: tty, env: map[string]string{"CI": "false"}, want: ModeTUI},
		{name: "text output", stderr: tty, output: "text", want: ModeTUI},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.want == ModeTUI && tty == nil {
				t.Skip("needs a pseudo-terminal")
			}
			t.Setenv("CI", "")
			t.Setenv("TERM", "xterm-256color")
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			stderr := tt.stderr
			if tt.stderr == tty && tty == nil {
				stderr = pipeW
			}
			if got := Choose(stderr, tt.output, tt.plain); got != tt.want {
				t.Errorf("Choose = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNewUnknownModeIsPlain(t *testing.T) {
	if _, ok := New(Options{Mode: "fancy"}).(*plainRenderer); !ok {
		t.Error("an unknown mode should fall back to plain lines")
	}
}
