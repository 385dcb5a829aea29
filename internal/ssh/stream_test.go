package ssh

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

func TestRunStdoutToWriter(t *testing.T) {
	ts := newTestSetup(t)
	c := dialTest(t, ts.opts)
	var out bytes.Buffer
	var lines []string
	// Binary output with no newline at the end, and stderr beside it.
	res, err := c.Run(context.Background(), `head -c 300000 /dev/zero | tr '\0' 'x'; printf '\001\002'; echo note >&2`,
		RunOptions{Stdout: &out, OnLine: func(stream, line string) { lines = append(lines, stream+" "+line) }})
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Repeat("x", 300000) + "\x01\x02"; out.String() != want {
		t.Errorf("writer got %d bytes, want %d", out.Len(), len(want))
	}
	if len(res.Stdout) != 0 {
		t.Errorf("Result.Stdout holds %d bytes; the writer should have had them all", len(res.Stdout))
	}
	if len(lines) != 1 || lines[0] != "stderr note" {
		t.Errorf("OnLine saw %q, want only the stderr line", lines)
	}
}

type failingWriter struct{ n int }

func (w *failingWriter) Write(p []byte) (int, error) {
	w.n += len(p)
	if w.n > 1000 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

func TestRunStdoutWriterFailureIsAnError(t *testing.T) {
	ts := newTestSetup(t)
	c := dialTest(t, ts.opts)
	_, err := c.Run(context.Background(), `head -c 1000000 /dev/zero`, RunOptions{Stdout: &failingWriter{}})
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("err = %v, want the writer's error", err)
	}
}
