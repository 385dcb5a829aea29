package ui

import (
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/k3sctl/k3sctl/internal/apply"
)

// TestEventsDocumented keeps docs/events.md in step with the Event type:
// every type has a section, every field a row, every example parses.
func TestEventsDocumented(t *testing.T) {
	raw, err := os.ReadFile("../../docs/events.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)

	for _, typ := range []apply.EventType{
		apply.EventPlan, apply.EventHostQueued, apply.EventStepStart, apply.EventProgress, apply.EventLog,
		apply.EventStepDone, apply.EventStepFailed, apply.EventHostDone, apply.EventHostFailed, apply.EventSummary,
	} {
		if !strings.Contains(doc, "### `"+string(typ)+"`") {
			t.Errorf("event type %q has no section", typ)
		}
	}
	fields := func(v any) {
		rt := reflect.TypeOf(v)
		for i := range rt.NumField() {
			name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
			if !strings.Contains(doc, "| `"+name+"` |") {
				t.Errorf("field %q of %s has no row", name, rt.Name())
			}
		}
	}
	fields(apply.Event{})
	fields(apply.HostResult{})

	seen := map[string]bool{}
	for _, m := range regexp.MustCompile("(?s)```json\n(.*?)\n```").FindAllStringSubmatch(doc, -1) {
		var line jsonEvent
		if err := json.Unmarshal([]byte(m[1]), &line); err != nil {
			t.Errorf("example does not parse: %v\n%s", err, m[1])
			continue
		}
		if line.Schema != Schema {
			t.Errorf("example has schema %q", line.Schema)
		}
		seen[string(line.Type)] = true
	}
	// The ten apply events, and "error", which internal/cli writes when a
	// run ends without a summary.
	if len(seen) != 11 || !seen["error"] {
		t.Errorf("examples cover %d types, want 11 with error: %v", len(seen), seen)
	}
}
