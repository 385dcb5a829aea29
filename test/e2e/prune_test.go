package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/k3sctl/k3sctl/test/e2e/world"
)

// etcdMembers lists the embedded-etcd members a server's datastore holds
// (the simulator keeps it as JSON where K3s keeps etcd's database).
func etcdMembers(t *testing.T, h *world.Host) []string {
	t.Helper()
	out := h.Exec(t, "cat /var/lib/rancher/k3s/server/db/etcd/member/snap/db")
	var st struct {
		Members map[string]struct {
			NodeName string `json:"nodeName"`
			Removed  bool   `json:"removed"`
		} `json:"members"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("%s: etcd datastore: %v", h.Name, err)
	}
	var names []string
	for _, m := range st.Members {
		if !m.Removed {
			names = append(names, m.NodeName)
		}
	}
	sort.Strings(names)
	return names
}

// nodeNames lists the nodes kubectl shows, sorted.
func nodeNames(t *testing.T, u *user, context string) []string {
	t.Helper()
	nodes, err := u.nodes(context)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range nodes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// waitFor polls cond until it returns "" or the time is up.
func waitFor(t *testing.T, limit time.Duration, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		why := cond()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(why)
		}
		time.Sleep(2 * time.Second)
	}
}

// A 3-server cluster with an agent: with one server stopped, replacing
// another in the inventory is refused and apply --prune changes nothing;
// once all servers run, removing the agent and then replacing a server
// with apply --prune drains them, uninstalls K3s on their hosts and
// deletes their nodes, and etcd's membership loses the removed server.
// (An inventory of 2 servers is refused, so a server leaves embedded etcd
// by being replaced.)
func TestPruneRemovesNodes(t *testing.T) {
	t.Parallel()
	w := world.New(t)
	m := startMirror(t)
	hs := w.Start(t, "s1", "s2", "s3", "w1", "s4")
	s1, s2, s3, w1, s4 := hs[0], hs[1], hs[2], hs[3], hs[4]
	u := newUser(t)
	dir := t.TempDir()
	write := func(servers []*world.Host, agents []*world.Host) string {
		ips := func(hs []*world.Host) string {
			var out []string
			for _, h := range hs {
				out = append(out, h.IP)
			}
			return strings.Join(out, ", ")
		}
		body := inventoryHeader(w) + "  - name: prune\n    servers: [" + ips(servers) + "]\n"
		if len(agents) > 0 {
			body += "    agents: [" + ips(agents) + "]\n"
		}
		return writeInventory(t, dir, body)
	}
	flags := []string{"--download-url", m.DownloadURL, "--channel-url", m.ChannelURL}
	inv := write([]*world.Host{s1, s2, s3}, []*world.Host{w1})
	u.mustK3sctl(args(flags, "apply", "-f", inv)...)
	u.waitNodes("prune", 4)
	if got := etcdMembers(t, s1); !slices.Equal(got, []string{"s1", "s2", "s3"}) {
		t.Fatalf("etcd members %v", got)
	}

	// (c) s2 stopped: removing s3 would leave s1 the only healthy member
	// of two. Refused, by plan and by apply --prune, before anything.
	s2.Exec(t, "systemctl stop k3s")
	waitFor(t, 2*time.Minute, func() string {
		nodes, err := u.nodes("prune")
		if err != nil || nodes["s2"] == nil || nodes["s2"][0] != "NotReady" {
			return fmt.Sprintf("s2 not NotReady: %v %v", nodes, err)
		}
		return ""
	})
	inv = write([]*world.Host{s1, s2, s4}, []*world.Host{w1})
	r := u.k3sctl(args(flags, "plan", "-f", inv, "--detailed-exitcode")...)
	if r.code != 4 || !regexp.MustCompile(`s3 .*REFUSED`).MatchString(r.stdout) ||
		!strings.Contains(r.stdout, "removing server s3 would leave 2 etcd member(s) of which 1 Ready, short of the quorum of 2") {
		t.Fatalf("plan with s2 stopped and s3 gone from the inventory: want exit 4 and the removal refused:\n%s", r)
	}
	r = u.k3sctl(args(flags, "apply", "-f", inv, "--prune")...)
	if r.code != 3 || !strings.Contains(r.stderr, "apply --prune changed nothing: a node removal is refused") {
		t.Fatalf("apply --prune with the removal refused: want exit 3:\n%s", r)
	}
	if state := strings.TrimSpace(s2.Exec(t, "systemctl is-active k3s || true")); state != "inactive" {
		t.Errorf("s2's k3s is %q: apply touched it", state)
	}
	if got := nodeNames(t, u, "prune"); !slices.Equal(got, []string{"s1", "s2", "s3", "w1"}) {
		t.Errorf("nodes after the refused removal: %v", got)
	}
	if got := etcdMembers(t, s1); !slices.Equal(got, []string{"s1", "s2", "s3"}) {
		t.Errorf("etcd members after the refused removal: %v", got)
	}
	if out := s3.Exec(t, "systemctl is-active k3s || true"); strings.TrimSpace(out) != "active" {
		t.Errorf("s3's k3s is %q after the refused removal", out)
	}
	if out := s4.Exec(t, "test -e /usr/local/bin/k3s && echo installed || echo none"); strings.TrimSpace(out) != "none" {
		t.Errorf("s4 got K3s although apply --prune was refused")
	}
	s2.Exec(t, "systemctl start k3s")
	u.waitNodes("prune", 4)

	// (b) The agent leaves the inventory: plan shows it, apply without
	// --prune leaves it, apply --prune removes it.
	inv = write([]*world.Host{s1, s2, s3}, nil)
	r = u.k3sctl(args(flags, "plan", "-f", inv, "--detailed-exitcode")...)
	if r.code != 4 || !strings.Contains(r.stdout, "remove (needs --prune)") || !strings.Contains(r.stdout, "apply --prune removes them") {
		t.Fatalf("plan with w1 gone from the inventory: want exit 4 and the removal shown:\n%s", r)
	}
	u.mustK3sctl(args(flags, "apply", "-f", inv)...)
	if got := nodeNames(t, u, "prune"); !slices.Contains(got, "w1") {
		t.Fatalf("apply without --prune removed w1: %v", got)
	}
	r = u.mustK3sctl(args(flags, "apply", "-f", inv, "--prune", "-o", "json")...)
	steps := map[string][]string{}
	for _, e := range parseEvents(t, r.stdout) {
		if e.Type == "step_done" {
			steps[e.Host] = append(steps[e.Host], e.Step)
		}
	}
	if want := []string{"drain node", "uninstall", "delete node"}; !slices.Equal(steps[w1.IP], want) {
		t.Errorf("w1's removal steps %v, want %v\n%s", steps[w1.IP], want, r.stdout)
	}
	if got := nodeNames(t, u, "prune"); !slices.Equal(got, []string{"s1", "s2", "s3"}) {
		t.Errorf("nodes after removing w1: %v", got)
	}
	if out := w1.Exec(t, "ls /usr/local/bin/k3s /etc/systemd/system/k3s-agent.service 2>&1 || true"); !strings.Contains(out, "No such file") || strings.Contains(out, "k3s-agent.service\n") {
		t.Errorf("K3s still installed on w1:\n%s", out)
	}

	// Then a server, replaced by s4: s4 joins first, then s3 goes.
	inv = write([]*world.Host{s1, s2, s4}, nil)
	u.mustK3sctl(args(flags, "apply", "-f", inv, "--prune")...)
	// The servers copy each other's datastore every few seconds: s1, which
	// kubectl asks, may see s4 a moment after s4 saw itself Ready.
	waitFor(t, 30*time.Second, func() string {
		if got := nodeNames(t, u, "prune"); !slices.Equal(got, []string{"s1", "s2", "s4"}) {
			return fmt.Sprintf("nodes after replacing s3: %v", got)
		}
		return ""
	})
	waitFor(t, 30*time.Second, func() string {
		if got := etcdMembers(t, s1); !slices.Equal(got, []string{"s1", "s2", "s4"}) {
			return fmt.Sprintf("etcd members after removing s3: %v", got)
		}
		return ""
	})
	if out := s3.Exec(t, "test -e /usr/local/bin/k3s && echo installed || echo gone"); strings.TrimSpace(out) != "gone" {
		t.Errorf("K3s still installed on s3")
	}
	r = u.k3sctl(args(flags, "plan", "-f", inv, "--detailed-exitcode")...)
	if r.code != 0 {
		t.Errorf("plan after the removals: want exit 0:\n%s", r)
	}
}

// A config change on a 3-server cluster drains one node at a time: each
// server is cordoned and its pods evicted (a disruption budget lets one
// probe pod go at a time; the test refills them as a ReplicaSet would)
// before K3s restarts on it, and uncordoned once it is Ready. The check
// does not trust k3sctl's own events: a systemd drop-in on every host asks
// the other servers' APIs and its own datastore, at the moment K3s starts,
// whether the node is unschedulable, and a poller records which nodes are
// cordoned together.
func TestPruneDrainsBeforeRestart(t *testing.T) {
	t.Parallel()
	w := world.New(t)
	m := startMirror(t)
	hs := w.Start(t, "d1", "d2", "d3")
	u := newUser(t)
	dir := t.TempDir()
	write := func(config string) string {
		body := inventoryHeader(w) + "  - name: drain\n    servers: [" + hs[0].IP + ", " + hs[1].IP + ", " + hs[2].IP + "]\n" + config
		return writeInventory(t, dir, body)
	}
	flags := []string{"--download-url", m.DownloadURL, "--channel-url", m.ChannelURL}
	u.mustK3sctl(args(flags, "apply", "-f", write(""))...)
	u.waitNodes("drain", 3)

	// The probe, run by systemd just before K3s starts: what the other
	// servers' APIs say of the node, and the host's own datastore file,
	// written when its K3s stopped. k3sctl cordons through whichever
	// server answers, and the simulated servers copy each other's
	// datastore only every two seconds, so the server it used has the
	// cordon at once and the others may not yet: the node counts as
	// cordoned when one of them says so.
	for _, h := range hs {
		// A kubeconfig per other server, and the probe asking each.
		var others []string
		for _, o := range hs {
			if o != h {
				others = append(others, o.IP)
			}
		}
		h.Exec(t, "for ip in "+strings.Join(others, " ")+"; do sed \"s/127.0.0.1/$ip/\" /etc/rancher/k3s/k3s.yaml > /root/probe-$ip.yaml; done")
		h.Exec(t, "printf '%s\\n' '#!/bin/sh' "+
			`'cp /var/lib/rancher/k3s/server/db/etcd/member/snap/db /root/state-at-start.json' `+
			`'said=' `+
			`'for ip in `+strings.Join(others, " ")+`; do' `+
			`'  s=$(/usr/local/bin/kubectl --kubeconfig "/root/probe-$ip.yaml" --request-timeout 3s get node `+h.Name+` -o jsonpath={.spec.unschedulable} 2>&1 | tr -s " \\n" "__")' `+
			`'  said="$said $ip=${s:-false}"' `+
			`'done' `+
			`'echo "$said" >> /root/cordon-at-start' > /root/probe.sh && chmod 755 /root/probe.sh && `+
			`mkdir -p /etc/systemd/system/k3s.service.d && printf '[Service]\nExecStartPre=-/root/probe.sh\n' > /etc/systemd/system/k3s.service.d/probe.conf && systemctl daemon-reload`)
	}

	probe := func(name, node string) string {
		nodeName := ""
		if node != "" {
			nodeName = "  nodeName: " + node + "\n"
		}
		return "apiVersion: v1\nkind: Pod\nmetadata:\n  name: " + name + "\n  labels: {app: probe}\nspec:\n" + nodeName +
			"  containers:\n  - name: probe\n    image: busybox:1.36\n---\n"
	}
	manifest := "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: probe\nspec:\n  minAvailable: 2\n  selector:\n    matchLabels: {app: probe}\n---\n"
	for _, h := range hs {
		manifest += probe("probe-"+h.Name, h.Name)
	}
	apply := func(body string) error {
		f := filepath.Join(t.TempDir(), "probe.yaml")
		if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
			return err
		}
		out, err := u.kubectl("--context", "drain", "apply", "-f", f)
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}
	if err := apply(manifest); err != nil {
		t.Fatal(err)
	}

	// The poller: which nodes are cordoned together, and the probe pods
	// kept at three.
	stop := make(chan struct{})
	done := make(chan struct{})
	var mostCordoned []string
	cordoned := map[string]bool{}
	go func() {
		defer close(done)
		refills := 0
		for {
			select {
			case <-stop:
				return
			case <-time.After(300 * time.Millisecond):
			}
			out, err := u.kubectl("--context", "drain", "get", "nodes", "-o", `jsonpath={range .items[*]}{.metadata.name} {.spec.unschedulable}{"\n"}{end}`)
			if err == nil {
				var now []string
				for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
					if f := strings.Fields(l); len(f) == 2 && f[1] == "true" {
						now = append(now, f[0])
						cordoned[f[0]] = true
					}
				}
				if len(now) > len(mostCordoned) {
					mostCordoned = now
				}
			}
			out, err = u.kubectl("--context", "drain", "get", "pods", "-l", "app=probe", "-o", "name")
			if err == nil && len(strings.Fields(out)) < 3 {
				refills++
				_ = apply(probe(fmt.Sprintf("probe-r%d", refills), ""))
			}
		}
	}()

	changed := write("    config:\n      server:\n        kubelet-arg: [max-pods=50]\n")
	r := u.mustK3sctl(args(flags, "apply", "-f", changed, "-o", "json")...)
	close(stop)
	<-done

	// k3sctl's events: each host drained, restarted, uncordoned, in order.
	order := map[string][]string{}
	for _, e := range parseEvents(t, r.stdout) {
		if e.Type == "step_done" && (e.Step == "drain node" || e.Step == "start k3s" || e.Step == "uncordon") {
			order[e.Host] = append(order[e.Host], e.Step)
		}
	}
	for _, h := range hs {
		if want := []string{"drain node", "start k3s", "uncordon"}; !slices.Equal(order[h.IP], want) {
			t.Errorf("%s: steps %v, want %v", h.Name, order[h.IP], want)
		}
		// What the others and its own datastore said of the node when
		// K3s started on the host.
		said := strings.TrimSpace(h.Exec(t, "cat /root/cordon-at-start"))
		var st struct {
			Nodes map[string]struct {
				Unschedulable bool `json:"unschedulable"`
			} `json:"nodes"`
		}
		if err := json.Unmarshal([]byte(h.Exec(t, "cat /root/state-at-start.json")), &st); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s at K3s's start: %s; own datastore unschedulable=%v", h.Name, said, st.Nodes[h.Name].Unschedulable)
		if strings.Count(said, "\n") != 0 || (!strings.Contains(said, "=true") && !st.Nodes[h.Name].Unschedulable) {
			t.Errorf("%s: at K3s's start the other servers said %q and its own datastore unschedulable=%v, want the node cordoned (once)",
				h.Name, said, st.Nodes[h.Name].Unschedulable)
		}
		if out, err := u.kubectl("--context", "drain", "get", "pod", "probe-"+h.Name); err == nil || !strings.Contains(out, "NotFound") {
			t.Errorf("probe-%s was not evicted: %v %s", h.Name, err, out)
		}
	}
	if len(mostCordoned) > 1 {
		t.Errorf("nodes cordoned at the same time: %v", mostCordoned)
	}
	// The poller asks d1, so it sees d2 and d3 cordoned while d1 serves;
	// d1's own cordon lasts only until its K3s stops, and the probe above
	// shows it.
	if !cordoned[hs[1].Name] || !cordoned[hs[2].Name] {
		t.Errorf("cordoned nodes seen: %v, want %s and %s", cordoned, hs[1].Name, hs[2].Name)
	}
	out, err := u.kubectl("--context", "drain", "get", "nodes", "-o", "jsonpath={.items[*].spec.unschedulable}")
	if err != nil || strings.Contains(out, "true") {
		t.Errorf("nodes left cordoned: %q %v", out, err)
	}
	if r := u.k3sctl(args(flags, "plan", "-f", changed, "--detailed-exitcode")...); r.code != 0 {
		t.Errorf("plan after the change: want exit 0:\n%s", r)
	}
}
