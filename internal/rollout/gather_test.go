package rollout

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/k3sctl/k3sctl/internal/plan"
)

// A host's facts are read, and its lock taken, as soon as its own
// connection is up: here 10.0.0.2's dial does not end until 10.0.0.1's
// facts and lock were read, which would never happen if facts waited for
// every dial.
func TestFactsDoNotWaitForOtherDials(t *testing.T) {
	w := newFakeHosts()
	f := &fakeFetcher{dir: t.TempDir()}
	o := options(w, f, twoClusters())
	o.Lock = lockAs("alice", 42)
	var once sync.Once
	factsRead := make(chan struct{})
	w.factsErr = func(addr string) error {
		if addr == "10.0.0.1" {
			once.Do(func() { close(factsRead) })
		}
		return nil
	}
	dial := o.Dial
	o.Dial = func(ctx context.Context, addr string) (Conn, error) {
		if addr == "10.0.0.2" {
			select {
			case <-factsRead:
			case <-time.After(10 * time.Second):
				return nil, errors.New("10.0.0.1's facts were not read while this host was being dialled")
			}
		}
		return dial(ctx, addr)
	}
	p, err := Prepare(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if f := p.Facts["10.0.0.2"]; f == nil || f.Err != "" {
		t.Fatalf("10.0.0.2: %+v", f)
	}
	if n := w.locks.held(); n != 3 {
		t.Errorf("%d locks held, want 3", n)
	}
}

// The versions of clusters that name one are resolved while the hosts are
// read; a join without a version takes the joined server's, from facts.
func TestVersionsResolvedBesideFacts(t *testing.T) {
	o := Options{VersionOrChannel: map[string]string{"a": "v1.31.4+k3s1"}}
	spec := twoClusters()
	spec.Clusters[0].Name = "a"
	spec.Clusters[1].Name = "b"
	spec.Clusters[1].JoinServer = "10.0.9.9"
	if dependsOnFacts(o, spec.Clusters[0]) || !dependsOnFacts(o, spec.Clusters[1]) {
		t.Fatalf("dependsOnFacts: a %v, b %v", dependsOnFacts(o, spec.Clusters[0]), dependsOnFacts(o, spec.Clusters[1]))
	}
	e := resolveEarly(context.Background(), o, spec.Clusters)
	facts := map[string]*plan.HostFacts{"10.0.9.9": {K3sVersion: "v1.30.1+k3s1"}}
	got, err := e.finish(context.Background(), o, spec.Clusters, facts)
	if err != nil {
		t.Fatal(err)
	}
	if got["a"] != "v1.31.4+k3s1" || got["b"] != "v1.30.1+k3s1" {
		t.Errorf("versions %v", got)
	}
}
