package apply

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/kube"
	"github.com/k3sctl/k3sctl/internal/plan"
	"github.com/k3sctl/k3sctl/internal/secret"
	"github.com/k3sctl/k3sctl/internal/ssh"
)

// fakeConn stands in for a host in scheduler tests; the end-to-end tests
// run the same code over real SSH. It keeps what apply did to it (files,
// uploads, whether the service runs) so that a second run sees the host as
// the first left it.
type fakeConn struct {
	addr  string
	node  string
	log   *eventLog
	fail  string // step command substring that fails
	mu    sync.Mutex
	files map[string][]byte // small files written by "write config"
	// uploads maps a remote path to the local file put there.
	uploads map[string]string
	running bool
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
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case strings.HasPrefix(cmd, "set -e") && o.Stdin != nil:
		return c.putFiles(cmd, o.Stdin)
	case strings.HasPrefix(cmd, "rm_if()"):
		// "rm_if <path> <sha256>": removed only while it has that content.
		var out strings.Builder
		for _, l := range strings.Split(cmd, "\n") {
			f := strings.Fields(l)
			if len(f) != 3 || f[0] != "rm_if" {
				continue
			}
			data, ok := c.files[f[1]]
			switch {
			case !ok:
			case plan.RemoteFile{Data: data}.SHA256() == f[2]:
				delete(c.files, f[1])
				fmt.Fprintf(&out, "removed %s\n", f[1])
			default:
				fmt.Fprintf(&out, "kept %s\n", f[1])
			}
		}
		return ssh.Result{Stdout: []byte(out.String())}, nil
	case strings.Contains(cmd, "restart --no-block"):
		c.log.add(c.addr + " start")
		c.running = true
		return ssh.Result{Stdout: []byte("started\n")}, nil
	case strings.Contains(cmd, "--no-block"):
		if c.running {
			return ssh.Result{Stdout: []byte("running\n")}, nil
		}
		c.log.add(c.addr + " start")
		time.Sleep(20 * time.Millisecond)
		c.running = true
		return ssh.Result{Stdout: []byte("started\n")}, nil
	case isWait(cmd):
		// The host's wait loop: active at once when started, else it
		// ends at its limit, inactive.
		state := "inactive"
		if c.running {
			state = "active"
		}
		if o.OnLine != nil {
			o.OnLine("stdout", state)
		}
		return ssh.Result{Stdout: []byte(state + "\n")}, nil
	case strings.Contains(cmd, "kubectl get nodes"):
		out := "NAME STATUS ROLES AGE VERSION\n"
		for _, n := range []string{"s1", "s2", "s3", "a1", "a2", "t1", "t2"} {
			out += n + " Ready <none> 1m v1.31.4+k3s1\n"
		}
		return ssh.Result{Stdout: []byte(out)}, nil
	}
	return ssh.Result{}, nil
}

// isWait reports whether cmd is the service wait loop
// (node.ServiceManager.WaitCommand).
func isWait(cmd string) bool {
	return strings.Contains(cmd, "while :") && strings.Contains(cmd, "is-active")
}

// putFiles does what the files script does: the contents come as a tar
// stream, each "put <path> <sha256> <mode> <name>" line replaces a file
// whose content differs and says so.
func (c *fakeConn) putFiles(script string, stdin io.Reader) (ssh.Result, error) {
	content := map[string][]byte{}
	tr := tar.NewReader(stdin)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return ssh.Result{ExitCode: 1}, err
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return ssh.Result{ExitCode: 1}, err
		}
		content[h.Name] = data
	}
	if c.files == nil {
		c.files = map[string][]byte{}
	}
	var out strings.Builder
	for _, l := range strings.Split(script, "\n") {
		f := strings.Fields(l)
		if len(f) < 5 || f[0] != "put" { // put <path> <sha256> <mode> <name> <temp>
			continue
		}
		data, ok := content[f[4]]
		if !ok {
			return ssh.Result{ExitCode: 65}, fmt.Errorf("%s: %s: content missing", c.addr, f[1])
		}
		if old, ok := c.files[f[1]]; ok && bytes.Equal(old, data) {
			continue
		}
		c.files[f[1]] = data
		fmt.Fprintf(&out, "changed %s\n", f[1])
	}
	return ssh.Result{Stdout: []byte(out.String())}, nil
}

func (c *fakeConn) Upload(ctx context.Context, src, dst string, o ssh.UploadOptions) (ssh.UploadResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if dst != k3s.BinaryPath {
		// A delivered file: compared by content, as the real upload does.
		data, err := os.ReadFile(src)
		if err != nil {
			return ssh.UploadResult{}, err
		}
		sum := plan.RemoteFile{Data: data}.SHA256()
		if c.files == nil {
			c.files = map[string][]byte{}
		}
		if old, ok := c.files[dst]; ok && bytes.Equal(old, data) {
			return ssh.UploadResult{Skipped: true, SHA256: sum}, nil
		}
		c.files[dst] = data
		return ssh.UploadResult{SHA256: sum, Bytes: int64(len(data))}, nil
	}
	if c.uploads[dst] == src {
		return ssh.UploadResult{Skipped: true}, nil
	}
	if o.Progress != nil {
		o.Progress(50, 100)
		o.Progress(100, 100)
	}
	if c.uploads == nil {
		c.uploads = map[string]string{}
	}
	c.uploads[dst] = src
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

// facts is what facts gathering would find on the host now.
func (c *fakeConn) facts(role k3s.Role) *plan.HostFacts {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := &plan.HostFacts{Hostname: c.node, Arch: k3s.AMD64, InitSystem: "systemd", MemoryCgroup: true,
		Installed: map[k3s.Role]bool{}, Active: map[k3s.Role]bool{}, FileHashes: map[string]string{}}
	if c.uploads[k3s.BinaryPath] != "" {
		f.K3sVersion, f.K3sSHA256 = "v1.31.4+k3s1", fakeBinarySHA
	}
	f.FileStats = map[string]plan.FileStat{}
	for p, data := range c.files {
		f.FileHashes[p] = plan.RemoteFile{Data: data}.SHA256()
		f.FileStats[p] = plan.FileStat{Size: int64(len(data)), Mode: plan.DeliveredFileMode}
	}
	if rec, ok := c.files[plan.DeliveredRecordPath]; ok {
		f.Delivered, _ = plan.ParseDeliveredRecord(rec)
	}
	f.Installed[role] = c.files[k3s.UnitPath(role)] != nil
	f.Active[role] = c.running
	return f
}

// fakeBinarySHA is the checksum the tests' k3s binary has.
const fakeBinarySHA = "x"

func fleet() *plan.Spec {
	return &plan.Spec{Clusters: []plan.Cluster{
		{Name: "ha", Version: "v1.31.4+k3s1", HA: true,
			Servers: []plan.Host{{Address: "s1", Role: k3s.Server}, {Address: "s2", Role: k3s.Server}, {Address: "s3", Role: k3s.Server}},
			Agents:  []plan.Host{{Address: "a1", Role: k3s.Agent}, {Address: "a2", Role: k3s.Agent}}},
		{Name: "shop", Version: "v1.31.4+k3s1",
			Servers: []plan.Host{{Address: "t1", Role: k3s.Server}},
			Agents:  []plan.Host{{Address: "t2", Role: k3s.Agent}}},
	}}
}

// testFleet is fleet's hosts as fakes that keep their state between runs.
type testFleet struct {
	spec   *plan.Spec
	conns  map[string]*fakeConn
	log    *eventLog
	tokens map[string]secret.Value // read while planning
	api    *fakeAPI
}

func newTestFleet(failOn map[string]string) *testFleet {
	f := &testFleet{spec: fleet(), conns: map[string]*fakeConn{}, log: &eventLog{}}
	for _, h := range f.hosts() {
		f.conns[h.Address] = &fakeConn{addr: h.Address, node: h.Address, log: f.log, fail: failOn[h.Address]}
	}
	f.api = &fakeAPI{conns: f.conns, nodes: map[string]*kube.Node{}}
	return f
}

func (f *testFleet) hosts() []plan.Host {
	var hosts []plan.Host
	for _, c := range f.spec.Clusters {
		hosts = append(append(hosts, c.Servers...), c.Agents...)
	}
	return hosts
}

// plan gathers facts from the fakes and plans, as rollout does: a cluster
// whose first server runs has its token read while planning.
func (f *testFleet) plan(t *testing.T) *plan.Plan {
	t.Helper()
	facts := map[string]*plan.HostFacts{}
	for _, h := range f.hosts() {
		facts[h.Address] = f.conns[h.Address].facts(h.Role)
	}
	tokens := map[string]secret.Value{}
	f.tokens = tokens
	for _, c := range f.spec.Clusters {
		if first := f.conns[c.Servers[0].Address]; first.facts(k3s.Server).Active[k3s.Server] {
			data, _ := first.ReadFile(context.Background(), k3s.TokenPath)
			tokens[c.Name] = secret.New(strings.TrimSpace(string(data)))
			for _, h := range append(append([]plan.Host{}, c.Servers...), c.Agents...) {
				facts[h.Address].Node = f.api.nodeFacts(h.Address)
			}
		}
	}
	p, err := plan.Build(plan.Input{Spec: *f.spec, Facts: facts, Tokens: tokens,
		Binaries: map[plan.BinaryKey]plan.Binary{{Version: "v1.31.4+k3s1", Arch: k3s.AMD64}: {Version: "v1.31.4+k3s1", SHA256: fakeBinarySHA}}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// run applies p to the fakes.
func (f *testFleet) run(t *testing.T, p *plan.Plan) ([]HostResult, []Event, error) {
	t.Helper()
	conns := map[string]Conn{}
	names := map[string]string{}
	for a, c := range f.conns {
		conns[a] = c
		names[a] = a
	}
	rec := &Recorder{}
	var mu sync.Mutex
	var merged []string
	res, err := Run(context.Background(), Options{
		Plan: p, Spec: f.spec, Conns: conns, Hostnames: names, Tokens: f.tokens, Sink: rec, PollInterval: time.Millisecond,
		Binary: func(ctx context.Context, key plan.BinaryKey, progress func(done, total int64)) (string, error) {
			return "/bin/true", nil
		},
		API: func(ctx context.Context, cluster string) (NodeAPI, error) {
			if f.api.err != nil {
				return nil, f.api.err
			}
			return f.api, nil
		},
		Kubeconfig: func(ctx context.Context, cluster string, data []byte) error {
			mu.Lock()
			merged = append(merged, cluster)
			mu.Unlock()
			return nil
		},
	})
	if err == nil && len(merged) != len(f.spec.Clusters) {
		t.Errorf("kubeconfig merged for %v, want every cluster", merged)
	}
	return res, rec.Events(), err
}

func runFleet(t *testing.T, failOn map[string]string) ([]HostResult, []string, []Event, error) {
	t.Helper()
	f := newTestFleet(failOn)
	res, events, err := f.run(t, f.plan(t))
	return res, f.log.lines, events, err
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

// A server the run did not change gives the admin kubeconfig read with its
// cluster's nodes; one it changed is read again, as K3s may have
// rewritten it.
func TestKubeconfigStepUsesKnownCopy(t *testing.T) {
	for _, changed := range []bool{false, true} {
		var got []byte
		r := &runner{o: Options{
			KnownKubeconfigs: map[string][]byte{"s1": []byte("known\n")},
			Kubeconfig: func(ctx context.Context, cluster string, data []byte) error {
				got = data
				return nil
			},
		}}
		j := &job{cplan: &plan.ClusterPlan{Name: "c"}, hp: plan.HostPlan{Address: "s1"}}
		hr := &hostRun{conn: &fakeConn{addr: "s1"}, changed: changed}
		if _, err := r.runStep(context.Background(), j, hr, plan.StepKubeconfig); err != nil {
			t.Fatal(err)
		}
		want := "known\n"
		if changed {
			want = "apiVersion: v1\n"
		}
		if string(got) != want {
			t.Errorf("changed=%v: merged %q, want %q", changed, got, want)
		}
	}
}
