package ui

import (
	"encoding/json"

	"github.com/k3sctl/k3sctl/internal/plan"
)

// plannedHost is the part of a plan the renderers use: which hosts will run,
// so the view can count the ones still waiting before they send anything,
// and the steps each will run.
type plannedHost struct {
	cluster, host, role string
	steps               []plan.StepKind
}

// planHosts reads the hosts from a plan event through its JSON form, the
// documented shape, so the renderers do not depend on the planner's Go
// types. A plan of another shape yields nothing and the hosts appear as
// their events arrive.
func planHosts(p any) []plannedHost {
	if p == nil {
		return nil
	}
	raw, err := json.Marshal(p)
	if err != nil {
		return nil
	}
	var doc struct {
		Clusters []struct {
			Name  string `json:"name"`
			Hosts []struct {
				Address string `json:"address"`
				Role    string `json:"role"`
				Steps   []struct {
					Kind plan.StepKind `json:"kind"`
				} `json:"steps"`
			} `json:"hosts"`
		} `json:"clusters"`
	}
	if json.Unmarshal(raw, &doc) != nil {
		return nil
	}
	var hosts []plannedHost
	for _, c := range doc.Clusters {
		for _, h := range c.Hosts {
			if h.Address != "" {
				ph := plannedHost{cluster: c.Name, host: h.Address, role: h.Role}
				for _, s := range h.Steps {
					ph.steps = append(ph.steps, s.Kind)
				}
				hosts = append(hosts, ph)
			}
		}
	}
	return hosts
}
