package ui

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/k3sctl/k3sctl/internal/apply"
)

func TestJSONOutput(t *testing.T) {
	events := sampleRun()
	got := render(t, ModeJSON, events)
	requireGolden(t, "sample", got)

	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(lines) != len(events) {
		t.Fatalf("%d lines for %d events", len(lines), len(events))
	}
	for i, line := range lines {
		if !strings.HasPrefix(line, `{"schema":"k3sctl.events/v1",`) {
			t.Errorf("line %d does not start with the schema: %s", i+1, line)
		}
		var back struct {
			Schema string `json:"schema"`
			apply.Event
		}
		if err := json.Unmarshal([]byte(line), &back); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		want := events[i]
		if back.Type != want.Type || back.Host != want.Host || back.Error != want.Error || !back.Time.Equal(want.Time) ||
			len(back.LogTail) != len(want.LogTail) || len(back.Results) != len(want.Results) {
			t.Errorf("line %d does not round-trip: %s", i+1, line)
		}
	}
	if !strings.Contains(got, `"type":"summary"`) || !strings.Contains(got, `"elapsedNs":66000000000`) {
		t.Error("summary results missing")
	}
}

func TestJSONUnencodablePlanKeepsTheLine(t *testing.T) {
	var out strings.Builder
	r := New(Options{Mode: ModeJSON, Out: &out})
	r.Event(apply.Event{Time: at(0), Type: apply.EventPlan, Plan: func() {}})
	r.Event(apply.Event{Time: at(1), Type: apply.EventHostQueued, Host: "h"})
	err := r.Wait()
	if err == nil || !strings.Contains(err.Error(), "encode plan event") {
		t.Errorf("Wait = %v, want the encoding error", err)
	}
	if n := strings.Count(out.String(), "\n"); n != 2 {
		t.Errorf("want a line per event, got %d:\n%s", n, out.String())
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

func TestWriteErrorsReachWait(t *testing.T) {
	for _, mode := range []string{ModeJSON, ModePlain} {
		r := New(Options{Mode: mode, Out: failingWriter{}})
		r.Event(apply.Event{Time: at(1), Type: apply.EventHostQueued, Host: "h"})
		if err := r.Wait(); err == nil || !strings.Contains(err.Error(), "broken pipe") {
			t.Errorf("%s: Wait = %v", mode, err)
		}
	}
}
