package e2e

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/k3sctl/k3sctl/internal/cli"
	"github.com/k3sctl/k3sctl/test/e2e/world"
)

// psWatch samples the process command lines of hosts until stop is called
// and remembers every line that holds needle.
type psWatch struct {
	mu      sync.Mutex
	leaks   []string
	seen    map[string]bool // host name -> a k3s process was sampled
	samples int
	done    chan struct{}
	stopped chan struct{}
}

func watchProcesses(hosts []*world.Host, needle string) *psWatch {
	p := &psWatch{seen: map[string]bool{}, done: make(chan struct{}), stopped: make(chan struct{})}
	go func() {
		defer close(p.stopped)
		for {
			for _, h := range hosts {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				out, err := h.ExecErr(ctx, "ps -eo args")
				cancel()
				if err != nil {
					continue
				}
				p.mu.Lock()
				p.samples++
				for _, line := range strings.Split(out, "\n") {
					if strings.Contains(line, needle) {
						p.leaks = append(p.leaks, h.Name+": "+line)
					}
					if strings.Contains(line, "k3s server") || strings.Contains(line, "k3s agent") {
						p.seen[h.Name] = true
					}
				}
				p.mu.Unlock()
			}
			select {
			case <-p.done:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	return p
}

func (p *psWatch) stop() {
	close(p.done)
	<-p.stopped
}

const datastoreInventory = `apiVersion: k3sctl.io/v1alpha1
kind: Inventory
name: {{NAME}}
version: ` + v1 + `
ssh: {user: pi, keyFile: {{KEY}}}
{{TOKEN}}datastore: postgres://k3s:${PG_PASSWORD}@{{DB}}/k3s
servers: [{{SERVERS}}]
{{AGENTS}}`

func writeDatastoreInventory(t *testing.T, path string, vars map[string]string) string {
	t.Helper()
	s := datastoreInventory
	for k, v := range vars {
		s = strings.ReplaceAll(s, "{{"+k+"}}", v)
	}
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestDatastorePostgres: two servers on PostgreSQL and an agent come up
// from an inventory's datastore:, with the password on no command line and
// in no output; a server with another token is refused by K3s and k3sctl
// says why.
func TestDatastorePostgres(t *testing.T) {
	t.Parallel()
	w := world.New(t)
	m := startMirror(t)
	pg, dsn := w.Postgres(t)
	hs := w.Start(t, "pg1", "pg2", "pgw", "pg3")
	s1, s2, agent, s3 := hs[0], hs[1], hs[2], hs[3]
	du, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	password, _ := du.User.Password()
	if len(password) < 8 {
		t.Fatalf("test world DSN without a usable password: %q", password)
	}
	u := newUser(t)
	u.env = append(u.env, "PG_PASSWORD="+password)
	dir := t.TempDir()
	inv := writeDatastoreInventory(t, filepath.Join(dir, "shop.yaml"), map[string]string{
		"NAME": "pgshop", "KEY": w.Key, "TOKEN": "", "DB": du.Host,
		"SERVERS": s1.IP + ", " + s2.IP, "AGENTS": "agents: [" + agent.IP + "]\n",
	})
	planFlags := []string{"--download-url", m.DownloadURL, "--channel-url", m.ChannelURL}
	applyFlags := append(append([]string{}, planFlags...), "--timeout", "90s")

	watch := watchProcesses([]*world.Host{s1, s2, agent, s3, pg}, password)
	var outputs []string
	keep := func(r result) result { outputs = append(outputs, r.stdout+r.stderr); return r }

	r := keep(u.k3sctl(args(planFlags, "plan", "-f", inv, "-o", "json")...))
	if r.code != 0 {
		t.Fatalf("plan before apply:\n%s", r)
	}
	keep(u.mustK3sctl(args(applyFlags, "apply", "-f", inv)...))

	// Ready through the merged kubeconfig, with real kubectl.
	nodes := u.waitNodes("pgshop", 3)
	for _, name := range []string{"pg1", "pg2", "pgw"} {
		if nodes[name] == nil || nodes[name][0] != "Ready" {
			t.Errorf("node %s: %v (all: %v)", name, nodes[name], nodes)
		}
	}
	if !strings.Contains(nodes["pg2"][1], "control-plane") || !strings.Contains(nodes["pgw"][1], "none") {
		t.Errorf("roles: %v", nodes)
	}

	// What each node got: every server the datastore and the same token,
	// no cluster-init and no server:; the agent joins the first server.
	token1 := strings.TrimSpace(s1.Exec(t, "cat /var/lib/rancher/k3s/server/token"))
	for _, h := range []*world.Host{s1, s2} {
		cfg := h.Exec(t, "cat /etc/rancher/k3s/config.yaml")
		if !strings.Contains(cfg, "datastore-endpoint: "+dsn+"\n") || strings.Contains(cfg, "cluster-init") || strings.Contains(cfg, "\nserver:") {
			t.Errorf("%s config.yaml: want datastore-endpoint, no cluster-init, no server:\n%s", h.Name, strings.ReplaceAll(cfg, password, "<password>"))
		}
		if mode := strings.TrimSpace(h.Exec(t, "stat -c %a /etc/rancher/k3s/config.yaml")); mode != "600" {
			t.Errorf("%s config.yaml mode %s, want 600", h.Name, mode)
		}
		if tok := strings.TrimSpace(h.Exec(t, "cat /var/lib/rancher/k3s/server/token")); tok != token1 {
			t.Errorf("%s has another token than %s", h.Name, s1.Name)
		}
	}
	if cfg := agent.Exec(t, "cat /etc/rancher/k3s/config.yaml"); !strings.Contains(cfg, "server: https://"+s1.IP+":6443\n") || strings.Contains(cfg, "datastore") {
		t.Errorf("agent config.yaml:\n%s", strings.ReplaceAll(cfg, password, "<password>"))
	}

	// The cluster lives in PostgreSQL: its node records are there.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT name FROM k3s_sim WHERE name LIKE '/registry/minions/%' OR name LIKE '/bootstrap/%' ORDER BY name")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	rows.Close()
	joined := strings.Join(keys, " ")
	for _, want := range []string{"/registry/minions/pg1", "/registry/minions/pg2", "/registry/minions/pgw", "/bootstrap/"} {
		if !strings.Contains(joined, want) {
			t.Errorf("PostgreSQL lacks %s: %v", want, keys)
		}
	}

	// A second run changes nothing.
	r = keep(u.k3sctl(args(planFlags, "plan", "-f", inv, "--detailed-exitcode")...))
	if r.code != 0 || !strings.Contains(r.stdout, "No changes") {
		t.Errorf("plan after apply: want exit 0 and no changes:\n%s", r)
	}

	// A fresh server given another token: K3s finds the bootstrap data
	// and refuses; k3sctl names the cause and what to do.
	other := writeDatastoreInventory(t, filepath.Join(dir, "other.yaml"), map[string]string{
		"NAME": "pgother", "KEY": w.Key, "TOKEN": "token: another-token-123\n", "DB": du.Host,
		"SERVERS": s3.IP, "AGENTS": "",
	})
	r = keep(u.k3sctl(args(planFlags, "apply", "-f", other, "--timeout", "30s")...))
	if r.code != cli.ExitHostsFailed {
		t.Errorf("server with another token: exit %d, want %d\n%s", r.code, cli.ExitHostsFailed, r)
	}
	if out := r.stdout + r.stderr; !strings.Contains(out, "bootstrap data already found and encrypted with different token") ||
		!strings.Contains(out, "database of its own") {
		t.Errorf("the refusal does not show K3s's reason and the hint:\n%s", r)
	}

	watch.stop()
	watch.mu.Lock()
	defer watch.mu.Unlock()
	if len(watch.leaks) > 0 {
		t.Errorf("the database password is on a process command line:\n%s", strings.ReplaceAll(strings.Join(watch.leaks, "\n"), password, "<password>"))
	}
	for _, h := range []*world.Host{s1, s2, agent} {
		if !watch.seen[h.Name] {
			t.Errorf("no k3s process sampled on %s in %d samples: the watch saw nothing", h.Name, watch.samples)
		}
	}
	for i, out := range outputs {
		if strings.Contains(out, password) {
			t.Errorf("k3sctl output %d shows the database password", i)
		}
	}
}
