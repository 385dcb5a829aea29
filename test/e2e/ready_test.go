package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/k3sctl/k3sctl/test/e2e/world"
)

// A server and agents joining together: each host's wait for its service
// is one command that waits on the host, its state changes come back as
// log lines, and the nodes' readiness comes from the cluster's API.
func TestReadyWaitIsOneCommandPerHost(t *testing.T) {
	t.Parallel()
	w := world.New(t)
	m := startMirror(t)
	hs := w.Start(t, "rw-s", "rw-a1", "rw-a2")
	u := newUser(t)
	inv := "apiVersion: k3sctl.io/v1alpha1\nkind: Inventory\nname: rw\nversion: " + v1 +
		"\nssh: {user: pi, keyFile: " + w.Key + "}\nservers: [" + hs[0].IP + "]\nagents: [" + hs[1].IP + ", " + hs[2].IP + "]\n"
	p := filepath.Join(t.TempDir(), "inv.yaml")
	if err := os.WriteFile(p, []byte(inv), 0o644); err != nil {
		t.Fatal(err)
	}
	r := u.mustK3sctl("apply", "-f", p, "--download-url", m.DownloadURL, "--channel-url", m.ChannelURL, "-o", "json")
	active := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var e struct{ Type, Host, Step, Message string }
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("not a JSON event: %q", line)
		}
		if e.Type == "log" && e.Step == "wait for ready" && (e.Message == "k3s active" || e.Message == "k3s-agent active") {
			active[e.Host] = true
		}
	}
	for _, h := range hs {
		if !active[h.IP] {
			t.Errorf("%s: no \"active\" log line from its wait", h.Name)
		}
		// sudo logs every command k3sctl ran as root.
		waits := countOf(t, h.Exec(t, "journalctl --no-pager -o cat | grep 'COMMAND=' | grep -c 'while :; do s=$(systemctl is-active' || true"))
		if waits != 1 {
			t.Errorf("%s: %d wait commands, want one", h.Name, waits)
		}
	}
	// Asked with kubectl only while the API could not be watched yet.
	t.Logf("kubectl node lists on the server: %d", countOf(t, hs[0].Exec(t, "journalctl --no-pager -o cat | grep 'COMMAND=' | grep -c 'kubectl get nodes' || true")))
}

func countOf(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		t.Fatalf("not a count: %q", s)
	}
	return n
}
