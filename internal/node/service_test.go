package node

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/k3sctl/k3sctl/internal/k3s"
)

// fakeTools puts stand-ins for the init systems' commands first on PATH.
// Each logs its name and arguments (one record per call, arguments
// separated by NUL) and fails when one of its arguments is $FAKE_FAIL.
func fakeTools(t *testing.T) (dir, log string) {
	dir = t.TempDir()
	log = filepath.Join(dir, "calls")
	for _, name := range []string{"systemctl", "rc-service", "rc-update", "journalctl"} {
		script := "#!/bin/sh\nn=$(basename \"$0\")\n{ printf '%s' \"$n\"; for a in \"$@\"; do printf '\\000%s' \"$a\"; done; printf '\\001'; } >> " + Quote(log) + "\n" +
			"for a in \"$@\"; do [ -n \"$FAKE_FAIL\" ] && [ \"$a\" = \"$FAKE_FAIL\" ] && exit 3; done; exit 0\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir, log
}

func runWith(t *testing.T, dir, cmd string, env ...string) string {
	t.Helper()
	x := exec.Command("/bin/sh", "-c", cmd)
	x.Env = append(append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH")), env...)
	out, _ := x.Output()
	return string(out)
}

func calls(t *testing.T, log string) [][]string {
	data, _ := os.ReadFile(log)
	var out [][]string
	for _, rec := range strings.Split(string(data), "\x01") {
		if rec != "" {
			out = append(out, strings.Split(rec, "\x00"))
		}
	}
	_ = os.Remove(log)
	return out
}

func TestServiceCommandsPassTheServiceNameAsOneArgument(t *testing.T) {
	dir, log := fakeTools(t)
	for _, svc := range []string{"k3s", "k3s-agent", "evil $(touch x) `id`; rm -rf / \n'\"", "-n", ""} {
		// systemd restart: every systemctl call gets the name whole.
		out := runWith(t, dir, Systemd{}.StartCommand(svc, true))
		got := calls(t, log)
		want := [][]string{{"systemctl", "enable", "--no-reload", svc}, {"systemctl", "daemon-reload"}, {"systemctl", "restart", "--no-block", svc}}
		if !equalCalls(got, want) || out != "started\n" {
			t.Errorf("systemd restart %q: calls %q, printed %q", svc, got, out)
		}
		// systemd start of a stopped service.
		out = runWith(t, dir, Systemd{}.StartCommand(svc, false), "FAKE_FAIL=is-active")
		got = calls(t, log)
		want = [][]string{{"systemctl", "enable", "--no-reload", svc}, {"systemctl", "daemon-reload"}, {"systemctl", "is-active", "--quiet", svc},
			{"systemctl", "reset-failed", svc}, {"systemctl", "start", "--no-block", svc}}
		if !equalCalls(got, want) || out != "started\n" {
			t.Errorf("systemd start %q: calls %q, printed %q", svc, got, out)
		}
		// OpenRC: status fails, so it starts.
		out = runWith(t, dir, OpenRC{}.StartCommand(svc, false), "FAKE_FAIL=status")
		got = calls(t, log)
		want = [][]string{{"rc-update", "add", svc, "default"}, {"rc-service", svc, "status"}, {"rc-service", svc, "start"}}
		if !equalCalls(got, want) || out != "started\n" {
			t.Errorf("openrc start %q: calls %q, printed %q", svc, got, out)
		}
		runWith(t, dir, Systemd{}.LogCommand(svc, 30))
		if got := calls(t, log); !equalCalls(got, [][]string{{"journalctl", "-u", svc, "--no-pager", "-n", "30", "-o", "cat"}}) {
			t.Errorf("journal of %q: %q", svc, got)
		}
	}
}

func equalCalls(a, b [][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if strings.Join(a[i], "\x00") != strings.Join(b[i], "\x00") {
			return false
		}
	}
	return true
}

func TestServiceStartAndStatusAnswers(t *testing.T) {
	dir, log := fakeTools(t)
	for _, c := range []struct {
		m       ServiceManager
		restart bool
		env     string
		want    string
	}{
		{Systemd{}, false, "", "running\n"}, // is-active succeeds
		{Systemd{}, true, "", "started\n"},
		{OpenRC{}, false, "", "running\n"},
		{OpenRC{}, true, "", "started\n"},
	} {
		if out := runWith(t, dir, c.m.StartCommand("k3s", c.restart), c.env); out != c.want {
			t.Errorf("%s restart=%v: printed %q, want %q", c.m.Name(), c.restart, out, c.want)
		}
	}
	if out := runWith(t, dir, OpenRC{}.StatusCommand("k3s"), "FAKE_FAIL=status"); out != "inactive\n" {
		t.Errorf("openrc status of a stopped service: %q", out)
	}
	if out := runWith(t, dir, OpenRC{}.StatusCommand("k3s")); out != "active\n" {
		t.Errorf("openrc status of a running service: %q", out)
	}
	if _, err := exec.Command("/bin/sh", "-c", Systemd{}.StatusCommand("k3s")+" >/dev/null").Output(); err != nil {
		t.Errorf("systemd status must not fail when the unit is inactive: %v", err)
	}
	calls(t, log)
}

func TestManagerFor(t *testing.T) {
	if ManagerFor("openrc").Name() != k3s.OpenRC || ManagerFor("systemd").Name() != k3s.Systemd || ManagerFor("").Name() != k3s.Systemd {
		t.Error("wrong manager")
	}
	for _, r := range []k3s.Role{k3s.Server, k3s.Agent} {
		if !strings.Contains(OpenRC{}.LogCommand(k3s.ServiceName(r), 30), k3s.OpenRCLogPath(r)) {
			t.Errorf("OpenRC log of %s is not %s", r, k3s.OpenRCLogPath(r))
		}
	}
}

func TestStartServiceAndLogTail(t *testing.T) {
	c := &scriptedConn{answers: map[string]string{"restart": "started\n", "is-active": "running\n", "journalctl": "a\nb\n"}}
	started, err := StartService(context.Background(), c, Systemd{}, "k3s", false)
	if err != nil || started {
		t.Errorf("running service: started %v, %v", started, err)
	}
	started, err = StartService(context.Background(), c, Systemd{}, "k3s", true)
	if err != nil || !started {
		t.Errorf("restart: started %v, %v", started, err)
	}
	if tail := LogTail(context.Background(), c, Systemd{}, "k3s", 30); strings.Join(tail, "|") != "a|b" {
		t.Errorf("tail %q", tail)
	}
}

// statesTool is a systemctl whose is-active prints the next line of
// states each call, then the last one again.
func statesTool(t *testing.T, states ...string) string {
	t.Helper()
	dir := t.TempDir()
	list := filepath.Join(dir, "states")
	if err := os.WriteFile(list, []byte(strings.Join(states, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\n[ \"$1\" = is-active ] || exit 0\n" +
		"s=$(head -n 1 " + Quote(list) + ")\n" +
		"if [ $(wc -l < " + Quote(list) + ") -gt 1 ]; then sed -i 1d " + Quote(list) + "; fi\n" +
		"echo \"$s\"; [ \"$s\" = active ]\n"
	if err := os.WriteFile(filepath.Join(dir, "systemctl"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestWaitCommandPrintsEachStateUntilActive(t *testing.T) {
	dir := statesTool(t, "inactive", "activating", "activating", "activating", "active")
	out := runWith(t, dir, Systemd{}.WaitCommand("k3s", time.Minute))
	if out != "inactive\nactivating\nactive\n" {
		t.Errorf("printed %q, want each new state once, ending at active", out)
	}
}

func TestWaitCommandEndsAtItsLimit(t *testing.T) {
	dir := statesTool(t, "activating")
	out := runWith(t, dir, Systemd{}.WaitCommand("k3s", time.Millisecond)) // rounds up to 1s
	if out != "activating\n" {
		t.Errorf("printed %q, want the state it ended in", out)
	}
}

func TestWaitCommandOpenRC(t *testing.T) {
	dir, log := fakeTools(t)
	if out := runWith(t, dir, OpenRC{}.WaitCommand("k3s", time.Minute)); out != "active\n" {
		t.Errorf("printed %q", out)
	}
	if got := calls(t, log); len(got) != 1 || strings.Join(got[0], " ") != "rc-service k3s status" {
		t.Errorf("calls %q", got)
	}
}

// A unit that stays failed ends the wait before its limit; one that is
// failed a moment (a restart queued behind) does not.
func TestWaitCommandEndsOnAUnitThatStaysFailed(t *testing.T) {
	dir := statesTool(t, "failed", "activating", "failed")
	out := runWith(t, dir, waitCommand(Systemd{}.StatusCommand("k3s"), time.Hour, time.Second))
	if out != "failed\nactivating\nfailed\n" {
		t.Errorf("printed %q, want the states up to the failed one that stayed", out)
	}
}
