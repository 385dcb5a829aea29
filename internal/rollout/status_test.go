package rollout

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/plan"
)

// status prepares its plan without fetching a binary: a failing fetcher
// is never called, and the facts script is asked for the certificates.
func TestStatusPreparesWithoutFetching(t *testing.T) {
	w := newFakeHosts()
	f := &fakeFetcher{dir: t.TempDir(), err: errors.New("no network")}
	o := options(w, f, twoClusters())
	o.Status = true
	p, err := Prepare(context.Background(), o)
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	defer p.Close()
	if len(f.keys) != 0 {
		t.Errorf("status fetched %v", f.keys)
	}
	if len(p.HostFacts) != 3 || p.HostFacts["10.0.0.1"] == nil || p.HostFacts["10.0.0.1"].Hostname != "node-10-0-0-1" {
		t.Errorf("gathered facts: %+v", p.HostFacts)
	}
	for _, cp := range p.Plan.Clusters {
		for _, h := range cp.Hosts {
			if h.Action != plan.ActionInstall {
				t.Errorf("%s: %s, want install (nothing installed)", h.Address, h.Action)
			}
		}
	}
}

func TestCertDirs(t *testing.T) {
	if got := strings.Join(certDirs(k3s.Server), " "); got != "/var/lib/rancher/k3s/server/tls /var/lib/rancher/k3s/agent" {
		t.Errorf("server: %s", got)
	}
	if got := strings.Join(certDirs(k3s.Agent), " "); got != "/var/lib/rancher/k3s/agent" {
		t.Errorf("agent: %s", got)
	}
}

// Without the release's checksum, a host is in sync when it runs its
// cluster's version: the binary of a key is the one a host has at that
// version.
func TestInstalledBinaries(t *testing.T) {
	clusters := []plan.Cluster{{Name: "c", Version: "v1.31.4+k3s1",
		Servers: []plan.Host{{Address: "a", Role: k3s.Server}},
		Agents:  []plan.Host{{Address: "b", Role: k3s.Agent}, {Address: "old", Role: k3s.Agent}}}}
	facts := map[string]*plan.HostFacts{
		"a":   {Arch: k3s.AMD64, K3sVersion: "v1.31.4+k3s1", K3sSHA256: "sha-a"},
		"b":   {Arch: k3s.AMD64, K3sVersion: "v1.31.4+k3s1", K3sSHA256: "sha-a"},
		"old": {Arch: k3s.ARM64, K3sVersion: "v1.30.9+k3s1", K3sSHA256: "sha-old"},
	}
	bins := installedBinaries(clusters, facts)
	if b := bins[plan.BinaryKey{Version: "v1.31.4+k3s1", Arch: k3s.AMD64}]; b.SHA256 != "sha-a" {
		t.Errorf("amd64: %+v", b)
	}
	// No arm64 host runs the version: its checksum matches no host.
	if b, ok := bins[plan.BinaryKey{Version: "v1.31.4+k3s1", Arch: k3s.ARM64}]; !ok || b.SHA256 == "sha-old" || b.SHA256 == "" {
		t.Errorf("arm64: %+v %v", b, ok)
	}
}

// With --ip there is no inventory: the cluster's version is the one its
// server runs, and no channel is resolved.
func TestStatusVersionFromTheHost(t *testing.T) {
	facts := map[string]*plan.HostFacts{"a": {K3sVersion: "v1.31.4+k3s1"}}
	o := Options{Status: true, Release: k3s.Release{ChannelURL: "http://127.0.0.1:1"}}
	got, err := resolveVersions(context.Background(), o, []plan.Cluster{{Name: "a", Servers: []plan.Host{{Address: "a", Role: k3s.Server}}}}, facts)
	if err != nil || got["a"] != "v1.31.4+k3s1" {
		t.Errorf("version %v, %v", got, err)
	}
}
