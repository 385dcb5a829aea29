package rollout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/k3sctl/k3sctl/internal/apply"
	"github.com/k3sctl/k3sctl/internal/inventory"
	"github.com/k3sctl/k3sctl/internal/plan"
)

// CanaryWave names the wave of the canary clusters; the waves after it
// are numbered from 1.
const CanaryWave = "canary"

// Wave is clusters that are started together.
type Wave struct {
	Name     string // CanaryWave, "1", "2", …
	Clusters []string
}

// Label is how people read a wave's name: "canary" or "wave 2/3".
func (w Wave) Label(numbered int) string {
	if w.Name == CanaryWave {
		return CanaryWave
	}
	return "wave " + w.Name + "/" + strconv.Itoa(numbered)
}

// PlanWaves splits clusters, in their order, into the canary wave (the
// clusters named in canary, when there are any) and waves of the given
// sizes; the last size repeats, and no sizes is one wave of the rest. A
// percentage is of the clusters outside the canary, rounded up, at least
// one. The result depends on the clusters alone, not on their state: a
// cluster is in the same wave on every run.
func PlanWaves(clusters, canary []string, sizes []inventory.Amount) []Wave {
	var waves []Wave
	var rest []string
	var can []string
	for _, c := range clusters {
		if slices.Contains(canary, c) {
			can = append(can, c)
		} else {
			rest = append(rest, c)
		}
	}
	if len(can) > 0 {
		waves = append(waves, Wave{Name: CanaryWave, Clusters: can})
	}
	total := len(rest)
	for i, n := 0, 1; len(rest) > 0; n++ {
		size := total
		if len(sizes) > 0 {
			size = max(sizes[min(i, len(sizes)-1)].Of(total, true), 1)
		}
		size = min(size, len(rest))
		waves = append(waves, Wave{Name: strconv.Itoa(n), Clusters: rest[:size:size]})
		rest = rest[size:]
		i++
	}
	return waves
}

// Numbered is how many waves after the canary there are.
func Numbered(waves []Wave) int {
	n := 0
	for _, w := range waves {
		if w.Name != CanaryWave {
			n++
		}
	}
	return n
}

// Schedule says how waves are worked through.
type Schedule struct {
	Waves []Wave
	// Budget is how many clusters may fail; one more and no new cluster is
	// started. A failed canary cluster always stops the rollout.
	Budget int
	// MaxInFlight limits the clusters run at once; 0 is no limit.
	MaxInFlight int
	// RunCluster works on one cluster and reports whether it ended well.
	RunCluster func(ctx context.Context, cluster string, w Wave) bool
	// Between runs after a wave that did not stop the rollout, before the
	// next one: a pause or a question. An error stops the rollout.
	Between func(ctx context.Context, done, next Wave) error
	Sink    apply.Sink
	Now     func() time.Time
}

// Report is what a rollout did, cluster by cluster.
type Report struct {
	Done       []string // ended well (changed or already in sync)
	Failed     []string
	NotStarted []string
	// Stopped says why clusters were not started; nil when every cluster
	// was started.
	Stopped error
	// StoppedAfter is the wave after which nothing new was started.
	StoppedAfter string
	// WaveOf is each cluster's wave.
	WaveOf map[string]string
}

// ErrBudgetExceeded is why a rollout stops when too many clusters failed.
var ErrBudgetExceeded = errors.New("failure budget exceeded")

// Run works through the waves: each wave's clusters at most MaxInFlight at
// once, the next wave only once every started cluster of the one before
// finished. Once more clusters failed than the budget allows (or a canary
// failed, or ctx ended), no further cluster is started; those already
// running finish.
func (s *Schedule) Run(ctx context.Context) Report {
	now := s.Now
	if now == nil {
		now = time.Now
	}
	sink := s.Sink
	if sink == nil {
		sink = apply.SinkFunc(func(apply.Event) {})
	}
	numbered := Numbered(s.Waves)
	rep := Report{WaveOf: map[string]string{}}
	var mu sync.Mutex
	failed := 0
	stop := func(err error, after string) {
		if rep.Stopped == nil {
			rep.Stopped, rep.StoppedAfter = err, after
		}
	}
	stopped := func() bool {
		mu.Lock()
		defer mu.Unlock()
		if rep.Stopped == nil && ctx.Err() != nil {
			rep.Stopped = ctx.Err()
		}
		return rep.Stopped != nil
	}
	for i, w := range s.Waves {
		for _, c := range w.Clusters {
			rep.WaveOf[c] = w.Name
		}
		if stopped() {
			rep.NotStarted = append(rep.NotStarted, w.Clusters...)
			continue
		}
		if i > 0 && s.Between != nil {
			if err := s.Between(ctx, s.Waves[i-1], w); err != nil {
				mu.Lock()
				stop(err, s.Waves[i-1].Name)
				mu.Unlock()
				rep.NotStarted = append(rep.NotStarted, w.Clusters...)
				continue
			}
		}
		sink.Event(apply.Event{Time: now(), Type: apply.EventWaveStart, Wave: w.Name,
			Message: fmt.Sprintf("%s: %s", w.Label(numbered), strings.Join(w.Clusters, ", "))})
		limit := s.MaxInFlight
		if limit <= 0 {
			limit = len(w.Clusters)
		}
		sem := make(chan struct{}, limit)
		var wg sync.WaitGroup
		var done, bad, notStarted []string
		for _, c := range w.Clusters {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
			}
			if stopped() {
				notStarted = append(notStarted, c)
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				ok := s.RunCluster(ctx, c, w)
				mu.Lock()
				defer mu.Unlock()
				if ok {
					done = append(done, c)
					return
				}
				bad = append(bad, c)
				failed++
				switch {
				case w.Name == CanaryWave:
					stop(fmt.Errorf("canary cluster %s failed", c), w.Name)
				case failed > s.Budget:
					stop(fmt.Errorf("%w: %d cluster(s) failed, %d allowed", ErrBudgetExceeded, failed, s.Budget), w.Name)
				}
			}()
		}
		wg.Wait()
		// Keep the order of the inventory, not of finishing.
		done, bad = inOrder(w.Clusters, done), inOrder(w.Clusters, bad)
		rep.Done = append(rep.Done, done...)
		rep.Failed = append(rep.Failed, bad...)
		rep.NotStarted = append(rep.NotStarted, notStarted...)
		msg := fmt.Sprintf("%s: %d done, %d failed", w.Label(numbered), len(done), len(bad))
		if len(notStarted) > 0 {
			msg += fmt.Sprintf(", %d not started", len(notStarted))
		}
		sink.Event(apply.Event{Time: now(), Type: apply.EventWaveDone, Wave: w.Name, Message: msg})
		if stopped() && rep.StoppedAfter == "" {
			rep.StoppedAfter = w.Name
		}
	}
	if rep.Stopped != nil {
		ev := apply.Event{Time: now(), Type: apply.EventRolloutStopped, Wave: rep.StoppedAfter, Error: rep.Stopped.Error()}
		if len(rep.NotStarted) > 0 {
			ev.Message = "not started: " + strings.Join(rep.NotStarted, ", ")
		}
		sink.Event(ev)
	}
	return rep
}

func inOrder(order, set []string) []string {
	var out []string
	for _, c := range order {
		if slices.Contains(set, c) {
			out = append(out, c)
		}
	}
	return out
}

// ProgressiveOptions are a rollout over Options.Spec's clusters in waves.
type ProgressiveOptions struct {
	Options
	Waves       []Wave
	Budget      int
	MaxInFlight int
	Between     func(ctx context.Context, done, next Wave) error
	Now         func() time.Time
}

// Progressive runs a rollout in waves. Each cluster is prepared (connect,
// facts, plan) only when its turn comes, so the hosts of a cluster that is
// not started see no connection at all. Every event carries the cluster's
// wave; the per-cluster summaries give way to one summary of every host
// at the end, with the hosts of clusters not started as not_started.
func Progressive(ctx context.Context, o ProgressiveOptions) (Report, []apply.HostResult) {
	o.Options = withDefaults(o.Options)
	now := o.Now
	if now == nil {
		now = time.Now
	}
	sink := o.Sink
	if sink == nil {
		sink = apply.SinkFunc(func(apply.Event) {})
	}
	specs := map[string]plan.Cluster{}
	for _, c := range o.Spec.Clusters {
		specs[c.Name] = c
	}
	var mu sync.Mutex
	results := map[string][]apply.HostResult{}
	run := func(ctx context.Context, name string, w Wave) bool {
		res, ok := runOneCluster(ctx, o.Options, specs[name], w.Name, sink, now)
		mu.Lock()
		results[name] = res
		mu.Unlock()
		return ok
	}
	sched := &Schedule{Waves: o.Waves, Budget: o.Budget, MaxInFlight: o.MaxInFlight, RunCluster: run, Between: o.Between, Sink: sink, Now: now}
	rep := sched.Run(ctx)
	var all []apply.HostResult
	for _, w := range o.Waves {
		for _, name := range w.Clusters {
			if res, ok := results[name]; ok {
				all = append(all, res...)
				continue
			}
			for _, h := range clusterHosts(specs[name]) {
				all = append(all, apply.HostResult{Cluster: name, Wave: w.Name, Host: h.Address, Role: string(h.Role), Status: apply.StatusNotStarted})
			}
		}
	}
	sink.Event(apply.Event{Time: now(), Type: apply.EventSummary, Results: all})
	return rep, all
}

// runOneCluster prepares and applies one cluster, with its wave on every
// event; it reports whether every host ended well.
func runOneCluster(ctx context.Context, base Options, c plan.Cluster, wave string, sink apply.Sink, now func() time.Time) ([]apply.HostResult, bool) {
	o := base
	spec := *base.Spec
	spec.Clusters = []plan.Cluster{c}
	o.Spec = &spec
	stamp := apply.SinkFunc(func(e apply.Event) {
		if e.Type == apply.EventSummary {
			return
		}
		e.Wave = wave
		if e.Cluster == "" {
			e.Cluster = c.Name
		}
		sink.Event(e)
	})
	o.Sink = stamp
	o.Progress = func(format string, a ...any) {
		stamp.Event(apply.Event{Time: now(), Type: apply.EventLog, Message: c.Name + ": " + fmt.Sprintf(format, a...)})
	}
	p, err := Prepare(ctx, o)
	if err != nil {
		var res []apply.HostResult
		for _, h := range clusterHosts(c) {
			msg := fmt.Sprintf("cluster %s: %v", c.Name, err)
			if !strings.Contains(err.Error(), c.Name) {
				msg = fmt.Sprintf("cluster %s: prepare: %v", c.Name, err)
			}
			stamp.Event(apply.Event{Time: now(), Type: apply.EventHostFailed, Host: h.Address, Role: string(h.Role), Error: msg})
			res = append(res, apply.HostResult{Cluster: c.Name, Wave: wave, Host: h.Address, Role: string(h.Role), Status: apply.StatusFailed, Error: msg})
		}
		return res, false
	}
	defer p.Close()
	res, err := p.Apply(ctx)
	for i := range res {
		res[i].Wave = wave
	}
	return res, err == nil
}
