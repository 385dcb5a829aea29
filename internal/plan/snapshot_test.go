package plan

import (
	"testing"

	"github.com/k3sctl/k3sctl/internal/secret"
)

// upgradeInput is a converged cluster of spec at version from, asked to go
// to spec's version.
func upgradeInput(spec Spec, from string) Input {
	old := spec
	old.Clusters = []Cluster{spec.Clusters[0]}
	old.Clusters[0].Version = from
	tok := secret.New(fullTk)
	f := map[string]*HostFacts{}
	for i, h := range append(old.Clusters[0].Servers, old.Clusters[0].Agents...) {
		hf := converged(&old.Clusters[0], h, i == 0, tok, from)
		if from != spec.Clusters[0].Version {
			hf.K3sSHA256 = oldSHA
		}
		f[h.Address] = hf
	}
	return Input{Spec: spec, Facts: f, Tokens: map[string]secret.Value{spec.Clusters[0].Name: tok}, Binaries: bins(spec.Clusters[0].Version)}
}

// snapshotSteps lists the hosts that have an etcd snapshot step, and
// whether it is their first step.
func snapshotSteps(t *testing.T, in Input) map[string]bool {
	t.Helper()
	p, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, h := range p.Clusters[0].Hosts {
		for i, s := range h.Steps {
			if s.Kind == StepSnapshot {
				out[h.Address] = i == 0
			}
		}
	}
	return out
}

func TestSnapshotBeforeUpgrade(t *testing.T) {
	const v, to = "v1.31.4+k3s1", "v1.31.5+k3s1"
	in := upgradeInput(haSpec(to), v)
	got := snapshotSteps(t, in)
	first := in.Spec.Clusters[0].Servers[0].Address
	if len(got) != 1 || !got[first] {
		t.Errorf("HA upgrade: want one snapshot, the first step of %s; have %v", first, got)
	}

	in.NoSnapshot = true
	if got := snapshotSteps(t, in); len(got) != 0 {
		t.Errorf("with NoSnapshot: want no snapshot step, have %v", got)
	}

	if got := snapshotSteps(t, upgradeInput(haSpec(v), v)); len(got) != 0 {
		t.Errorf("HA cluster without an upgrade: want no snapshot, have %v", got)
	}

	if got := snapshotSteps(t, upgradeInput(installSpec(to), v)); len(got) != 0 {
		t.Errorf("single server without embedded etcd: want no snapshot, have %v", got)
	}

	// A new HA cluster has no datastore yet.
	install := Input{Spec: haSpec(to), Facts: map[string]*HostFacts{}, Binaries: bins(to)}
	for _, h := range append(install.Spec.Clusters[0].Servers, install.Spec.Clusters[0].Agents...) {
		install.Facts[h.Address] = fresh()
	}
	if got := snapshotSteps(t, install); len(got) != 0 {
		t.Errorf("fresh HA install: want no snapshot, have %v", got)
	}
}
