package apply

import (
	"sync"
	"time"

	"github.com/k3sctl/k3sctl/internal/plan"
)

// EventType names what happened. The names are part of the JSON output
// contract (docs/events.md); add new ones, never rename.
type EventType string

// Event types, in the order a host normally sees them.
const (
	EventPlan       EventType = "plan"        // the whole plan, before anything runs (Plan set)
	EventHostQueued EventType = "host_queued" // a host waits for what it depends on
	EventStepStart  EventType = "step_start"  // a step began on a host
	EventProgress   EventType = "progress"    // bytes of an upload (Bytes, Total)
	EventLog        EventType = "log"         // a line of remote output or a note (Message)
	EventStepDone   EventType = "step_done"   // a step finished (Changed says whether it changed the host)
	EventStepFailed EventType = "step_failed" // a step failed (Error, LogTail)
	EventHostDone   EventType = "host_done"   // every step of a host finished
	EventHostFailed EventType = "host_failed" // the host failed or was skipped because what it needs failed
	EventSummary    EventType = "summary"     // the run ended (Results)

	// A progressive rollout (internal/rollout) works through its clusters
	// in waves and adds these.
	EventWaveStart      EventType = "wave_start"      // a wave begins (Wave, Message: its clusters)
	EventWaveDone       EventType = "wave_done"       // every started cluster of a wave finished (Wave, Message: counts)
	EventRolloutStopped EventType = "rollout_stopped" // no further cluster is started (Error: why, Message: what was not started)

	// EventPhase is how long a phase of the run took (Phase, Elapsed).
	EventPhase EventType = "phase"
)

// Event is one thing that happened during apply. Renderers (terminal view,
// plain log, JSON lines) consume events only.
type Event struct {
	Time    time.Time `json:"time"`
	Type    EventType `json:"type"`
	Cluster string    `json:"cluster,omitempty"`
	// Wave is the rollout wave of the cluster: "canary", "1", "2", …;
	// empty outside a progressive rollout.
	Wave    string        `json:"wave,omitempty"`
	Host    string        `json:"host,omitempty"` // the address k3sctl reaches the host on
	Role    string        `json:"role,omitempty"` // server or agent
	Step    plan.StepKind `json:"step,omitempty"` // one of plan.StepKinds
	Message string        `json:"message,omitempty"`
	Changed bool          `json:"changed,omitempty"`
	Bytes   int64         `json:"bytes,omitempty"`
	Total   int64         `json:"total,omitempty"`
	Error   string        `json:"error,omitempty"`
	Hint    string        `json:"hint,omitempty"`
	LogTail []string      `json:"logTail,omitempty"` // last service log lines of a failed host
	// Phase names a phase of the run on EventPhase: connect, facts, …
	Phase string `json:"phase,omitempty"`
	// Elapsed is how long a step (EventStepDone, EventStepFailed) or a
	// phase (EventPhase) took.
	Elapsed time.Duration `json:"elapsedNs,omitempty"`
	// Plan is set on EventPlan.
	Plan any `json:"plan,omitempty"`
	// Results is set on EventSummary.
	Results []HostResult `json:"results,omitempty"`
}

// HostStatus is where a host was left.
type HostStatus string

// Host statuses in a summary.
const (
	StatusDone      HostStatus = "done"      // every step succeeded
	StatusUnchanged HostStatus = "unchanged" // nothing needed doing
	StatusFailed    HostStatus = "failed"    // a step failed
	StatusSkipped   HostStatus = "skipped"   // not started: something it depends on failed
	StatusCancelled HostStatus = "cancelled" // interrupted
	StatusRefused   HostStatus = "refused"   // the plan refused it (downgrade, minor skip)
	// StatusNotStarted is a host of a cluster a rollout did not start:
	// it stopped before the cluster's turn. No connection was made.
	StatusNotStarted HostStatus = "not_started"
)

// HostResult is one host's outcome in the summary.
type HostResult struct {
	Cluster string        `json:"cluster"`
	Wave    string        `json:"wave,omitempty"` // in a progressive rollout
	Host    string        `json:"host"`
	Role    string        `json:"role"`
	Action  string        `json:"action"` // install, upgrade, reconfigure, start, nothing, refuse
	Status  HostStatus    `json:"status"`
	Changed bool          `json:"changed"`
	Error   string        `json:"error,omitempty"`
	Elapsed time.Duration `json:"elapsedNs"`
}

// Sink receives events. Implementations must be safe for concurrent use.
type Sink interface {
	Event(Event)
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(Event)

// Event calls f.
func (f SinkFunc) Event(e Event) { f(e) }

// Recorder keeps every event; tests use it.
type Recorder struct {
	mu     sync.Mutex
	events []Event
}

// Event records e.
func (r *Recorder) Event(e Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

// Events returns a copy of what was recorded.
func (r *Recorder) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}
