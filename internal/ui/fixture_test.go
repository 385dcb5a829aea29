package ui

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/k3sctl/k3sctl/internal/apply"
	"github.com/k3sctl/k3sctl/internal/plan"
)

// The golden helper shares -update with x/exp/golden, which teatest pulls
// in and which registers the flag first.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite the golden files under testdata/ui")
	}
}

func updating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// requireGolden compares got with testdata/ui/<test>/<name>.golden at the
// root of the module; go test -update rewrites it.
func requireGolden(t *testing.T, name, got string) {
	t.Helper()
	dir := filepath.Join("..", "..", "testdata", "ui", strings.ReplaceAll(t.Name(), "/", "_"))
	path := filepath.Join(dir, name+".golden")
	if updating() {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/ui -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from the golden file (go test ./internal/ui -update rewrites it)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

var t0 = time.Date(2026, 3, 1, 15, 4, 0, 0, time.UTC)

func at(seconds float64) time.Time {
	return t0.Add(time.Duration(seconds * float64(time.Second)))
}

// fixedClock is a clock the test moves by hand.
func fixedClock(seconds float64) func() time.Time {
	return func() time.Time { return at(seconds) }
}

const mb = 1_000_000

// sampleRun is a rollout of two clusters: lab's server is already up to
// date, home's server installs, one home agent fails to get ready and the
// other installs.
func sampleRun() []apply.Event {
	type ev = apply.Event
	home, lab := "home", "lab"
	srv := func(c, h string) ev { return ev{Cluster: c, Host: h, Role: "server"} }
	agt := func(c, h string) ev { return ev{Cluster: c, Host: h, Role: "agent"} }
	with := func(e ev, t float64, typ apply.EventType, step plan.StepKind) ev {
		e.Time, e.Type, e.Step = at(t), typ, step
		return e
	}
	progress := func(e ev, t float64, step plan.StepKind, bytes, total int64) ev {
		e = with(e, t, apply.EventProgress, step)
		e.Bytes, e.Total = bytes, total
		return e
	}
	done := func(e ev, t float64, step plan.StepKind, changed bool) ev {
		e = with(e, t, apply.EventStepDone, step)
		e.Changed = changed
		return e
	}
	s0, a1, a2, l0 := srv(home, "10.0.0.10"), agt(home, "10.0.0.11"), agt(home, "10.0.0.12"), srv(lab, "10.0.1.10")
	const size = 60 * mb

	queued := func(e ev) ev {
		e = with(e, 0, apply.EventHostQueued, "")
		e.Message = "waiting for 10.0.0.10"
		return e
	}
	// The plan as the planner encodes it; only its hosts and their steps
	// matter here. The agents' steps are left out, as a plan from an
	// older k3sctl would.
	planned := map[string]any{"clusters": []any{
		map[string]any{"name": home, "version": "v1.31.4+k3s1", "hosts": []any{
			map[string]any{"address": "10.0.0.10", "role": "server", "first": true, "action": "install", "step": 0,
				"steps": []any{
					map[string]any{"kind": "upload k3s", "host": "10.0.0.10", "changes": true},
					map[string]any{"kind": "write config", "host": "10.0.0.10", "changes": true},
					map[string]any{"kind": "start k3s", "host": "10.0.0.10", "changes": true},
					map[string]any{"kind": "wait for ready", "host": "10.0.0.10", "changes": false},
				}},
			map[string]any{"address": "10.0.0.11", "role": "agent", "action": "install", "after": []string{"10.0.0.10"}, "step": 1},
			map[string]any{"address": "10.0.0.12", "role": "agent", "action": "install", "after": []string{"10.0.0.10"}, "step": 1},
		}},
		map[string]any{"name": lab, "version": "v1.31.4+k3s1", "hosts": []any{
			map[string]any{"address": "10.0.1.10", "role": "server", "first": true, "action": "nothing", "step": 0},
		}},
	}}

	events := []ev{
		{Time: at(0), Type: apply.EventPlan, Plan: planned},
		queued(a1),
		queued(a2),
		with(s0, 1, apply.EventStepStart, "upload k3s"),
		with(l0, 1, apply.EventStepStart, "check k3s"),
	}
	for i := 1; i <= 8; i++ {
		events = append(events, progress(s0, 1+float64(i), "upload k3s", int64(i)*3*mb, size))
	}
	lab0log := with(l0, 2, apply.EventLog, "check k3s")
	lab0log.Message = "k3s v1.31.4+k3s1 is running"
	events = append(events,
		lab0log,
		done(l0, 3, "check k3s", false),
		with(l0, 3, apply.EventHostDone, ""),
	)
	// The live-view snapshot is taken here, at 9s.
	for i := 9; i <= 20; i++ {
		b := min(int64(i)*3*mb, size)
		events = append(events, progress(s0, 1+float64(i), "upload k3s", b, size))
	}
	events = append(events,
		done(s0, 21, "upload k3s", true),
		with(s0, 21, apply.EventStepStart, "write config"),
		done(s0, 22, "write config", true),
		with(s0, 22, apply.EventStepStart, "start k3s"),
		done(s0, 25, "start k3s", true),
		with(s0, 25, apply.EventStepStart, "wait for ready"),
		done(s0, 40, "wait for ready", false),
		with(s0, 40, apply.EventHostDone, ""),
		with(a1, 40, apply.EventStepStart, "upload k3s"),
		with(a2, 40, apply.EventStepStart, "upload k3s"),
		progress(a1, 45, "upload k3s", size, size),
		progress(a2, 46, "upload k3s", size, size),
		done(a1, 46, "upload k3s", true),
		done(a2, 46, "upload k3s", true),
		with(a1, 46, apply.EventStepStart, "wait for ready"),
		with(a2, 46, apply.EventStepStart, "wait for ready"),
		done(a2, 58, "wait for ready", false),
		with(a2, 58, apply.EventHostDone, ""),
	)
	fail := with(a1, 106, apply.EventStepFailed, "wait for ready")
	fail.Error = "node did not become Ready within 1m0s"
	fail.Hint = "check that the agent reaches https://10.0.0.10:6443"
	fail.LogTail = []string{
		`level=info msg="Starting k3s agent v1.31.4+k3s1"`,
		`level=error msg="failed to get CA certs: Get \"https://10.0.0.10:6443/cacerts\": dial tcp 10.0.0.10:6443: connect: no route to host"`,
	}
	// As the executor does, the host's error names the host and step and
	// carries the hint on a second line.
	hostFail := with(a1, 106, apply.EventHostFailed, "")
	hostFail.Error = "10.0.0.11: wait for ready: " + fail.Error + "\n  hint: " + fail.Hint
	events = append(events, fail, hostFail, ev{
		Time: at(106),
		Type: apply.EventSummary,
		Results: []apply.HostResult{
			{Cluster: home, Host: "10.0.0.10", Role: "server", Action: "install", Status: apply.StatusDone, Changed: true, Elapsed: 39 * time.Second},
			{Cluster: home, Host: "10.0.0.11", Role: "agent", Action: "install", Status: apply.StatusFailed, Changed: true, Elapsed: 66 * time.Second, Error: hostFail.Error},
			{Cluster: home, Host: "10.0.0.12", Role: "agent", Action: "install", Status: apply.StatusDone, Changed: true, Elapsed: 18 * time.Second},
			{Cluster: lab, Host: "10.0.1.10", Role: "server", Action: "nothing", Status: apply.StatusUnchanged, Elapsed: 2 * time.Second},
		},
	})
	// An executor sends events as they happen.
	slices.SortStableFunc(events, func(a, b apply.Event) int { return a.Time.Compare(b.Time) })
	return events
}

// snapshotAt is where sampleRun is cut for the live-view golden.
const snapshotAt = 9.0

// split cuts events at the first one after the given second.
func split(events []apply.Event, seconds float64) (before, after []apply.Event) {
	for i, e := range events {
		if e.Time.After(at(seconds)) {
			return events[:i], events[i:]
		}
	}
	return events, nil
}
