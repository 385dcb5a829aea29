package ui

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/k3sctl/k3sctl/internal/apply"
)

// Schema names the JSON lines contract documented in docs/events.md. It
// changes only when a field changes meaning or goes away.
const Schema = "k3sctl.events/v1"

// jsonEvent puts the schema first on every line, so a reader can check it
// before it trusts anything else.
type jsonEvent struct {
	Schema string `json:"schema"`
	apply.Event
}

type jsonRenderer struct {
	mu  sync.Mutex
	out io.Writer
	err error
}

var _ Renderer = (*jsonRenderer)(nil)

func newJSONRenderer(o Options) *jsonRenderer {
	return &jsonRenderer{out: o.Out}
}

func (r *jsonRenderer) Start() error { return nil }

// Event writes one line per event. A plan that cannot be encoded still
// leaves a line for its event, so a reader never loses count.
func (r *jsonRenderer) Event(e apply.Event) {
	line, err := json.Marshal(jsonEvent{Schema: Schema, Event: e})
	if err != nil {
		err = fmt.Errorf("encode %s event: %w", e.Type, err)
		// Plan is the only field of no fixed type; without it the event
		// always encodes.
		e.Plan = nil
		line, _ = json.Marshal(jsonEvent{Schema: Schema, Event: e})
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil && r.err == nil {
		r.err = err
	}
	if _, werr := r.out.Write(append(line, '\n')); werr != nil && r.err == nil {
		r.err = fmt.Errorf("write events: %w", werr)
	}
}

// Wait reports the first event that could not be written whole.
func (r *jsonRenderer) Wait() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

func (r *jsonRenderer) Close() {}
