package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/k3sctl/k3sctl/test/e2e/world"
)

// --trace ends an install and a join with the time of each phase and of
// each host's steps; with -o json the same times are in the events.
func TestTraceInstallJoin(t *testing.T) {
	t.Parallel()
	w := world.New(t)
	m := startMirror(t)
	hs := w.Start(t, "tr-s", "tr-a")
	s, a := hs[0], hs[1]
	u := newUser(t)
	common := append(sshArgs(w), "--download-url", m.DownloadURL, "--channel-url", m.ChannelURL, "--timeout", "90s", "--k3s-version", v1)

	r := u.mustK3sctl(args(common, "install", "--ip", s.IP, "--context", "trace", "--trace")...)
	for _, want := range []string{"Trace: phases", "connect", "facts", "execute", "Trace: steps per host", "UPLOAD K3S", "WAIT FOR READY", s.IP} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("install --trace: no %q in:\n%s", want, r.stderr)
		}
	}

	r = u.mustK3sctl(args(common, "join", "--ip", a.IP, "--server-ip", s.IP, "-o", "json")...)
	phases := map[string]bool{}
	timedSteps := 0
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var e struct {
			Type      string `json:"type"`
			Phase     string `json:"phase"`
			ElapsedNs *int64 `json:"elapsedNs"`
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("not a JSON event: %q", line)
		}
		switch e.Type {
		case "phase":
			// A phase that took no measurable time leaves elapsedNs out.
			phases[e.Phase] = e.ElapsedNs != nil
		case "step_done":
			if e.ElapsedNs != nil && *e.ElapsedNs > 0 {
				timedSteps++
			}
		}
	}
	for _, p := range []string{"connect", "facts", "execute"} {
		if !phases[p] {
			t.Errorf("join -o json: phase %q missing or without its time; phases %v", p, phases)
		}
	}
	if timedSteps == 0 {
		t.Errorf("join -o json: no step_done with elapsedNs:\n%s", r.stdout)
	}
}
