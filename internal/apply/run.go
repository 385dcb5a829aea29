package apply

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/plan"
	"github.com/k3sctl/k3sctl/internal/secret"
	"github.com/k3sctl/k3sctl/internal/ssh"
)

// Conn is what apply needs of a host connection; *ssh.Client is one.
type Conn interface {
	Host() string
	Run(ctx context.Context, cmd string, o ssh.RunOptions) (ssh.Result, error)
	Upload(ctx context.Context, src, dst string, o ssh.UploadOptions) (ssh.UploadResult, error)
	WriteFile(ctx context.Context, dst string, data []byte, mode os.FileMode) (bool, error)
	ReadFile(ctx context.Context, path string) ([]byte, error)
}

var _ Conn = (*ssh.Client)(nil)

// Options is everything Run needs.
type Options struct {
	Plan  *plan.Plan
	Spec  *plan.Spec
	Conns map[string]Conn // by host address
	// Hostnames are the hosts' lower-cased hostnames (node names), by address.
	Hostnames map[string]string
	// InitSystems by address: "systemd" or "openrc".
	InitSystems map[string]string
	// Tokens are cluster tokens already known (read from running servers).
	Tokens map[string]secret.Value
	// Binary returns a local path of the k3s binary for a version and
	// architecture, downloading it if needed, reporting bytes to progress.
	Binary func(ctx context.Context, key plan.BinaryKey, progress func(done, total int64)) (string, error)
	// Redial opens a new connection to a host, after a reboot (the fix
	// boot step). A returned connection that is an io.Closer and is not
	// kept is closed; the caller closes the kept ones. Nil: no step that
	// reboots can run.
	Redial func(ctx context.Context, address string) (Conn, error)
	// Images returns a local path of the images archive for a version and
	// architecture (air-gapped clusters); nil when the plan uploads none.
	Images func(ctx context.Context, key plan.BinaryKey) (string, error)
	// Kubeconfig receives each cluster's admin kubeconfig (k3s.yaml) once
	// its first server is ready. Nil: not fetched.
	Kubeconfig func(ctx context.Context, cluster string, k3sYAML []byte) error

	Concurrency       int           // hosts at once; default 20
	ConcurrentUploads int           // binary uploads at once; default 5
	MaxUnavailable    int           // agents of one cluster upgraded at once; default 1
	ReadyTimeout      time.Duration // per host; default 5 minutes
	PollInterval      time.Duration // readiness polling; default 1s
	Sink              Sink
	Now               func() time.Time
}

// ErrHostsFailed is returned when at least one host did not finish.
var ErrHostsFailed = errors.New("some hosts failed")

type clusterState struct {
	spec   *plan.Cluster
	mu     sync.Mutex
	token  secret.Value
	agents chan struct{} // limits agent upgrades (max unavailable)
}

type job struct {
	cluster *clusterState
	cplan   *plan.ClusterPlan
	hp      plan.HostPlan
	done    chan struct{}
	ok      bool
	result  HostResult
}

type runner struct {
	o       Options
	connMu  sync.Mutex // o.Conns changes when a host reboots
	sem     chan struct{}
	uploads chan struct{}
}

// Run executes the plan and returns every host's result. The error is
// ErrHostsFailed when some host failed, or the context's error when
// interrupted.
func Run(ctx context.Context, o Options) ([]HostResult, error) {
	if o.Concurrency <= 0 {
		o.Concurrency = 20
	}
	if o.ConcurrentUploads <= 0 {
		o.ConcurrentUploads = 5
	}
	if o.MaxUnavailable <= 0 {
		o.MaxUnavailable = 1
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = 5 * time.Minute
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sink == nil {
		o.Sink = SinkFunc(func(Event) {})
	}
	r := &runner{o: o, sem: make(chan struct{}, o.Concurrency), uploads: make(chan struct{}, o.ConcurrentUploads)}

	specs := map[string]*plan.Cluster{}
	for i := range o.Spec.Clusters {
		specs[o.Spec.Clusters[i].Name] = &o.Spec.Clusters[i]
	}
	var jobs []*job
	byKey := map[string]*job{}
	for ci := range o.Plan.Clusters {
		cp := &o.Plan.Clusters[ci]
		cs := &clusterState{spec: specs[cp.Name], token: o.Tokens[cp.Name], agents: make(chan struct{}, o.MaxUnavailable)}
		if cs.spec == nil {
			return nil, fmt.Errorf("plan names cluster %q that is not in the spec", cp.Name)
		}
		for _, hp := range cp.Hosts {
			j := &job{cluster: cs, cplan: cp, hp: hp, done: make(chan struct{})}
			j.result = HostResult{Cluster: cp.Name, Host: hp.Address, Role: string(hp.Role), Action: string(hp.Action)}
			jobs = append(jobs, j)
			byKey[cp.Name+"/"+hp.Address] = j
		}
	}
	o.Sink.Event(Event{Time: o.Now(), Type: EventPlan, Plan: o.Plan})

	var wg sync.WaitGroup
	for _, j := range jobs {
		var deps []*job
		for _, a := range j.hp.After {
			if d := byKey[j.cplan.Name+"/"+a]; d != nil {
				deps = append(deps, d)
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(j.done)
			r.runJob(ctx, j, deps)
		}()
	}
	wg.Wait()

	results := make([]HostResult, 0, len(jobs))
	failed := false
	for _, j := range jobs {
		results = append(results, j.result)
		switch j.result.Status {
		case StatusFailed, StatusSkipped, StatusRefused, StatusCancelled:
			failed = true
		}
	}
	o.Sink.Event(Event{Time: o.Now(), Type: EventSummary, Results: results})
	if ctx.Err() != nil {
		return results, ctx.Err()
	}
	if failed {
		return results, ErrHostsFailed
	}
	return results, nil
}

func (r *runner) emit(j *job, e Event) {
	e.Time = r.o.Now()
	e.Cluster = j.cplan.Name
	e.Host = j.hp.Address
	e.Role = string(j.hp.Role)
	r.o.Sink.Event(e)
}

func (r *runner) runJob(ctx context.Context, j *job, deps []*job) {
	start := r.o.Now()
	finish := func(status HostStatus, err error) {
		j.result.Status = status
		j.result.Elapsed = r.o.Now().Sub(start)
		if err != nil {
			j.result.Error = err.Error()
		}
		j.ok = status == StatusDone || status == StatusUnchanged
	}
	switch j.hp.Action {
	case plan.ActionRefuse:
		err := fmt.Errorf("refused: %s", strings.Join(j.hp.Reasons, "; "))
		r.emit(j, Event{Type: EventHostFailed, Error: err.Error()})
		finish(StatusRefused, err)
		return
	case plan.ActionUnreachable:
		err := fmt.Errorf("unreachable: %s", strings.Join(j.hp.Reasons, "; "))
		r.emit(j, Event{Type: EventHostFailed, Error: err.Error()})
		finish(StatusFailed, err)
		return
	}
	if len(deps) > 0 {
		r.emit(j, Event{Type: EventHostQueued, Message: "waiting for " + strings.Join(j.hp.After, ", ")})
	}
	for _, d := range deps {
		select {
		case <-d.done:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			finish(StatusCancelled, ctx.Err())
			return
		}
		if !d.ok {
			err := fmt.Errorf("not started: %s (%s) did not finish", d.hp.Address, d.hp.Role)
			r.emit(j, Event{Type: EventHostFailed, Error: err.Error()})
			finish(StatusSkipped, err)
			return
		}
	}
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		finish(StatusCancelled, ctx.Err())
		return
	}
	defer func() { <-r.sem }()
	// Time spent waiting for other hosts is not this host's.
	start = r.o.Now()
	if j.hp.Role == k3s.Agent && j.hp.Action == plan.ActionUpgrade {
		select {
		case j.cluster.agents <- struct{}{}:
		case <-ctx.Done():
			finish(StatusCancelled, ctx.Err())
			return
		}
		defer func() { <-j.cluster.agents }()
	}
	changed, err := r.host(ctx, j)
	j.result.Changed = changed
	if err != nil {
		status := StatusFailed
		if ctx.Err() != nil {
			status = StatusCancelled
		}
		ev := Event{Type: EventHostFailed, Error: err.Error()}
		var se *StepError
		if errors.As(err, &se) {
			ev.Step, ev.Hint = se.Step, se.Hint
		}
		r.emit(j, ev)
		finish(status, err)
		return
	}
	r.emit(j, Event{Type: EventHostDone, Changed: changed})
	if changed {
		finish(StatusDone, nil)
	} else {
		finish(StatusUnchanged, nil)
	}
}

// StepError is a failed step on a host, with what the service logged.
type StepError struct {
	Host    string
	Step    plan.StepKind
	Err     error
	Hint    string
	LogTail []string
}

func (e *StepError) Error() string { return fmt.Sprintf("%s: %s: %v", e.Host, e.Step, e.Err) }

func (e *StepError) Unwrap() error { return e.Err }

// step runs one step of the plan and reports it. Only a kind that may
// change the host reports a change.
func (r *runner) step(ctx context.Context, j *job, name plan.StepKind, fn func(ctx context.Context) (bool, error)) (bool, error) {
	r.emit(j, Event{Type: EventStepStart, Step: name})
	changed, err := fn(ctx)
	changed = changed && name.MayChange()
	if err != nil {
		se := &StepError{Host: j.hp.Address, Step: name, Err: err, Hint: ssh.HintOf(err)}
		var inner *StepError
		if errors.As(err, &inner) {
			se = inner
		}
		r.emit(j, Event{Type: EventStepFailed, Step: name, Error: se.Err.Error(), Hint: se.Hint, LogTail: se.LogTail})
		return changed, se
	}
	r.emit(j, Event{Type: EventStepDone, Step: name, Changed: changed})
	return changed, nil
}
