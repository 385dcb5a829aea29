package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/k3sctl/k3sctl/test/e2e/world"
)

var machineIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// Every test-world host has a machine-id of its own, so a run over fresh
// hosts warns of no cloned disk; a machine-id copied from one host to
// another is warned of.
func TestMachineIDsOwnAndCloned(t *testing.T) {
	t.Parallel()
	w := world.New(t)
	m := startMirror(t)
	hs := w.Start(t, "a", "b", "c")
	seen := map[string]string{}
	for _, h := range hs {
		id := h.MachineID(t)
		if !machineIDPattern.MatchString(id) {
			t.Errorf("host %s: machine-id %q is not 32 hex digits", h.Name, id)
		}
		if other, ok := seen[id]; ok {
			t.Errorf("hosts %s and %s share machine-id %s", other, h.Name, id)
		}
		seen[id] = h.Name
	}

	u := newUser(t)
	inv := filepath.Join(t.TempDir(), "inventory.yaml")
	doc := fmt.Sprintf("apiVersion: k3sctl.io/v1alpha1\nkind: Inventory\ndefaults:\n  ssh:\n    user: pi\n    keyFile: %s\n  version: %s\nclusters:\n  - name: ids\n    servers: [%s]\n    agents: [%s, %s]\n",
		w.Key, v1, hs[0].IP, hs[1].IP, hs[2].IP)
	if err := os.WriteFile(inv, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	flags := []string{"--download-url", m.DownloadURL, "--channel-url", m.ChannelURL}
	r := u.k3sctl(args(flags, "plan", "-f", inv)...)
	if r.code != 0 && r.code != 4 {
		t.Fatalf("plan over three fresh hosts:\n%s", r)
	}
	if strings.Contains(r.stdout+r.stderr, "machine-id") {
		t.Errorf("plan over three fresh hosts warns of a machine-id:\n%s", r)
	}

	// A cloned disk: c gets a's machine-id.
	hs[2].Exec(t, "printf '%s\\n' "+hs[0].MachineID(t)+" > /etc/machine-id")
	r = u.k3sctl(args(flags, "plan", "-f", inv)...)
	want := hs[2].IP + ": machine-id "
	also := "is also the machine-id of " + hs[0].IP
	out := r.stdout + r.stderr
	if !strings.Contains(out, want) || !strings.Contains(out, also) {
		t.Errorf("plan after copying %s's machine-id to %s: want a warning %q…%q:\n%s", hs[0].Name, hs[2].Name, want, also, r)
	}
	if n := strings.Count(out, "is also the machine-id of"); n != 1 {
		t.Errorf("want one machine-id warning, got %d:\n%s", n, r)
	}
}
