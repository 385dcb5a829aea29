package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/k3sctl/k3sctl/internal/cli"
	"github.com/k3sctl/k3sctl/test/e2e/world"
)

// Three clusters: shop-1 stays healthy (then gets a certificate close to
// expiry), shop-2 gets a stopped agent, lab-1 gets a label changed in the
// inventory after apply.
const statusTemplate = `apiVersion: k3sctl.io/v1alpha1
kind: Inventory
defaults:
  ssh:
    user: pi
    keyFile: {{.Key}}
  version: {{.Version}}
clusters:
  - name: shop-1
    servers: [{{.Shop1}}]
  - name: shop-2
    servers: [{{.Shop2}}]
    agents: [{{.Shop2Agent}}]
  - name: lab-1
    servers:
      - address: {{.Lab1}}
        labels: {zone: {{.Zone}}}
`

type statusVars struct {
	Key, Version, Zone             string
	Shop1, Shop2, Shop2Agent, Lab1 string
}

func writeStatusFleet(t *testing.T, path string, v statusVars) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := template.Must(template.New("fleet").Parse(statusTemplate)).Execute(f, v); err != nil {
		t.Fatal(err)
	}
}

func parseStatus(t *testing.T, r result) cli.StatusReport {
	t.Helper()
	var rep cli.StatusReport
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("status -o json: %v\n%s", err, r)
	}
	return rep
}

func statusCluster(t *testing.T, rep cli.StatusReport, name string) cli.ClusterStatus {
	t.Helper()
	for _, c := range rep.Clusters {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no cluster %s in %+v", name, rep)
	return cli.ClusterStatus{}
}

func statusNode(t *testing.T, c cli.ClusterStatus, host string) cli.NodeStatus {
	t.Helper()
	for _, n := range c.Nodes {
		if n.Host == host {
			return n
		}
	}
	t.Fatalf("cluster %s: no host %s in %+v", c.Name, host, c.Nodes)
	return cli.NodeStatus{}
}

// tableRow is the line of status's table for host.
func tableRow(t *testing.T, out, host string) []string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && f[1] == host {
			return f
		}
	}
	t.Fatalf("no table row for %s:\n%s", host, out)
	return nil
}

// expiringCert is a PEM certificate, self-signed, that expires at notAfter.
func expiringCert(t *testing.T, notAfter time.Time) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "system:kube-controller-manager"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// written lists what changed on h since the marker file was touched under
// the paths k3sctl writes to (status writes nothing).
func written(t *testing.T, h *world.Host) string {
	t.Helper()
	return strings.TrimSpace(h.Exec(t, "find /etc/rancher /usr/local/bin /etc/systemd/system /var/lib/rancher/k3s/k3sctl /tmp -newer /root/status-marker -not -path /tmp 2>/dev/null || true"))
}

func TestStatus(t *testing.T) {
	t.Parallel()
	w := world.New(t)
	m := startMirror(t)
	hs := w.Start(t, "shop1", "shop2", "shop2a", "lab1")
	shop1, shop2, shop2a, lab1 := hs[0], hs[1], hs[2], hs[3]
	u := newUser(t)
	u.env = append(u.env, "K3SCTL_DOWNLOAD_URL="+m.DownloadURL, "K3SCTL_CHANNEL_URL="+m.ChannelURL)
	dir := t.TempDir()
	inv := filepath.Join(dir, "fleet.yaml")
	vars := statusVars{Key: w.Key, Version: v1, Zone: "hall-1", Shop1: shop1.IP, Shop2: shop2.IP, Shop2Agent: shop2a.IP, Lab1: lab1.IP}
	writeStatusFleet(t, inv, vars)
	u.k3sctlIn(dir, 0, "apply", "-f", "fleet.yaml", "--timeout", "90s")
	u.waitNodes("shop-2", 2)

	// All healthy and in sync: exit 0, every node reachable, active, Ready.
	r := u.k3sctlIn(dir, 0, "status", "-f", "fleet.yaml")
	for _, h := range hs {
		row := tableRow(t, r.stdout, h.IP)
		// CLUSTER HOST ROLE REACHABLE SERVICE READY VERSION DRIFT CERTS
		if row[3] != "yes" || row[4] != "active" || row[5] != "yes" || row[6] != v1 || row[7] != "-" || row[8] != "ok" {
			t.Errorf("%s: row %q, want reachable, active, Ready, %s, no drift, certificates ok", h.Name, row, v1)
		}
	}
	if !strings.Contains(r.stdout, "3 cluster(s): 3 healthy and in sync") {
		t.Errorf("summary missing:\n%s", r)
	}
	rep := parseStatus(t, u.k3sctlIn(dir, 0, "status", "-f", "fleet.yaml", "-o", "json"))
	if rep.Health != cli.HealthOK || rep.ExitCode != 0 || len(rep.Clusters) != 3 {
		t.Errorf("clean fleet: %+v", rep)
	}
	n := statusNode(t, statusCluster(t, rep, "shop-2"), shop2a.IP)
	if n.Role != "agent" || n.Reachable == nil || !*n.Reachable || n.Ready == nil || !*n.Ready || n.Service != "active" || n.Drift != nil || n.Health != cli.HealthOK {
		t.Errorf("shop-2 agent: %+v", n)
	}
	if n.Certs.State != cli.CertOK || n.Certs.First == nil || n.Certs.First.DaysLeft < 300 {
		t.Errorf("shop-2 agent certificates: %+v", n.Certs)
	}

	// --ip: one server, and its cluster's other nodes as the API lists them.
	rep = parseStatus(t, u.k3sctlIn(dir, 0, "status", "--ip", shop2.IP, "-u", "pi", "--ssh-key", w.Key, "-o", "json"))
	if len(rep.Clusters) != 1 || len(rep.Clusters[0].Nodes) != 2 {
		t.Fatalf("status --ip %s: want one cluster of two nodes: %+v", shop2.IP, rep)
	}
	if a := statusNode(t, rep.Clusters[0], shop2a.IP); a.Reachable != nil || a.Ready == nil || !*a.Ready || a.Version != v1 || a.Role != "agent" {
		t.Errorf("status --ip: the agent from the API: %+v", a)
	}

	// A client certificate of shop-1 that expires in 20 days: a warning,
	// the exit code stays 0.
	certFile := filepath.Join(t.TempDir(), "client-controller.crt")
	if err := os.WriteFile(certFile, expiringCert(t, time.Now().Add(20*24*time.Hour)), 0o644); err != nil {
		t.Fatal(err)
	}
	shop1.CopyIn(t, certFile, "/var/lib/rancher/k3s/server/tls/client-controller.crt", 0o644)
	r = u.k3sctlIn(dir, 0, "status", "-f", "fleet.yaml")
	if row := tableRow(t, r.stdout, shop1.IP); strings.Join(row[8:], " ") != "warn 19d client-controller.crt" {
		t.Errorf("shop-1 certificate cell: %q\n%s", row[8:], r.stdout)
	}
	if !strings.Contains(r.stdout, "shop-1/"+shop1.IP+": warning: certificate /var/lib/rancher/k3s/server/tls/client-controller.crt expires in 19 days") {
		t.Errorf("no certificate warning:\n%s", r)
	}
	rep = parseStatus(t, u.k3sctlIn(dir, 0, "status", "-f", "fleet.yaml", "-o", "json"))
	if c := statusNode(t, statusCluster(t, rep, "shop-1"), shop1.IP).Certs; c.State != cli.CertWarn || c.First == nil ||
		c.First.Path != "/var/lib/rancher/k3s/server/tls/client-controller.crt" || c.First.DaysLeft != 19 {
		t.Errorf("shop-1 certificates: %+v", c)
	}

	// A label changed in the inventory after apply: drift, exit 4. status
	// changes nothing: the label stays, no file is written.
	vars.Zone = "hall-2"
	writeStatusFleet(t, inv, vars)
	for _, h := range hs {
		h.Exec(t, "touch /root/status-marker")
	}
	time.Sleep(1100 * time.Millisecond) // a later write gets a later mtime
	r = u.k3sctlIn(dir, cli.ExitChangesPending, "status", "-f", "fleet.yaml")
	if row := tableRow(t, r.stdout, lab1.IP); row[7] != "labels" {
		t.Errorf("lab-1 drift cell: %q\n%s", row, r.stdout)
	}
	if !strings.Contains(r.stdout, "1 with drift (lab-1)") {
		t.Errorf("summary does not name the drifted cluster:\n%s", r.stdout)
	}
	rep = parseStatus(t, u.k3sctlIn(dir, cli.ExitChangesPending, "status", "-f", "fleet.yaml", "-o", "json"))
	lab := statusCluster(t, rep, "lab-1")
	if d := statusNode(t, lab, lab1.IP).Drift; lab.Health != cli.HealthDrift || d == nil || d.Action != "label" || strings.Join(d.Kinds, ",") != "labels" {
		t.Errorf("lab-1: %+v, drift %+v", lab, d)
	}
	if rep.Health != cli.HealthDrift || rep.ExitCode != cli.ExitChangesPending {
		t.Errorf("fleet with drift: health %s, exit code %d", rep.Health, rep.ExitCode)
	}
	if out, err := u.kubectl("--context", "lab-1", "get", "nodes", "-L", "zone", "--no-headers"); err != nil || !strings.Contains(out, "hall-1") {
		t.Errorf("status changed the label: %s %v", out, err)
	}
	for _, h := range hs {
		if got := written(t, h); got != "" {
			t.Errorf("%s: status wrote %s", h.Name, got)
		}
	}

	// k3s-agent stopped on shop-2's agent: unhealthy, exit 6, and lab-1
	// still shows its drift.
	shop2a.Exec(t, "systemctl stop k3s-agent")
	r = u.k3sctlIn(dir, cli.ExitUnhealthy, "status", "-f", "fleet.yaml")
	if row := tableRow(t, r.stdout, shop2a.IP); row[4] != "inactive" || row[7] != "start" {
		t.Errorf("shop-2 agent row: %q\n%s", row, r.stdout)
	}
	if !strings.Contains(r.stdout, "1 unhealthy (shop-2)") || !strings.Contains(r.stdout, "shop-2/"+shop2a.IP+": k3s-agent is inactive") {
		t.Errorf("the broken cluster is not named:\n%s", r.stdout)
	}
	rep = parseStatus(t, u.k3sctlIn(dir, cli.ExitUnhealthy, "status", "-f", "fleet.yaml", "-o", "json"))
	shop := statusCluster(t, rep, "shop-2")
	if a := statusNode(t, shop, shop2a.IP); shop.Health != cli.HealthUnhealthy || a.Health != cli.HealthUnhealthy || a.Service != "inactive" {
		t.Errorf("shop-2: %+v", shop)
	}
	if rep.Health != cli.HealthUnhealthy || rep.ExitCode != cli.ExitUnhealthy || statusCluster(t, rep, "lab-1").Health != cli.HealthDrift {
		t.Errorf("fleet with a broken agent: %+v", rep)
	}

	// --watch redraws until Ctrl-C, which ends it with 130 (the example of
	// the help, as written).
	watchStatusUntilInterrupt(t, u, dir)
}

// watchStatusUntilInterrupt runs the watch example, waits for its first
// view, interrupts it and checks the exit code.
func watchStatusUntilInterrupt(t *testing.T, u *user, dir string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, k3sctlBinary(t), "status", "-f", "fleet.yaml", "--cluster", "shop-*", "--watch", "--interval", "30s")
	cmd.Env, cmd.Dir = u.env, dir
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	var seen []string
	for sc.Scan() {
		seen = append(seen, sc.Text())
		if strings.HasPrefix(sc.Text(), "2 cluster(s):") {
			break
		}
	}
	view := strings.Join(seen, "\n")
	if !strings.Contains(view, "Every 30s: k3sctl status") || strings.Contains(view, "lab-1") || !strings.Contains(view, "1 unhealthy (shop-2)") {
		t.Errorf("watch view:\n%s\n%s", view, errb.String())
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	go func() {
		for sc.Scan() {
		}
	}()
	err = cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != cli.ExitInterrupted {
		t.Errorf("watch after Ctrl-C: %v, want exit %d\n%s", err, cli.ExitInterrupted, errb.String())
	}
}
