package apply

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/plan"
	"github.com/k3sctl/k3sctl/internal/ssh"
)

// fakeConn stands in for a host in scheduler tests; the end-to-end tests
// run the same code over real SSH.
type fakeConn struct {
	addr  string
	node  string
	log   *eventLog
	fail  string // step command substring that fails
	files map[string][]byte
	mu    sync.Mutex
}

type eventLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *eventLog) add(s string) {
	l.mu.Lock()
	l.lines = append(l.lines, s)
	l.mu.Unlock()
}

func (c *fakeConn) Host() string { return c.addr }

func (c *fakeConn) Run(ctx context.Context, cmd string, o ssh.RunOptions) (ssh.Result, error) {
	if c.fail != "" && strings.Contains(cmd, c.fail) {
		return ssh.Result{ExitCode: 1}, fmt.Errorf("%s: exit status 1", c.addr)
	}
	switch {
	case strings.Contains(cmd, "--no-block"):
		c.log.add(c.addr + " start")
		time.Sleep(20 * time.Millisecond)
		return ssh.Result{Stdout: []byte("started\n")}, nil
	case strings.HasPrefix(cmd, "systemctl is-active"):
		return ssh.Result{Stdout: []byte("active\n")}, nil
	case strings.Contains(cmd, "kubectl get nodes"):
		out := "NAME STATUS ROLES AGE VERSION\n"
		for _, n := range []string{"s1", "s2", "s3", "a1", "a2", "t1", "t2"} {
			out += n + " Ready <none> 1m v1.31.4+k3s1\n"
		}
		return ssh.Result{Stdout: []byte(out)}, nil
	}
	return ssh.Result{}, nil
}

func (c *fakeConn) Upload(ctx context.Context, src, dst string, o ssh.UploadOptions) (ssh.UploadResult, error) {
	if o.Progress != nil {
		o.Progress(50, 100)
		o.Progress(100, 100)
	}
	return ssh.UploadResult{Bytes: 100}, nil
}

func (c *fakeConn) WriteFile(ctx context.Context, dst string, data []byte, mode os.FileMode) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.files == nil {
		c.files = map[string][]byte{}
	}
	same := string(c.files[dst]) == string(data)
	c.files[dst] = data
	return !same, nil
}

func (c *fakeConn) ReadFile(ctx context.Context, path string) ([]byte, error) {
	switch path {
	case k3s.TokenPath:
		return []byte("K10" + strings.Repeat("a", 64) + "::server:secretpw\n"), nil
	case k3s.KubeconfigPath:
		return []byte("apiVersion: v1\n"), nil
	}
	return nil, errors.New("no such file")
}

func fleet() (*plan.Spec, map[string]*plan.HostFacts) {
	spec := &plan.Spec{Clusters: []plan.Cluster{
		{Name: "ha", Version: "v1.31.4+k3s1", HA: true,
			Servers: []plan.Host{{Address: "s1", Role: k3s.Server}, {Address: "s2", Role: k3s.Server}, {Address: "s3", Role: k3s.Server}},
			Agents:  []plan.Host{{Address: "a1", Role: k3s.Agent}, {Address: "a2", Role: k3s.Agent}}},
		{Name: "shop", Version: "v1.31.4+k3s1",
			Servers: []plan.Host{{Address: "t1", Role: k3s.Server}},
			Agents:  []plan.Host{{Address: "t2", Role: k3s.Agent}}},
	}}
	facts := map[string]*plan.HostFacts{}
	for _, c := range spec.Clusters {
		for _, h := range append(append([]plan.Host{}, c.Servers...), c.Agents...) {
			facts[h.Address] = &plan.HostFacts{Hostname: h.Address, Arch: k3s.AMD64, InitSystem: "systemd", MemoryCgroup: true,
				Installed: map[k3s.Role]bool{}, Active: map[k3s.Role]bool{}, FileHashes: map[string]string{}}
		}
	}
	return spec, facts
}

func runFleet(t *testing.T, failOn map[string]string) ([]HostResult, []string, []Event, error) {
	t.Helper()
	spec, facts := fleet()
	p, err := plan.Build(plan.Input{Spec: *spec, Facts: facts, Binaries: map[plan.BinaryKey]plan.Binary{{Version: "v1.31.4+k3s1", Arch: k3s.AMD64}: {Version: "v1.31.4+k3s1", SHA256: "x"}}})
	if err != nil {
		t.Fatal(err)
	}
	log := &eventLog{}
	conns := map[string]Conn{}
	names := map[string]string{}
	for a := range facts {
		conns[a] = &fakeConn{addr: a, node: a, log: log, fail: failOn[a]}
		names[a] = a
	}
	rec := &Recorder{}
	var mu sync.Mutex
	var merged []string
	res, err := Run(context.Background(), Options{
		Plan: p, Spec: spec, Conns: conns, Hostnames: names, Sink: rec, PollInterval: time.Millisecond,
		Binary: func(ctx context.Context, key plan.BinaryKey, progress func(done, total int64)) (string, error) {
			return "/bin/true", nil
		},
		Kubeconfig: func(ctx context.Context, cluster string, data []byte) error {
			mu.Lock()
			merged = append(merged, cluster)
			mu.Unlock()
			return nil
		},
	})
	if err == nil && len(merged) != len(spec.Clusters) {
		t.Errorf("kubeconfig merged for %v, want every cluster", merged)
	}
	return res, log.lines, rec.Events(), err
}

func TestRunOrder(t *testing.T) {
	res, starts, events, err := runFleet(t, nil)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	pos := map[string]int{}
	for i, s := range starts {
		pos[strings.Fields(s)[0]] = i
	}
	// Servers one at a time, in order, then the agents.
	if !(pos["s1"] < pos["s2"] && pos["s2"] < pos["s3"] && pos["s3"] < pos["a1"] && pos["s3"] < pos["a2"] && pos["t1"] < pos["t2"]) {
		t.Errorf("start order %v", starts)
	}
	for _, r := range res {
		if r.Status != StatusDone {
			t.Errorf("%s: %s %s", r.Host, r.Status, r.Error)
		}
	}
	last := events[len(events)-1]
	if last.Type != EventSummary || len(last.Results) != 7 {
		t.Errorf("last event %+v", last)
	}
	for _, e := range events {
		if strings.Contains(fmt.Sprintf("%+v", e), "secretpw") {
			t.Fatalf("event shows the token: %+v", e)
		}
	}
}

func TestRunFailureFailsOnlyDependents(t *testing.T) {
	res, _, _, err := runFleet(t, map[string]string{"s2": "--no-block"})
	if !errors.Is(err, ErrHostsFailed) {
		t.Fatalf("err = %v, want ErrHostsFailed", err)
	}
	want := map[string]HostStatus{"s1": StatusDone, "s2": StatusFailed, "s3": StatusSkipped, "a1": StatusSkipped, "a2": StatusSkipped, "t1": StatusDone, "t2": StatusDone}
	for _, r := range res {
		if r.Status != want[r.Host] {
			t.Errorf("%s: status %s, want %s (%s)", r.Host, r.Status, want[r.Host], r.Error)
		}
	}
}

func TestServiceCommandNeverBlocks(t *testing.T) {
	for _, restart := range []bool{true, false} {
		cmd, _ := serviceCommand("systemd", "k3s", restart)
		if strings.Contains(cmd, "systemctl start k3s") || strings.Contains(cmd, "systemctl restart k3s") || !strings.Contains(cmd, "--no-block") {
			t.Errorf("restart=%v: %s", restart, cmd)
		}
	}
}

func TestCondenseLog(t *testing.T) {
	lines := []string{
		`time="2026-01-01T00:00:01Z" level=info msg="Starting k3s agent"`,
		`time="2026-01-01T00:00:02Z" level=error msg="token CA hash does not match"`,
		`time="2026-01-01T00:00:04Z" level=error msg="token CA hash does not match"`,
		`time="2026-01-01T00:00:06Z" level=error msg="token CA hash does not match"`,
		"",
	}
	got := condenseLog(lines, 8)
	if len(got) != 2 || !strings.HasSuffix(got[1], "(×3)") || !strings.Contains(got[1], "00:00:06") {
		t.Errorf("condenseLog = %q", got)
	}
	if got := condenseLog(lines, 1); len(got) != 1 || !strings.Contains(got[0], "token CA") {
		t.Errorf("condenseLog max 1 = %q", got)
	}
}
