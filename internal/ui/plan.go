package ui

import "encoding/json"

// plannedHost is the part of a plan the renderers use: which hosts will run,
// so the view can count the ones still waiting before they send anything.
type plannedHost struct {
	cluster, host, role string
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
				hosts = append(hosts, plannedHost{c.Name, h.Address, h.Role})
			}
		}
	}
	return hosts
}
