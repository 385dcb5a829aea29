package apply

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

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
	// BinarySHA256 are the binaries' sha256 when known, so that an upload
	// does not read the file to hash it again.
	BinarySHA256 map[plan.BinaryKey]string
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
	// KnownKubeconfigs are admin kubeconfigs read from servers earlier in
	// the run, by address: a server this run does not change gives its
	// kubeconfig from here instead of reading it again.
	KnownKubeconfigs map[string][]byte
	// API reaches a cluster's Kubernetes API, for the label step. Nil:
	// that step changes nothing.
	API func(ctx context.Context, cluster string) (NodeAPI, error)

	// Dial connects to the host of a removed node of cluster to uninstall
	// K3s there; close releases the connection. Nil: K3s stays installed
	// there and the removal says how to uninstall it.
	Dial func(ctx context.Context, cluster, address string) (conn Conn, close func(), err error)

	Concurrency       int // hosts at once; default 20
	ConcurrentUploads int // binary uploads at once; default 5
	// MaxUnavailable is how many nodes of one cluster restart K3s at once
	// (upgrades, config changes, repairs); default 1.
	MaxUnavailable int
	// DrainTimeout bounds the eviction of a node's pods before a restart
	// or a removal; default 5 minutes. ForceDrain goes on when pods are
	// left at the timeout.
	DrainTimeout time.Duration
	ForceDrain   bool
	ReadyTimeout time.Duration // per host; default 5 minutes
	PollInterval time.Duration // readiness polling; default 1s
	Sink         Sink
	Now          func() time.Time
}

// ErrHostsFailed is returned when at least one host did not finish.
var ErrHostsFailed = errors.New("some hosts failed")

type clusterState struct {
	spec     *plan.Cluster
	mu       sync.Mutex
	token    secret.Value
	restarts chan struct{} // limits the nodes restarting at once (max unavailable)
}

type job struct {
	cluster *clusterState
	cplan   *plan.ClusterPlan
	hp      plan.HostPlan
	done    chan struct{}
	// uploaded is closed once the host no longer uploads its binary
	// (sent, not needed, or the host ended).
	uploaded     chan struct{}
	uploadedOnce sync.Once
	// bin and img say when the host has its binary and images archive,
	// for the hosts that copy them from it (plan.HostPlan.UploadFrom).
	bin, img *seedFile
	ok       bool
	result   HostResult
}

type runner struct {
	o       Options
	connMu  sync.Mutex // o.Conns changes when a host reboots
	sem     chan struct{}
	uploads chan struct{}
	nodes   nodeLists
	// byKey is every job by cluster/address; peerSlots limit the copies
	// from one seed (cluster/address) at once.
	byKey     map[string]*job
	peerSlots map[string]chan struct{}
	watches   nodeWatches
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
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 5 * time.Minute
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

	// A removal refused for etcd's quorum stops the run before anything
	// is touched.
	for _, cp := range o.Plan.Clusters {
		for _, rm := range cp.Removals {
			if rm.Pruned && rm.Action == plan.ActionRefuse {
				return nil, fmt.Errorf("cluster %s: removal of node %s refused, nothing changed: %s", cp.Name, rm.Node, strings.Join(rm.Reasons, "; "))
			}
		}
	}
	specs := map[string]*plan.Cluster{}
	for i := range o.Spec.Clusters {
		specs[o.Spec.Clusters[i].Name] = &o.Spec.Clusters[i]
	}
	var jobs []*job
	byKey := map[string]*job{}
	r.byKey, r.peerSlots = byKey, map[string]chan struct{}{}
	type removals struct {
		cp   *plan.ClusterPlan
		cs   *clusterState
		jobs []*job
	}
	var prune []*removals
	for ci := range o.Plan.Clusters {
		cp := &o.Plan.Clusters[ci]
		cs := &clusterState{spec: specs[cp.Name], token: o.Tokens[cp.Name], restarts: make(chan struct{}, o.MaxUnavailable)}
		if cs.spec == nil {
			return nil, fmt.Errorf("plan names cluster %q that is not in the spec", cp.Name)
		}
		rm := &removals{cp: cp, cs: cs}
		for _, hp := range cp.Hosts {
			j := &job{cluster: cs, cplan: cp, hp: hp, done: make(chan struct{}), uploaded: make(chan struct{}), bin: newSeedFile(), img: newSeedFile()}
			// A host that is sent nothing has it already.
			if !hp.Upload {
				j.bin.finish(true)
			}
			if hp.Images == "" {
				j.img.finish(true)
			}
			for _, src := range []*plan.SiteSource{hp.UploadFrom, hp.ImagesFrom} {
				if k := cp.Name + "/"; src != nil && r.peerSlots[k+src.Host] == nil {
					r.peerSlots[k+src.Host] = make(chan struct{}, peerCopiesPerSeed)
				}
			}
			j.result = HostResult{Cluster: cp.Name, Host: hp.Address, Role: string(hp.Role), Action: string(hp.Action)}
			jobs = append(jobs, j)
			rm.jobs = append(rm.jobs, j)
			byKey[cp.Name+"/"+hp.Address] = j
		}
		if slices.ContainsFunc(cp.Removals, func(r plan.Removal) bool { return r.Pruned && r.Action == plan.ActionRemove }) {
			prune = append(prune, rm)
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
	var removed []HostResult
	var rmu sync.Mutex
	for _, rm := range prune {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The cluster's hosts first: a replacement joins before the
			// node it replaces goes.
			for _, j := range rm.jobs {
				select {
				case <-j.done:
				case <-ctx.Done():
				}
			}
			res := r.runRemovals(ctx, rm.cp, rm.cs)
			rmu.Lock()
			removed = append(removed, res...)
			rmu.Unlock()
		}()
	}
	wg.Wait()
	// Every waiter has left its cluster's watch; the watches end now.
	r.watches.running.Wait()

	results := make([]HostResult, 0, len(jobs)+len(removed))
	failed := false
	for _, j := range jobs {
		results = append(results, j.result)
	}
	results = append(results, removed...)
	for _, res := range results {
		switch res.Status {
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
	defer j.markUploaded()
	defer j.bin.finish(false) // when its step did not run
	defer j.img.finish(false)
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
	steps := r.runnableSteps(j)
	early := 0
	if len(deps) > 0 {
		early = earlySteps(j, steps)
	}
	if !hasUpload(steps) {
		j.markUploaded()
	}
	if early > 0 {
		// What j waits for uploads first: it is what everything waits for.
		waitUploads(ctx, deps)
	}
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		finish(StatusCancelled, ctx.Err())
		return
	}
	held := true
	start = r.o.Now()
	defer func() {
		if held {
			<-r.sem
		}
	}()
	hr, err := r.newHostRun(j)
	if err == nil && hr.conn != nil {
		err = r.removeStale(ctx, j, hr.conn)
	}
	if err != nil {
		r.emit(j, Event{Type: EventHostFailed, Error: err.Error()})
		finish(StatusFailed, err)
		return
	}
	// Steps that need nothing of the hosts j waits for (the binary's
	// upload) run while those hosts are still coming up.
	var active time.Duration
	changed, err := r.host(ctx, j, hr, steps[:early])
	active += r.o.Now().Sub(start)
	if err == nil && len(deps) > 0 {
		r.emit(j, Event{Type: EventHostQueued, Message: "waiting for " + strings.Join(j.hp.After, ", ")})
		// Waiting gives the slot to hosts that can run.
		<-r.sem
		held = false
		if failed := r.waitDeps(ctx, j, deps); failed != nil {
			j.result.Changed = changed
			if ctx.Err() != nil {
				finish(StatusCancelled, ctx.Err())
			} else {
				r.emit(j, Event{Type: EventHostFailed, Error: failed.Error()})
				finish(StatusSkipped, failed)
			}
			j.result.Elapsed = active
			return
		}
		select {
		case r.sem <- struct{}{}:
			held = true
		case <-ctx.Done():
			finish(StatusCancelled, ctx.Err())
			return
		}
	}
	// Time spent waiting for other hosts is not this host's.
	start = r.o.Now().Add(-active)
	if err == nil && restarts(j.hp) {
		select {
		case j.cluster.restarts <- struct{}{}:
		case <-ctx.Done():
			finish(StatusCancelled, ctx.Err())
			return
		}
		defer func() { <-j.cluster.restarts }()
	}
	if err == nil {
		var c bool
		c, err = r.host(ctx, j, hr, steps[early:])
		changed = changed || c
	}
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
	began := r.o.Now()
	changed, err := fn(ctx)
	took := r.o.Now().Sub(began)
	switch name {
	case plan.StepUploadBinary:
		j.bin.finish(err == nil)
		j.markUploaded()
	case plan.StepUploadImages:
		j.img.finish(err == nil)
	}
	changed = changed && name.MayChange()
	if err != nil {
		se := &StepError{Host: j.hp.Address, Step: name, Err: err, Hint: ssh.HintOf(err)}
		var inner *StepError
		if errors.As(err, &inner) {
			se = inner
		}
		r.emit(j, Event{Type: EventStepFailed, Step: name, Error: se.Err.Error(), Hint: se.Hint, LogTail: se.LogTail, Elapsed: took})
		return changed, se
	}
	r.emit(j, Event{Type: EventStepDone, Step: name, Changed: changed, Elapsed: took})
	return changed, nil
}
