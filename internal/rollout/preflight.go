package rollout

import (
	"errors"
	"sort"

	"github.com/k3sctl/k3sctl/internal/node"
	"github.com/k3sctl/k3sctl/internal/plan"
	"github.com/k3sctl/k3sctl/internal/preflight"
	"github.com/k3sctl/k3sctl/internal/ssh"
)

// gathered is what one host said about itself, or why it could not.
type gathered struct {
	facts *node.Facts // nil when nothing could be read
	err   error
}

// checkHosts is the preflight phase after facts: the caller's local
// problems, then per host a sudo that does not work or a private key file
// others may read, and hosts of one
// cluster that share a node name. Hosts that share a machine-id come back
// as warnings: K3s runs on them, but the disk was most likely cloned.
func checkHosts(spec *plan.Spec, local []preflight.Problem, found map[string]gathered) (preflight.Report, []preflight.Problem) {
	var r preflight.Report
	r.Add(local...)
	addrs := make([]string, 0, len(found))
	for a := range found {
		addrs = append(addrs, a)
	}
	sort.Strings(addrs)
	keyFiles := map[string]bool{}
	for _, a := range addrs {
		g := found[a]
		if p := preflight.Sudo(a, g.facts, g.err); p != nil {
			r.Add(*p)
		}
		// A private key others may read is refused, as OpenSSH does; it
		// is one problem however many hosts it was meant for.
		var kp *ssh.KeyPermissionError
		if errors.As(g.err, &kp) && !keyFiles[kp.Path] {
			keyFiles[kp.Path] = true
			r.AddError(preflight.Local, kp)
		}
	}
	var ids []preflight.Identity
	for _, c := range spec.Clusters {
		hosts := clusterHosts(c)
		if c.JoinServer != "" {
			// The running server a host joins is of the same cluster.
			hosts = append([]plan.Host{{Address: c.JoinServer}}, hosts...)
		}
		for _, h := range hosts {
			g := found[h.Address]
			if g.facts == nil || g.err != nil {
				continue
			}
			ids = append(ids, preflight.Identity{Cluster: c.Name, Address: h.Address,
				Hostname: g.facts.Hostname, NodeName: h.NodeName, MachineID: g.facts.MachineID})
		}
	}
	var warnings []preflight.Problem
	for _, p := range preflight.Duplicates(ids) {
		if p.Kind == preflight.KindDuplicateMachine {
			warnings = append(warnings, p)
			continue
		}
		r.Add(p)
	}
	return r, warnings
}
