package inventory

import (
	"strings"
	"testing"
)

func TestAirgapKey(t *testing.T) {
	inv := parseOK(t, header+`
clusters:
  - {name: cabin, airgap: true, servers: [10.0.0.5]}
  - {name: shop, airgap: "${AIRGAP}", servers: [10.0.0.6]}
  - {name: lab, servers: [10.0.0.7]}
`, map[string]string{"AIRGAP": "true"})
	got := map[string]bool{}
	for _, c := range inv.Clusters {
		got[c.Name] = c.Airgap
	}
	if !got["cabin"] || !got["shop"] || got["lab"] {
		t.Errorf("airgap per cluster: %v", got)
	}

	single := parseOK(t, header+"airgap: true\nservers: [10.0.0.5]\n", nil)
	if !single.Clusters[0].Airgap {
		t.Error("airgap at the top level of a single cluster ignored")
	}

	for _, bad := range []string{`airgap: "yes"`, `airgap: 1`, `airgap: [true]`} {
		_, err := Parse("test.yaml", []byte(header+bad+"\nservers: [10.0.0.5]\n"), func(string) (string, bool) { return "", false })
		if err == nil || !strings.Contains(err.Error(), "airgap must be true or false") || !strings.Contains(err.Error(), "airgap: true") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

func TestFixBootKey(t *testing.T) {
	inv := parseOK(t, header+`
clusters:
  - name: pis
    fixBoot: true
    servers: [10.0.0.5]
  - name: mixed
    servers: [10.0.0.6]
    agents:
      - {address: 10.0.0.7, fixBoot: true}
      - 10.0.0.8
`, nil)
	if !inv.Clusters[0].FixBoot || inv.Clusters[1].FixBoot {
		t.Errorf("cluster fixBoot: %v %v", inv.Clusters[0].FixBoot, inv.Clusters[1].FixBoot)
	}
	agents := inv.Clusters[1].Agents
	if !agents[0].FixBoot || agents[1].FixBoot {
		t.Errorf("host fixBoot: %v %v", agents[0].FixBoot, agents[1].FixBoot)
	}
	_, err := Parse("test.yaml", []byte(header+"servers: [{address: 10.0.0.5, fixBoot: yes please}]\n"), func(string) (string, bool) { return "", false })
	if err == nil || !strings.Contains(err.Error(), "fixBoot must be true or false") {
		t.Errorf("fixBoot: yes please: %v", err)
	}
}
