package rollout

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/k3sctl/k3sctl/internal/apply"
	"github.com/k3sctl/k3sctl/internal/inventory"
	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/plan"
)

func TestPlanWaves(t *testing.T) {
	names := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i"}
	pct := func(n int) inventory.Amount { return inventory.Amount{N: n, Percent: true} }
	for _, tc := range []struct {
		name   string
		canary []string
		sizes  []inventory.Amount
		want   []Wave
	}{
		{"one wave", nil, nil, []Wave{{"1", names}}},
		{"canary and the rest", []string{"c"}, nil, []Wave{{CanaryWave, []string{"c"}}, {"1", []string{"a", "b", "d", "e", "f", "g", "h", "i"}}}},
		{"size repeats", []string{"a"}, []inventory.Amount{{N: 3}}, []Wave{
			{CanaryWave, []string{"a"}}, {"1", []string{"b", "c", "d"}}, {"2", []string{"e", "f", "g"}}, {"3", []string{"h", "i"}}}},
		// 8 clusters outside the canary: 1, then 25% of 8 = 2 (repeating
		// until "100%" takes the rest).
		{"count, percent, everything", []string{"a"}, []inventory.Amount{{N: 1}, pct(25), pct(100)}, []Wave{
			{CanaryWave, []string{"a"}}, {"1", []string{"b"}}, {"2", []string{"c", "d"}}, {"3", []string{"e", "f", "g", "h", "i"}}}},
		{"a small percentage is one cluster", nil, []inventory.Amount{pct(1)}, func() []Wave {
			var w []Wave
			for i, n := range names {
				w = append(w, Wave{Name: itoa(i + 1), Clusters: []string{n}})
			}
			return w
		}()},
	} {
		got := PlanWaves(names, tc.canary, tc.sizes)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func itoa(i int) string { return string(rune('0' + i)) }

// fakeRun records which clusters ran; the failing ones fail.
type fakeRun struct {
	mu                    sync.Mutex
	ran                   []string
	failing               map[string]bool
	inFlight, maxInFlight int
}

func (f *fakeRun) run(ctx context.Context, c string, w Wave) bool {
	f.mu.Lock()
	f.ran = append(f.ran, c)
	f.inFlight++
	f.maxInFlight = max(f.maxInFlight, f.inFlight)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inFlight--
		f.mu.Unlock()
	}()
	return !f.failing[c]
}

func TestScheduleStopsAtTheBudget(t *testing.T) {
	waves := PlanWaves([]string{"can", "a", "b", "c", "d"}, []string{"can"}, []inventory.Amount{{N: 2}})
	f := &fakeRun{failing: map[string]bool{"b": true}}
	rec := &apply.Recorder{}
	var between []string
	s := &Schedule{Waves: waves, Budget: 0, MaxInFlight: 1, RunCluster: f.run, Sink: rec,
		Between: func(ctx context.Context, done, next Wave) error {
			between = append(between, done.Name+">"+next.Name)
			return nil
		}}
	rep := s.Run(context.Background())
	if !reflect.DeepEqual(f.ran, []string{"can", "a", "b"}) {
		t.Errorf("ran %v", f.ran)
	}
	if !reflect.DeepEqual(rep.Done, []string{"can", "a"}) || !reflect.DeepEqual(rep.Failed, []string{"b"}) || !reflect.DeepEqual(rep.NotStarted, []string{"c", "d"}) {
		t.Errorf("report %+v", rep)
	}
	if !errors.Is(rep.Stopped, ErrBudgetExceeded) || rep.StoppedAfter != "1" {
		t.Errorf("stopped %v after %q", rep.Stopped, rep.StoppedAfter)
	}
	if !reflect.DeepEqual(between, []string{"canary>1"}) {
		t.Errorf("between waves: %v", between)
	}
	var types []apply.EventType
	for _, e := range rec.Events() {
		types = append(types, e.Type)
	}
	want := []apply.EventType{apply.EventWaveStart, apply.EventWaveDone, apply.EventWaveStart, apply.EventWaveDone, apply.EventRolloutStopped}
	if !reflect.DeepEqual(types, want) {
		t.Errorf("events %v, want %v", types, want)
	}
	if last := rec.Events()[4]; last.Message != "not started: c, d" || last.Wave != "1" {
		t.Errorf("rollout_stopped %+v", last)
	}
}

func TestScheduleWithinBudgetGoesOn(t *testing.T) {
	waves := PlanWaves([]string{"a", "b", "c", "d"}, nil, []inventory.Amount{{N: 2}})
	f := &fakeRun{failing: map[string]bool{"a": true}}
	rep := (&Schedule{Waves: waves, Budget: 1, RunCluster: f.run}).Run(context.Background())
	if rep.Stopped != nil || len(f.ran) != 4 || !reflect.DeepEqual(rep.Failed, []string{"a"}) {
		t.Errorf("ran %v, report %+v", f.ran, rep)
	}
}

func TestScheduleCanaryFailureStops(t *testing.T) {
	waves := PlanWaves([]string{"a", "b", "c"}, []string{"a"}, nil)
	f := &fakeRun{failing: map[string]bool{"a": true}}
	rep := (&Schedule{Waves: waves, Budget: 5, RunCluster: f.run}).Run(context.Background())
	if rep.Stopped == nil || !reflect.DeepEqual(f.ran, []string{"a"}) || !reflect.DeepEqual(rep.NotStarted, []string{"b", "c"}) {
		t.Errorf("ran %v, report %+v", f.ran, rep)
	}
}

func TestScheduleMaxInFlight(t *testing.T) {
	names := []string{"a", "b", "c", "d", "e", "f"}
	var mu sync.Mutex
	in, most := 0, 0
	release := make(chan struct{})
	run := func(ctx context.Context, c string, w Wave) bool {
		mu.Lock()
		in++
		most = max(most, in)
		mu.Unlock()
		<-release
		mu.Lock()
		in--
		mu.Unlock()
		return true
	}
	done := make(chan Report)
	go func() {
		done <- (&Schedule{Waves: PlanWaves(names, nil, nil), MaxInFlight: 2, RunCluster: run}).Run(context.Background())
	}()
	// Release one cluster at a time, each only once two are running (or
	// all that are left): the limit must hold and must be reached.
	for left := len(names); left > 0; left-- {
		for {
			mu.Lock()
			n := in
			mu.Unlock()
			if n == min(2, left) {
				break
			}
			time.Sleep(time.Millisecond)
		}
		release <- struct{}{}
	}
	rep := <-done
	if most != 2 || len(rep.Done) != 6 {
		t.Errorf("at most %d in flight, %d done", most, len(rep.Done))
	}
}

func TestScheduleBetweenStops(t *testing.T) {
	waves := PlanWaves([]string{"a", "b"}, nil, []inventory.Amount{{N: 1}})
	f := &fakeRun{}
	no := errors.New("not confirmed")
	rep := (&Schedule{Waves: waves, RunCluster: f.run, Between: func(context.Context, Wave, Wave) error { return no }}).Run(context.Background())
	if !errors.Is(rep.Stopped, no) || rep.StoppedAfter != "1" || !reflect.DeepEqual(rep.NotStarted, []string{"b"}) || !reflect.DeepEqual(f.ran, []string{"a"}) {
		t.Errorf("ran %v, report %+v", f.ran, rep)
	}
}

func TestScheduleInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	waves := PlanWaves([]string{"a", "b", "c"}, nil, []inventory.Amount{{N: 1}})
	run := func(ctx context.Context, c string, w Wave) bool {
		cancel()
		return false
	}
	rep := (&Schedule{Waves: waves, Budget: 10, RunCluster: run}).Run(ctx)
	if !errors.Is(rep.Stopped, context.Canceled) || !reflect.DeepEqual(rep.NotStarted, []string{"b", "c"}) {
		t.Errorf("report %+v", rep)
	}
}

// A rollout connects to a cluster's hosts only when its turn comes: the
// hosts of clusters after the stop are never dialed.
func TestProgressiveDialsOnlyStartedClusters(t *testing.T) {
	w := newFakeHosts()
	w.factsErr = func(addr string) error {
		if addr == "10.0.2.1" {
			return errors.New("facts: no sudo")
		}
		return nil
	}
	f := &fakeFetcher{dir: t.TempDir()}
	spec := &plan.Spec{}
	versions := map[string]string{}
	for i, name := range []string{"c0", "c1", "c2", "c3", "c4"} {
		spec.Clusters = append(spec.Clusters, plan.Cluster{Name: name, Servers: []plan.Host{{Address: fmt.Sprintf("10.0.%d.1", i), Role: k3s.Server}}})
		versions[name] = "v1.31.4+k3s1"
	}
	o := options(w, f, spec)
	o.VersionOrChannel = versions
	var mu sync.Mutex
	var dialed []string
	o.Dial = func(ctx context.Context, addr string) (Conn, error) {
		mu.Lock()
		dialed = append(dialed, addr)
		mu.Unlock()
		return w.dial(ctx, addr)
	}
	rec := &apply.Recorder{}
	o.Sink = rec
	waves := PlanWaves([]string{"c0", "c1", "c2", "c3", "c4"}, []string{"c0"}, []inventory.Amount{{N: 2}})
	rep, results := Progressive(context.Background(), ProgressiveOptions{Options: o, Waves: waves, Budget: 0})
	sort.Strings(dialed)
	if want := []string{"10.0.0.1", "10.0.1.1", "10.0.2.1"}; !reflect.DeepEqual(dialed, want) {
		t.Errorf("dialed %v, want %v", dialed, want)
	}
	if w.openConns() != 0 {
		t.Errorf("%d connections left open", w.openConns())
	}
	if !reflect.DeepEqual(rep.Failed, []string{"c2"}) || !reflect.DeepEqual(rep.NotStarted, []string{"c3", "c4"}) {
		t.Errorf("report %+v", rep)
	}
	got := map[string]string{}
	for _, r := range results {
		got[r.Cluster] = string(r.Status) + "@" + r.Wave
	}
	want := map[string]string{"c0": "done@canary", "c1": "done@1", "c2": "failed@1", "c3": "not_started@2", "c4": "not_started@2"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("results %v, want %v", got, want)
	}
	summaries := 0
	for _, e := range rec.Events() {
		if e.Type == apply.EventSummary {
			summaries++
			continue
		}
		if e.Host != "" && e.Wave == "" {
			t.Errorf("event without a wave: %+v", e)
		}
	}
	if summaries != 1 {
		t.Errorf("%d summary events, want one for the whole rollout", summaries)
	}
}
