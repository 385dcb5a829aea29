package rollout

import (
	"context"
	"sync"
	"time"

	"github.com/k3sctl/k3sctl/internal/hostlock"
	"github.com/k3sctl/k3sctl/internal/plan"
	"github.com/k3sctl/k3sctl/internal/preflight"
)

// hostsRead is what reading every host found.
type hostsRead struct {
	conns map[string]Conn
	facts map[string]*plan.HostFacts
	found map[string]gathered
	// locks are the host locks taken (nil when none were asked for), and
	// lockProblems the hosts that could not be locked.
	locks        *hostLocks
	lockProblems []preflight.Problem
	// connected and read are when the last dial and the last facts (and
	// lock) ended.
	connected, read time.Time
}

// readHosts dials every target and reads its facts as soon as its own
// connection is up, so no host waits for the slowest dial. With lock set it
// takes the host lock on every host of lockOn beside the facts, on the same
// connection: the first of lockOn in sorted order first and alone, then
// the others, so that of two runs started together one goes on.
func readHosts(ctx context.Context, dial Dialer, targets []target, limit int, lock *LockOptions, lockOn []string) *hostsRead {
	r := &hostsRead{conns: map[string]Conn{}, facts: map[string]*plan.HostFacts{}, found: map[string]gathered{}}
	var mu sync.Mutex
	locking := map[string]bool{}
	first := ""
	if lock != nil {
		r.locks = &hostLocks{runID: lock.Holder.RunID, held: map[string]*hostlock.Lock{}}
		for _, a := range lockOn {
			locking[a] = true
		}
		if len(lockOn) > 0 {
			first = lockOn[0]
		}
	}
	// firstDone closes once the first host's lock was tried (or its host
	// could not be reached); firstOK says whether the others go on.
	firstDone := make(chan struct{})
	var firstOnce sync.Once
	firstOK := true
	endFirst := func(ok bool) {
		firstOnce.Do(func() {
			firstOK = ok
			close(firstDone)
		})
	}
	if first == "" {
		endFirst(true)
	}
	take := func(addr string, c Conn) {
		if addr != first {
			select {
			case <-firstDone:
			case <-ctx.Done():
				return
			}
			if !firstOK {
				return
			}
		}
		p := r.locks.take(ctx, *lock, addr, c)
		if addr == first {
			endFirst(p == nil)
		}
		if p != nil {
			mu.Lock()
			r.lockProblems = append(r.lockProblems, *p)
			mu.Unlock()
		}
	}
	parallel(targets, limit, func(t target) {
		c, err := dial(ctx, t.addr)
		mu.Lock()
		r.connected = time.Now()
		if err != nil {
			r.facts[t.addr] = &plan.HostFacts{Err: err.Error()}
			r.found[t.addr] = gathered{err: err}
			mu.Unlock()
			if t.addr == first {
				endFirst(true)
			}
			return
		}
		r.conns[t.addr] = c
		mu.Unlock()
		var locked sync.WaitGroup
		if locking[t.addr] {
			locked.Add(1)
			go func() {
				defer locked.Done()
				take(t.addr, c)
			}()
		}
		nf, f, err := hostFactsOf(ctx, c, t)
		locked.Wait()
		mu.Lock()
		defer mu.Unlock()
		r.read = time.Now()
		r.found[t.addr] = gathered{facts: nf, err: err}
		if err != nil {
			r.locks.drop(t.addr)
			_ = c.Close()
			delete(r.conns, t.addr)
			r.facts[t.addr] = &plan.HostFacts{Err: err.Error()}
			return
		}
		r.facts[t.addr] = f
		nf.FileContents = nil
	})
	if r.read.IsZero() {
		r.read = r.connected
	}
	return r
}

// earlyVersions resolves, while the hosts are read, the versions of the
// clusters whose version does not hang on what a host runs.
type earlyVersions struct {
	done     chan struct{}
	versions map[string]string
	err      error
	early    map[string]bool // clusters resolved here
}

// dependsOnFacts says whether the cluster's version is only known from
// its hosts: a join without a version takes the joined server's, and
// status of a cluster without one takes its servers'.
func dependsOnFacts(o Options, c plan.Cluster) bool {
	want := o.VersionOrChannel[c.Name]
	if want == "" {
		want = c.Version
	}
	return want == "" && (c.JoinServer != "" || o.Status)
}

func resolveEarly(ctx context.Context, o Options, clusters []plan.Cluster) *earlyVersions {
	e := &earlyVersions{done: make(chan struct{}), early: map[string]bool{}}
	var sel []plan.Cluster
	for _, c := range clusters {
		if !dependsOnFacts(o, c) {
			sel = append(sel, c)
			e.early[c.Name] = true
		}
	}
	go func() {
		defer close(e.done)
		e.versions, e.err = resolveVersions(ctx, o, sel, nil)
	}()
	return e
}

// wait waits for the early resolution to end.
func (e *earlyVersions) wait() {
	if e != nil {
		<-e.done
	}
}

// finish resolves the rest with the hosts' facts and returns every
// cluster's version.
func (e *earlyVersions) finish(ctx context.Context, o Options, clusters []plan.Cluster, facts map[string]*plan.HostFacts) (map[string]string, error) {
	if e == nil {
		return resolveVersions(ctx, o, clusters, facts)
	}
	e.wait()
	if e.err != nil {
		return nil, e.err
	}
	var rest []plan.Cluster
	for _, c := range clusters {
		if !e.early[c.Name] {
			rest = append(rest, c)
		}
	}
	out, err := resolveVersions(ctx, o, rest, facts)
	if err != nil {
		return nil, err
	}
	for k, v := range e.versions {
		out[k] = v
	}
	return out, nil
}
