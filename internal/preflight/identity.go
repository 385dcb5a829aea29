package preflight

import (
	"fmt"
	"strings"
)

// Identity is what one host of a cluster says about itself.
type Identity struct {
	Cluster   string
	Address   string
	Hostname  string // as the host reports it
	NodeName  string // the inventory's name for the node; "" means the hostname
	MachineID string // /etc/machine-id
}

// nodeName is the name K3s registers the node under: the configured
// name, else the lower-cased hostname.
func (id Identity) nodeName() string {
	if id.NodeName != "" {
		return id.NodeName
	}
	return strings.ToLower(id.Hostname)
}

// Duplicates finds hosts of one cluster that share a node name (K3s would
// refuse the later one forever: "Node password rejected, duplicate
// hostname") or a machine-id (a cloned disk or SD card). Each later host
// is reported against the first one, with both addresses. Hosts of
// different clusters never conflict; empty values are not compared.
func Duplicates(ids []Identity) []Problem {
	type key struct{ cluster, value string }
	firstName := map[key]Identity{}
	firstMachine := map[key]Identity{}
	var ps []Problem
	for _, id := range ids {
		if n := id.nodeName(); n != "" {
			k := key{id.Cluster, n}
			if first, ok := firstName[k]; ok {
				ps = append(ps, duplicateName(first, id))
			} else {
				firstName[k] = id
			}
		}
		if m := strings.TrimSpace(id.MachineID); m != "" {
			k := key{id.Cluster, m}
			if first, ok := firstMachine[k]; ok {
				ps = append(ps, duplicateMachine(first, id))
			} else {
				firstMachine[k] = id
			}
		}
	}
	return ps
}

func duplicateName(first, id Identity) Problem {
	what := fmt.Sprintf("hostname %q is also the hostname of %s in cluster %q; K3s refuses the second node forever (\"Node password rejected, duplicate hostname\")",
		id.Hostname, first.Address, id.Cluster)
	fix := "give each host its own hostname (hostnamectl set-hostname <name> on " + id.Address + "), or set name: for one of them in the inventory"
	if id.NodeName != "" {
		what = fmt.Sprintf("node name %q is also the node name of %s in cluster %q; K3s refuses the second node forever (\"Node password rejected, duplicate hostname\")",
			id.NodeName, first.Address, id.Cluster)
		fix = "give each host its own name: in the inventory"
	}
	return Problem{Host: id.Address, Kind: KindDuplicateHostname, What: what, Fix: fix}
}

func duplicateMachine(first, id Identity) Problem {
	m := strings.TrimSpace(id.MachineID)
	if len(m) > 8 {
		m = m[:8] + "…"
	}
	return Problem{Host: id.Address, Kind: KindDuplicateMachine,
		What: fmt.Sprintf("machine-id %s is also the machine-id of %s in cluster %q: the disk or SD card was cloned", m, first.Address, id.Cluster),
		Fix:  "give " + id.Address + " a new machine-id: rm /etc/machine-id && systemd-machine-id-setup, then reboot"}
}
