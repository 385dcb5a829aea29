package rollout

import (
	"context"
	"sync"
	"time"

	"github.com/k3sctl/k3sctl/internal/apply"
)

// Phases of a run, as the `phase` events name them (docs/events.md).
const (
	PhaseConnect    = "connect"    // SSH connections to every host
	PhaseFacts      = "facts"      // facts of every host, local files hashed
	PhaseVersions   = "versions"   // K3s versions and channels resolved
	PhaseTokens     = "tokens"     // tokens of running clusters read (beside binaries)
	PhaseBinaries   = "binaries"   // binaries fetched or found in the cache, clusters' nodes read
	PhasePlan       = "plan"       // the plan built
	PhaseExecute    = "execute"    // the plan applied, every host to the end
	PhaseKubeconfig = "kubeconfig" // admin kubeconfigs merged (within execute)
)

// Phases lists the phases in the order a run goes through them.
func Phases() []string {
	return []string{PhaseConnect, PhaseFacts, PhaseVersions, PhaseTokens, PhaseBinaries, PhasePlan, PhaseExecute, PhaseKubeconfig}
}

// PhaseTime is how long one phase took.
type PhaseTime struct {
	Name    string
	Elapsed time.Duration
}

// phaseClock splits the preparation into phases: each mark ends one.
type phaseClock struct {
	mu   sync.Mutex
	last time.Time
	list []PhaseTime
}

func newPhaseClock() *phaseClock { return &phaseClock{last: time.Now()} }

// done ends the phase name now.
func (c *phaseClock) done(name string) { c.doneAt(name, time.Now()) }

// doneAt ends the phase name at t, which is not before the last mark.
func (c *phaseClock) doneAt(name string, t time.Time) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.Before(c.last) {
		t = c.last
	}
	c.list = append(c.list, PhaseTime{Name: name, Elapsed: t.Sub(c.last)})
	c.last = t
}

// beside records the phase name, which ran beside the next one and ended
// at t, without ending the next one.
func (c *phaseClock) beside(name string, t time.Time) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.list = append(c.list, PhaseTime{Name: name, Elapsed: max(t.Sub(c.last), 0)})
}

func (c *phaseClock) phases() []PhaseTime {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]PhaseTime(nil), c.list...)
}

// PreparePhases are the phases Prepare went through, in order.
func (p *Prepared) PreparePhases() []PhaseTime { return p.o.clock.phases() }

func phaseEvent(name string, d time.Duration) apply.Event {
	return apply.Event{Time: time.Now(), Type: apply.EventPhase, Phase: name, Elapsed: d}
}

// timedSink reports the execute and kubeconfig phases just before the
// summary, so that the run's timings are all in before it ends.
type timedSink struct {
	apply.Sink
	start time.Time
	mu    sync.Mutex
	merge time.Duration
}

func (s *timedSink) Event(e apply.Event) {
	if e.Type == apply.EventSummary {
		s.Sink.Event(phaseEvent(PhaseExecute, time.Since(s.start)))
		s.mu.Lock()
		merge := s.merge
		s.mu.Unlock()
		if merge > 0 {
			s.Sink.Event(phaseEvent(PhaseKubeconfig, merge))
		}
	}
	s.Sink.Event(e)
}

// timeMerges adds the time merge takes to the kubeconfig phase.
func (s *timedSink) timeMerges(merge func(ctx context.Context, cluster string, data []byte) error) func(ctx context.Context, cluster string, data []byte) error {
	if merge == nil {
		return nil
	}
	return func(ctx context.Context, cluster string, data []byte) error {
		began := time.Now()
		err := merge(ctx, cluster, data)
		s.mu.Lock()
		s.merge += time.Since(began)
		s.mu.Unlock()
		return err
	}
}
