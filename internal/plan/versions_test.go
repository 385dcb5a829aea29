package plan

import (
	"bytes"
	"strings"
	"testing"

	"github.com/k3sctl/k3sctl/internal/k3s"
)

func TestPrintShowsEachClustersVersion(t *testing.T) {
	const old, next = "v1.31.4+k3s1", "v1.32.2+k3s1"
	s := Spec{Clusters: []Cluster{
		{Name: "old", Version: old, Servers: []Host{{Address: "10.0.0.1", Role: k3s.Server}}},
		{Name: "new", Version: next, Servers: []Host{{Address: "10.0.1.1", Role: k3s.Server}}},
	}}
	b := map[BinaryKey]Binary{
		{Version: old, Arch: k3s.ARM64}:  {Version: old, SHA256: binSHA},
		{Version: next, Arch: k3s.ARM64}: {Version: next, SHA256: oldSHA},
	}
	// 10.0.0.1 already runs its cluster's binary; 10.0.1.1 needs the other.
	settled := converged(&s.Clusters[0], s.Clusters[0].Servers[0], true, s.Clusters[0].Token, old)
	p, err := Build(Input{Spec: s, Facts: map[string]*HostFacts{"10.0.0.1": settled, "10.0.1.1": fresh()}, Binaries: b})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	Print(&out, p)
	for _, want := range []string{"cluster old (K3s " + old, "cluster new (K3s " + next, "install " + next} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("plan does not show %q:\n%s", want, out.String())
		}
	}
	if h := p.Clusters[0].Hosts[0]; h.Upload || h.Action != ActionNothing {
		t.Errorf("a host on its cluster's version gets %s, upload %v", h.Action, h.Upload)
	}
	if h := p.Clusters[1].Hosts[0]; !h.Upload || h.To != next {
		t.Errorf("new cluster's host: upload %v to %s", h.Upload, h.To)
	}
}
