package apply

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/k3sctl/k3sctl/internal/plan"
	"github.com/k3sctl/k3sctl/internal/ssh"
)

// piHost is a Raspberry Pi whose kernel starts without the memory cgroup
// until its boot command line has the words; each connection to it is a
// piConn of one boot.
type piHost struct {
	*fakeConn
	mu          sync.Mutex
	words       bool // cmdline.txt has them
	boots       int
	dialFails   int // refused dials while it reboots
	stillUp     int // dials that reach it before it goes down
	memOnAtBoot func(words bool) bool
	log         []string
}

type piConn struct {
	h    *piHost
	boot int
}

func (c *piConn) Host() string { return c.h.addr }

func (c *piConn) Run(ctx context.Context, cmd string, o ssh.RunOptions) (ssh.Result, error) {
	h := c.h
	h.mu.Lock()
	if c.boot != h.boots {
		h.mu.Unlock()
		return ssh.Result{}, errors.New("connection lost")
	}
	switch {
	case strings.Contains(cmd, "cmdline.txt") && strings.Contains(cmd, "cgroup_memory=1"):
		h.log = append(h.log, "fix boot")
		defer h.mu.Unlock()
		if h.words {
			return ssh.Result{}, nil
		}
		h.words = true
		return ssh.Result{Stdout: []byte("changed /boot/firmware/cmdline.txt\n")}, nil
	case strings.Contains(cmd, "setsid") && strings.Contains(cmd, "reboot"):
		h.log = append(h.log, "reboot")
		h.boots++
		h.dialFails, h.stillUp = 2, 1
		h.mu.Unlock()
		return ssh.Result{}, nil
	case strings.Contains(cmd, "k3sctl-reboot-pending ]"):
		defer h.mu.Unlock()
		if c.boot == 0 {
			return ssh.Result{Stdout: []byte("pending\n")}, nil
		}
		return ssh.Result{Stdout: []byte("rebooted\n")}, nil
	case strings.Contains(cmd, "/proc/cgroups"):
		defer h.mu.Unlock()
		if h.memOnAtBoot(h.words) && h.boots > 0 {
			return ssh.Result{Stdout: []byte("cgroup2=cpuset cpu memory pids\ncmdline=root=/dev/mmcblk0p2 cgroup_memory=1 cgroup_enable=memory\n")}, nil
		}
		return ssh.Result{Stdout: []byte("cgroup2=cpuset cpu memory pids\ncmdline=root=/dev/mmcblk0p2 cgroup_disable=memory\n")}, nil
	}
	h.mu.Unlock()
	return h.fakeConn.Run(ctx, cmd, o)
}

func (c *piConn) Upload(ctx context.Context, src, dst string, o ssh.UploadOptions) (ssh.UploadResult, error) {
	c.h.mu.Lock()
	stale := c.boot != c.h.boots
	c.h.log = append(c.h.log, "upload "+dst)
	c.h.mu.Unlock()
	if stale {
		return ssh.UploadResult{}, errors.New("connection lost")
	}
	return c.h.fakeConn.Upload(ctx, src, dst, o)
}

func (h *piHost) redial(ctx context.Context, address string) (Conn, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stillUp > 0 {
		h.stillUp--
		return &piConn{h: h, boot: 0}, nil // the old boot, about to go down
	}
	if h.dialFails > 0 {
		h.dialFails--
		return nil, errors.New("connection refused")
	}
	return &piConn{h: h, boot: h.boots}, nil
}

func runPi(t *testing.T, memOn func(words bool) bool) (*piHost, []HostResult, []Event, error) {
	t.Helper()
	f := newTestFleet(nil)
	f.spec.Clusters = f.spec.Clusters[1:]
	f.spec.Clusters[0].FixBoot = true
	facts := map[string]*plan.HostFacts{}
	for _, h := range f.hosts() {
		facts[h.Address] = f.conns[h.Address].facts(h.Role)
	}
	facts["t1"].MemoryCgroup = false
	p, err := plan.Build(plan.Input{Spec: *f.spec, Facts: facts,
		Binaries: map[plan.BinaryKey]plan.Binary{{Version: "v1.31.4+k3s1", Arch: "amd64"}: {Version: "v1.31.4+k3s1", SHA256: fakeBinarySHA}}})
	if err != nil {
		t.Fatal(err)
	}
	pi := &piHost{fakeConn: f.conns["t1"], memOnAtBoot: memOn}
	conns := map[string]Conn{"t1": &piConn{h: pi}, "t2": f.conns["t2"]}
	rec := &Recorder{}
	res, err := Run(context.Background(), Options{
		Plan: p, Spec: f.spec, Conns: conns, Hostnames: map[string]string{"t1": "t1", "t2": "t2"}, Sink: rec,
		PollInterval: time.Millisecond, ReadyTimeout: 5 * time.Second, Redial: pi.redial,
		Binary: func(ctx context.Context, key plan.BinaryKey, progress func(done, total int64)) (string, error) {
			return "/bin/true", nil
		},
	})
	return pi, res, rec.Events(), err
}

func TestFixBootRebootsAndGoesOnOverTheNewConnection(t *testing.T) {
	pi, res, events, err := runPi(t, func(words bool) bool { return words })
	if err != nil {
		t.Fatalf("%v: %+v", err, res)
	}
	want := []string{"fix boot", "reboot", "upload /usr/local/bin/k3s"}
	if strings.Join(pi.log, "; ") != strings.Join(want, "; ") {
		t.Errorf("host saw %q, want %q", pi.log, want)
	}
	var msgs []string
	for _, e := range events {
		if e.Host == "t1" && e.Step == plan.StepFixBoot && e.Type == EventLog {
			msgs = append(msgs, e.Message)
		}
	}
	if len(msgs) != 3 || !strings.Contains(msgs[0], "added cgroup_memory=1 cgroup_enable=memory to /boot/firmware/cmdline.txt") ||
		msgs[1] != "rebooting" || !strings.Contains(msgs[2], "memory cgroup on") {
		t.Errorf("fix boot said %q", msgs)
	}
	if r := resultOf(res, "t2"); r.Status != StatusDone {
		t.Errorf("agent after the rebooted server: %+v", r)
	}
}

func TestFixBootThatDoesNotTakeSaysWhatToCheck(t *testing.T) {
	_, res, _, err := runPi(t, func(bool) bool { return false })
	if !errors.Is(err, ErrHostsFailed) {
		t.Fatalf("err = %v", err)
	}
	r := resultOf(res, "t1")
	if r.Status != StatusFailed || !strings.Contains(r.Error, "rebooted but the memory cgroup is still off") ||
		!strings.Contains(r.Error, "/boot/firmware/cmdline.txt") || !strings.Contains(r.Error, "/proc/cmdline") {
		t.Errorf("t1: %s %q", r.Status, r.Error)
	}
	if r := resultOf(res, "t2"); r.Status != StatusSkipped {
		t.Errorf("agent: %s", r.Status)
	}
}

func (c *piConn) WriteFile(ctx context.Context, dst string, data []byte, mode os.FileMode) (bool, error) {
	return c.h.fakeConn.WriteFile(ctx, dst, data, mode)
}

func (c *piConn) ReadFile(ctx context.Context, path string) ([]byte, error) {
	return c.h.fakeConn.ReadFile(ctx, path)
}
