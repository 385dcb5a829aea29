package apply

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/plan"
	"github.com/k3sctl/k3sctl/internal/secret"
	"github.com/k3sctl/k3sctl/internal/ssh"
)

// recordingConn is a fakeConn that keeps every command line it was given.
type recordingConn struct {
	*fakeConn
	mu   *sync.Mutex
	cmds *[]string
}

func (c recordingConn) Run(ctx context.Context, cmd string, o ssh.RunOptions) (ssh.Result, error) {
	c.mu.Lock()
	*c.cmds = append(*c.cmds, c.addr+": "+cmd)
	c.mu.Unlock()
	return c.fakeConn.Run(ctx, cmd, o)
}

// TestRunDatastore: on an external datastore the second server gets the
// datastore and the token the first one wrote, none gets cluster-init or
// server:, and the password is on no command line and in no event.
func TestRunDatastore(t *testing.T) {
	const pw = "db-pa55word"
	f := &testFleet{log: &eventLog{}, conns: map[string]*fakeConn{}}
	f.spec = &plan.Spec{Clusters: []plan.Cluster{{Name: "shop", Version: "v1.31.4+k3s1", HA: true,
		Datastore: secret.New("postgres://k3s:" + pw + "@10.0.0.5:5432/k3s"),
		Servers:   []plan.Host{{Address: "s1", Role: k3s.Server}, {Address: "s2", Role: k3s.Server}},
		Agents:    []plan.Host{{Address: "a1", Role: k3s.Agent}}}}}
	for _, h := range f.hosts() {
		f.conns[h.Address] = &fakeConn{addr: h.Address, node: h.Address, log: f.log}
	}
	p := f.plan(t)
	var mu sync.Mutex
	var cmds []string
	conns := map[string]Conn{}
	names := map[string]string{}
	for a, c := range f.conns {
		conns[a] = recordingConn{fakeConn: c, mu: &mu, cmds: &cmds}
		names[a] = a
	}
	rec := &Recorder{}
	_, err := Run(context.Background(), Options{
		Plan: p, Spec: f.spec, Conns: conns, Hostnames: names, Tokens: f.tokens, Sink: rec, PollInterval: time.Millisecond,
		Binary: func(context.Context, plan.BinaryKey, func(done, total int64)) (string, error) {
			return "/bin/true", nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{"s1", "s2"} {
		cfg := string(f.conns[addr].files[k3s.ConfigPath])
		if !strings.Contains(cfg, "datastore-endpoint: postgres://k3s:"+pw+"@") || strings.Contains(cfg, "cluster-init") || strings.Contains(cfg, "\nserver:") {
			t.Errorf("%s config.yaml:\n%s", addr, cfg)
		}
	}
	if cfg := string(f.conns["s2"].files[k3s.ConfigPath]); !strings.Contains(cfg, "::server:secretpw") {
		t.Errorf("s2 lacks the token s1 wrote:\n%s", cfg)
	}
	if cfg := string(f.conns["a1"].files[k3s.ConfigPath]); !strings.Contains(cfg, "server: https://s1:6443") || strings.Contains(cfg, "datastore") {
		t.Errorf("a1 config.yaml:\n%s", cfg)
	}
	if len(cmds) == 0 {
		t.Fatal("no commands recorded")
	}
	for _, c := range cmds {
		if strings.Contains(c, pw) {
			t.Errorf("command line shows the datastore password: %s", c)
		}
	}
	for _, e := range rec.Events() {
		if strings.Contains(fmt.Sprintf("%+v", e), pw) {
			t.Errorf("event shows the datastore password: %+v", e)
		}
	}
}
