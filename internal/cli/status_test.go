package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/kube"
	"github.com/k3sctl/k3sctl/internal/node"
	"github.com/k3sctl/k3sctl/internal/plan"
	"github.com/k3sctl/k3sctl/internal/rollout"
)

var statusNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func days(n int) time.Time { return statusNow.Add(time.Duration(n)*24*time.Hour + time.Hour) }

// statusHost is a reachable host whose service runs and node is Ready.
func statusHost(p *rollout.Prepared, addr string, role k3s.Role, certs ...node.Cert) {
	nf := &node.Facts{Host: addr, K3sVersion: "v1.31.4+k3s1", Certs: certs}
	svc := node.ServiceState{Installed: true, Active: true, State: "active"}
	if role == k3s.Server {
		nf.Services.K3s = svc
	} else {
		nf.Services.K3sAgent = svc
	}
	p.HostFacts[addr] = nf
	p.Facts[addr] = &plan.HostFacts{Node: &plan.NodeFacts{Registered: true, Name: "n-" + addr, Ready: true}}
}

func newPrepared(clusters ...plan.ClusterPlan) *rollout.Prepared {
	return &rollout.Prepared{Plan: &plan.Plan{Clusters: clusters}, Facts: map[string]*plan.HostFacts{},
		HostFacts: map[string]*node.Facts{}, Nodes: map[string][]kube.Node{}, NodesErr: map[string]string{}}
}

func TestStatusHealthyFleet(t *testing.T) {
	p := newPrepared(plan.ClusterPlan{Name: "shop", Hosts: []plan.HostPlan{
		{Address: "10.0.0.1", Role: k3s.Server, Action: plan.ActionNothing},
		{Address: "10.0.0.2", Role: k3s.Agent, Action: plan.ActionNothing},
	}})
	statusHost(p, "10.0.0.1", k3s.Server, node.Cert{Path: "/tls/client-admin.crt", NotAfter: days(300)},
		node.Cert{Path: "/tls/client-ca.crt", NotAfter: days(30), CA: true})
	statusHost(p, "10.0.0.2", k3s.Agent, node.Cert{Path: "/agent/client-kubelet.crt", NotAfter: days(200)})
	rep := buildStatus(p, true, statusNow)
	if rep.Health != HealthOK || rep.ExitCode != ExitOK {
		t.Fatalf("healthy fleet: %+v", rep)
	}
	s := rep.Clusters[0].Nodes[0]
	// A CA close to expiry is listed, not warned about.
	if s.Certs.State != CertOK || s.Certs.First == nil || s.Certs.First.Path != "/tls/client-admin.crt" || s.Certs.First.DaysLeft != 300 || len(s.Certs.List) != 2 || len(s.Problems) != 0 {
		t.Errorf("server certificates: %+v, problems %q", s.Certs, s.Problems)
	}
	var out bytes.Buffer
	printStatus(&out, rep)
	for _, want := range []string{
		"CLUSTER  HOST      ROLE    REACHABLE  SERVICE  READY  VERSION       DRIFT  CERTS",
		"shop     10.0.0.1  server  yes        active   yes    v1.31.4+k3s1  -      ok 300d",
		"1 cluster(s): 1 healthy and in sync",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

func TestStatusDriftAndCertificateWarning(t *testing.T) {
	p := newPrepared(plan.ClusterPlan{Name: "lab", Hosts: []plan.HostPlan{
		{Address: "10.0.0.1", Role: k3s.Server, Action: plan.ActionLabel, Labels: []string{"zone=b"}, Reasons: []string{"node-label changed"}},
		{Address: "10.0.0.2", Role: k3s.Agent, Action: plan.ActionUpgrade, From: "v1.31.4+k3s1", To: "v1.31.5+k3s1"},
	}})
	statusHost(p, "10.0.0.1", k3s.Server, node.Cert{Path: "/tls/client-controller.crt", NotAfter: days(20)})
	statusHost(p, "10.0.0.2", k3s.Agent)
	rep := buildStatus(p, true, statusNow)
	if rep.Health != HealthDrift || rep.ExitCode != ExitChangesPending {
		t.Fatalf("drift: %+v", rep)
	}
	s, a := rep.Clusters[0].Nodes[0], rep.Clusters[0].Nodes[1]
	if s.Drift == nil || s.Drift.Action != "label" || !reflect.DeepEqual(s.Drift.Kinds, []string{"labels"}) {
		t.Errorf("label drift: %+v", s.Drift)
	}
	if a.Drift == nil || !reflect.DeepEqual(a.Drift.Kinds, []string{"version"}) {
		t.Errorf("version drift: %+v", a.Drift)
	}
	if s.Certs.State != CertWarn || s.Health != HealthDrift {
		t.Errorf("a warning does not make the node unhealthy: %+v", s)
	}
	var out bytes.Buffer
	printStatus(&out, rep)
	for _, want := range []string{
		"labels   warn 20d client-controller.crt",
		"lab/10.0.0.1: warning: certificate /tls/client-controller.crt expires in 20 days (2026-03-21); K3s renews it when restarted",
		"lab/10.0.0.1: apply would label: node-label changed",
		"1 cluster(s): 0 healthy and in sync, 1 with drift (lab)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	// Without an inventory (--ip) there is no drift.
	if rep := buildStatus(p, false, statusNow); rep.ExitCode != ExitOK || rep.Clusters[0].Nodes[0].Drift != nil {
		t.Errorf("--ip: %+v", rep)
	}
}

func TestStatusUnhealthy(t *testing.T) {
	p := newPrepared(
		plan.ClusterPlan{Name: "broken", Hosts: []plan.HostPlan{
			{Address: "10.0.0.1", Role: k3s.Server, Action: plan.ActionNothing},
			{Address: "10.0.0.2", Role: k3s.Agent, Action: plan.ActionStart},
			{Address: "10.0.0.3", Role: k3s.Agent, Action: plan.ActionUnreachable},
		}},
		plan.ClusterPlan{Name: "old", Hosts: []plan.HostPlan{
			{Address: "10.0.1.1", Role: k3s.Server, Action: plan.ActionNothing},
		}},
		plan.ClusterPlan{Name: "drifted", Hosts: []plan.HostPlan{
			{Address: "10.0.2.1", Role: k3s.Server, Action: plan.ActionReconfigure, Changes: []string{k3s.ConfigPath}},
		}},
	)
	statusHost(p, "10.0.0.1", k3s.Server)
	statusHost(p, "10.0.0.2", k3s.Agent)
	p.HostFacts["10.0.0.2"].Services.K3sAgent = node.ServiceState{Installed: true, State: "failed"}
	p.Facts["10.0.0.3"] = &plan.HostFacts{Err: "dial tcp 10.0.0.3:22: connection refused"}
	// A node the inventory does not name, NotReady.
	p.Nodes["broken"] = []kube.Node{{Name: "n-10.0.0.1", Ready: true}, {Name: "stray", ReadyReason: "NodeStatusUnknown",
		Addresses: []kube.Address{{Type: "InternalIP", Address: "10.0.0.9"}}}}
	statusHost(p, "10.0.1.1", k3s.Server, node.Cert{Path: "/tls/serving-kube-apiserver.crt", NotAfter: days(-2)})
	statusHost(p, "10.0.2.1", k3s.Server)
	rep := buildStatus(p, true, statusNow)
	if rep.Health != HealthUnhealthy || rep.ExitCode != ExitUnhealthy {
		t.Fatalf("unhealthy: %+v", rep)
	}
	b := rep.Clusters[0]
	if b.Health != HealthUnhealthy || len(b.Nodes) != 4 {
		t.Fatalf("broken cluster: %+v", b)
	}
	if n := b.Nodes[1]; n.Service != "failed" || n.Health != HealthUnhealthy || n.Drift == nil || n.Drift.Kinds[0] != "start" {
		t.Errorf("failed agent: %+v", n)
	}
	if n := b.Nodes[2]; n.Reachable == nil || *n.Reachable || n.Health != HealthUnhealthy || !strings.Contains(n.Error, "connection refused") {
		t.Errorf("unreachable agent: %+v", n)
	}
	if n := b.Nodes[3]; n.Host != "10.0.0.9" || n.Node != "stray" || n.Reachable != nil || n.Ready == nil || *n.Ready || n.Health != HealthUnhealthy {
		t.Errorf("stray node: %+v", n)
	}
	if o := rep.Clusters[1]; o.Health != HealthUnhealthy || o.Nodes[0].Certs.State != CertExpired {
		t.Errorf("expired certificate: %+v", o)
	}
	if d := rep.Clusters[2]; d.Health != HealthDrift || !reflect.DeepEqual(d.Nodes[0].Drift.Kinds, []string{"config"}) {
		t.Errorf("drifted cluster: %+v", d)
	}
	var out bytes.Buffer
	printStatus(&out, rep)
	for _, want := range []string{
		"broken/10.0.0.2: k3s-agent is failed",
		"broken/10.0.0.3: unreachable: dial tcp 10.0.0.3:22: connection refused",
		"broken/10.0.0.9: node stray is not Ready: NodeStatusUnknown",
		"old/10.0.1.1: certificate /tls/serving-kube-apiserver.crt expired on 2026-02-27",
		"3 cluster(s): 0 healthy and in sync, 1 with drift (drifted), 2 unhealthy (broken, old)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestStatusAPIUnreadAndNodeMissing(t *testing.T) {
	p := newPrepared(plan.ClusterPlan{Name: "c", Hosts: []plan.HostPlan{
		{Address: "10.0.0.1", Role: k3s.Server, Action: plan.ActionNothing},
		{Address: "10.0.0.2", Role: k3s.Agent, Action: plan.ActionNothing},
	}})
	statusHost(p, "10.0.0.1", k3s.Server)
	statusHost(p, "10.0.0.2", k3s.Agent)
	p.Facts["10.0.0.2"].Node = &plan.NodeFacts{Name: "w2"}
	rep := buildStatus(p, true, statusNow)
	if n := rep.Clusters[0].Nodes[1]; rep.ExitCode != ExitUnhealthy || n.Ready != nil || !slices.Contains(n.Problems, "no node w2 in the cluster") {
		t.Errorf("node missing: %+v", rep)
	}
	p.Facts["10.0.0.2"].Node = &plan.NodeFacts{Registered: true, Name: "w2", Ready: true}
	p.NodesErr["c"] = "10.0.0.1: read /etc/rancher/k3s/k3s.yaml: permission denied"
	rep = buildStatus(p, true, statusNow)
	if rep.ExitCode != ExitUnhealthy || rep.Clusters[0].Health != HealthUnhealthy {
		t.Errorf("API unread: %+v", rep)
	}
	var out bytes.Buffer
	printStatus(&out, rep)
	if !strings.Contains(out.String(), "c: the cluster's API could not be read: 10.0.0.1: read /etc/rancher/k3s/k3s.yaml: permission denied") {
		t.Errorf("API error not shown:\n%s", out.String())
	}
}

func TestStatusFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "which hosts?"},
		{[]string{"-f", "x.yaml", "--ip", "10.0.0.1"}, "not both"},
		{[]string{"--ip", "10.0.0.1", "--cluster", "a"}, "--cluster and --selector choose clusters of an inventory"},
		{[]string{"-f", "x.yaml", "-o", "yaml"}, "--output must be json or text"},
		{[]string{"-f", "x.yaml", "--watch", "--interval", "10ms"}, "--interval must be at least 1s"},
	} {
		ios, _, _, errOut := TestIO()
		root := newRootCmd(&Factory{IO: ios})
		called := false
		root.AddCommand(NewCmdStatus(&Factory{IO: ios}, func(*StatusOptions) error { called = true; return nil }))
		code := run(t.Context(), ios, root, append([]string{"status"}, tc.args...))
		if code != ExitUsage || called || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("status %q: exit %d, called %v, stderr %q; want usage error %q", tc.args, code, called, errOut.String(), tc.want)
		}
	}
}

// docs/status.md documents every field of the JSON report, and no other.
func TestStatusJSONDocumented(t *testing.T) {
	data, err := os.ReadFile("../../docs/status.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	fields := map[string]bool{}
	for _, v := range []any{StatusReport{}, ClusterStatus{}, NodeStatus{}, Drift{}, CertStatus{}, CertInfo{}} {
		rt := reflect.TypeOf(v)
		for i := 0; i < rt.NumField(); i++ {
			name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
			fields[name] = true
			if !strings.Contains(doc, "| `"+name+"` |") {
				t.Errorf("docs/status.md: field %s.%s (%q) is not documented", rt.Name(), rt.Field(i).Name, name)
			}
		}
	}
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-zA-Z]+)` \\|").FindAllStringSubmatch(doc, -1) {
		if !fields[m[1]] {
			t.Errorf("docs/status.md documents %q, which the report does not have", m[1])
		}
	}
	for _, c := range []int{ExitOK, ExitChangesPending, ExitUnhealthy} {
		for _, e := range ExitCodes() {
			if e.Code == c && !strings.Contains(doc, "`"+e.Name+"`") {
				t.Errorf("docs/status.md does not name exit code %d (%s)", c, e.Name)
			}
		}
	}
}

// --watch draws a view per refresh until Ctrl-C (the context ends), then
// exits 130; with -o json each refresh is one line of JSON.
func TestStatusWatch(t *testing.T) {
	for _, output := range []string{"", "json"} {
		ios, _, out, _ := TestIO()
		ctx, cancel := context.WithCancel(t.Context())
		calls := 0
		src := func(ctx context.Context) (*StatusReport, error) {
			calls++
			if calls == 3 {
				cancel()
			}
			return &StatusReport{Time: statusNow, Health: HealthOK, Clusters: []ClusterStatus{{Name: "shop", Health: HealthOK}}}, nil
		}
		err := watchStatus(ctx, &StatusOptions{IO: ios, Output: output, Interval: time.Millisecond}, src)
		var se *SilentError
		if !errors.As(err, &se) || se.Code != ExitInterrupted {
			t.Errorf("output %q: %v, want exit %d", output, err, ExitInterrupted)
		}
		if output == "json" {
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if len(lines) != 2 {
				t.Fatalf("json: %d lines, want one per finished refresh:\n%s", len(lines), out.String())
			}
			for _, l := range lines {
				var rep StatusReport
				if err := json.Unmarshal([]byte(l), &rep); err != nil || rep.Clusters[0].Name != "shop" {
					t.Errorf("json line %q: %v", l, err)
				}
			}
			continue
		}
		if n := strings.Count(out.String(), "Every 1ms: k3sctl status (Ctrl-C ends)"); n != 2 || strings.Contains(out.String(), "\x1b[") {
			t.Errorf("table: %d views, want 2 and no terminal codes off a terminal:\n%s", n, out.String())
		}
	}
}
